"""Elementwise fusion: same values as the unfused kernels, fewer steps."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import out

import gpugraph as gg
from gpugraph.devices.cpu import fusion


def _chain(n: int):
    x = gg.placeholder(gg.dtypes.float32, [16], name="x")
    a = gg.constant(np.float32(0.25), name="a")
    m = gg.constant(np.float32(0.9), name="m")
    y = x
    for i in range(n):
        kind = ("AddV2", "Mul", "Tanh")[i % 3]
        y = out(kind, y, a if kind == "AddV2" else m, T=gg.dtypes.float32) if kind != "Tanh" \
            else out("Tanh", y, T=gg.dtypes.float32)
    return x, y


def _reference(x: np.ndarray, n: int) -> np.ndarray:
    y = x
    for i in range(n):
        y = (y + np.float32(0.25), y * np.float32(0.9), np.tanh(y))[i % 3]
    return y


@pytest.mark.parametrize("n", [3, 100, 500])
def test_fused_chain_matches_unfused(n: int, monkeypatch) -> None:
    values = np.linspace(-2, 2, 16, dtype=np.float32)
    with gg.Graph().as_default():
        x, y = _chain(n)
        with gg.Session(config={"virtual_gpus": 0}) as sess:
            fused = sess.run(y, {x: values})
            steps = len(list(sess._plans.values())[0].steps)
        monkeypatch.setattr(fusion, "numexpr", None)
        with gg.Session(config={"virtual_gpus": 0}) as sess:
            plain = sess.run(y, {x: values})
            plain_steps = len(list(sess._plans.values())[0].steps)
    assert fused.dtype == np.float32
    np.testing.assert_allclose(fused, plain, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(fused, _reference(values, n), rtol=2e-6, atol=1e-7)
    assert steps < plain_steps or fusion.numexpr is None


def test_fetched_intermediates_stay_materialised() -> None:
    with gg.Graph().as_default():
        x, y = _chain(9)
        middle = y.op.inputs[0].op.inputs[0]
        with gg.Session(config={"virtual_gpus": 0}) as sess:
            got_mid, got_y = sess.run([middle, y], {x: np.ones(16, np.float32)})
    np.testing.assert_allclose(got_y, _reference(np.ones(16, np.float32), 9), rtol=2e-6)
    np.testing.assert_allclose(got_mid, _reference(np.ones(16, np.float32), 7), rtol=2e-6)


def test_a_fused_step_runs_in_its_devices_context() -> None:
    """A chain fused on GPU:k launches on device k, as each of its kernels would have: the
    fused step enters the device's run context (CuPy's Device(k)) around the kernel."""
    from gpugraph.plan import build as plan_module

    entered = []

    class Context:
        def __enter__(self):
            entered.append("in")

        def __exit__(self, *exc):
            entered.append("out")

    class FakeGpu:
        kind = "cuda"

        def run_context(self):
            return Context()

    with gg.Graph().as_default():
        x, y = _chain(3)
        root = plan_module.Step(y.op, "kernel", None, (0,), (1,), FakeGpu())
        step = plan_module._fused_step(root, (0,), lambda v: entered.append("kernel") or v)
    assert step.fn(5) == 5 and entered == ["in", "kernel", "out"]
