"""Disk faults while saving: a full disk, a read-only directory and a file-size limit in the
middle of a save, a save killed midway, and two processes saving into one directory.

A failed save must raise a gpugraph error naming the file, leave the earlier checkpoints and the
``checkpoint`` state file as they were, and leave nothing behind: no temporary file, and no file
of the new checkpoint.  A killed save's temporary files are removed by the next save (only
those of its prefix, and never another process's save in flight).  Faults are simulated: ENOSPC
and EROFS by an ``open`` that fails, patched into :mod:`gpugraph.io.bundle` (through which every
file of a save is created); EFBIG by RLIMIT_FSIZE in a subprocess; a read-only directory by
chmod in a subprocess (which, run as root, first drops CAP_DAC_OVERRIDE so that permissions
apply to it).  Subprocesses run this file as a script (see ``_child``).
"""

from __future__ import annotations

import builtins
import ctypes
import errno
import json
import os
import pathlib
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from google.protobuf import text_format
from saver_support import CONFIG, build_saver, import_variables, record

import gpugraph as gg
from gpugraph import _proto as pb
from gpugraph import errors
from gpugraph.framework.attrs import to_attr_value
from gpugraph.framework.tensor_shape import TensorShape
from gpugraph.io import bundle

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SMALL = 1000  # float32 elements of the in-process tests' variable
TEMP = re.compile(r".*(\.tempstate\d+|\.tmp[0-9a-f]+|_temp)")  # gpugraph's and TF's temp names
needs_locks = pytest.mark.skipif(bundle.fcntl is None,
                                 reason="telling stale temp files needs advisory locks (fcntl)")


# --- a graph with one variable -------------------------------------------------------------------
class Model(NamedTuple):
    graph: gg.Graph
    var: Any
    value: Any  # the placeholder the variable is set from
    assign: Any
    saver: gg.train.Saver


def _op(graph: gg.Graph, op_type: str, *inputs: Any, name: str | None = None, **attrs: Any):
    attrs = {k: to_attr_value(v) for k, v in attrs.items()}
    return graph.create_op(op_type, list(inputs), name=name, attrs=attrs)


def _model(size: int, max_to_keep: int = 3) -> Model:
    """A float32 variable ``big`` of ``size`` elements and a Saver over it."""
    graph = gg.Graph()
    with graph.as_default():
        var = _op(graph, "VariableV2", name="big", shape=TensorShape([size]),
                  dtype=gg.float32).outputs[0]
        value = gg.placeholder(gg.float32, shape=[size], name="value")
        assign = _op(graph, "Assign", var, value, T=gg.float32)
        saver = gg.train.Saver({"big": var}, max_to_keep=max_to_keep)
    return Model(graph, var, value, assign, saver)


def _session(model: Model) -> gg.Session:
    return gg.Session(graph=model.graph, config={"virtual_gpus": 0})


def _save(sess: gg.Session, model: Model, directory: pathlib.Path | str, step: int) -> str:
    """Sets the variable to ``step`` everywhere and saves ``directory/model-<step>``."""
    size = model.value.shape.as_list()[0]
    sess.run(model.assign, {model.value: np.full(size, step, np.float32)})
    return model.saver.save(sess, os.path.join(directory, "model"), global_step=step)


def _stored(prefix: str) -> float:
    """The one value checkpoint ``prefix`` holds in every element of ``big``."""
    values = np.unique(gg.train.NewCheckpointReader(prefix).get_tensor("big"))
    assert len(values) == 1, values
    return float(values[0])


def _restored(model: Model, prefix: str) -> float:
    """The one value ``Saver.restore`` gives ``big`` from ``prefix`` in a new session."""
    with _session(model) as sess:
        model.saver.restore(sess, prefix)
        values = np.unique(sess.run(model.var))
    assert len(values) == 1, values
    return float(values[0])


