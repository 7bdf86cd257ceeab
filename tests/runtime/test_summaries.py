"""HistogramSummary, TensorSummary(V2) and StringFormat give TF's exact bytes and texts
(tests/fixtures/summaries, written by scripts/make_summary_fixtures.py)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from helpers import out

import gpugraph as gg
from gpugraph import errors

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "summaries"
FIXTURE = FIXTURES / "histogram.npz"
with np.load(FIXTURE) as _data:
    ARRAYS = {k: _data[k] for k in _data.files}
CASES = sorted(k[3:] for k in ARRAYS if k.startswith("in/"))


def _histogram(values: np.ndarray, tag: str):
    t = gg.dtypes.as_dtype(values.dtype)
    return out("HistogramSummary", gg.constant(tag.encode()), gg.constant(values), T=t)


@pytest.mark.parametrize("case", CASES)
def test_histogram_summary_bytes_equal_tfs(case: str) -> None:
    with gg.Graph().as_default():
        summary = _histogram(ARRAYS[f"in/{case}"], f"h/{case}")
        merged = out("MergeSummary", summary, N=1)
        with gg.Session() as sess:
            got, got_merged = sess.run([summary, merged])
    assert got == ARRAYS[f"out/{case}"].tobytes()
    assert got_merged == got


def test_histogram_of_nan_fails_naming_the_tag() -> None:
    with gg.Graph().as_default():
        summary = _histogram(np.array([1.0, np.nan], np.float32), "weights")
        with gg.Session() as sess, pytest.raises(errors.InvalidArgumentError,
                                                  match="Nan in summary histogram for: weights"):
            sess.run(summary)


FORMAT = json.loads((FIXTURE.parent / "format.json").read_text())
with np.load(FIXTURE.parent / "format.npz") as _data:
    FORMAT_ARRAYS = {k: _data[k] for k in _data.files}


@pytest.mark.parametrize("record", FORMAT, ids=[r["case"] for r in FORMAT])
def test_string_format_writes_tfs_text(record: dict) -> None:
    inputs = []
    for j in range(record["inputs"]):
        value = FORMAT_ARRAYS[f"{record['case']}/{j}"]
        inputs.append(value.astype(object) if value.dtype.kind == "S" else value)
    with gg.Graph().as_default():
        tensors = [gg.constant(v) for v in inputs]
        text = out("StringFormat", *tensors, T=[t.dtype for t in tensors],
                   template=record["template"].encode(), placeholder=b"{}",
                   summarize=record["summarize"])
        with gg.Session() as sess:
            assert sess.run(text).decode() == record["text"]


with np.load(FIXTURES / "tensor.npz") as _data:
    TENSOR_ARRAYS = {k: _data[k] for k in _data.files}
TENSOR_CASES = sorted(k[3:] for k in TENSOR_ARRAYS if k.startswith("in/"))


@pytest.mark.parametrize("case", TENSOR_CASES)
def test_tensor_summaries_bytes_equal_tfs(case: str) -> None:
    # TensorSummary (V1: the node's name, the tensor) and TensorSummaryV2 (tag, tensor,
    # plugin metadata), as TF's kernels serialize them.
    value = TENSOR_ARRAYS[f"in/{case}"]
    value = value.astype(object) if value.dtype.kind == "S" else value
    meta = TENSOR_ARRAYS[f"meta/{case}"].tobytes()
    with gg.Graph().as_default():
        tensor = gg.constant(value)
        v1 = out("TensorSummary", tensor, T=tensor.dtype, name=f"t1/{case}")
        v2 = out("TensorSummaryV2", gg.constant(f"t2/{case}".encode()), tensor,
                 gg.constant(meta), T=tensor.dtype)
        with gg.Session() as sess:
            got1, got2 = sess.run([v1, v2])
    assert got1 == TENSOR_ARRAYS[f"v1/{case}"].tobytes()
    assert got2 == TENSOR_ARRAYS[f"v2/{case}"].tobytes()
