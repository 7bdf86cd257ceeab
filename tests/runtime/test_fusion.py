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


class _ProgramFuser:
    """A fuser of the statement form (as the CUDA backend's): numpy statements, one per op."""

    max_depth = None
    templates = {"AddV2": "np.add({0}, {1})", "Mul": "np.multiply({0}, {1})",
                 "Tanh": "np.tanh({0})"}

    def __init__(self) -> None:
        self.compiled: list[int] = []

    def compile_program(self, lines: list[str], num_inputs: int):
        self.compiled.append(len(lines))
        args = ", ".join(f"v{i}" for i in range(num_inputs))
        body = "".join(f"    t{k} = {line}\n" for k, line in enumerate(lines))
        scope = {"np": np}
        exec(f"def fused({args}):\n{body}    return t{len(lines) - 1}\n", scope)  # noqa: S102
        return scope["fused"]


def test_a_statement_fuser_fuses_a_chain_of_any_depth(monkeypatch) -> None:
    # 2,000 ops (W4): one fused step where the fuser takes statements (no nesting limit).
    from gpugraph.devices.cpu.device import CpuDevice

    program = _ProgramFuser()
    monkeypatch.setattr(CpuDevice, "fuser", lambda self, dtype: program)
    values = np.linspace(-2, 2, 16, dtype=np.float32)
    with gg.Graph().as_default():
        x, y = _chain(2000)
        with gg.Session(config={"virtual_gpus": 0}) as sess:
            got = sess.run(y, {x: values})
            steps = list(sess._plans.values())[0].steps
    assert program.compiled == [2000]
    assert len([s for s in steps if s.kind == "kernel"]) <= 2, [s.op.type for s in steps]
    np.testing.assert_allclose(got, _reference(values, 2000), rtol=2e-6, atol=1e-7)


def test_the_cuda_program_declares_one_temporary_per_op() -> None:
    from gpugraph.devices.cuda.fusion import TEMPLATES, program_source

    add = TEMPLATES[np.dtype(np.float32)]["AddV2"]
    lines = [add.format("v0", "v1"), "tanhf(t0)", add.format("t1", "v0")]
    assert program_source(lines, "float") == (
        "float t0 = __fadd_rn(v0, v1);\nfloat t1 = tanhf(t0);\nfloat t2 = __fadd_rn(t1, v0);\n"
        "out = t2;")
