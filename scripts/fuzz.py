"""Fuzzing every parser gpugraph has, with atheris (libFuzzer for Python, coverage-guided).

Each target takes bytes, writes them where gpugraph would read a file of that kind, and runs
the reading API to its end (import, restore, read every tensor).  An input may give a result
or raise a ``gpugraph.errors`` exception that names the file; anything else (a raw protobuf,
numpy, struct, Unicode or OS error, a crash, a hang past ``-timeout``, memory past the
process's cap) is a finding.  Seeds come from the test fixtures (TF-written files).

    python scripts/fuzz.py TARGET --seconds 60          # coverage-guided, until time is up
    python scripts/fuzz.py TARGET --runs 500 --seed 1   # a bounded, deterministic run (CI)
    python scripts/fuzz.py --list
    python scripts/fuzz.py TARGET --replay FILE...      # rerun saved inputs (no atheris)

Findings are written as ``crash-*`` / ``timeout-*`` files under ``--artifacts`` (default
``fuzz-artifacts/TARGET/``); keep each as ``tests/fuzz/crashes/TARGET/<name>`` (the suite
replays them).  Without atheris installed, ``--runs`` falls back to a seeded random mutator
over the same seeds (no coverage guidance).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import resource
import sys
import tempfile
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
MEMORY_CAP = 3 << 30  # address space of a fuzzing process: a blow-up fails, it does not swap
# gpugraph's own cap on one tensor read from a file, well inside MEMORY_CAP: a claim past it
# must be refused (ResourceExhaustedError) before anything is allocated.
TENSOR_CAP = 256 << 20

_work = pathlib.Path(tempfile.mkdtemp(prefix="gpugraph-fuzz-"))


def _gg():
    import gpugraph as gg  # noqa: PLC0415  (imported after atheris instruments it)

    return gg


def _write(name: str, data: bytes) -> str:
    path = _work / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _expected(error: BaseException) -> bool:
    """Whether ``error`` is an answer gpugraph may give: one of its own, naming the file."""
    from gpugraph import errors  # noqa: PLC0415

    return isinstance(error, errors.OpError)


def _guarded(fn: Callable[[bytes], None]) -> Callable[[bytes], None]:
    def target(data: bytes) -> None:
        try:
            fn(data)
        except Exception as e:  # noqa: BLE001  (sorted out just below)
            if not _expected(e):
                raise
    return target


# --- the targets ----------------------------------------------------------------------------


def meta(data: bytes, name: str = "model.meta") -> None:
    """A .meta (binary, or text for .pbtxt names) imported into a graph."""
    gg = _gg()
    path = _write(name, data)
    with gg.Graph().as_default():
        gg.train.import_meta_graph(path)


def meta_text(data: bytes) -> None:
    meta(data, "model.meta.pbtxt")


def graph_def(data: bytes) -> None:
    """A frozen GraphDef (.pb) read and imported."""
    gg = _gg()
    path = _write("frozen.pb", data)
    with gg.Graph().as_default():
        gg.import_graph_def(gg.graph_util.read_graph_def(path), name="")


def _restore_all(prefix: str) -> None:
    gg = _gg()
    reader = gg.train.NewCheckpointReader(prefix)
    for key in reader.get_variable_to_shape_map():
        reader.get_tensor(key)


def index(data: bytes) -> None:
    """A checkpoint's .index table (TF's digits example data next to it), every tensor read."""
    _write("ckpt/model.data-00000-of-00001",
           (FIXTURES / "example" / "digits" / "model-300.data-00000-of-00001").read_bytes())
    _write("ckpt/model.index", data)
    _restore_all(str(_work / "ckpt" / "model"))


def data_shard(data: bytes) -> None:
    """A checkpoint's .data shard (a valid .index next to it), every tensor read."""
    _write("ckpt/model.index", (FIXTURES / "bundles" / "dtypes" / "dtypes.index").read_bytes())
    _write("ckpt/model.data-00000-of-00001", data)
    _restore_all(str(_work / "ckpt" / "model"))


