"""Every parser, fuzzed (scripts/fuzz.py: atheris, coverage-guided, seeded from TF-written
fixtures): a bounded deterministic run of each target, the inputs that once broke gpugraph
replayed, and the resource bounds on sizes read from files."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

import gpugraph as gg
from gpugraph import _proto as pb
from gpugraph import config, errors

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRASHES = pathlib.Path(__file__).resolve().parent / "crashes"
FIXTURES = ROOT / "tests" / "fixtures"
# Inputs per target in CI: a few seconds each (meta_text parses text, the slowest).
RUNS = {"meta_text": 200, "saved_model": 400}


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz", ROOT / "scripts" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


FUZZ = _fuzz_module()


@pytest.mark.parametrize("target", sorted(FUZZ.TARGETS))
def test_a_bounded_fuzz_run_finds_nothing(target, tmp_path) -> None:
    # Deterministic (seed 1, a fixed number of inputs): any exception other than a gpugraph
    # error, a crash, a 20 s input or a memory blow-up past 3 GiB fails the run.
    runs = RUNS.get(target, 1000)
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fuzz.py"), target, "--runs", str(runs),
         "--seed", "1", "--artifacts", str(tmp_path)], capture_output=True, text=True,
        timeout=300, cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert f"Done {runs} runs" in result.stderr or "no finding" in result.stdout


@pytest.mark.parametrize("target", sorted(p.name for p in CRASHES.iterdir()))
def test_inputs_that_once_broke_a_parser_now_get_gpugraph_errors(target) -> None:
    # (in a fuzzing process: its memory limits, and the tensor cap the fuzzer sets)
    files = sorted(str(p) for p in (CRASHES / target).iterdir())
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "fuzz.py"), target,
                             "--replay", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{len(files)} inputs replayed, no finding" in result.stdout


def test_a_tensor_proto_claiming_a_terabyte_is_refused_before_allocating() -> None:
    proto = pb.TensorProto(dtype=pb.DataType.Value("DT_FLOAT"))
    for size in (10**6, 10**6):
        proto.tensor_shape.dim.add(size=size)
    proto.float_val.append(1.0)
    assert proto.ByteSize() < 1024
    with pytest.raises(errors.ResourceExhaustedError, match="'w'.*4,000,000,000,000 bytes"):
        gg.io.tensor.make_ndarray(proto, name="w")


def test_the_memory_cap_is_configurable(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GPUGRAPH_MAX_TENSOR_BYTES", "1000")
    config.reload()
    try:
        with pytest.raises(errors.ResourceExhaustedError, match="GPUGRAPH_MAX_TENSOR_BYTES"):
            gg.io.tensor.make_ndarray(gg.io.tensor.make_tensor_proto(np.zeros(300, np.float32)))
        path = tmp_path / "big.npz"
        np.savez(path, x=np.zeros(300, np.float32))
        from gpugraph.resume import FeedSource

        with pytest.raises(errors.ResourceExhaustedError, match="big.npz"):
            FeedSource("x:0", str(path)).load()
    finally:
        monkeypatch.delenv("GPUGRAPH_MAX_TENSOR_BYTES")
        config.reload()


def test_a_bundle_entry_past_the_end_of_its_shard_is_data_loss(tmp_path) -> None:
    # The .index promises bytes the .data shard does not have: DataLossError naming the shard,
    # before anything is read (the shard is cut short under a valid index).
    source = FIXTURES / "example" / "digits"
    for name in ("model-300.index", "model-300.data-00000-of-00001"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    shard = tmp_path / "model-300.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:100])
    reader = gg.train.NewCheckpointReader(str(tmp_path / "model-300"))
    with pytest.raises(errors.DataLossError, match=r"data-00000-of-00001 is truncated"):
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)


def test_a_self_calling_function_library_stops_with_a_clear_error() -> None:
    graph_def = pb.GraphDef()
    fdef = graph_def.library.function.add()
    fdef.signature.name = "f"
    fdef.signature.input_arg.add(name="x", type=pb.DataType.Value("DT_FLOAT"))
    fdef.signature.output_arg.add(name="y", type=pb.DataType.Value("DT_FLOAT"))
    for node, source in ((fdef.node_def.add(name="again"), "x"),
                         (graph_def.node.add(name="call"), "x")):
        node.op = "PartitionedCall"
        node.input.append(source)
        node.attr["Tin"].list.type.append(pb.DataType.Value("DT_FLOAT"))
        node.attr["Tout"].list.type.append(pb.DataType.Value("DT_FLOAT"))
        node.attr["f"].func.name = "f"
    fdef.ret["y"] = "again:output:0"
    x = graph_def.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = pb.DataType.Value("DT_FLOAT")
    start = time.monotonic()
    with gg.Graph().as_default(), gg.Session() as sess:
        gg.import_graph_def(graph_def, name="")
        with pytest.raises(errors.ResourceExhaustedError,
                           match="Function 'f' was called 65 calls deep"):
            sess.run("call:0", {"x:0": np.float32(1)})
    assert time.monotonic() - start < 30
