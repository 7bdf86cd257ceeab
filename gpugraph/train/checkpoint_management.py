"""The ``checkpoint`` state file and checkpoint paths (``tf.compat.v1.train`` functions).

The state file is a text-format ``CheckpointState`` naming the latest checkpoint and the ones
kept.  It is replaced atomically (written under a temporary name, then renamed), so a reader
sees either the old or the new state, never a partial one.  As TF's Saver does, it stores no
timestamps, and paths are relative when the save directory was given as a relative path.

Durability.  Atomic renames protect against a *process* crash: a killed save leaves the old
state file naming complete checkpoints.  They do not protect against a power loss or kernel
crash, after which a renamed file may be empty or missing blocks that were still in the page
cache.  ``durable=True`` (see :func:`sync_checkpoint` and :func:`update_checkpoint_state`)
fsyncs a checkpoint's files and directory before the state file names it, and the state file
and its directory before older checkpoints are deleted, so after a power loss the state file
names a checkpoint whose bytes are on disk.  TF never fsyncs; neither does gpugraph by default.

Temporary files.  Every file of a save is written under a temporary name and renamed into place:
``P.data-*.tempstate<n>``, ``P.index.tempstate<n>`` and the shard parts under ``P_temp/`` (TF's
names), ``P.meta.tmp<hex>``, ``P.gpugraph-devices.json.tmp<hex>`` and ``checkpoint.tmp<hex>``.
A failing save removes its own; a *killed* save leaves them, and :func:`remove_stale_temp_files`
(run by ``Saver.save`` before each save) removes those of the save's base prefix.  A leftover is
told from another process's save in flight by its lock: writers hold an advisory lock on each
temporary file (and a Saver on its ``P_temp`` directory) until the rename, and the kernel drops
a dead process's locks (see :func:`gpugraph.io.bundle.remove_if_abandoned`).  Two processes
saving into one directory therefore never remove each other's files, and the state file,
always replaced by a rename, is always some process's whole file.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

from google.protobuf import text_format

from gpugraph import _proto as pb
from gpugraph import errors
from gpugraph.io import bundle
from gpugraph.train import device_record


class CheckpointNotFoundError(errors.NotFoundError, ValueError):
    """No checkpoint exists at a path given to restore.

    TF's ``Saver.restore`` raises ``ValueError`` here; this class is also a
    :class:`~gpugraph.errors.NotFoundError`, so either ``except`` clause catches it.
    """


def _state_path(save_dir: str, latest_filename: str | None) -> str:
    return os.path.join(save_dir, latest_filename or "checkpoint")


def generate_checkpoint_state_proto(save_dir: str, model_checkpoint_path: str,
                                    all_model_checkpoint_paths: Sequence[str] | None = None,
                                    save_relative_paths: bool = False) -> Any:
    """The CheckpointState TF's Saver writes (paths relative under the rules of TF)."""
    paths = list(all_model_checkpoint_paths or [])
    if not paths or paths[-1] != model_checkpoint_path:
        paths.append(model_checkpoint_path)
    if not os.path.isabs(save_dir) or save_relative_paths:
        model_checkpoint_path = _relative(model_checkpoint_path, save_dir, save_relative_paths)
        paths = [_relative(p, save_dir, save_relative_paths) for p in paths]
    return pb.CheckpointState(model_checkpoint_path=model_checkpoint_path,
                              all_model_checkpoint_paths=paths)


def _relative(path: str, save_dir: str, always: bool) -> str:
    if os.path.isabs(path) and not always:
        return path
    return os.path.relpath(path, save_dir)


def update_checkpoint_state(save_dir: str, model_checkpoint_path: str,
                            all_model_checkpoint_paths: Sequence[str] | None = None,
                            latest_filename: str | None = None,
                            save_relative_paths: bool = False, durable: bool = False) -> None:
    """Atomically writes the state file in ``save_dir``.

    With ``durable``, the new file's bytes are fsync'ed before the rename and the directory
    after it, so the rename is on disk when this returns.

    Raises:
        OpError: the file cannot be written (ResourceExhaustedError for a full disk,
            PermissionDeniedError for a read-only directory, ...), naming it; the old state
            file is then as it was and no temporary file is left.
    """
    state = generate_checkpoint_state_proto(save_dir, model_checkpoint_path,
                                            all_model_checkpoint_paths, save_relative_paths)
    path = _state_path(save_dir, latest_filename)
    if os.path.normpath(path) == os.path.normpath(state.model_checkpoint_path):
        raise RuntimeError(f"Save path '{model_checkpoint_path}' conflicts with path used for "
                           "checkpoint state.  Please use a different save path.")
    text = text_format.MessageToString(state, descriptor_pool=pb.POOL)
    bundle.write_file_atomically(path, text.encode("utf-8"), durable=durable)
    if durable:
        try:
            fsync_directory(os.path.dirname(path))
        except OSError as e:
            raise bundle.write_error(e, os.path.dirname(path) or ".", "cannot sync") from None


