"""``tf.train.Saver``: SaverDef handling, ``save``/``restore`` and the checkpoint state file.

A Saver from a ``.meta`` (what ``import_meta_graph`` returns) runs the graph's own Saver ops, as
TF does: ``restore`` runs ``saver_def.restore_op_name`` feeding the checkpoint prefix to
``filename_tensor_name``; ``save`` runs ``save_tensor_name``.  The kernels behind those ops
(SaveV2, RestoreV2, MergeV2Checkpoints) read and write TF's V2 bundle format.
"""

from __future__ import annotations

from typing import Any

import contextlib
import numbers
import os
import time

from gpugraph import _proto as pb
from gpugraph import errors
from gpugraph.framework import names
from gpugraph.framework.graph import get_default_graph
from gpugraph.train import checkpoint_management as cm
from gpugraph.train import device_record

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
        if self.saver_def is not None:  # as TF: a SaverDef's own settings win
            max_to_keep = self.saver_def.max_to_keep
            keep_checkpoint_every_n_hours = self.saver_def.keep_checkpoint_every_n_hours
            self._settings["sharded"] = self.saver_def.sharded
        self._max_to_keep = max_to_keep
        self._keep_every = keep_checkpoint_every_n_hours * 3600.0
        self._next_keep_time = time.time() + self._keep_every
        self._last_checkpoints: list[tuple[str, float]] = []  # (prefix, time), oldest first

    # --- checkpoint I/O --------------------------------------------------------------------
    @property
    def last_checkpoints(self) -> list[str]:
        """Prefixes of the checkpoints this Saver keeps, oldest first."""
        return [p for p, _ in self._last_checkpoints]

    def set_last_checkpoints(self, last_checkpoints: list[str]) -> None:
        """Adopts existing checkpoints (never deleted by the keep-every-n-hours rule)."""
        self._last_checkpoints = [(p, float("inf")) for p in last_checkpoints]

    def recover_last_checkpoints(self, checkpoint_paths: list[str]) -> None:
        """Adopts existing checkpoints, dated by their files' modification times."""
        kept = []
        for p in checkpoint_paths:
            with contextlib.suppress(OSError):
                kept.append((p, os.path.getmtime(cm.meta_graph_filename(p))
                             if os.path.exists(cm.meta_graph_filename(p))
                             else os.path.getmtime(p + ".index")))
        self._last_checkpoints = sorted(kept, key=lambda item: item[1])

    def restore(self, sess: Any, save_path: str | os.PathLike | None) -> None:
        """Restores the variables from ``save_path`` (a checkpoint prefix).

        All-or-nothing: if anything fails (missing tensor, dtype or shape mismatch, damaged
        file) every variable keeps the value it had.  Unlike TF, a resource variable whose
        checkpoint value has a different shape is refused too (TF silently reshapes it).

        Raises:
            ValueError: ``save_path`` is None or no checkpoint exists there.
            NotFoundError: a variable is missing from the checkpoint.
            InvalidArgumentError: a dtype or shape mismatch.
            DataLossError: the checkpoint is damaged.
        """
        if self.saver_def is None:
            raise errors.UnimplementedError(
                None, None, "This Saver has no save/restore ops (it was not built from a "
                "SaverDef); import the graph with gpugraph.train.import_meta_graph to restore.")
        if save_path is None:
            raise ValueError("Can't load save_path when it is None.")
        save_path = os.fspath(save_path)
        if not cm.checkpoint_exists(save_path):
            raise ValueError(f"The passed save_path is not a valid checkpoint: {save_path}")
        from gpugraph.session import restore_all_or_nothing

        recorded = device_record.read_record(save_path)
        if recorded is not None and not sess._device_change_allowed():
            device_record.check_restart(save_path, recorded, sess._variable_devices())
        with restore_all_or_nothing(sess, save_path):
            sess.run(self.saver_def.restore_op_name,
                     {self.saver_def.filename_tensor_name: save_path})

    def save(self, sess: Any, save_path: str | os.PathLike, global_step: Any = None,
             latest_filename: str | None = None, meta_graph_suffix: str = "meta",
             write_meta_graph: bool = True, write_state: bool = True,
             strip_default_attrs: bool = False, save_debug_info: bool = False) -> str:
        """Saves the variables to ``save_path[-global_step]``; returns the checkpoint prefix.

        The checkpoint's files are complete before the state file names it, and older
        checkpoints beyond ``max_to_keep`` are deleted only after that.
        """
        if self.saver_def is None:
            raise errors.UnimplementedError(
                None, None, "This Saver has no save/restore ops (it was not built from a "
                "SaverDef); import the graph with gpugraph.train.import_meta_graph to save.")
        save_path = os.fspath(save_path)
        latest_filename = latest_filename or "checkpoint"
        if os.path.split(latest_filename)[0]:
            raise ValueError("'latest_filename' must not contain path components")
        checkpoint_file = self._checkpoint_file(sess, save_path, global_step, latest_filename)
        save_dir = os.path.dirname(save_path)
        if save_dir and not os.path.isdir(save_dir):
            raise ValueError(f"Parent directory of {save_path} doesn't exist, can't save.")
        result = sess.run(self.saver_def.save_tensor_name,
                          {self.saver_def.filename_tensor_name: checkpoint_file})
        result = result.item() if hasattr(result, "item") else result  # a 0-d string array
        model_path = result.decode() if isinstance(result, bytes) else str(result)
        device_record.write_record(model_path, sess._variable_devices())
        if write_meta_graph:
            # Before the state file moves: latest_checkpoint never names a checkpoint whose
            # .meta is missing (TF writes the .meta last).
            self.export_meta_graph(cm.meta_graph_filename(checkpoint_file, meta_graph_suffix),
                                   strip_default_attrs=strip_default_attrs)
        if write_state:
            doomed = self._record(model_path)
            cm.update_checkpoint_state(save_dir, model_path, self.last_checkpoints,
                                       latest_filename, self._save_relative_paths)
            self._delete(doomed, meta_graph_suffix)
        return model_path

    def _checkpoint_file(self, sess: Any, save_path: str, global_step: Any,
                         latest_filename: str) -> str:
        if global_step is None:
            if (os.path.basename(save_path) == latest_filename
                    and not self._settings["sharded"]):
                raise ValueError(f"'latest_filename' collides with 'save_path': "
                                 f"'{latest_filename}' and '{save_path}'")
            return save_path
        if isinstance(global_step, numbers.Integral) or (
                hasattr(global_step, "dtype") and getattr(global_step, "ndim", 1) == 0):
            global_step = int(global_step)
        else:  # a Tensor, Variable or tensor name
            global_step = int(sess.run(global_step))
        return f"{save_path}-{global_step:08d}" if self._pad_step_number else \
            f"{save_path}-{global_step}"

    def _record(self, path: str) -> list[tuple[str, float]]:
        """Adds ``path`` to the kept list; returns the entries pushed out by ``max_to_keep``."""
        if not self._max_to_keep:
            self._last_checkpoints = [(path, time.time())]
            return []
        self._last_checkpoints = [c for c in self._last_checkpoints if c[0] != path]
        self._last_checkpoints.append((path, time.time()))
        doomed = self._last_checkpoints[:-self._max_to_keep]
        self._last_checkpoints = self._last_checkpoints[-self._max_to_keep:]
        return doomed

    def _delete(self, doomed: list[tuple[str, float]], meta_graph_suffix: str) -> None:
        """Deletes pushed-out checkpoints, except those kept by keep_checkpoint_every_n_hours."""
        for path, stamp in doomed:
            if stamp > self._next_keep_time:
                self._next_keep_time += self._keep_every
                continue
            cm.remove_checkpoint(path, meta_graph_suffix)

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