def v1_checkpoint(data: bytes) -> None:
    """A V1 (TensorSlices) checkpoint file, every tensor read."""
    _restore_all(_write("v1/model.ckpt", data))


def checkpoint_state(data: bytes) -> None:
    """The ``checkpoint`` state file, and the latest checkpoint it names."""
    gg = _gg()
    _write("state/checkpoint", data)
    gg.train.get_checkpoint_state(str(_work / "state"))
    gg.train.latest_checkpoint(str(_work / "state"))


def device_record(data: bytes) -> None:
    """gpugraph's device record of a checkpoint (``<prefix>.gpugraph-devices.json``)."""
    from gpugraph.train import device_record as record  # noqa: PLC0415

    _write("rec/model.gpugraph-devices.json", data)
    record.read_record(str(_work / "rec" / "model"))


def feed(data: bytes, name: str = "feed.npy") -> None:
    """A ``gpugraph resume --feed`` file (.npy, or .npz for the npz target)."""
    from gpugraph.resume import FeedSource  # noqa: PLC0415

    FeedSource("x:0", _write(name, data)).load()


def feed_npz(data: bytes) -> None:
    feed(data, "feed.npz")


def saved_model(data: bytes) -> None:
    """A saved_model.pb (its variables/ from the fixture), loaded as TF's loader does."""
    gg = _gg()
    source = FIXTURES / "saved_models" / "builder_two_tags"
    target = _work / "sm"
    if not (target / "variables").exists():
        import shutil  # noqa: PLC0415

        shutil.copytree(source, target)
    (target / "saved_model.pb").write_bytes(data)
    model = gg.saved_model.loader.read_saved_model(str(target))
    for meta_graph in model.meta_graphs[:2]:
        with gg.Graph().as_default(), gg.Session() as sess:
            gg.saved_model.load(sess, list(meta_graph.meta_info_def.tags), str(target))


def tensor_proto(data: bytes) -> None:
    """A serialized TensorProto turned into an array (what every Const node goes through)."""
    from google.protobuf.message import DecodeError  # noqa: PLC0415

    from gpugraph._proto import TensorProto  # noqa: PLC0415
    from gpugraph.io.tensor import make_ndarray  # noqa: PLC0415

    try:
        proto = TensorProto.FromString(data)
    except DecodeError:
        return  # (not a TensorProto at all: protobuf's parser, not gpugraph's, said so)
    make_ndarray(proto, name="fuzzed")


TARGETS: dict[str, tuple[Callable[[bytes], None], list[str]]] = {
    "meta": (meta, ["meta/mlp_ref_sgd/mlp_ref_sgd-3.meta", "meta/control_flow.meta",
                    "train_sparse/embedding_adam_resource/embedding_adam_resource-3.meta"]),
    "meta_text": (meta_text, ["meta/mlp_ref_sgd_text.meta"]),
    "graph_def": (graph_def, ["frozen/mlp.pb", "frozen/cnn.pb"]),
    "index": (index, ["example/digits/model-300.index"]),
    "data": (data_shard, ["bundles/dtypes/dtypes.data-00000-of-00001"]),
    "v1_checkpoint": (v1_checkpoint, ["v1_checkpoints/single/model.ckpt"]),
    "checkpoint_state": (checkpoint_state, ["example/digits/checkpoint"]),
    "device_record": (device_record, []),
    "feed": (feed, []),
    "feed_npz": (feed_npz, ["example/digits/digits.npz"]),
    "saved_model": (saved_model, ["saved_models/builder_two_tags/saved_model.pb"]),
    "tensor_proto": (tensor_proto, []),
}