class CheckpointStateError(errors.DataLossError, ValueError):
    """A ``checkpoint`` state file that parses but names no checkpoint (TF: ValueError)."""


def get_checkpoint_state(checkpoint_dir: str | os.PathLike,
                         latest_filename: str | None = None) -> Any | None:
    """The directory's CheckpointState with paths joined to it, or None if it has none.

    Raises:
        CheckpointStateError (a ValueError, as TF raises): the state file names no checkpoint.
    """
    checkpoint_dir = os.fspath(checkpoint_dir)
    path = _state_path(checkpoint_dir, latest_filename)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        state = pb.CheckpointState()
        text_format.Parse(text, state, descriptor_pool=pb.POOL)
    except (OSError, UnicodeDecodeError, text_format.ParseError):
        return None  # as TF: a missing or unreadable state file means "no checkpoint"
    if not state.model_checkpoint_path:
        raise CheckpointStateError(None, None, f"Invalid checkpoint state loaded from "
                                   f"{checkpoint_dir} (its {latest_filename or 'checkpoint'} "
                                   "file names no model_checkpoint_path)",
                                   {"file": os.fspath(checkpoint_dir)})
    if not os.path.isabs(state.model_checkpoint_path):
        state.model_checkpoint_path = os.path.join(checkpoint_dir, state.model_checkpoint_path)
    for i, p in enumerate(state.all_model_checkpoint_paths):
        if not os.path.isabs(p):
            state.all_model_checkpoint_paths[i] = os.path.join(checkpoint_dir, p)
    return state


def checkpoint_not_found(save_path: str) -> CheckpointNotFoundError:
    """The error ``Saver.restore`` raises for a path with no checkpoint (TF's message)."""
    hint = ""
    if os.path.isdir(save_path):
        hint = (" (a directory: pass a checkpoint prefix, e.g. "
                "gpugraph.train.latest_checkpoint(directory))")
    return CheckpointNotFoundError(
        None, None, f"The passed save_path is not a valid checkpoint: {save_path}{hint}",
        {"path": save_path})


def checkpoint_exists(checkpoint_prefix: str | os.PathLike) -> bool:
    """Whether a V2 (``prefix.index``) or V1 checkpoint matches the prefix (globs allowed)."""
    prefix = os.fspath(checkpoint_prefix)
    return bool(glob.glob(prefix + ".index") or glob.glob(prefix))


def latest_checkpoint(checkpoint_dir: str | os.PathLike,
                      latest_filename: str | None = None) -> str | None:
    """The prefix of the newest checkpoint the directory's state file names, if it exists."""
    state = get_checkpoint_state(checkpoint_dir, latest_filename)
    if state is not None and checkpoint_exists(state.model_checkpoint_path):
        return state.model_checkpoint_path
    return None


def meta_graph_filename(checkpoint_filename: str, meta_graph_suffix: str = "meta") -> str:
    """``model-3`` -> ``model-3.meta`` (a sharded V1 ``-?????-of-N`` suffix dropped)."""
    base = re.sub(r"-[\d\?]+-of-\d+$", "", checkpoint_filename)
    return f"{base}.{meta_graph_suffix}"


def remove_checkpoint(checkpoint_prefix: str, meta_graph_suffix: str = "meta") -> None:
    """Deletes a checkpoint's files: ``.index``, ``.data-*``, ``.meta`` and gpugraph's device
    record (missing ones ignored)."""
    patterns = [checkpoint_prefix + ".index", checkpoint_prefix + ".data-?????-of-?????",
                meta_graph_filename(checkpoint_prefix, meta_graph_suffix),
                checkpoint_prefix + ".gpugraph-devices.json"]
    for pattern in patterns:
        for path in glob.glob(glob.escape(pattern) if "?" not in pattern else pattern):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass


# --- temporary files ---------------------------------------------------------------------------
_PART = re.compile(r"part-\d{5}-of-\d{5}(?:\.index|\.data-\d{5}-of-\d{5})")


def _temp_patterns(base: str, latest_filename: str,
                   meta_graph_suffix: str) -> tuple[re.Pattern, re.Pattern]:
    """Names of the temporary files and shard directories of saves to ``base[-<step>]``."""
    stem = rf"{re.escape(base)}(?:-\d+)?"  # the Saver's save_path, alone or with a step
    bundle_tmp = rf"{stem}(?:\.data-\d{{5}}-of-\d{{5}}|\.index)\.tempstate\d+"
    other_tmp = (rf"{stem}(?:\.{re.escape(meta_graph_suffix)}|{re.escape(device_record.SUFFIX)})"
                 r"\.tmp[0-9a-f]+")
    state_tmp = rf"{re.escape(latest_filename)}\.tmp[0-9a-f]+"
    return re.compile(f"{bundle_tmp}|{other_tmp}|{state_tmp}"), re.compile(rf"{stem}_temp")


