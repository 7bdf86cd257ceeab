"""``tf.train.Saver``: building save/restore ops, ``save``/``restore`` and the state file.

A Saver built from a SaverDef (what ``import_meta_graph`` returns) runs the graph's own ops, as
TF does: ``restore`` runs ``saver_def.restore_op_name`` feeding the checkpoint prefix to
``filename_tensor_name``; ``save`` runs ``save_tensor_name``.  A Saver built without one adds
those ops to the graph first, named and wired exactly as TF's (:mod:`saver_builder`), over
``var_list`` (:mod:`saveables`).  The kernels behind the ops (SaveV2, RestoreV2,
MergeV2Checkpoints) read and write TF's V2 bundle format.

Durable saves: ``Saver(durable=True)`` (or ``save(..., durable=True)``, or the environment
variable ``GPUGRAPH_DURABLE_CHECKPOINTS=1`` for Savers that leave it unset) fsyncs a
checkpoint's files and directory before the state file names it, and the state file before
older checkpoints are deleted (see :mod:`checkpoint_management`).  The default is off, as in
TF: saves survive a process crash either way (every file appears through a rename; the state
file moves last), and only a power loss or kernel crash needs the fsyncs.  Cost, measured with
``scripts/bench_checkpoint_durable.py`` on the 2-core development machine (ext4 on a virtual
disk; 4 float32 variables, ``max_to_keep=2``; best of 5, median in parentheses):

    checkpoint      plain save        durable save
    1 MB            2.5 ms (4.4)      37 ms (40)
    16 MB            12 ms (16)       54 ms (72)
    256 MB          140 ms (188)     289 ms (312)
    1 GB            325 ms (592)     812 ms (988)

i.e. a fixed ~30 ms (seven fsyncs: four files, the directory, the state file, the directory
again; each one a journal commit on ext4) plus the time the disk takes to absorb the bytes
(~0.5 s per GB here) instead of leaving them to background writeback.  Saving every few
minutes that is noise, and worth it where power can fail: without the fsyncs, a power loss
right after a save can leave the state file naming a checkpoint whose data never reached the
disk while ``max_to_keep`` has already deleted the older ones.  Off by default to match TF
(and keep frequent small saves at a few ms).
"""

from __future__ import annotations

import contextlib
import numbers
import os
import time
from typing import Any

from gpugraph import _proto as pb
from gpugraph import config, errors
from gpugraph.framework import names
from gpugraph.framework.graph import get_default_graph
from gpugraph.io import bundle
from gpugraph.train import checkpoint_management as cm
from gpugraph.train import device_record, restore_check
from gpugraph.train.saveables import all_saveable_objects, saveables_from_var_list
from gpugraph.train.saver_builder import BulkSaverBuilder

_NAME_FIELDS = ("filename_tensor_name", "save_tensor_name", "restore_op_name")
DURABLE_ENV = "GPUGRAPH_DURABLE_CHECKPOINTS"


