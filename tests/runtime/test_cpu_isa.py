"""The direct convolution kernel sized for each vector ISA this CPU runs (gpugraph/devices/cpu/
isa.py): every variant gives the same bits (the same fused multiply-adds in the same order
per element), a lesser variant's code uses only its own registers, and ``generic`` leaves
convolutions to im2col + BLAS."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import out

import gpugraph as gg
from gpugraph import config
from gpugraph.devices.cpu import conv as cpu_conv
from gpugraph.devices.cpu import isa as cpu_isa
from gpugraph.devices.cpu import jit as cpu_jit

VARIANTS = [v.name for v in cpu_isa.supported()]
pytestmark = pytest.mark.skipif(not VARIANTS or not cpu_conv.available(
    np, np.zeros(1, np.float32)), reason="no direct kernel here (llvmlite, x86-64 AVX2)")


@pytest.fixture
def use(monkeypatch):
    def choose(name: str) -> None:
        monkeypatch.setenv("GPUGRAPH_CPU_ISA", name)
        config.reload()

    yield choose
    monkeypatch.delenv("GPUGRAPH_CPU_ISA", raising=False)
    config.reload()


def _conv_step(x, w, strides, padding):
    # Conv2D -> BiasAdd -> Relu, and the two gradients, on the CPU.
    with gg.Graph().as_default(), gg.Session() as sess:
        xi, wi = gg.constant(x), gg.constant(w)
        y = out("Conv2D", xi, wi, T=gg.float32, strides=strides, padding=padding)
        bias = out("BiasAdd", y, gg.constant(np.linspace(-1, 1, w.shape[3], dtype=np.float32)),
                   T=gg.float32)
        relu = out("Relu", bias, T=gg.float32)
        dx = out("Conv2DBackpropInput", gg.constant(np.array(x.shape, np.int32)), wi, relu,
                 T=gg.float32, strides=strides, padding=padding)
        dw = out("Conv2DBackpropFilter", xi, gg.constant(np.array(w.shape, np.int32)), relu,
                 T=gg.float32, strides=strides, padding=padding)
        return sess.run([relu, dx, dw])


@pytest.mark.parametrize(("shape", "kernel", "strides", "padding"), [
    ((2, 14, 14, 3), (5, 5, 3, 32), [1, 1, 1, 1], "SAME"),
    ((1, 9, 11, 8), (3, 3, 8, 17), [1, 2, 2, 1], "VALID"),
    ((2, 7, 7, 64), (3, 3, 64, 40), [1, 1, 1, 1], "SAME")])
def test_every_variant_convolves_to_the_same_bits(use, shape, kernel, strides, padding) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(kernel).astype(np.float32)
    results = {}
    for name in VARIANTS:
        use(name)
        assert cpu_isa.current().name == name
        results[name] = _conv_step(x, w, strides, padding)
    first = results[VARIANTS[0]]
    for name in VARIANTS[1:]:
        for mine, theirs in zip(results[name], first):
            np.testing.assert_array_equal(mine.view(np.uint32), theirs.view(np.uint32))
    use("generic")  # im2col + BLAS: the same values, another summation order
    assert not cpu_conv.available(np, x)
    for mine, theirs in zip(_conv_step(x, w, strides, padding), first):
        scale = np.abs(theirs).max()  # (sums of hundreds of terms: float32 rounding of those)
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", [1, 7, 16, 17, 33, 64, 130])
def test_every_variant_multiplies_and_updates_to_the_same_bits(use, dtype, cols) -> None:
    rng = np.random.default_rng(cols)
    x = rng.standard_normal(3000).astype(dtype)
    rowtab = rng.integers(0, 1500, 37).astype(np.int64)
    redtab = rng.integers(0, 1500, 29).astype(np.int64)
    b = rng.standard_normal((29, cols)).astype(dtype)
    var0 = rng.standard_normal((37, cols)).astype(dtype)
    results = {}
    for name in VARIANTS:
        use(name)
        product = np.empty((37, cols), dtype)
        cpu_conv.gather_gemm(x, rowtab, redtab, b, product)
        var, accum = var0.copy(), np.ones_like(var0)
        cpu_conv.gather_gemm_momentum(x, rowtab, redtab, b, var, accum, dtype(0.1), dtype(0.9),
                                      nesterov=True)
        results[name] = (product, var, accum)
    for name in VARIANTS[1:]:
        for mine, theirs in zip(results[name], results[VARIANTS[0]]):
            np.testing.assert_array_equal(mine, theirs)


@pytest.mark.skipif("avx2" not in VARIANTS or "avx512" not in VARIANTS,
                    reason="needs an AVX-512 host to compile for a lesser ISA")
def test_the_avx2_variant_compiles_to_avx2_code_only() -> None:
    import llvmlite.binding as llvm

    source = cpu_conv.ir(np.dtype(np.float32), 6, 2, lanes=cpu_isa.AVX2.lanes(np.float32))
    machine = cpu_jit.machine_with(cpu_isa.features_for(cpu_isa.AVX2))
    assembly = machine.emit_assembly(llvm.parse_assembly(source))
    assert "ymm" in assembly and "zmm" not in assembly
    wide = cpu_jit.machine_with(cpu_isa.features_for(cpu_isa.AVX512))
    source = cpu_conv.ir(np.dtype(np.float32), 7, 4, lanes=16)
    assert "zmm" in wide.emit_assembly(llvm.parse_assembly(source))
