"""``tf.train.Saver``: the graph-level part (SaverDef, naming, meta-graph export).

This module holds what import/export need: a Saver built from a SaverDef (as
``import_meta_graph`` returns it, names moved into the import scope), its proto conversion and
``export_meta_graph``.  Checkpoint I/O (``save``/``restore``) is added by the checkpoint layer.
"""

from __future__ import annotations

from typing import Any

from gpugraph import _proto as pb
from gpugraph.framework import names
from gpugraph.framework.graph import get_default_graph

_NAME_FIELDS = ("filename_tensor_name", "save_tensor_name", "restore_op_name")


class Saver:
    """Saves and restores variables (``tf.compat.v1.train.Saver``).

    Args:
        var_list: variables to save (None: all saveable variables of the graph).
        saver_def: an existing SaverDef (e.g. from a ``.meta``) whose ops this Saver uses.
        name: with ``saver_def``, the scope its op names are moved into (TF's behaviour).
        max_to_keep, keep_checkpoint_every_n_hours, sharded: as in TF.
    """

    def __init__(self, var_list: Any = None, reshape: bool = False, sharded: bool = False,
                 max_to_keep: int | None = 5, keep_checkpoint_every_n_hours: float = 10000.0,
                 name: str | None = None, restore_sequentially: bool = False,
                 saver_def: Any = None, builder: Any = None, defer_build: bool = False,
                 allow_empty: bool = False, write_version: int = 2, pad_step_number: bool = False,
                 save_relative_paths: bool = False, filename: str | None = None):
        self._var_list = var_list
        self._name = name
        self._pad_step_number = pad_step_number
        self._save_relative_paths = save_relative_paths
        self._filename = filename
        self._allow_empty = allow_empty
        if saver_def is not None:
            self.saver_def = _scoped_saver_def(saver_def, name)
        else:
            # A new Saver's save/restore ops are built by the checkpoint layer; until they exist
            # there is no SaverDef (an unnamed one would make TF reject the exported file).
            self.saver_def = None
        self._settings = {"max_to_keep": max_to_keep, "sharded": sharded,
                          "keep_checkpoint_every_n_hours": keep_checkpoint_every_n_hours,
                          "write_version": write_version}

    def as_saver_def(self) -> Any:
        return self.saver_def

    def to_proto(self, export_scope: str | None = None) -> Any | None:
        """The SaverDef with names relative to ``export_scope`` (None if any lies outside)."""
        if export_scope is None or self.saver_def is None:
            return self.saver_def
        if not all(getattr(self.saver_def, f).startswith(export_scope) for f in _NAME_FIELDS):
            return None
        out = pb.SaverDef()
        out.CopyFrom(self.saver_def)
        for field in _NAME_FIELDS:
            setattr(out, field, names.strip_name_scope(getattr(out, field), export_scope))
        return out

    @staticmethod
    def from_proto(saver_def: Any, import_scope: str | None = None) -> Saver:
        return Saver(saver_def=saver_def, name=import_scope)

    def export_meta_graph(self, filename: str | None = None, collection_list: Any = None,
                          as_text: bool = False, export_scope: str | None = None,
                          clear_devices: bool = False, clear_extraneous_savers: bool = False,
                          strip_default_attrs: bool = False, save_debug_info: bool = False) -> Any:
        """Writes (if ``filename``) and returns a MetaGraphDef carrying this Saver's SaverDef."""
        from gpugraph.train.meta_graph import export_meta_graph

        return export_meta_graph(
            filename=filename,
            graph_def=get_default_graph().as_graph_def(add_shapes=True),
            saver_def=self.saver_def, collection_list=collection_list, as_text=as_text,
            export_scope=export_scope, clear_devices=clear_devices,
            clear_extraneous_savers=clear_extraneous_savers,
            strip_default_attrs=strip_default_attrs, save_debug_info=save_debug_info)


def _scoped_saver_def(saver_def: Any, scope: str | None) -> Any:
    # TF rewrites these three names in place (mutating the caller's proto); we copy first.
    out = pb.SaverDef()
    out.CopyFrom(saver_def)
    if scope:
        for field in _NAME_FIELDS:
            setattr(out, field, names.prepend_name_scope(getattr(out, field), scope))
    return out
