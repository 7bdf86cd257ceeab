"""Generate the TensorFlow-written V2 checkpoints that gpugraph's bundle tests read and rewrite.

gpugraph never imports TensorFlow; this script is the only place that does.  It deletes and
rewrites ``tests/fixtures/bundles/``.  Each case ``<name>/`` holds TF's checkpoint files
(``<prefix>.index``, ``<prefix>.data-*``) and ``expected.json``::

    {"tensorflow": version, "prefix": "<prefix>", "writer": "SaveV2" | "Saver",
     "tensors": [{"key": b64 of the key bytes, "dtype": TF name, "shape": [...],
                  "data": b64 of the raw little-endian C-order bytes}  # numeric dtypes
                 | {..., "dtype": "string", "items": [b64 per element]}, ...],
     "slices": {b64 key: ["<full shape> <slice>", ...]}}   # partitioned tensors only

``tensors`` lists every tensor TF restores under a name (a partitioned tensor appears once, with
its full value), in the order they were saved.  Cases:

* ``dtypes``: ``tf.raw_ops.SaveV2`` of every dtype TF can save (string with empty and non-ASCII
  elements, half, bfloat16, bool, int8..uint64, complex, float8, scalars, empty tensors, a
  tensor > 4096 bytes), given in an unsorted order so the data file order differs from the
  index order.
* ``keys``: SaveV2 with awkward keys: non-ASCII, a NUL byte, 0xff bytes (the last key is all
  0xff, whose index key LevelDB leaves unshortened).
* ``many``: a ``tf.compat.v1.train.Saver`` checkpoint of 50 small variables (restart points).
* ``partitioned``: Saver with ``fixed_size_partitioner`` variables (axis 0 and 1, ref and
  resource, float and int).
* ``sharded``: ``Saver(sharded=True)`` over two CPU devices, with one partitioned variable whose
  pieces live on both devices (so MergeV2Checkpoints merges its slice lists).
* ``multiblock``: SaveV2 with long keys so the index has several data blocks (256 KiB each),
  shortened and unshortened separators, and one 530 KB key that gets a block of its own.  Its
  ``.index`` and ``expected.json`` are stored gzip-compressed (``.gz``: 1 MB of repetitive keys).
* ``v1``: a legacy V1 checkpoint (``Saver(write_version=V1)``), for the "unsupported" error.
* ``meta_checkpoints.json``: TF's values of the checkpoints under ``tests/fixtures/meta/``.

``--check-gpugraph`` then writes the same tensors with gpugraph's writer and checks that TF
restores them (RestoreV2, slices included) and that the files are byte-identical to TF's.

Run from the repository root with the TF environment of ``scripts/fixtures_requirements.txt``
(plus ``crc32c`` for ``--check-gpugraph``)::

    /work/tfenv/bin/python scripts/make_bundle_fixtures.py [--check-gpugraph]

The output is deterministic (fixed seeds, no timestamps).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import argparse  # noqa: E402
import base64  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "bundles"
META = ROOT / "tests" / "fixtures" / "meta"
v1 = tf.compat.v1


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def to_record(key, value) -> dict:
    """Expected-value record of one tensor (format in the module docstring)."""
    key = key.encode() if isinstance(key, str) else key
    arr = value.numpy() if hasattr(value, "numpy") else value
    if not isinstance(arr, np.ndarray):  # a scalar string comes back as bare bytes
        arr = np.array(arr, dtype=object if isinstance(arr, bytes) else None)
    dtype = tf.as_dtype(value.dtype if hasattr(value, "numpy") else arr.dtype).name
    record = {"key": b64(key), "dtype": dtype, "shape": list(arr.shape)}
    if dtype == "string":
        record["items"] = [b64(bytes(x)) for x in arr.reshape(-1)]
    else:
        record["data"] = b64(np.ascontiguousarray(arr).tobytes())  # little-endian host
    return record


def write_expected(case_dir: Path, prefix: str, writer: str, records, slices=None) -> None:
    doc = {"tensorflow": tf.__version__, "prefix": prefix, "writer": writer, "tensors": records}
    if slices:
        doc["slices"] = {b64(k.encode()): v for k, v in slices.items()}
    (case_dir / "expected.json").write_text(json.dumps(doc, indent=1) + "\n")


def fresh_dir(name: str) -> Path:
    path = OUT / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# --- SaveV2 cases ------------------------------------------------------------------------------


def dtype_tensors() -> dict:
    rng = np.random.default_rng(0)
    i = np.iinfo
    tensors = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "bf16": np.array([[1.0, 3.140625], [-2.0, np.inf]], dtype=ml_dtypes.bfloat16),
        "f16": np.array([0.5, -1.0, 65504.0, np.nan, 1e-7], dtype=np.float16),
        "f64": rng.standard_normal((2, 3)),
        "i8": np.array([i(np.int8).min, -1, 0, i(np.int8).max], np.int8),
        "i16": np.array([i(np.int16).min, 7, i(np.int16).max], np.int16),
        "i32": np.arange(-6, 6, dtype=np.int32).reshape(3, 4),
        "i64": np.array([i(np.int64).min, -2, i(np.int64).max], np.int64),
        "u8": np.array([0, 1, 255], np.uint8),
        "u16": np.array([0, 65535], np.uint16),
        "u32": np.array([0, i(np.uint32).max], np.uint32),
        "u64": np.array([0, i(np.uint64).max], np.uint64),
        "bool": np.array([[True, False, True], [False, False, True]]),
        "c64": np.array([1 + 2j, -3.5j], np.complex64),
        "c128": np.array([[1e300 - 1j]], np.complex128),
        "scalar_f32": np.float32(3.5),
        "scalar_i64": np.int64(-42),
        "scalar_str": np.array(b"abc", dtype=object),
        "str": np.array([b"hello", b"", b"x" * 200, "ключ".encode(), b"\x00\xff\x80"], object),
        "str2d": np.array([[b"", b"a"], [b"", b""]], object),
        "big_str": np.array([bytes([65 + k]) * 2000 for k in range(3)], object),
        "empty_f32": np.zeros((0, 3), np.float32),
        "empty_str": np.zeros((0,), object),
        "empty_i32": np.zeros((2, 0), np.int32),
        "big_f64": rng.standard_normal((40, 33)),  # 10560 bytes
        "A_upper": np.array([1.0], np.float32),
    }
    for name in ("float8_e5m2", "float8_e4m3fn"):
        tensors[name] = np.array(
            [0.5, -2.0, 448.0 if "e4m3" in name else 57344.0], dtype=getattr(ml_dtypes, name)
        )
    return tensors


def tf_const(value):
    value = np.asarray(value)
    return tf.constant(value, dtype=tf.string if value.dtype == object else None)


def save_v2(prefix: str, names, values) -> None:
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf_const(v) for v in values],
    )


def restore_v2(prefix: str, names, dtypes):
    return tf.raw_ops.RestoreV2(
        prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), dtypes=dtypes
    )


def savev2_case(name: str, tensors: dict) -> None:
    case_dir = fresh_dir(name)
    prefix = str(case_dir / name)
    keys = [k.encode() if isinstance(k, str) else k for k in tensors]
    values = list(tensors.values())
    save_v2(prefix, keys, values)
    restored = restore_v2(prefix, keys, [tf_const(v).dtype for v in values])
    records = [to_record(k, v) for k, v in zip(keys, restored, strict=True)]
    write_expected(case_dir, name, "SaveV2", records)


def multiblock_tensors() -> dict:
    tensors = {}
    for i in range(0, 280):
        # Gaps of 1 and more between neighbours give both kinds of block separators.
        tensors[f"k{i * 37 % 1000:03d}/" + "x" * 2000] = np.int32(i)
    tensors["m" + "y" * 530000] = np.int32(-1)  # key + value >= 2 * block_size: its own block
    tensors["n/after_the_giant"] = np.int32(-2)
    return tensors


def multiblock_case() -> None:
    savev2_case("multiblock", multiblock_tensors())
    for name in ("multiblock.index", "expected.json"):  # 1 MB of repetitive keys each
        path = OUT / "multiblock" / name
        path.with_name(name + ".gz").write_bytes(gzip.compress(path.read_bytes(), mtime=0))
        path.unlink()


def keys_tensors() -> dict:
    return {
        "plain": np.float32(1.0),
        "ключ/вес": np.array([1, 2], np.int16),
        b"nul\x00inside": np.array([b"v"], object),
        b"\xfe\xff": np.float64(2.0),
        b"\xff\xff\xff": np.int8(3),
        "a/b/deep": np.uint8(4),
    }


# --- Saver cases -------------------------------------------------------------------------------


def saver_case(name: str, build, prefix: str, session_config=None, **saver_kwargs) -> None:
    """Builds variables with `build()` (returns {name: variable or PartitionedVariable}), assigns
    deterministic values, saves with a tf.compat.v1 Saver, and records TF's restored values."""
    case_dir = fresh_dir(name)
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(1)
        variables = build()
        saver = v1.train.Saver(**saver_kwargs)
        with v1.Session(graph=graph, config=session_config) as sess:
            sess.run(v1.global_variables_initializer())
            values = assign_values(sess, variables)
            path = saver.save(
                sess,
                str(case_dir / prefix.rsplit("-", 1)[0]),
                global_step=int(prefix.rsplit("-", 1)[1]) if "-" in prefix else None,
                write_meta_graph=False,
                write_state=False,
            )
    assert Path(path).name == prefix, path
    reader = tf.train.load_checkpoint(path)
    records = [to_record(k, reader.get_tensor(k)) for k in sorted(values)]
    for record, key in zip(records, sorted(values), strict=True):
        assert np.array_equal(reader.get_tensor(key), values[key]), key
        assert record["key"] == b64(key.encode())
    slices = {k: s for k, s in slice_specs(variables).items() if s}
    write_expected(case_dir, prefix, "Saver", records, slices)


