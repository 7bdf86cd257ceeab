"""Durable saves: what gets fsync'ed, in which order relative to the state file, and when.

``os.fsync`` and ``os.replace`` are replaced by recorders; an fsync'ed descriptor is identified
by its file's inode, mapped back to a name once the save is done.
"""

from __future__ import annotations

import os

import pytest
from saver_support import CONFIG, build_saver, import_variables, record

import gpugraph as gg
from gpugraph.train import checkpoint_management as cm
from gpugraph.train.saver import DURABLE_ENV


@pytest.fixture
def events(monkeypatch):
    log: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        log.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        log.append(("replace", os.path.basename(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.delenv(DURABLE_ENV, raising=False)
    return log


def _named(log: list, directory) -> list[tuple[str, str]]:
    inodes = {os.stat(p).st_ino: p.name for p in directory.iterdir()}
    inodes[os.stat(directory).st_ino] = "<dir>"
    return [(kind, inodes.get(x, "?") if kind == "fsync" else x) for kind, x in log]


def _save(tmp_path, case="ref_default", steps=(1,), **kwargs) -> list[str]:
    saver_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in ("durable", "max_to_keep")}
    with gg.Graph().as_default(), gg.Session(config=CONFIG) as sess:
        saver = build_saver(record(case)["savers"][0], import_variables(case), **saver_kwargs)
        sess.run(gg.global_variables_initializer())
        return [saver.save(sess, str(tmp_path / "model"), global_step=s, **kwargs)
                for s in steps]


def test_durable_save_syncs_files_then_state(events, tmp_path) -> None:
    _save(tmp_path, durable=True)
    named = _named(events, tmp_path)
    synced = [name for kind, name in named if kind == "fsync"]
    checkpoint_files = {"model-1.index", "model-1.data-00000-of-00001", "model-1.meta",
                        "model-1.gpugraph-devices.json"}
    assert checkpoint_files <= set(synced)
    state_moves = named.index(("replace", "checkpoint"))
    before, after = named[:state_moves], named[state_moves + 1:]
    # Every file of the checkpoint, and the directory naming them, are on disk before the state
    # file names the checkpoint; the state file's bytes before it is renamed into place; the
    # rename itself (the directory) right after.
    assert checkpoint_files <= {name for kind, name in before if kind == "fsync"}
    assert ("fsync", "<dir>") in before
    last_file_sync = max(i for i, (k, n) in enumerate(before) if n in checkpoint_files)
    assert ("fsync", "<dir>") in before[last_file_sync:]
    assert before[-1] == ("fsync", "checkpoint")
    assert after == [("fsync", "<dir>")]


def test_state_is_on_disk_before_old_checkpoints_are_deleted(events, tmp_path, monkeypatch):
    removed: list[str] = []
    real_remove = os.remove

    def remove(path):
        removed.append(os.path.basename(path))
        events.append(("remove", os.path.basename(path)))
        real_remove(path)

    monkeypatch.setattr(os, "remove", remove)
    _save(tmp_path, steps=(1, 2), durable=True, max_to_keep=1)
    assert "model-1.index" in removed
    first_removal = events.index(("remove", removed[0]))
    named = _named(events[:first_removal], tmp_path)
    assert named[-2:] == [("replace", "checkpoint"), ("fsync", "<dir>")]


def test_default_is_not_durable(events, tmp_path) -> None:
    _save(tmp_path)
    assert not [e for e in events if e[0] == "fsync"]


@pytest.mark.parametrize("env, saver, call, synced", [
    ("1", None, None, True),
    ("1", False, None, False),
    ("", True, None, True),
    ("", True, False, False),
    ("", False, True, True),
    ("0", None, None, False),
])
def test_durable_settings(events, tmp_path, monkeypatch, env, saver, call, synced) -> None:
    monkeypatch.setenv(DURABLE_ENV, env)
    with gg.Graph().as_default(), gg.Session() as sess:
        import_variables("ref_default")
        s = gg.train.Saver(durable=saver)
        sess.run(gg.global_variables_initializer())
        s.save(sess, str(tmp_path / "model"), durable=call)
    assert bool([e for e in events if e[0] == "fsync"]) is synced


def test_sharded_durable_save_syncs_every_shard(events, tmp_path) -> None:
    _save(tmp_path, case="sharded_two_cpus", durable=True)
    synced = {name for kind, name in _named(events, tmp_path) if kind == "fsync"}
    assert {"model-1.data-00000-of-00002", "model-1.data-00001-of-00002",
            "model-1.index"} <= synced


def test_checkpoint_files_lists_index_and_shards(tmp_path) -> None:
    prefix = _save(tmp_path, case="sharded_two_cpus")[0]
    assert cm.checkpoint_files(prefix) == [prefix + ".index",
                                           prefix + ".data-00000-of-00002",
                                           prefix + ".data-00001-of-00002"]
    assert cm.checkpoint_files(str(tmp_path / "nothing")) == []
