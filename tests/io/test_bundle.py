"""gpugraph.io.bundle against TensorFlow-written checkpoints (tests/fixtures/bundles) and itself.

Fixture format: scripts/make_bundle_fixtures.py.  Byte identity is the main oracle: rewriting a
TF checkpoint's tensors with gpugraph's writer, in TF's order, must give TF's exact files.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import struct
import time
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from gpugraph import _proto as pb
from gpugraph import dtypes
from gpugraph.errors import (
    DataLossError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnimplementedError,
)
from gpugraph.io import bundle, bundle_format
from gpugraph.io.bundle import (
    BundleReader,
    BundleWriter,
    SavedSlice,
    TensorSlice,
    data_filename,
    encode_slice_key,
    index_filename,
    merge_bundles,
    parse_shape_and_slice,
    write_bundle,
    write_sharded_bundle,
)
from gpugraph.io.table import build_table, crc32c, encode_varint, mask_crc

FIXTURES = Path(__file__).parents[1] / "fixtures"
CASES = ["dtypes", "keys", "many", "partitioned", "sharded", "multiblock"]


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tf_dir(tmp_path_factory) -> Path:
    """A copy of tests/fixtures/bundles with the gzip-compressed files expanded."""
    out = tmp_path_factory.mktemp("bundles")
    shutil.copytree(FIXTURES / "bundles", out, dirs_exist_ok=True)
    for path in out.rglob("*.gz"):
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
    return out


def from_record(record: dict) -> np.ndarray:
    shape = tuple(record["shape"])
    if record["dtype"] == "string":
        out = np.empty(len(record["items"]), dtype=object)
        out[:] = [base64.b64decode(x) for x in record["items"]]
        return out.reshape(shape)
    np_type = dtypes.as_dtype(record["dtype"]).as_numpy_dtype
    return np.frombuffer(base64.b64decode(record["data"]), np_type).reshape(shape)


def load_case(tf_dir: Path, case: str) -> tuple[str, dict[bytes, np.ndarray]]:
    doc = json.loads((tf_dir / case / "expected.json").read_text())
    tensors = {base64.b64decode(r["key"]): from_record(r) for r in doc["tensors"]}
    return str(tf_dir / case / doc["prefix"]), tensors


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype == object:
        assert [bytes(x) for x in got.reshape(-1)] == [bytes(x) for x in want.reshape(-1)]
    else:
        assert got.tobytes() == want.tobytes()


def files_of(prefix: str, num_shards: int) -> list[bytes]:
    paths = [index_filename(prefix)] + [
        data_filename(prefix, i, num_shards) for i in range(num_shards)
    ]
    return [Path(p).read_bytes() for p in paths]


# --- reading TF's checkpoints ------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_reads_every_tf_tensor_bit_exactly(tf_dir, case):
    prefix, expected = load_case(tf_dir, case)
    with BundleReader(prefix) as reader:
        assert [bundle._key_bytes(k) for k in reader.keys()] == sorted(expected)
        for key, want in expected.items():
            assert_same(reader.read(key), want)
            dt, shape = reader.dtype_and_shape(key)
            assert np.dtype(dt.as_numpy_dtype) == want.dtype and shape == want.shape


def test_reads_the_meta_fixture_checkpoints():
    doc = json.loads((FIXTURES / "bundles" / "meta_checkpoints.json").read_text())
    assert len(doc["checkpoints"]) == 3
    for rel, records in doc["checkpoints"].items():
        with BundleReader(FIXTURES.parent.parent / rel) as reader:
            assert reader.keys() == [base64.b64decode(r["key"]).decode() for r in records]
            for record in records:
                assert_same(reader.read(base64.b64decode(record["key"])), from_record(record))


def test_reader_metadata(tf_dir):
    prefix, _ = load_case(tf_dir, "partitioned")
    reader = BundleReader(prefix)
    assert reader.num_shards == 1 and reader.header.version.producer == 1
    assert "pv" in reader and b"pv" in reader and "nope" not in reader and "" not in reader
    assert 3 not in reader
    assert reader.slices("pv") == [
        TensorSlice(((0, 3), (0, 3))),
        TensorSlice(((3, 2), (0, 3))),
        TensorSlice(((5, 2), (0, 3))),
    ]
    assert reader.slices("plain") == []
    raw = reader.raw_keys()
    assert len(raw) == len(reader) + 3 + 2 + 2  # the pieces of pv, pv_cols and pv_int
    entry = reader.entry("plain")
    assert entry.dtype == pb.DataType.Value("DT_FLOAT") and entry.size == 8
    assert len(reader) == 4


def test_slice_keys_match_tf(tf_dir):
    prefix, _ = load_case(tf_dir, "partitioned")
    reader = BundleReader(prefix)
    encoded = {encode_slice_key(k, s) for k in reader.keys() for s in reader.slices(k)}
    assert encoded == {k for k in reader.raw_keys() if k.startswith(b"\0")}
    # tf_facts §5.4's example: rows 0..2 of "part", all columns.
    assert encode_slice_key("part", TensorSlice(((0, 2), (0, -1)))) == (
        b"\x00part\x00\x01\x01\x02\x80\x82\x80\x7f"
    )


@pytest.mark.parametrize(
    ("key", "slc"),
    [
        ("pv", "0,7:1,2"),
        ("pv", "2,4:0,3"),
        ("pv", "6,1:-"),
        ("pv_cols", "1,2:2,3"),
        ("pv_int", "2,2"),
        ("plain", "1,1"),
        ("pv", "0,0:-"),
    ],
)
def test_read_slice(tf_dir, key, slc):
    prefix, expected = load_case(tf_dir, "partitioned")
    full = expected[key.encode()]
    box = TensorSlice.from_string(slc).bounds(full.shape)
    want = full[tuple(slice(a, b) for a, b in box)]
    assert_same(BundleReader(prefix).read_slice(key, slc), want)


def test_read_slice_errors(tf_dir, tmp_path):
    prefix, _ = load_case(tf_dir, "partitioned")
    reader = BundleReader(prefix)
    with pytest.raises(InvalidArgumentError, match="does not fit"):
        reader.read_slice("pv", "0,8:-")
    with pytest.raises(InvalidArgumentError, match="does not fit"):
        reader.read_slice("pv", "-")
    full = np.arange(12.0).reshape(4, 3)
    write_bundle(
        tmp_path / "holes", {"t": [SavedSlice((4, 3), TensorSlice.from_string("0,2:-"), full[:2])]}
    )
    holes = BundleReader(tmp_path / "holes")
    assert_same(holes.read_slice("t", "1,1:-"), full[1:2])
    with pytest.raises(InvalidArgumentError, match="sufficient slices for partitioned tensor t"):
        holes.read("t")


# --- writing: byte identity with TF -------------------------------------------------------------


def saved_order(reader: BundleReader) -> list[list[bytes]]:
    """Per shard, the keys of the located entries in the order their bytes sit in the file."""
    located = [k for k in reader.raw_keys() if not reader.entry(k).slices]

    def position(key):
        e = reader.entry(key)
        return e.offset, e.size > 0  # an empty tensor shares its offset with the next one

    shards: list[list[bytes]] = [[] for _ in range(reader.num_shards)]
    for key in sorted(located, key=position):
        shards[reader.entry(key).shard_id].append(key)
    return shards


def rewrite(reader: BundleReader, out_prefix: str) -> None:
    """Writes the reader's tensors with gpugraph, in TF's order, sharded as TF did."""
    pieces = {encode_slice_key(k, s): (k, s) for k in reader.keys() for s in reader.slices(k)}
    shards = saved_order(reader)
    parts = (
        [out_prefix]
        if len(shards) == 1
        else [f"{out_prefix}_temp/part-{i:05d}-of-{len(shards):05d}" for i in range(len(shards))]
    )
    for part, keys in zip(parts, shards, strict=True):
        with BundleWriter(part) as writer:
            for key in keys:
                dt = reader.dtype_and_shape(key)[0]
                if key in pieces:
                    full, slc = pieces[key]
                    full_shape = reader.dtype_and_shape(full)[1]
                    writer.add_slice(full, full_shape, slc, reader.read(key), dt)
                else:
                    writer.add(key, reader.read(key), dt)
    if len(shards) > 1:
        merge_bundles(parts, out_prefix)


@pytest.mark.parametrize("case", CASES)
def test_rewrite_is_byte_identical(tf_dir, tmp_path, case):
    prefix, _ = load_case(tf_dir, case)
    reader = BundleReader(prefix)
    rewrite(reader, str(tmp_path / "out"))
    assert files_of(str(tmp_path / "out"), reader.num_shards) == files_of(prefix, reader.num_shards)
    assert sorted(os.listdir(tmp_path)) == sorted(
        Path(p).name
        for p in [index_filename("out")]
        + [data_filename("out", i, reader.num_shards) for i in range(reader.num_shards)]
    )


@pytest.mark.parametrize(
    "rel",
    [
        "mlp_resource_adam/mlp_resource_adam-3",
        "cnn_momentum/cnn_momentum-3",
        "mlp_ref_sgd/mlp_ref_sgd-3",
    ],
)
def test_rewrite_meta_fixture_checkpoints(tmp_path, rel):
    prefix = str(FIXTURES / "meta" / rel)
    rewrite(BundleReader(prefix), str(tmp_path / "out"))
    assert files_of(str(tmp_path / "out"), 1) == files_of(prefix, 1)


def test_write_bundle_matches_tf_savev2(tf_dir, tmp_path):
    # write_bundle from plain numpy values, in the SaveV2 call's order, gives TF's bytes.
    prefix, expected = load_case(tf_dir, "dtypes")
    assert [k for keys in saved_order(BundleReader(prefix)) for k in keys] == list(expected)
    write_bundle(tmp_path / "d", {k.decode(): v for k, v in expected.items()})
    assert files_of(str(tmp_path / "d"), 1) == files_of(prefix, 1)


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Makes every tensor of more than a few bytes take the chunked, pipelined, tofile paths."""
    monkeypatch.setattr(bundle_format, "_CHUNK", 24)
    monkeypatch.setattr(bundle, "_TOFILE_MIN", 16)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