def is_partitioned(var) -> bool:
    return type(var).__name__ == "PartitionedVariable"  # not exported by tf.compat.v1


def assign_values(sess, variables: dict) -> dict:
    """Gives every variable (or partition) a distinct value; returns {name: full value}."""
    values = {}
    for idx, (name, var) in enumerate(sorted(variables.items())):
        dtype = var.dtype.base_dtype.as_numpy_dtype
        shape = var.get_shape().as_list()
        full = (np.arange(int(np.prod(shape))).reshape(shape) * 3 + idx).astype(dtype)
        parts = list(var) if is_partitioned(var) else [var]
        for part in parts:
            info = part._save_slice_info  # noqa: SLF001  (only way to know a part's offset)
            offset = info.var_offset if info else [0] * len(shape)
            sizes = part.get_shape().as_list()
            index = tuple(slice(o, o + n) for o, n in zip(offset, sizes, strict=True))
            sess.run(part.assign(full[index]))
        values[name] = full
    return values


def slice_specs(variables: dict) -> dict:
    specs = {}
    for name, var in variables.items():
        parts = list(var) if is_partitioned(var) else [var]
        specs[name] = [p._save_slice_info.spec for p in parts if p._save_slice_info]  # noqa: SLF001
    return specs


def build_many() -> dict:
    variables = {"global_step": v1.train.get_or_create_global_step()}
    for i in range(49):
        name = f"block{i // 7}/layer{i % 7}/{'kernel' if i % 2 else 'bias'}"
        variables[name] = v1.get_variable(name, [2, i % 3 + 1], use_resource=bool(i % 3))
    return variables