class Saver:
    """Saves and restores variables (``tf.compat.v1.train.Saver``).

    Without ``saver_def`` the constructor adds TF's save/restore ops to the graph (a
    ``save/`` name scope, or ``name``) over ``var_list``; with it, the Saver runs that
    SaverDef's ops (e.g. from a ``.meta``).

    Args:
        var_list: None (every global variable plus the ``saveable_objects`` collection), a
            list of variables (saved under their op names; parts of a partitioned variable
            under its full name), or a dict ``{checkpoint name: variable or list of parts}``.
        reshape: restore values of another shape with the same number of elements.
        sharded: one data file per device, merged by MergeV2Checkpoints.
        max_to_keep: how many recent checkpoints to keep (None or 0: all).
        keep_checkpoint_every_n_hours: also keep one checkpoint per this many hours.
        name: the name scope of the new ops; with ``saver_def``, the scope its op names are
            moved into (TF's behaviour for an import scope).
        restore_sequentially: accepted for TF compatibility (restores are sequential).
        saver_def: an existing SaverDef whose ops this Saver runs.
        builder: a :class:`~gpugraph.train.saver_builder.BaseSaverBuilder` (default: bulk).
        defer_build: build the ops on :meth:`build` (needs ``var_list=None``).
        allow_empty: with nothing to save, make an empty Saver instead of raising.
        write_version: 2 (V2, the only format gpugraph writes).
        pad_step_number: name checkpoints ``model-00000123`` instead of ``model-123``.
        save_relative_paths: store relative paths in the state file.
        filename: the default checkpoint prefix baked into the filename tensor.
        durable: fsync every save (None: the ``GPUGRAPH_DURABLE_CHECKPOINTS`` variable, else
            off); see the module docstring.

    Raises:
        ValueError: nothing to save (without ``allow_empty``), duplicate names, or
            ``defer_build`` with a ``var_list``.
        TypeError: ``var_list`` holds something that is not a variable.
        UnimplementedError: ``write_version`` is not 2.
    """

    def __init__(self, var_list: Any = None, reshape: bool = False, sharded: bool = False,
                 max_to_keep: int | None = 5, keep_checkpoint_every_n_hours: float = 10000.0,
                 name: str | None = None, restore_sequentially: bool = False,
                 saver_def: Any = None, builder: Any = None, defer_build: bool = False,
                 allow_empty: bool = False, write_version: int = 2, pad_step_number: bool = False,
                 save_relative_paths: bool = False, filename: str | None = None,
                 durable: bool | None = None):
        if defer_build and var_list:
            raise ValueError("If `var_list` is provided then build cannot be deferred. Either set "
                             "defer_build=False or var_list=None.")
        self._var_list = var_list
        self._build_args = {"reshape": reshape, "sharded": sharded, "max_to_keep": max_to_keep,
                            "keep_checkpoint_every_n_hours": keep_checkpoint_every_n_hours,
                            "name": name, "filename": filename}
        self._name = name
        self._builder = builder
        self._write_version = write_version
        self._allow_empty = allow_empty
        self._pad_step_number = pad_step_number
        self._save_relative_paths = save_relative_paths
        self._durable = durable
        self.saver_def = saver_def
        self._is_built = False
        self._is_empty: bool | None = None
        self._next_keep_time = 0.0
        self._last_checkpoints: list[tuple[str, float]] = []  # (prefix, time), oldest first
        if not defer_build:
            self.build()

    # --- building ---------------------------------------------------------------------------
    def build(self) -> None:
        """Adds the save/restore ops (once); needed before saving with ``defer_build``."""
        if self._is_built:
            return
        self._is_built = True
        if self.saver_def is None:
            self.saver_def = self._build_ops()
        else:
            # TF rewrites the three names in place (mutating the caller's proto); we copy.
            self.saver_def = _scoped_saver_def(self.saver_def, self._name)
        if self.saver_def is not None:
            _check_saver_def(self.saver_def)
            hours = self.saver_def.keep_checkpoint_every_n_hours
            self._next_keep_time = time.time() + hours * 3600.0

    def _build_ops(self) -> Any | None:
        var_list = self._var_list
        if var_list is None:
            var_list = all_saveable_objects(get_default_graph())
        if not var_list:
            if self._allow_empty:
                self._is_empty = True
                return None
            raise ValueError("No variables to save")
        self._is_empty = False
        saveables = saveables_from_var_list(var_list)
        builder = self._builder or BulkSaverBuilder(self._write_version)
        return builder.build(saveables, **self._build_args)

    @property
    def _sharded(self) -> bool:
        return bool(self.saver_def.sharded) if self.saver_def is not None else False

    # --- bookkeeping ------------------------------------------------------------------------
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

    # --- restore ----------------------------------------------------------------------------
    def restore(self, sess: Any, save_path: str | os.PathLike | None) -> None:
        """Restores the variables from ``save_path`` (a checkpoint prefix).

        Before anything runs, the checkpoint's index is checked against every variable the
        restore op assigns; all missing tensors and dtype/shape mismatches are reported in one
        error naming the variables, keys, both dtypes or shapes, and the checkpoint.  The
        restore is all-or-nothing: if anything fails (a damaged file, say) every variable keeps
        the value it had.  Unlike TF, a resource variable whose checkpoint value has another
        shape is refused too (TF silently reshapes it).

        Raises:
            ValueError: ``save_path`` is None.
            CheckpointNotFoundError: (a NotFoundError and a ValueError) no checkpoint exists
                at ``save_path`` (TF raises ValueError).
            NotFoundError: variables are missing from the checkpoint.
            InvalidArgumentError: dtype or shape mismatches.
            DataLossError: the checkpoint is damaged; the message names the file.
            DevicePlacementError: the checkpoint's variables were saved from other devices.
        """
        if self._is_empty:
            return
        if save_path is None:
            raise ValueError("Can't load save_path when it is None.")
        save_path = os.fspath(save_path)
        if not _restorable(save_path):
            raise cm.checkpoint_not_found(save_path)
        if self.saver_def is None:
            raise RuntimeError("`build()` should be called before restore if defer_build==True")

        restore_check.check_restore(sess.graph, self.saver_def.restore_op_name, save_path)
        recorded = device_record.read_record(save_path)
        if recorded is not None and not sess.device_change_allowed():
            device_record.check_restart(save_path, recorded, sess.variable_devices())
        with sess.restoring(save_path):
            sess.run(self.saver_def.restore_op_name,
                     {self.saver_def.filename_tensor_name: save_path})

    # --- save -------------------------------------------------------------------------------
    def save(self, sess: Any, save_path: str | os.PathLike, global_step: Any = None,
             latest_filename: str | None = None, meta_graph_suffix: str = "meta",
             write_meta_graph: bool = True, write_state: bool = True,
             strip_default_attrs: bool = False, save_debug_info: bool = False,
             durable: bool | None = None) -> str | None:
        """Saves the variables to ``save_path[-global_step]``; returns the checkpoint prefix.

        The checkpoint's files (and its ``.meta``) are complete before the state file names
        it, and older checkpoints beyond ``max_to_keep`` are deleted only after that, so a
        crash at any moment leaves the state file naming complete checkpoints.  An empty Saver
        writes only the ``.meta`` and returns None (as TF).

        Temporary files that killed saves to ``save_path`` left are removed first (not those
        of saves in flight in other processes; see
        :func:`~gpugraph.train.checkpoint_management.remove_stale_temp_files`).  A save that
        fails (a full disk, a read-only directory, a file-size limit, ...) removes what it
        wrote, temporary files and a new checkpoint's files alike, and leaves the state file
        and the earlier checkpoints as they were (a checkpoint saved over, without
        ``global_step``, may already have its files replaced).

        Args:
            durable: fsync this save (None: the Saver's setting).

        Raises:
            ValueError: bad ``latest_filename``, or the parent directory cannot be used.
            TypeError: ``sess`` is not a Session.
            RuntimeError: ``defer_build`` and :meth:`build` was not called.
            ResourceExhaustedError: the disk is full (ENOSPC, EDQUOT) or a file outgrew the
                file-size limit (EFBIG); the message names the file.
            PermissionDeniedError: the directory is not writable (EACCES, EPERM, EROFS).
            OpError: other write errors, of their errno's class (see
                :func:`gpugraph.io.bundle.write_error`).
        """
        if not self._is_built:
            raise RuntimeError("`build()` should be called before save if defer_build==True")
        save_path = os.fspath(save_path)
        latest_filename = latest_filename or "checkpoint"
        if os.path.split(latest_filename)[0]:
            raise ValueError("'latest_filename' must not contain path components")
        if not hasattr(sess, "run") or not hasattr(sess, "graph"):
            raise TypeError(f"'sess' must be a Session; {sess}")
        checkpoint_file = self._checkpoint_file(sess, save_path, global_step, latest_filename)
        if not getattr(sess, "writes_checkpoints", True):
            # A data-parallel rank other than 0: rank 0 writes the one checkpoint all ranks hold.
            return None if self._is_empty else checkpoint_file
        durable = self._is_durable(durable)
        cm.remove_stale_temp_files(save_path, latest_filename, meta_graph_suffix)
        meta_file = cm.meta_graph_filename(checkpoint_file, meta_graph_suffix)
        # What this save creates, deleted again if it fails (files it replaces stay replaced).
        created = [p for p in (checkpoint_file + ".index", meta_file) if not os.path.exists(p)]
        try:
            model_path = None if self._is_empty else self._write(sess, checkpoint_file, save_path)
            if write_meta_graph:
                # Before the state file moves: latest_checkpoint never names a checkpoint whose
                # .meta is missing (TF writes the .meta last).
                with sess.graph.as_default():
                    self.export_meta_graph(meta_file, strip_default_attrs=strip_default_attrs)
            if model_path is None:
                return None
            if durable:
                cm.sync_checkpoint(model_path, [meta_file, device_record.record_path(model_path)])
            doomed = self._update_state(model_path, os.path.dirname(save_path),
                                        latest_filename, durable) if write_state else []
        except BaseException:
            # Never what the state file names (an fsync failing after its rename, say).
            if not _named_by_state(checkpoint_file, save_path, latest_filename):
                _remove_created(checkpoint_file, meta_file, created)
            raise
        # Only once the state file no longer names them; the new checkpoint stays regardless.
        self._delete(doomed, meta_graph_suffix)
        return model_path

    def _is_durable(self, durable: bool | None) -> bool:
        if durable is None:
            durable = self._durable
        if durable is None:
            durable = config.settings.durable_checkpoints
        return bool(durable)

    def _write(self, sess: Any, checkpoint_file: str, save_path: str) -> str:
        """Runs the save op and writes the device record; returns the checkpoint prefix."""
        # A sharded save writes its parts to <prefix>_temp/ first: held locked meanwhile, so
        # other processes' cleanups leave it alone, and emptied if the save fails.
        held = (cm.held_temp_dir(checkpoint_file) if self._sharded and "://" not in checkpoint_file
                else contextlib.nullcontext())
        try:
            with held:
                result = sess.run(self.saver_def.save_tensor_name,
                                  {self.saver_def.filename_tensor_name: checkpoint_file})
        except (errors.FailedPreconditionError, errors.NotFoundError) as e:
            parent = os.path.dirname(save_path)
            if parent and not os.path.isdir(parent):
                raise ValueError(f"Parent directory of {save_path} doesn't exist, can't "
                                 "save.") from e
            raise
        result = result.item() if hasattr(result, "item") else result  # a 0-d string array
        model_path = result.decode() if isinstance(result, bytes) else str(result)
        device_record.write_record(model_path, sess.variable_devices())
        return model_path

    def _update_state(self, model_path: str, save_dir: str, latest_filename: str,
                      durable: bool) -> list[tuple[str, float]]:
        """Writes the state file; returns the checkpoints it no longer names, to delete."""
        kept = list(self._last_checkpoints)
        doomed = self._record(model_path)
        try:
            cm.update_checkpoint_state(save_dir, model_path, self.last_checkpoints,
                                       latest_filename, self._save_relative_paths,
                                       durable=durable)
        except BaseException:
            self._last_checkpoints = kept  # the state file still names these
            raise
        return doomed

    def _checkpoint_file(self, sess: Any, save_path: str, global_step: Any,
                         latest_filename: str) -> str:
        if global_step is None:
            if os.path.basename(save_path) == latest_filename and not self._sharded:
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
        max_to_keep = self.saver_def.max_to_keep
        if not max_to_keep:
            self._last_checkpoints = [(path, time.time())]
            return []
        self._last_checkpoints = [c for c in self._last_checkpoints if c[0] != path]
        self._last_checkpoints.append((path, time.time()))
        doomed = self._last_checkpoints[:-max_to_keep]
        self._last_checkpoints = self._last_checkpoints[-max_to_keep:]
        return doomed

    def _delete(self, doomed: list[tuple[str, float]], meta_graph_suffix: str) -> None:
        """Deletes pushed-out checkpoints, except those kept by keep_checkpoint_every_n_hours."""
        for path, stamp in doomed:
            if stamp > self._next_keep_time:
                self._next_keep_time += self.saver_def.keep_checkpoint_every_n_hours * 3600.0
                continue
            try:
                cm.remove_checkpoint(path, meta_graph_suffix)
            except OSError as e:
                raise bundle.write_error(e, e.filename or path,
                                         "cannot delete an old checkpoint") from None

    # --- protos -----------------------------------------------------------------------------
    def as_saver_def(self) -> Any:
        """The SaverDef (None for an empty Saver)."""
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


