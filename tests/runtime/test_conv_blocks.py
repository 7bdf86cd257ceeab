"""Convolutions work through the batch in blocks of images: any block size gives the same values.

The TF op fixtures (test_ops_against_tf.py) hold the kernels to TF's outputs, mostly with one
block; here a tiny block budget forces one image per block, and the results must agree with a
single block (to rounding: BLAS may sum the filter gradient's blocks in another order).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import out

import gpugraph as gg
from gpugraph.ops import conv_ops
from gpugraph.ops.cpu import conv as cpu_conv_ops


def _conv_family(x, w, dy, data_format):
    t = gg.dtypes.as_dtype(x.dtype)
    attrs = {"T": t, "strides": [1, 1, 1, 1], "padding": b"SAME", "data_format": data_format}
    fx, fw, fdy = gg.constant(x), gg.constant(w), gg.constant(dy)
    return [out("Conv2D", fx, fw, **attrs),
            out("Conv2DBackpropFilter", fx, gg.constant(np.array(w.shape, np.int32)), fdy, **attrs),
            out("Conv2DBackpropInput", gg.constant(np.array(x.shape, np.int32)), fw, fdy, **attrs)]


def _run(x, w, dy, data_format):
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 0}) as sess:
        return sess.run(_conv_family(x, w, dy, data_format))


@pytest.mark.parametrize("data_format", [b"NHWC", b"NCHW"])
@pytest.mark.parametrize("loops", ["1", "0"])
def test_any_block_size_gives_the_same_convolutions(data_format, loops, monkeypatch) -> None:
    monkeypatch.setenv("GPUGRAPH_CPU_LOOPS", loops)
    rng = np.random.default_rng(0)
    nhwc = data_format == b"NHWC"
    x = rng.standard_normal((5, 9, 7, 3) if nhwc else (5, 3, 9, 7)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    dy = rng.standard_normal((5, 9, 7, 4) if nhwc else (5, 4, 9, 7)).astype(np.float32)
    whole = _run(x, w, dy, data_format)
    monkeypatch.setattr(cpu_conv_ops, "_PATCH_BLOCK_BYTES", 1)
    assert len(conv_ops._blocks(5, 9 * 7 * 27 * 4, cpu_conv_ops._PATCH_BLOCK_BYTES)) == 5
    blocked = _run(x, w, dy, data_format)
    for got, want in zip(blocked, whole, strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(blocked[2], whole[2])  # the input gradient: disjoint images


def test_an_empty_batch_convolves_to_empty_and_zero_filter_gradient() -> None:
    x, w, dy = (np.zeros(s, np.float32) for s in ((0, 4, 4, 2), (3, 3, 2, 5), (0, 4, 4, 5)))
    y, dw, dx = _run(x, w, np.ones_like(dy), b"NHWC")
    assert y.shape == (0, 4, 4, 5) and dx.shape == (0, 4, 4, 2)
    np.testing.assert_array_equal(dw, np.zeros((3, 3, 2, 5), np.float32))


def test_zero_sized_dimensions_convolve_as_tf() -> None:
    """Empty spatial or channel dimensions give empty results (and zero filter gradients)."""
    for x_shape, w_shape in (((2, 0, 5, 3), (3, 3, 3, 4)), ((2, 5, 5, 0), (3, 3, 0, 4))):
        x = np.zeros(x_shape, np.float32)
        w = np.ones(w_shape, np.float32)
        dy = np.ones((*x_shape[:3], w_shape[3]), np.float32)
        y, dw, dx = _run(x, w, dy, b"NHWC")
        assert y.shape == dy.shape and dx.shape == x.shape and dw.shape == w.shape
        np.testing.assert_array_equal(dw, 0)


def test_only_the_cpu_blocks_the_batch() -> None:
    block = cpu_conv_ops._PATCH_BLOCK_BYTES
    assert len(conv_ops._blocks(64, block, block)) == 64
    assert conv_ops._blocks(64, block, None) == [slice(0, 64)]  # the generic body: one GEMM