def _extra_seeds(name: str) -> list[bytes]:
    """Seeds made here for targets with no fixture of their own."""
    import io  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    if name == "device_record":
        return [b'{"format": 1, "variables": {"w": "/job:localhost/replica:0/task:0/device:CPU:0"}}']
    if name == "feed":
        buffer = io.BytesIO()
        np.save(buffer, np.arange(12, dtype=np.float32).reshape(3, 4))
        return [buffer.getvalue()]
    if name == "tensor_proto":
        from gpugraph.io.tensor import make_tensor_proto  # noqa: PLC0415

        return [make_tensor_proto(np.arange(6, dtype=np.float32).reshape(2, 3))
                .SerializeToString(), make_tensor_proto([b"a", b"bc"]).SerializeToString()]
    return []


def seeds(name: str) -> list[bytes]:
    _, files = TARGETS[name]
    return [(FIXTURES / f).read_bytes() for f in files] + _extra_seeds(name)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One random edit (the fallback mutator): flip, overwrite, insert, delete or truncate."""
    out = bytearray(data or b"\0")
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(out)) if out else 0
        kind = rng.randrange(6)
        if kind == 0 and out:
            out[pos] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:
            out[pos] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        elif kind == 2:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 3 and out:
            del out[pos:pos + rng.randint(1, 16)]
        elif kind == 4:
            del out[pos:]
        elif kind == 5 and len(out) > 8:
            out[pos:pos + 8] = rng.randbytes(8)
    return bytes(out)


def _fallback(name: str, runs: int, seed: int) -> None:
    target, rng = _guarded(TARGETS[name][0]), random.Random(seed)
    corpus = seeds(name) or [b""]
    for _ in range(runs):
        data = _mutate(rng.choice(corpus), rng)
        try:
            target(data)
        except BaseException:
            path = pathlib.Path(f"crash-{name}-{seed}-{_}")
            path.write_bytes(data)
            print(f"finding saved to {path}", file=sys.stderr)
            raise
    print(f"{name}: {runs} inputs (random mutation, seed {seed}), no finding")


def replay(name: str, files: list[str]) -> None:
    """Runs saved inputs through the target (what the suite does with kept crash inputs)."""
    target = _guarded(TARGETS[name][0])
    for file in files:
        target(pathlib.Path(file).read_bytes())
    print(f"{name}: {len(files)} inputs replayed, no finding")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", choices=sorted(TARGETS))
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--runs", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=20, help="seconds one input may take")
    parser.add_argument("--artifacts", help="where findings go (default fuzz-artifacts/TARGET)")
    parser.add_argument("--replay", nargs="+", metavar="FILE")
    args = parser.parse_args()
    if args.list or not args.target:
        for name, (fn, files) in sorted(TARGETS.items()):
            print(f"{name:17s} {fn.__doc__.splitlines()[0] if fn.__doc__ else ''}")
        return
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    os.environ.setdefault("GPUGRAPH_MAX_TENSOR_BYTES", str(TENSOR_CAP))  # (before the import)
    if args.replay:
        return replay(args.target, args.replay)
    try:
        import atheris  # noqa: PLC0415
    except ImportError:
        atheris = None
    if atheris is None:
        return _fallback(args.target, args.runs or 1000, args.seed)
    _atheris(atheris, args)


def _atheris(atheris, args: argparse.Namespace) -> None:
    with atheris.instrument_imports(include=["gpugraph"]):
        import gpugraph  # noqa: F401, PLC0415
    target = _guarded(TARGETS[args.target][0])
    corpus = _work / "corpus"
    corpus.mkdir()
    for k, data in enumerate(seeds(args.target)):
        (corpus / f"seed-{k}").write_bytes(data)
    artifacts = pathlib.Path(args.artifacts or f"fuzz-artifacts/{args.target}")
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], str(corpus), f"-seed={args.seed}", f"-timeout={args.timeout}",
            f"-artifact_prefix={artifacts}{os.sep}", "-rss_limit_mb=0", "-max_len=1000000"]
    argv.append(f"-runs={args.runs}" if args.runs else f"-max_total_time={args.seconds or 60}")
    atheris.Setup(argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