def test_chunked_paths_are_byte_identical(tf_dir, tmp_path, tiny_chunks):
    prefix, expected = load_case(tf_dir, "dtypes")
    write_bundle(tmp_path / "d", {k.decode(): v for k, v in expected.items()})
    assert files_of(str(tmp_path / "d"), 1) == files_of(prefix, 1)
    reader = BundleReader(tmp_path / "d")
    for key, want in expected.items():
        assert_same(reader.read(key), want)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_reading_after_fork_does_not_hang(tmp_path, tiny_chunks):
    write_bundle(tmp_path / "f", {"x": np.arange(100.0)})  # starts the crc thread
    pid = os.fork()
    if pid == 0:  # child: the inherited pool has no thread; a fresh one must be used
        try:
            ok = BundleReader(tmp_path / "f").read("x").tolist() == list(range(100))
        finally:
            os._exit(0 if ok else 1)
    for _ in range(200):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail("reading in a forked child hung")


def test_large_tensor_round_trip(tmp_path):
    # Above the real thresholds: tofile, the crc thread and the chunked copy out of the mapping.
    big = np.random.default_rng(0).random(5 << 20)  # 40 MiB of float64
    tensors = {"a_small": np.arange(3, dtype=np.int8), "big": big, "mid": big[: 1 << 18]}
    write_bundle(tmp_path / "l", tensors)
    reader = BundleReader(tmp_path / "l")
    for key, want in tensors.items():
        assert_same(reader.read(key), want)