def build_partitioned() -> dict:
    fsp = v1.fixed_size_partitioner
    return {
        "pv": v1.get_variable("pv", [7, 3], partitioner=fsp(3), use_resource=False),
        "pv_cols": v1.get_variable(
            "pv_cols", [4, 6], partitioner=fsp(2, axis=1), use_resource=True
        ),
        "pv_int": v1.get_variable(
            "pv_int",
            [5],
            dtype=tf.int64,
            partitioner=fsp(2),
            initializer=v1.zeros_initializer(),
            use_resource=False,
        ),
        "plain": v1.get_variable("plain", [2], use_resource=False),
    }


def build_sharded() -> dict:
    devices = iter(["/cpu:0", "/cpu:1", "/cpu:0"])
    with v1.device(lambda op: next(devices) if op.type == "VariableV2" else "/cpu:0"):
        pv = v1.get_variable(
            "split/pv", [6, 2], partitioner=v1.fixed_size_partitioner(3), use_resource=False
        )
    with tf.device("/cpu:0"):
        a = v1.get_variable("on_cpu0/w", [3, 2], use_resource=False)
        step = v1.train.get_or_create_global_step()
    with tf.device("/cpu:1"):
        b = v1.get_variable("on_cpu1/w", [2], use_resource=True)
        c = v1.get_variable(
            "on_cpu1/z", [4], dtype=tf.int32, initializer=v1.zeros_initializer(), use_resource=False
        )
    return {"split/pv": pv, "on_cpu0/w": a, "global_step": step, "on_cpu1/w": b, "on_cpu1/z": c}