# --- what a directory holds ---------------------------------------------------------------------
def _snapshot(directory: pathlib.Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under ``directory``: relative path -> (size, mtime_ns)."""
    found = {}
    for root, dirs, files in os.walk(directory):
        for name in files + dirs:
            path = os.path.join(root, name)
            st = os.stat(path)
            found[os.path.relpath(path, directory)] = (st.st_size, st.st_mtime_ns)
    return found


def _temp_files(directory: pathlib.Path) -> list[str]:
    return sorted(p for p in _snapshot(directory) if TEMP.fullmatch(p))


def _assert_intact(directory: pathlib.Path, before: dict, step: int, model: Model) -> None:
    """The directory holds exactly what it held (same sizes and times: the state file and the
    checkpoints untouched, nothing added), and its latest checkpoint is ``step``'s."""
    assert _snapshot(directory) == before
    latest = gg.train.latest_checkpoint(directory)
    assert latest == os.path.join(directory, f"model-{step}")
    assert _stored(latest) == step
    assert _restored(model, latest) == step


# --- ENOSPC and EROFS, in process ----------------------------------------------------------------
class _FillsUp:
    """A file on a disk that fills up during the first write: half of it lands, then ENOSPC."""

    def __init__(self, file: Any):
        self._file = file

    def write(self, data: Any) -> int:
        data = memoryview(data).cast("B")
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._file.name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class _FailingOpen:
    """``open`` for gpugraph.io.bundle: files whose name matches ``pattern`` fail with ``code``
    (ENOSPC while written; any other errno when created, as EROFS/EACCES do)."""

    def __init__(self, pattern: str, code: int):
        self.pattern, self.code, self.hits = re.compile(pattern), code, 0

    def __call__(self, name: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if not self.pattern.search(os.fspath(name)):
            return builtins.open(name, mode, *args, **kwargs)
        self.hits += 1
        if self.code != errno.ENOSPC:
            raise OSError(self.code, os.strerror(self.code), os.fspath(name))
        return _FillsUp(builtins.open(name, mode, *args, **kwargs))


STAGES = {  # which file of the save meets the fault (the order they are written in)
    "data": r"model-2\.data-00000-of-00001\.tempstate\d+$",
    "index": r"model-2\.index\.tempstate\d+$",
    "devices": r"model-2\.gpugraph-devices\.json\.tmp[0-9a-f]+$",
    "meta": r"model-2\.meta\.tmp[0-9a-f]+$",
    "state": r"checkpoint\.tmp[0-9a-f]+$",
}


def _assert_names_file(error: errors.OpError, pattern: str, directory: pathlib.Path) -> None:
    file = error.details["file"]
    assert re.search(pattern, file) and file in str(error), str(error)
    assert str(directory) in str(error)


@pytest.mark.parametrize(("code", "error"), [(errno.ENOSPC, errors.ResourceExhaustedError),
                                             (errno.EROFS, errors.PermissionDeniedError)])
@pytest.mark.parametrize("stage", list(STAGES))
def test_a_failing_disk_fails_the_save_and_changes_nothing(tmp_path, monkeypatch, stage, code,
                                                           error) -> None:
    model = _model(SMALL)
    with _session(model) as sess:
        _save(sess, model, tmp_path, 1)
        before = _snapshot(tmp_path)
        failing = _FailingOpen(STAGES[stage], code)
        with monkeypatch.context() as patch, pytest.raises(error) as e:
            patch.setattr(bundle, "open", failing, raising=False)
            _save(sess, model, tmp_path, 2)
        assert failing.hits == 1
        _assert_names_file(e.value, STAGES[stage], tmp_path)
        assert f"({errno.errorcode[code]})" in str(e.value)
        _assert_intact(tmp_path, before, 1, model)
        # The Saver forgot the failed checkpoint: the next state file lists only real ones.
        _save(sess, model, tmp_path, 3)
    state = gg.train.get_checkpoint_state(tmp_path)
    assert list(state.all_model_checkpoint_paths) == [str(tmp_path / "model-1"),
                                                      str(tmp_path / "model-3")]
    assert _temp_files(tmp_path) == []


SHARDED_STAGES = {
    "part": r"model-2_temp/part-00001-of-00002\.data-00000-of-00001\.tempstate\d+$",
    "merged index": r"model-2\.index\.tempstate\d+$",
}


@pytest.mark.parametrize("stage", list(SHARDED_STAGES))
def test_a_full_disk_fails_a_sharded_save_and_changes_nothing(tmp_path, monkeypatch,
                                                              stage) -> None:
    with gg.Graph().as_default(), gg.Session(config=CONFIG) as sess:
        saver = build_saver(record("sharded_two_cpus")["savers"][0],
                            import_variables("sharded_two_cpus"))
        sess.run(gg.global_variables_initializer())
        first = saver.save(sess, str(tmp_path / "model"), global_step=1)
        reader = gg.train.NewCheckpointReader(first)
        values = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}
        before = _snapshot(tmp_path)
        failing = _FailingOpen(SHARDED_STAGES[stage], errno.ENOSPC)
        with monkeypatch.context() as patch, pytest.raises(errors.ResourceExhaustedError) as e:
            patch.setattr(bundle, "open", failing, raising=False)
            saver.save(sess, str(tmp_path / "model"), global_step=2)
    assert failing.hits == 1
    _assert_names_file(e.value, SHARDED_STAGES[stage], tmp_path)
    assert _snapshot(tmp_path) == before  # no model-2_temp/, no model-2.data-* of a merge
    assert gg.train.latest_checkpoint(tmp_path) == first
    reader = gg.train.NewCheckpointReader(first)
    for key, value in values.items():
        np.testing.assert_array_equal(reader.get_tensor(key), value, err_msg=key)


# --- stale temporary files -----------------------------------------------------------------------
ABANDONED = [  # what killed saves to tmp_path/model left
    "model-7.data-00000-of-00001.tempstate123", "model-7.index.tempstate456",
    "model.index.tempstate9", "model-00000007.data-00000-of-00001.tempstate1",
    "model-7.meta.tmp0123456789abcdef", "model-7.gpugraph-devices.json.tmp0123456789abcdef",
    "checkpoint.tmp0123456789abcdef", "model-7_temp/part-00000-of-00002.index",
    "model-7_temp/part-00000-of-00002.data-00000-of-00001",
    "model-7_temp/part-00001-of-00002.data-00000-of-00001.tempstate5",
]
UNRELATED = [  # other prefixes, other names, finished files
    "other-7.index.tempstate1", "other.data-00000-of-00001.tempstate1", "modelx.index.tempstate1",
    "model-7x.index.tempstate1", "model-7.index.tempstatex", "model-7.index", "notes.tmp0123",
    "model-7.txt.tmp01", "checkpoint2.tmp0123", "other-7_temp/part-00000-of-00001.index",
]


@needs_locks
def test_a_save_removes_only_abandoned_temp_files_of_its_prefix(tmp_path) -> None:
    for name in ABANDONED + UNRELATED:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"partial")
    # Saves in flight in "another process": their files are locked until renamed.
    in_flight = [bundle.TempFile(str(tmp_path / "model-8.data-00000-of-00001")),
                 bundle.TempFile(str(tmp_path / "checkpoint"), bundle.tmp_suffix)]
    shards = bundle.lock_new_directory(str(tmp_path / "model-9_temp"))
    (tmp_path / "model-9_temp" / "part-00000-of-00002.index").write_bytes(b"done")
    flying = [os.path.basename(f.name) for f in in_flight] + ["model-9_temp"]
    model, step = _model(SMALL), 10
    with _session(model) as sess:
        _save(sess, model, tmp_path, step)
        assert _temp_files(tmp_path) == sorted(flying + ["other-7_temp"] + [
            n for n in UNRELATED if TEMP.fullmatch(n)])
        assert not [n for n in ABANDONED if (tmp_path / n).exists()]
        assert not (tmp_path / "model-7_temp").exists()
        assert (tmp_path / "model-9_temp" / "part-00000-of-00002.index").exists()
        for name in UNRELATED:
            assert (tmp_path / name).read_bytes() == b"partial", name
        assert _stored(str(tmp_path / f"model-{step}")) == step
        # The other process finishes or dies: its leftovers go with the next save.
        for file in in_flight:
            file.discard()
        os.close(shards)
        _save(sess, model, tmp_path, step + 1)
    assert not (tmp_path / "model-9_temp").exists()