def test_write_sharded_bundle_matches_tf_saver(tf_dir, tmp_path):
    prefix, expected = load_case(tf_dir, "sharded")
    pv = expected.pop(b"split/pv")
    v = {k.decode(): a for k, a in expected.items()}

    def piece(start):
        return SavedSlice((6, 2), TensorSlice(((start, 2), (0, 2))), pv[start : start + 2])

    shard0 = {
        "global_step": v["global_step"],
        "on_cpu0/w": v["on_cpu0/w"],
        "split/pv": [piece(0), piece(4)],
    }
    shard1 = {"on_cpu1/w": v["on_cpu1/w"], "on_cpu1/z": v["on_cpu1/z"], "split/pv": [piece(2)]}
    write_sharded_bundle(tmp_path / "sharded-1", [shard0, shard1])
    assert files_of(str(tmp_path / "sharded-1"), 2) == files_of(prefix, 2)
    assert not (tmp_path / "sharded-1_temp").exists()


# --- round trips -------------------------------------------------------------------------------


def sample(dt: dtypes.DType, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    n = int(np.prod(shape))
    if dt == dtypes.string:
        out = np.empty(n, dtype=object)
        out[:] = [rng.bytes(int(rng.choice([0, 1, 127, 128, 300]))) for _ in range(n)]
        return out.reshape(shape)
    np_type = np.dtype(dt.as_numpy_dtype)
    if dt.is_bool:
        return rng.random(shape) < 0.5
    if dt.is_integer:
        info = ml_dtypes.iinfo(np_type)
        native = np_type if np_type.kind in "iu" else np.int8  # int4, uint2, ... via int8
        values = rng.integers(int(info.min), int(info.max), size=shape, dtype=native, endpoint=True)
        return values.astype(np_type)
    if dt.is_complex:
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np_type)
    return rng.standard_normal(shape).astype(np_type)


