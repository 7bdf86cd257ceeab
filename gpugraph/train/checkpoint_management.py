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
"""

from __future__ import annotations

import glob
import os
import random
import re
from collections.abc import Sequence
from typing import Any

from google.protobuf import text_format

from gpugraph import _proto as pb
from gpugraph import errors


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
    """
    state = generate_checkpoint_state_proto(save_dir, model_checkpoint_path,
                                            all_model_checkpoint_paths, save_relative_paths)
    path = _state_path(save_dir, latest_filename)
    if os.path.normpath(path) == os.path.normpath(state.model_checkpoint_path):
        raise RuntimeError(f"Save path '{model_checkpoint_path}' conflicts with path used for "
                           "checkpoint state.  Please use a different save path.")
    text = text_format.MessageToString(state, descriptor_pool=pb.POOL)
    tmp = f"{path}.tmp{random.getrandbits(64):016x}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_directory(os.path.dirname(path))


def get_checkpoint_state(checkpoint_dir: str | os.PathLike,
                         latest_filename: str | None = None) -> Any | None:
    """The directory's CheckpointState with paths joined to it, or None if it has none.

    Raises:
        ValueError: the state file names no checkpoint.
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
        raise ValueError(f"Invalid checkpoint state loaded from {checkpoint_dir}")
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
    ``.meta``, say) and the directories holding them."""
    files = checkpoint_files(checkpoint_prefix)
    files += [f for f in extra_files if f not in files and os.path.exists(f)]
    for path in files:
        fsync_file(path)
    for directory in sorted({os.path.dirname(os.path.abspath(p)) for p in files}):
        fsync_directory(directory)