@needs_locks
def test_a_killed_save_leaves_temp_files_that_the_next_save_removes(tmp_path) -> None:
    size = 64 << 20  # 256 MB: the save takes long enough to be killed in the middle of it
    child = _start_child("loop", tmp_path, size)
    partial = re.compile(r"model-2\.data-00000-of-00001\.tempstate\d+")
    try:
        _wait_for(child, lambda: gg.train.latest_checkpoint(tmp_path))  # model-1 is complete
        _wait_for(child, lambda: [n for n in os.listdir(tmp_path)
                                  if partial.fullmatch(n) and _size(tmp_path / n) > 0])
        child.send_signal(signal.SIGKILL)  # model-2's data file is being written
    finally:
        child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    left = _temp_files(tmp_path)
    assert any(partial.fullmatch(n) for n in left), left
    assert gg.train.latest_checkpoint(tmp_path) == str(tmp_path / "model-1")

    model = _model(size)
    with _session(model) as sess:
        model.saver.restore(sess, gg.train.latest_checkpoint(tmp_path))
        assert np.unique(sess.run(model.var)).tolist() == [1.0]
        _save(sess, model, tmp_path, 3)
    assert _temp_files(tmp_path) == []
    assert gg.train.latest_checkpoint(tmp_path) == str(tmp_path / "model-3")
    for step in (1, 3):
        assert _stored(str(tmp_path / f"model-{step}")) == step