ROUND_TRIP_DTYPES = [dt for dt in dtypes.ALL_DTYPES if dt.is_numpy_compatible]


@pytest.mark.parametrize("dt", ROUND_TRIP_DTYPES, ids=lambda dt: dt.name)
def test_round_trip_every_dtype(tmp_path, dt):
    rng = np.random.default_rng(dt.as_datatype_enum)
    shapes = [(), (0,), (3, 0), (5,), (2, 3, 4)]
    tensors = {f"t{i}": sample(dt, shape, rng) for i, shape in enumerate(shapes)}
    write_bundle(tmp_path / "rt", tensors, dtypes={k: dt for k in tensors})
    reader = BundleReader(tmp_path / "rt")
    for key, want in tensors.items():
        assert_same(reader.read(key), want)
        assert reader.dtype_and_shape(key) == (dt, want.shape)


def test_write_accepts_numpy_layouts_and_python_values(tmp_path):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    tensors = {
        "transposed": base.T,
        "strided": base[::2, ::3],
        "big_endian": base.astype(">f4"),
        "py_float": 2.5,
        "py_list": [[1, 2], [3, 4]],
        "text": np.array(["héllo", ""]),
        "bytes_fixed": np.array([b"ab", b"c"]),
        "str_scalar": "x",
    }
    write_bundle(tmp_path / "w", tensors)
    reader = BundleReader(tmp_path / "w")
    np.testing.assert_array_equal(reader.read("transposed"), base.T)
    np.testing.assert_array_equal(reader.read("strided"), base[::2, ::3])
    assert_same(reader.read("big_endian"), base)
    assert reader.read("py_float").dtype == np.float64
    assert reader.read("py_list").tolist() == [[1, 2], [3, 4]]
    assert reader.read("text").tolist() == ["héllo".encode(), b""]
    assert reader.read("bytes_fixed").tolist() == [b"ab", b"c"]
    assert reader.read("str_scalar").shape == () and reader.read("str_scalar")[()] == b"x"


def test_partitioned_round_trip(tmp_path):
    full = np.arange(30, dtype=np.int64).reshape(5, 6)
    pieces = [
        SavedSlice((5, 6), TensorSlice.from_string(s), full[r, c])
        for s, r, c in (
            ("0,2:0,3", slice(0, 2), slice(0, 3)),
            ("0,2:3,3", slice(0, 2), slice(3, 6)),
            ("2,3:-", slice(2, 5), slice(None)),
        )
    ]
    write_bundle(tmp_path / "p", {"w": pieces, "after": np.zeros(2)})
    reader = BundleReader(tmp_path / "p")
    assert reader.keys() == ["after", "w"]
    assert_same(reader.read("w"), full)
    assert_same(reader.read_slice("w", "1,2:2,3"), full[1:3, 2:5])


def test_a_full_slice_is_an_ordinary_tensor(tmp_path):
    with BundleWriter(tmp_path / "f") as writer:
        writer.add_slice("x", [2, 2], "-:0,2", np.eye(2))
    assert BundleReader(tmp_path / "f").entry("x").size == 32


def test_big_endian_checkpoints_are_byte_swapped(tmp_path):
    values = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "bf16": np.array([1.5, -2.0], ml_dtypes.bfloat16),
        "c64": np.array([1 + 2j, 3 - 4j], np.complex64),
        "i64": np.array([-(2**40), 7]),
        "u8": np.array([1, 255], np.uint8),
        "s": np.array([b"ab", b"", b"c" * 300], object),
    }
    write_big_endian(str(tmp_path / "be"), values)
    reader = BundleReader(tmp_path / "be")
    for key, want in values.items():
        assert_same(reader.read(key), want)