def v1_case() -> None:
    case_dir = fresh_dir("v1")
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as sess:
        v = v1.get_variable("w", [2], initializer=v1.ones_initializer(), use_resource=False)
        sess.run(v.initializer)
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1)
        saver.save(sess, str(case_dir / "v1ckpt"), write_meta_graph=False, write_state=False)
    assert (case_dir / "v1ckpt").is_file()


def meta_checkpoints() -> None:
    doc = {"tensorflow": tf.__version__, "checkpoints": {}}
    for index in sorted(META.glob("*/*.index")):
        prefix = str(index)[: -len(".index")]
        reader = tf.train.load_checkpoint(prefix)
        names = sorted(reader.get_variable_to_shape_map())
        rel = str(Path(prefix).relative_to(ROOT))
        doc["checkpoints"][rel] = [to_record(k, reader.get_tensor(k)) for k in names]
    (OUT / "meta_checkpoints.json").write_text(json.dumps(doc, indent=1) + "\n")


# --- gpugraph cross-check ----------------------------------------------------------------------


def check_gpugraph() -> bool:
    """Writes the fixtures' tensors with gpugraph; TF must restore them and bytes must match."""
    sys.path.insert(0, str(ROOT))
    from gpugraph.io import bundle  # noqa: PLC0415  (needs the sys.path entry)

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for name, tensors in (("dtypes", dtype_tensors()), ("keys", keys_tensors())):
            prefix = f"{tmp}/{name}"
            bundle.write_bundle(prefix, tensors)
            ok &= report(f"TF restores gpugraph's {name}", tf_restores(prefix, tensors))
            ok &= report(f"gpugraph {name} bytes == TF's", same_files(prefix, OUT / name / name))
        ok &= check_partitioned(tmp)
        ok &= check_sharded(tmp)
    return ok


def tf_restores(prefix: str, tensors: dict) -> bool:
    keys = [k.encode() if isinstance(k, str) else k for k in tensors]
    values = list(tensors.values())
    restored = restore_v2(prefix, keys, [tf_const(v).dtype for v in values])
    return all(same_value(r.numpy(), v) for r, v in zip(restored, values, strict=True))


def same_value(got, want) -> bool:
    want = np.asarray(want)
    got = np.array(got, dtype=object) if isinstance(got, bytes) else got
    if want.dtype == object:
        return got.shape == want.shape and [bytes(x) for x in got.reshape(-1)] == [
            bytes(x) for x in want.reshape(-1)
        ]
    return got.shape == want.shape and got.tobytes() == want.tobytes()


def same_files(prefix: str, tf_prefix: Path) -> bool:
    suffixes = [".index", ".data-00000-of-00001"]
    return all(
        Path(prefix + s).read_bytes() == Path(str(tf_prefix) + s).read_bytes() for s in suffixes
    )