# --- EFBIG and a read-only directory, in subprocesses -------------------------------------------
def test_a_file_size_limit_fails_the_save_and_changes_nothing(tmp_path) -> None:
    size = 4 << 20  # 16 MB of data against a 4 MB limit: the limit is hit inside a write
    result = _run_child("fsize", tmp_path, size)
    before = result["before"]
    assert result["error"] == "ResourceExhaustedError", result
    assert "File too large (EFBIG)" in result["message"]
    assert re.search(r"model-2\.data-00000-of-00001\.tempstate\d+$", result["file"])
    assert result["file"] in result["message"] and str(tmp_path) in result["message"]
    model = _model(size)
    _assert_intact(tmp_path, {k: tuple(v) for k, v in before.items()}, 1, model)


def test_a_read_only_directory_fails_the_save_and_changes_nothing(tmp_path) -> None:
    model = _model(SMALL)
    with _session(model) as sess:
        _save(sess, model, tmp_path, 1)
    before = _snapshot(tmp_path)
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        result = _run_child("readonly", tmp_path, SMALL)
    finally:
        tmp_path.chmod(stat.S_IRWXU)
    if "skip" in result:
        pytest.skip(result["skip"])
    assert result["error"] == "PermissionDeniedError", result
    assert "Permission denied (EACCES)" in result["message"]
    assert re.search(r"model-2\.data-00000-of-00001\.tempstate\d+$", result["file"])
    assert result["file"] in result["message"] and str(tmp_path) in result["message"]
    _assert_intact(tmp_path, before, 1, model)