def write_big_endian(prefix: str, values: dict) -> None:
    """A checkpoint as a big-endian machine would write it (numbers and crcs in its byte order)."""
    entries, data = {}, bytearray()
    for key, arr in values.items():
        dt = dtypes.as_dtype(arr.dtype)
        raw, crc = (_be_strings if arr.dtype == object else _be_fixed)(arr)
        entry = pb.BundleEntryProto(dtype=dt.as_datatype_enum, offset=len(data), size=len(raw))
        entry.shape.dim.extend(pb.TensorShapeProto.Dim(size=d) for d in arr.shape)
        entry.crc32c = mask_crc(crc)
        entries[key.encode()] = entry.SerializeToString()
        data += raw
    header = pb.BundleHeaderProto(num_shards=1, endianness=pb.BundleHeaderProto.BIG)
    header.version.producer = 1
    write_raw(prefix, header, entries, data)


def _be_fixed(arr):
    arr = arr.copy()
    bundle._byteswap(arr)
    raw = arr.tobytes()
    return raw, crc32c(raw)


def _be_strings(arr):
    items = list(arr.reshape(-1))
    crc = crc32c(b"".join(struct.pack(">I", len(s)) for s in items))
    stored = struct.pack(">I", mask_crc(crc))
    crc = crc32c(b"".join(items), crc32c(stored, crc))
    return b"".join(encode_varint(len(s)) for s in items) + stored + b"".join(items), crc


def write_raw(prefix: str, header, entries: dict[bytes, bytes], data: bytes = b"") -> None:
    """A checkpoint with hand-made index entries (bytes, or protos to serialize)."""
    items = [(b"", header.SerializeToString() if header is not None else b"")]
    items += [
        (k, v if isinstance(v, bytes) else v.SerializeToString())
        for k, v in sorted(entries.items())
    ]
    Path(index_filename(prefix)).write_bytes(build_table(items))
    Path(data_filename(prefix, 0, header.num_shards if header else 1)).write_bytes(data)


def good_header(**fields):
    header = pb.BundleHeaderProto(num_shards=1, **fields)
    header.version.producer = 1
    return header


# --- the writer's protocol -----------------------------------------------------------------------


def test_files_appear_only_on_finish(tmp_path):
    writer = BundleWriter(tmp_path / "sub" / "ckpt")
    writer.add("a", np.ones(3))
    names = os.listdir(tmp_path / "sub")
    assert len(names) == 1 and ".data-00000-of-00001.tempstate" in names[0]
    writer.finish()
    assert sorted(os.listdir(tmp_path / "sub")) == ["ckpt.data-00000-of-00001", "ckpt.index"]
    with pytest.raises(FailedPreconditionError, match="closed"):
        writer.add("b", np.ones(3))
    with pytest.raises(FailedPreconditionError, match="closed"):
        writer.finish()


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), BundleWriter(tmp_path / "ckpt") as writer:
        writer.add("a", np.ones(3))
        raise RuntimeError("crash in the middle of a save")
    assert os.listdir(tmp_path) == []


def test_overwriting_a_checkpoint(tmp_path):
    write_bundle(tmp_path / "c", {"a": np.ones(3), "b": np.zeros(2)})
    write_bundle(tmp_path / "c", {"a": np.full(2, 7.0)})
    reader = BundleReader(tmp_path / "c")
    assert reader.keys() == ["a"] and reader.read("a").tolist() == [7.0, 7.0]


@pytest.mark.parametrize(
    ("key", "value", "error", "match"),
    [
        ("", np.ones(1), InvalidArgumentError, "empty key is reserved"),
        ("k", np.array([1, "x"], dtype=object), InvalidArgumentError, "neither bytes nor str"),
        ("k", np.array([{}]), InvalidArgumentError, "neither bytes nor str"),
        ("k", np.ones(2, dtype="datetime64[s]"), InvalidArgumentError, "Cannot save tensor 'k'"),
    ],
)
def test_writer_rejects_bad_values(tmp_path, key, value, error, match):
    with BundleWriter(tmp_path / "c") as writer, pytest.raises(error, match=match):
        writer.add(key, value)


def test_writer_rejects_duplicates_and_handles(tmp_path):
    with BundleWriter(tmp_path / "c") as writer:
        writer.add("a", 1.0)
        with pytest.raises(InvalidArgumentError, match="Adding duplicate key: a"):
            writer.add("a", 2.0)
        with pytest.raises(UnimplementedError, match="resource"):
            writer.add("r", np.empty(1, object), dtype=dtypes.resource)
        with pytest.raises(UnimplementedError, match="qint8"):
            writer.add("q", np.zeros(1), dtype=dtypes.qint8)
        writer.add_slice("p", (4,), "0,2", np.zeros(2))
        with pytest.raises(InvalidArgumentError, match="conflicts"):
            writer.add_slice("p", (5,), "2,2", np.zeros(2))
        with pytest.raises(InvalidArgumentError, match="conflicts"):
            writer.add_slice("a", (4,), "2,2", np.zeros(2))
        with pytest.raises(InvalidArgumentError, match="has shape"):
            writer.add_slice("p", (4,), "2,2", np.zeros(3))
        with pytest.raises(InvalidArgumentError, match="does not fit"):
            writer.add_slice("p", (4,), "3,2", np.zeros(2))