def check_partitioned(tmp: str) -> bool:
    """gpugraph writes a partitioned tensor; TF restores it whole and by slice."""
    from gpugraph.io.bundle import SavedSlice, TensorSlice, write_bundle  # noqa: PLC0415

    full = np.arange(21, dtype=np.float32).reshape(7, 3)
    pieces = [
        SavedSlice((7, 3), TensorSlice(((s, n), (0, 3))), full[s : s + n])
        for s, n in ((0, 3), (3, 2), (5, 2))
    ]
    prefix = f"{tmp}/part"
    write_bundle(prefix, {"pv": pieces, "x": np.float32(1)})
    whole = tf.train.load_checkpoint(prefix).get_tensor("pv")
    (piece,) = tf.raw_ops.RestoreV2(
        prefix=prefix, tensor_names=["pv"], shape_and_slices=["7 3 2,4:1,2"], dtypes=[tf.float32]
    )
    good = np.array_equal(whole, full) and np.array_equal(piece.numpy(), full[2:6, 1:3])
    return report("TF restores gpugraph's partitioned tensor (whole and a slice)", good)


def check_sharded(tmp: str) -> bool:
    """gpugraph's sharded write + merge gives the files TF's sharded Saver wrote."""
    from gpugraph.io.bundle import SavedSlice, TensorSlice, write_sharded_bundle  # noqa: PLC0415

    expected = json.loads((OUT / "sharded" / "expected.json").read_text())
    values = {base64.b64decode(r["key"]).decode(): from_record(r) for r in expected["tensors"]}
    pv = values.pop("split/pv")

    def piece(start):
        return SavedSlice((6, 2), TensorSlice(((start, 2), (0, 2))), pv[start : start + 2])

    shard0 = {
        "global_step": values["global_step"],
        "on_cpu0/w": values["on_cpu0/w"],
        "split/pv": [piece(0), piece(4)],
    }
    shard1 = {
        "on_cpu1/w": values["on_cpu1/w"],
        "on_cpu1/z": values["on_cpu1/z"],
        "split/pv": [piece(2)],
    }
    prefix = f"{tmp}/sharded-1"
    write_sharded_bundle(prefix, [shard0, shard1])
    suffixes = [".index", ".data-00000-of-00002", ".data-00001-of-00002"]
    tf_prefix = str(OUT / "sharded" / "sharded-1")
    good = all(Path(prefix + s).read_bytes() == Path(tf_prefix + s).read_bytes() for s in suffixes)
    good &= not Path(f"{tmp}/sharded-1_temp").exists()
    return report("gpugraph sharded write + merge bytes == TF's sharded Saver", good)


def from_record(record):
    dtype = tf.as_dtype(record["dtype"])
    if record["dtype"] == "string":
        return np.array([base64.b64decode(x) for x in record["items"]], object).reshape(
            record["shape"]
        )
    raw = base64.b64decode(record["data"])
    return np.frombuffer(raw, dtype.as_numpy_dtype).reshape(record["shape"])


def report(what: str, good: bool) -> bool:
    print(f"{'OK  ' if good else 'FAIL'} {what}")
    return good


# --- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check-gpugraph",
        action="store_true",
        help="also check gpugraph's writer against TF (needs crc32c)",
    )
    args = parser.parse_args()
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
    OUT.mkdir(parents=True, exist_ok=True)
    savev2_case("dtypes", dtype_tensors())
    savev2_case("keys", keys_tensors())
    multiblock_case()
    two_cpus = v1.ConfigProto(device_count={"CPU": 2})
    saver_case("many", build_many, "many-7")
    saver_case("partitioned", build_partitioned, "partitioned")
    saver_case("sharded", build_sharded, "sharded-1", session_config=two_cpus, sharded=True)
    v1_case()
    meta_checkpoints()
    print(f"wrote {OUT}")
    return 0 if not args.check_gpugraph or check_gpugraph() else 1


if __name__ == "__main__":
    sys.exit(main())
