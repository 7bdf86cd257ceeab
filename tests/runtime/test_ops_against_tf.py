"""Every kernel against TF's own outputs, case by case.

The fixtures (scripts/make_op_fixtures.py, real TF 2.21 CPU) hold, per op family, one GraphDef
with every case under its own scope ``c<i>/`` (placeholders ``c<i>/in<j>``, the op ``c<i>/op``),
the inputs and TF's outputs (``<family>.npz``) and one record per case (``<family>.json``):
the tolerance, what to check (values, shape/dtype for random ops, or TF's error), and for
optimizer ops the state variables and their values after one update.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import gpugraph as gg
from gpugraph import _proto as pb
from gpugraph import errors
from gpugraph.devices import discover

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "ops"
FAMILIES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def _records():
    for family in FAMILIES:
        for record in json.loads((FIXTURES / f"{family}.json").read_text()):
            yield pytest.param(family, record, id=f"{family}-{record['case']}-{record['op']}")


# Every case runs on the CPU and again on a numpy-backed virtual GPU, whose arrays fail when a
# kernel mixes host and device memory without a transfer (as CuPy's would); and on a real GPU
# where CuPy finds one (None: the session looks for CUDA devices).
DEVICES: dict[str, int | None] = {"cpu": 0, "virtual_gpu": 1}
if any(d.kind == "cuda" for d in discover().gpus):
    DEVICES["cuda"] = None


class _Family:
    """One family's graph, arrays and session, shared by its cases."""

    def __init__(self, family: str, virtual_gpus: int = 0):
        graph_def = pb.GraphDef()
        graph_def.ParseFromString((FIXTURES / f"{family}.pb").read_bytes())
        self.graph = gg.Graph()
        with self.graph.as_default():
            gg.import_graph_def(graph_def, name="")
        with np.load(FIXTURES / f"{family}.npz") as data:
            self.arrays = {k: data[k] for k in data.files}
        self.session = gg.Session(graph=self.graph, config={"virtual_gpus": virtual_gpus})


_LOADED: dict[str, _Family] = {}


@pytest.fixture
def family_of():
    def load(family: str, device: str = "cpu") -> _Family:
        key = f"{family}/{device}"
        if key not in _LOADED:
            _LOADED[key] = _Family(family, DEVICES[device])
        return _LOADED[key]

    return load


def _feeds(fam: _Family, case: str, record: dict) -> dict:
    names = record.get("scalars") or [f"{case}/in{j}" for j in range(record["inputs"])]
    return {f"{name}:0": fam.arrays[name] for name in names}


def _compare(got: np.ndarray, want: np.ndarray, record: dict, what: str) -> None:
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != TF's {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != TF's {want.shape}"
    if want.dtype.kind in "OSUb" or (record["rtol"] == 0 and record["atol"] == 0):
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        wide = np.complex128 if want.dtype.kind == "c" else np.float64  # keep imaginary parts
        np.testing.assert_allclose(got.astype(wide), want.astype(wide),
                                   rtol=record["rtol"], atol=record["atol"], err_msg=what)


@pytest.mark.parametrize("device", list(DEVICES))
@pytest.mark.parametrize(("family", "record"), list(_records()))
def test_op_matches_tf(family_of, family: str, record: dict, device: str) -> None:
    fam = family_of(family, device)
    case = record["case"]
    with fam.graph.as_default():
        if "state" in record:
            return _check_optimizer(fam, record)
        outputs = [k for k in range(record["outputs"]) if k not in record.get("skip_outputs", [])]
        fetches = [f"{case}/op:{k}" for k in outputs]
        if "fetches" in record:  # stateful sub-graph cases (TensorArray, Stack): one run
            fetches = [record["fetches"][k] for k in outputs]
        targets = record.get("targets", [])
        if record["check"] == "error" and device != "cpu" and record["op"] in GPU_UNCHECKED:
            return _check_gpu_unchecked(fam, record, fetches + targets)
        if record["check"] == "error":
            with pytest.raises(getattr(errors, record["error"])) as e:
                fam.session.run(fetches + targets, _feeds(fam, case, record))
            _assert_message(record["message"], str(e.value))
            return None
        got = fam.session.run(fetches + targets, _feeds(fam, case, record))[:len(fetches)]
    for k, value in zip(outputs, got):
        key = f"{case}/out{k}"
        if key not in fam.arrays:  # TF left this output uninitialized (documented in desc)
            continue
        want = fam.arrays[key]
        if record["check"] == "shape_dtype":
            _check_random(np.asarray(value), want, record)
        else:
            what = f"{record['op']} output {k}: {record['desc']}"
            _compare(np.asarray(value), want, record, what)
    return None


# Ops whose TF GPU kernels do not check what the CPU kernels refuse (no host synchronization):
# out-of-range gather indices give zeros, out-of-range labels NaN loss and gradient rows,
# out-of-range segment ids and scatter indices are dropped (their segment stays zero).
GPU_UNCHECKED = {"GatherV2": "zero", "Gather": "zero", "GatherNd": "zero",
                 "UnsortedSegmentSum": "zero", "SparseSegmentSumWithNumSegments": "zero",
                 "SparseSegmentMeanGrad": "zero",
                 "SparseSoftmaxCrossEntropyWithLogits": "nan"}


def _check_gpu_unchecked(fam: _Family, record: dict, fetches: list) -> None:
    got = fam.session.run(fetches, _feeds(fam, fam_case := record["case"], record))
    values = [np.asarray(v) for v in got[:record["outputs"]]]
    assert values, fam_case
    if GPU_UNCHECKED[record["op"]] == "nan":
        assert all(np.isnan(v).any() for v in values), (fam_case, values)
    else:
        assert any((v == 0).any() for v in values), (fam_case, values)


def _assert_message(expected: str, actual: str) -> None:
    """TF's message is in ours; ``<id>`` stands for a per-process resource counter."""
    position = 0
    for part in expected.split("<id>"):
        found = actual.find(part, position)
        assert found >= 0, f"{expected!r} not in {actual!r}"
        position = found + len(part)


def _check_random(got: np.ndarray, want: np.ndarray, record: dict) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    if "range" in record and got.size:
        lo, hi = record["range"]
        assert got.min() >= lo and got.max() <= hi
        if record["op"] in ("RandomUniform", "RandomUniformInt"):
            assert got.max() < hi
    if "expected_mean" in record:
        sample = got.astype(np.float64)
        scale = max(1.0, record["expected_std"])
        assert abs(sample.mean() - record["expected_mean"]) < 0.05 * scale
        assert abs(sample.std() - record["expected_std"]) < 0.05 * scale


def _check_optimizer(fam: _Family, record: dict) -> None:
    case = record["case"]
    sess = fam.session
    for name in record["state"]:
        sess.run(f"{name}/Assign")
    sess.run(f"{case}/op", _feeds(fam, case, record))
    for name, out in zip(record["state"], record["state_out"]):
        if record["resource"]:
            op = fam.graph.get_operation_by_name(name)
            dtype = op.get_attr("dtype")
            from helpers import out as make

            value = sess.run(make("ReadVariableOp", op.outputs[0], dtype=dtype))
        else:
            value = sess.run(f"{name}:0")
        _compare(np.asarray(value), fam.arrays[out], record, f"{record['op']} {name}")