# --- merging -------------------------------------------------------------------------------------


def test_merge_errors(tmp_path):
    write_bundle(tmp_path / "a", {"x": 1.0})
    write_bundle(tmp_path / "b", {"x": 2.0})
    with pytest.raises(InvalidArgumentError, match="Duplicate tensor keyed by x"):
        merge_bundles([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    write_raw(str(tmp_path / "be"), good_header(endianness=pb.BundleHeaderProto.BIG), {})
    with pytest.raises(InvalidArgumentError, match="conflicting endianness"):
        merge_bundles([tmp_path / "a", tmp_path / "be"], tmp_path / "m")
    newer = good_header()
    newer.version.min_consumer = 0
    newer.version.bad_consumers.append(5)
    write_raw(str(tmp_path / "v"), newer, {})
    with pytest.raises(InvalidArgumentError, match="different format versions"):
        merge_bundles([tmp_path / "a", tmp_path / "v"], tmp_path / "m")
    with pytest.raises(NotFoundError, match="missing"):
        merge_bundles([tmp_path / "missing"], tmp_path / "m")


def test_merge_moves_data_and_cleans_up(tmp_path):
    write_bundle(tmp_path / "t" / "p0", {"b": np.ones(2)})
    write_bundle(tmp_path / "t" / "p1", {"a": np.zeros(3)})
    merge_bundles([tmp_path / "t" / "p0", tmp_path / "t" / "p1"], tmp_path / "out" / "m")
    assert not (tmp_path / "t").exists()
    reader = BundleReader(tmp_path / "out" / "m")
    assert reader.num_shards == 2 and reader.entry("a").shard_id == 1
    assert reader.read("a").tolist() == [0, 0, 0] and reader.read("b").tolist() == [1, 1]


# --- corruption and bad input ------------------------------------------------------------------


def copy_case(tf_dir: Path, case: str, tmp_path: Path) -> tuple[str, dict[bytes, np.ndarray]]:
    prefix, expected = load_case(tf_dir, case)
    shutil.copytree(Path(prefix).parent, tmp_path / case)
    return str(tmp_path / case / Path(prefix).name), expected


def owner_of(reader: BundleReader, shard: int) -> list[tuple[int, int, bytes]]:
    """(start, end, key) of every non-empty located tensor in one shard."""
    spans = []
    for key in reader.raw_keys():
        e = reader.entry(key)
        if not e.slices and e.size and e.shard_id == shard:
            spans.append((e.offset, e.offset + e.size, key))
    return sorted(spans)


@pytest.mark.parametrize("case", ["dtypes", "many", "keys", "sharded"])
def test_every_flipped_data_byte_is_detected(tf_dir, tmp_path, case):
    prefix, _ = copy_case(tf_dir, case, tmp_path)
    reader = BundleReader(prefix)
    for shard in range(reader.num_shards):
        path = data_filename(prefix, shard, reader.num_shards)
        data = bytearray(Path(path).read_bytes())
        spans = owner_of(reader, shard)
        assert sum(end - start for start, end, _ in spans) == len(data)  # no padding anywhere
        with open(path, "r+b") as f:
            for start, end, key in spans:
                for pos in range(start, end):
                    f.seek(pos)
                    f.write(bytes((data[pos] ^ 0x20,)))
                    f.flush()
                    with pytest.raises(DataLossError) as info:
                        reader.read(key)
                    assert path in str(info.value) and bundle._show(key) in str(info.value)
                    f.seek(pos)
                    f.write(bytes((data[pos],)))
                f.flush()
                reader.read(key)  # restored


def test_string_corruption_messages(tf_dir, tmp_path):
    prefix, _ = copy_case(tf_dir, "dtypes", tmp_path)
    reader = BundleReader(prefix)
    entry = reader.entry("str")
    path = data_filename(prefix, 0, 1)
    data = bytearray(Path(path).read_bytes())
    for pos, message in (
        (0, "length checksum does not match"),
        (entry.offset + entry.size - 1, "Checksum does not match"),
    ):
        bad = bytearray(data)
        bad[entry.offset + pos if pos == 0 else pos] ^= 1
        Path(path).write_bytes(bad)
        with pytest.raises(DataLossError, match=message):
            reader.read("str")


@pytest.mark.parametrize("case", ["many", "sharded"])
def test_every_flipped_index_byte_is_detected(tf_dir, tmp_path, case):
    prefix, expected = copy_case(tf_dir, case, tmp_path)
    index = Path(index_filename(prefix))
    data = index.read_bytes()
    for pos in range(len(data) - 48):  # the footer is covered by test_table
        bad = bytearray(data)
        bad[pos] ^= 0x04
        index.write_bytes(bad)
        with pytest.raises(DataLossError, match=str(index)):
            BundleReader(prefix)


def test_truncated_files(tf_dir, tmp_path):
    prefix, expected = copy_case(tf_dir, "dtypes", tmp_path)
    index = Path(index_filename(prefix))
    data = index.read_bytes()
    for size in range(0, len(data), 7):
        index.write_bytes(data[:size])
        with pytest.raises(DataLossError, match=str(index)):
            BundleReader(prefix)
    index.write_bytes(data)
    data_path = Path(data_filename(prefix, 0, 1))
    contents = data_path.read_bytes()
    reader = BundleReader(prefix)
    spans = owner_of(reader, 0)
    for size in range(0, len(contents), 97):
        data_path.write_bytes(contents[:size])
        for _, end, key in spans:
            if end > size:
                with pytest.raises(DataLossError, match=f"{data_path}.*truncated"):
                    reader.read(key)
            else:
                assert_same(reader.read(key), expected[key])


def test_missing_files(tf_dir, tmp_path):
    prefix, expected = copy_case(tf_dir, "sharded", tmp_path)
    os.remove(data_filename(prefix, 1, 2))
    reader = BundleReader(prefix)
    assert_same(reader.read("on_cpu0/w"), expected[b"on_cpu0/w"])
    with pytest.raises(NotFoundError, match=data_filename(prefix, 1, 2)):
        reader.read("on_cpu1/w")
    with pytest.raises(NotFoundError, match="Key nope not found in checkpoint .*sharded-1"):
        reader.read("nope")
    with pytest.raises(NotFoundError, match="No checkpoint found at prefix .*absent"):
        BundleReader(tmp_path / "absent")
    with pytest.raises(NotFoundError, match="a directory"):
        BundleReader(tmp_path)


def test_v1_checkpoints_are_unimplemented():
    with pytest.raises(UnimplementedError, match="V1"):
        BundleReader(FIXTURES / "bundles" / "v1" / "v1ckpt")


def test_empty_and_garbage_index(tmp_path):
    for name, content in (
        ("empty", b""),
        ("garbage", os.urandom(3000)),
        ("text", b"not a table\n" * 9),
    ):
        Path(index_filename(tmp_path / name)).write_bytes(content)
        with pytest.raises(DataLossError, match=f"{name}.index"):
            BundleReader(tmp_path / name)


def entry_proto(dtype="DT_FLOAT", shape=(2,), **fields):
    entry = pb.BundleEntryProto(dtype=pb.DataType.Value(dtype), **fields)
    entry.shape.dim.extend(pb.TensorShapeProto.Dim(size=d) for d in shape)
    return entry


@pytest.mark.parametrize(
    ("entry", "error", "match"),
    [
        (entry_proto(size=8, crc32c=mask_crc(crc32c(bytes(8)))), None, None),
        (entry_proto(size=7), DataLossError, "Invalid size in bundle entry"),
        (entry_proto(shape=(-1,)), DataLossError, "Invalid tensor shape"),
        (entry_proto(shape=(2**40, 2**40)), DataLossError, "Invalid tensor shape"),
        (entry_proto(size=8, offset=4), DataLossError, "truncated"),
        (entry_proto(size=8, shard_id=1), DataLossError, "shard id 1"),
        (entry_proto("DT_INVALID"), DataLossError, "invalid dtype"),
        (entry_proto("DT_FLOAT_REF"), DataLossError, "invalid dtype"),
        (entry_proto("DT_RESOURCE"), UnimplementedError, "DT_RESOURCE|resource"),
        (entry_proto("DT_VARIANT"), UnimplementedError, "variant"),
        (b"\xff\xff\xff", DataLossError, "not parseable"),
        (entry_proto("DT_STRING", size=3), DataLossError, "corrupt"),
        (entry_proto("DT_STRING", shape=(), size=0), DataLossError, "0 bytes for strings"),
        (entry_proto(size=8, crc32c=5), DataLossError, "Checksum does not match"),
    ],
)
def test_bad_entries(tmp_path, entry, error, match):
    write_raw(str(tmp_path / "c"), good_header(), {b"t": entry}, bytes(8))
    reader = BundleReader(tmp_path / "c")
    if error is None:
        assert reader.read("t").tolist() == [0.0, 0.0]
        return
    with pytest.raises(error, match=match) as info:
        reader.read("t")
    assert "c" in str(info.value)


@pytest.mark.parametrize(
    ("header", "error", "match"),
    [
        (None, DataLossError, "bad header"),
        (pb.BundleHeaderProto(num_shards=0), DataLossError, "bad header"),
        (good_header(endianness=3), DataLossError, "bad header"),
        (
            pb.BundleHeaderProto(num_shards=1, version=pb.VersionDef(min_consumer=2)),
            InvalidArgumentError,
            "min consumer version 2",
        ),
        (
            pb.BundleHeaderProto(num_shards=1, version=pb.VersionDef(producer=-1)),
            InvalidArgumentError,
            "producer version -1",
        ),
        (
            pb.BundleHeaderProto(
                num_shards=1, version=pb.VersionDef(producer=1, bad_consumers=[1])
            ),
            InvalidArgumentError,
            "disallows consumer version 1",
        ),
    ],
)
def test_bad_headers(tmp_path, header, error, match):
    write_raw(str(tmp_path / "c"), header, {})
    with pytest.raises(error, match=match):
        BundleReader(tmp_path / "c")


def test_missing_header_and_missing_slice(tmp_path):
    Path(index_filename(tmp_path / "h")).write_bytes(build_table([(b"a", b"")]))
    with pytest.raises(DataLossError, match="header"):
        BundleReader(tmp_path / "h")
    full = entry_proto(shape=(4,))
    full.slices.add().CopyFrom(TensorSlice.from_string("0,2").to_proto())
    write_raw(str(tmp_path / "s"), good_header(), {b"p": full})
    with pytest.raises(DataLossError, match="missing the entry of its slice 0,2"):
        BundleReader(tmp_path / "s").read("p")


# --- slices and OrderedCode ----------------------------------------------------------------------


def test_tensor_slice_strings():
    slc = TensorSlice.from_string("0,2:-:3,1")
    assert slc == TensorSlice(((0, 2), (0, -1), (3, 1)))
    assert slc.to_string() == "0,2:-:3,1" and slc.shape((4, 5, 6)) == (2, 5, 1)
    assert (
        TensorSlice.from_string("") == TensorSlice(()) and TensorSlice.full(2).to_string() == "-:-"
    )
    assert TensorSlice.from_proto(slc.to_proto()) == slc
    for bad in ("1", "a,b", "-1,2", "0,2:"):
        with pytest.raises(InvalidArgumentError, match="Invalid tensor slice"):
            TensorSlice.from_string(bad)


def test_parse_shape_and_slice():
    assert parse_shape_and_slice("") is None
    assert parse_shape_and_slice("4 3 0,2:-") == ((4, 3), TensorSlice(((0, 2), (0, -1))))
    for bad in ("4 x -", "4 3 0,2", "4 3 0,5:-", "-4 -"):
        with pytest.raises(InvalidArgumentError):
            parse_shape_and_slice(bad)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x80"),
        (2, b"\x82"),
        (-1, b"\x7f"),
        (63, b"\xbf"),
        (-64, b"\x40"),
        (0x424242, b"\xf0\x42\x42\x42"),
        (-0x800, b"\x38\x00"),
    ],  # ordered_code.cc's examples
)
def test_signed_num_increasing(value, encoded):
    assert bundle._signed_num_increasing(value) == encoded


def test_signed_num_increasing_preserves_order():
    rng = np.random.default_rng(0)
    randoms = rng.integers(-(2**63), 2**63 - 1, 2000, endpoint=True) >> rng.integers(0, 63, 2000)
    values = sorted({0, -1, 1, 2**63 - 1, -(2**63), *(int(v) for v in randoms)})
    encoded = [bundle._signed_num_increasing(v) for v in values]
    assert encoded == sorted(encoded)
    assert max(len(e) for e in encoded) == 10