def remove_stale_temp_files(save_path: str, latest_filename: str = "checkpoint",
                            meta_graph_suffix: str = "meta") -> list[str]:
    """Removes what killed saves to ``save_path`` (alone or with ``-<step>``) left behind.

    Only temporary names of that base prefix are considered (``.data-*``/``.index`` +
    ``.tempstate<n>``, ``.meta``/device record + ``.tmp<hex>``, ``<P>_temp/`` shard parts) and
    the state file's (``<latest_filename>.tmp<hex>``); of those, only the ones no live process
    holds locked (:func:`gpugraph.io.bundle.remove_if_abandoned`): another process's save in
    flight keeps its files.  Best effort, never raises; returns the paths removed.
    """
    directory = os.path.dirname(save_path) or "."
    files, dirs = _temp_patterns(os.path.basename(save_path), latest_filename, meta_graph_suffix)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(directory, name)
        if files.fullmatch(name) and bundle.remove_if_abandoned(path):
            removed.append(path)
        elif dirs.fullmatch(name) and bundle.remove_if_abandoned(path, remove_temp_dir):
            removed.append(path)
    return removed


def remove_temp_dir(path: str) -> None:
    """Deletes a sharded save's ``<P>_temp`` directory: its part files (a part still being
    written only if abandoned), then the directory if that left it empty.  Never raises."""
    with contextlib.suppress(OSError):
        for name in os.listdir(path):
            part = os.path.join(path, name)
            if _PART.fullmatch(name):
                with contextlib.suppress(OSError):
                    os.remove(part)
            elif re.fullmatch(rf"{_PART.pattern}\.tempstate\d+", name):
                bundle.remove_if_abandoned(part)
    with contextlib.suppress(OSError):
        os.rmdir(path)


@contextlib.contextmanager
def held_temp_dir(checkpoint_prefix: str) -> Iterator[None]:
    """Creates and locks ``<checkpoint_prefix>_temp``, the directory a sharded save writes its
    parts to, while the block runs (so :func:`remove_stale_temp_files` in another process
    leaves it alone); if the block raises, the parts written so far are deleted.

    Raises:
        OpError: the directory cannot be created (PermissionDeniedError, ...), naming it.
    """
    path = checkpoint_prefix + "_temp"
    lock = bundle.lock_new_directory(path)
    try:
        yield
    except BaseException:
        remove_temp_dir(path)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(path)  # normally MergeV2Checkpoints removed it already
        if lock is not None:
            os.close(lock)


# --- durability -------------------------------------------------------------------------------
def checkpoint_files(checkpoint_prefix: str) -> list[str]:
    """The V2 files of a checkpoint that exist: ``.index`` and every ``.data-?????-of-?????``."""
    escaped = glob.escape(checkpoint_prefix)
    data = sorted(glob.glob(escaped + ".data-?????-of-?????"))
    index = checkpoint_prefix + ".index"
    return ([index] if os.path.exists(index) else []) + data


def fsync_file(path: str) -> None:
    """Flushes a file's data and metadata to disk (on POSIX any descriptor of it will do;
    Windows needs one open for writing)."""
    mode = os.O_RDONLY if os.name == "posix" else os.O_RDWR | getattr(os, "O_BINARY", 0)
    fd = os.open(path, mode)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: str) -> None:
    """Flushes a directory's entries (new names, renames, deletions) to disk.

    A no-op where directories cannot be opened (Windows).
    """
    if os.name != "posix":
        return
    fd = os.open(path or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_checkpoint(checkpoint_prefix: str, extra_files: Sequence[str] = ()) -> None:
    """fsyncs a checkpoint's ``.index`` and data files, ``extra_files`` that exist (its
    ``.meta``, say) and the directories holding them.

    Raises:
        OpError: an fsync failed (:func:`gpugraph.io.bundle.write_error`), naming the file.
    """
    files = checkpoint_files(checkpoint_prefix)
    files += [f for f in extra_files if f not in files and os.path.exists(f)]
    directories = sorted({os.path.dirname(os.path.abspath(p)) for p in files})
    for sync, paths in ((fsync_file, files), (fsync_directory, directories)):
        for path in paths:
            try:
                sync(path)
            except OSError as e:
                raise bundle.write_error(e, path, "cannot sync") from None