# --- two processes, one directory ----------------------------------------------------------------
def test_two_processes_saving_into_one_directory(tmp_path) -> None:
    saves = 20
    children = [_start_child("concurrent", tmp_path, 4 << 20, first, saves) for first in (1, 2)]
    for child in children:  # both ready (imports take a second): then they save side by side
        assert child.stdout.readline().strip() == "ready", child.communicate()[1]
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    state_file, reads = tmp_path / "checkpoint", 0
    while any(c.poll() is None for c in children):
        # Whenever the state file is there it is some process's whole file.
        if state_file.exists():
            state = text_format.Parse(state_file.read_text(), pb.CheckpointState(),
                                      descriptor_pool=pb.POOL)
            assert re.search(r"model-\d+$", state.model_checkpoint_path)
            reads += 1
        time.sleep(0.002)
    for child in children:
        _, err = child.communicate()
        assert child.returncode == 0, err
    assert reads > 0
    state = gg.train.get_checkpoint_state(tmp_path)
    assert state is not None and state.all_model_checkpoint_paths
    assert state.model_checkpoint_path in {str(tmp_path / "model-39"),
                                           str(tmp_path / "model-40")}
    for prefix in state.all_model_checkpoint_paths:
        assert _stored(prefix) == int(prefix.rsplit("-", 1)[1])
    assert _temp_files(tmp_path) == []


# --- subprocesses -------------------------------------------------------------------------------
def _start_child(kind: str, directory: pathlib.Path, *args: int) -> subprocess.Popen:
    path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), GPUGRAPH_VIRTUAL_GPUS="0")
    return subprocess.Popen([sys.executable, __file__, kind, str(directory), *map(str, args)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _run_child(kind: str, directory: pathlib.Path, *args: int) -> dict:
    child = _start_child(kind, directory, *args)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _wait_for(child: subprocess.Popen, condition: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert child.poll() is None, child.communicate()[1]
        time.sleep(0.001)
    raise AssertionError("timed out waiting for the saving process")


def _size(path: pathlib.Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _drop_dac_override() -> bool:
    """Makes this (root) process subject to file permissions: drops CAP_DAC_OVERRIDE from its
    effective and permitted capabilities (Linux capset(2)).  Returns whether it could."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
        if libc.capget(ctypes.byref(header), data) != 0:
            return False
        dac_override = 1 << 1
        data[0].effective &= ~dac_override
        data[0].permitted &= ~dac_override
        return libc.capset(ctypes.byref(header), data) == 0
    except (OSError, AttributeError):
        return False


def _read_only(directory: str) -> bool:
    """Whether this process can't create files in ``directory`` (as root: once it dropped
    CAP_DAC_OVERRIDE, which lets root write anywhere)."""
    if os.geteuid() == 0:
        _drop_dac_override()
    probe = os.path.join(directory, "probe")
    try:
        with open(probe, "x"):
            pass
    except OSError:  # EACCES (or EROFS)
        return True
    os.remove(probe)
    return False


def _error_report(e: errors.OpError) -> dict:
    return {"error": type(e).__name__, "message": str(e), "file": e.details.get("file")}


def _child(kind: str, directory: str, size: int, *args: int) -> None:
    """The saving process of a test (run as ``python test_disk_faults.py KIND DIR SIZE ...``);
    prints one JSON line for the test to check."""
    import resource  # noqa: PLC0415  (Unix only: the other tests need none of it)

    model = _model(size)
    sess = _session(model)
    if kind == "loop":  # until killed
        for step in range(1, 1 << 30):
            _save(sess, model, directory, step)
    if kind == "concurrent":  # saves first, first + 2, ... (the other process the others)
        first, saves = args
        print("ready", flush=True)
        sys.stdin.readline()
        for step in range(first, first + 2 * saves, 2):
            _save(sess, model, directory, step)
        print(json.dumps({"saved": saves}))
        return
    report: dict[str, Any] = {}
    if kind == "fsize":
        _save(sess, model, directory, 1)
        report["before"] = _snapshot(pathlib.Path(directory))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit: EFBIG, no signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 22, resource.RLIM_INFINITY))
    if kind == "readonly" and not _read_only(directory):
        print(json.dumps({"skip": "chmod does not make a directory read-only here (root that "
                                  "cannot drop CAP_DAC_OVERRIDE?)"}))
        return
    try:
        _save(sess, model, directory, 2)
    except errors.OpError as e:
        report.update(_error_report(e))
    print(json.dumps(report))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:]))