def _remove_created(checkpoint_file: str, meta_file: str, created: list[str]) -> None:
    """Deletes the files a failed save created: its checkpoint (index first, so it stops being
    one before its data goes) and device record if the checkpoint is new, its new ``.meta``."""
    doomed = []
    if checkpoint_file + ".index" in created:
        doomed += cm.checkpoint_files(checkpoint_file)
        doomed.append(device_record.record_path(checkpoint_file))
    if meta_file in created:
        doomed.append(meta_file)
    for path in doomed:
        with contextlib.suppress(OSError):
            os.remove(path)


def _named_by_state(checkpoint_file: str, save_path: str, latest_filename: str) -> bool:
    """Whether the state file next to ``save_path`` names ``checkpoint_file`` as the latest."""
    try:
        state = cm.get_checkpoint_state(os.path.dirname(save_path), latest_filename)
    except (ValueError, errors.OpError):
        return False
    return state is not None and \
        os.path.abspath(state.model_checkpoint_path) == os.path.abspath(checkpoint_file)


def _restorable(save_path: str) -> bool:
    # TF's checkpoint_exists, except that a directory is not a (V1) checkpoint: TF would go on
    # and fail in RestoreV2 with a NotFoundError that no longer says why.
    if os.path.isdir(save_path):
        return os.path.exists(save_path + ".index")
    return cm.checkpoint_exists(save_path)


def _scoped_saver_def(saver_def: Any, scope: str | None) -> Any:
    out = pb.SaverDef()
    if isinstance(saver_def, pb.SaverDef):
        out.CopyFrom(saver_def)
    else:  # e.g. TensorFlow's own SaverDef class: same wire format, another descriptor pool
        out.ParseFromString(saver_def.SerializeToString())
    if scope:
        for field in _NAME_FIELDS:
            setattr(out, field, names.prepend_name_scope(getattr(out, field), scope))
    return out


def _check_saver_def(saver_def: Any) -> None:
    if not isinstance(saver_def, pb.SaverDef):
        raise ValueError(f"saver_def must be a saver_pb2.SaverDef: {saver_def}")
    for field in ("save_tensor_name", "restore_op_name"):
        if not getattr(saver_def, field):
            raise ValueError(f"saver_def must specify the {field}: {saver_def}")
