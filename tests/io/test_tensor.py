"""gpugraph.io.tensor against TensorFlow (tests/fixtures/tensors/tensor_cases.json) and itself."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from gpugraph import _proto as pb
from gpugraph import dtypes
from gpugraph.errors import InvalidArgumentError, UnimplementedError
from gpugraph.io import tensor
from gpugraph.io.tensor import make_ndarray, make_tensor_proto, shape_from_proto, shape_to_proto

CASES = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "tensors" / "tensor_cases.json").read_text()
)["cases"]
SUB_BYTE_INTS = ("int4", "uint4", "int2", "uint2")
NUMPY_DTYPES = [dt for dt in dtypes.ALL_DTYPES if dt.is_numpy_compatible]


# --- fixture decoding (format: scripts/make_tensor_fixtures.py) ---------------------------------


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def decode_tree(tree):
    if isinstance(tree, list):
        return [decode_tree(v) for v in tree]
    if isinstance(tree, dict):
        return _b64(tree["bytes"]) if "bytes" in tree else complex(*tree["complex"])
    return tree


def _numpy_dtype(spelling: str) -> np.dtype:
    return np.dtype(getattr(ml_dtypes, spelling, None) or spelling)


def decode_value(value):
    if "py" in value:
        return decode_tree(value["py"])
    if "npscalar" in value:
        scalar = value["npscalar"]
        return np.frombuffer(_b64(scalar["data"]), _numpy_dtype(scalar["dtype"]))[0]
    spec = value["ndarray"]
    if spec["dtype"] == "object":
        flat = np.empty(len(spec["items"]), dtype=object)
        flat[:] = [decode_tree(v) for v in spec["items"]]
        return flat.reshape(spec["shape"])
    return np.frombuffer(_b64(spec["data"]), _numpy_dtype(spec["dtype"])).reshape(spec["shape"])


def assert_matches_tf(actual: np.ndarray, expected: dict) -> None:
    """``actual`` has TF's dtype, shape and exact bits (values for the sub-byte ints)."""
    dt = dtypes.as_dtype(expected["dtype"])
    assert actual.dtype == np.dtype(dt.as_numpy_dtype)
    assert list(actual.shape) == expected["shape"]
    assert actual.flags.c_contiguous and actual.flags.writeable
    if "items" in expected:
        items = actual.reshape(-1).tolist()
        assert all(type(v) is bytes for v in items)
        assert items == [_b64(v) for v in expected["items"]]
    elif expected["dtype"] in SUB_BYTE_INTS:
        assert actual.astype(np.int8).tobytes() == _b64(expected["data"])
    else:
        assert actual.tobytes() == _b64(expected["data"])


def _proto(case: dict):
    return pb.TensorProto.FromString(_b64(case["proto"]))


def _cases(predicate):
    chosen = [c for c in CASES if predicate(c)]
    return pytest.mark.parametrize("case", chosen, ids=[c["id"] for c in chosen])


# --- against TF --------------------------------------------------------------------------------


def test_fixture_covers_every_numpy_dtype_and_field():
    made = {c["make_ndarray"].get("dtype") for c in CASES} | {
        c["runtime"].get("dtype") for c in CASES
    }
    assert {dt.name for dt in NUMPY_DTYPES} <= made
    protos = [_proto(c) for c in CASES]
    fields = {f.name for p in protos for f, _ in p.ListFields()}
    assert fields >= {
        "tensor_content",
        "half_val",
        "float_val",
        "double_val",
        "int_val",
        "string_val",
        "scomplex_val",
        "int64_val",
        "bool_val",
        "dcomplex_val",
        "uint32_val",
        "uint64_val",
        "float8_val",
    }


@_cases(lambda c: c["expect"] != "error")
def test_make_ndarray_matches_tf(case):
    assert_matches_tf(make_ndarray(_proto(case), name=case["id"]), case[case["expect"]])


@_cases(lambda c: c["expect"] == "error")
def test_make_ndarray_rejects_what_tf_rejects_or_truncates(case):
    with pytest.raises(InvalidArgumentError, match=f"TensorProto '{case['id']}'"):
        make_ndarray(_proto(case), name=case["id"])


@_cases(lambda c: c["source"] == "make_tensor_proto")
def test_make_tensor_proto_is_byte_identical_to_tf(case):
    call = case["call"]
    proto = make_tensor_proto(
        decode_value(call["values"]), dtype=call["dtype"], shape=call["shape"]
    )
    assert proto.SerializeToString(deterministic=True) == _b64(case["proto"])


# --- round trips ---------------------------------------------------------------------------------


def sample(dt: dtypes.DType, shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape))
    if dt == dtypes.string:
        values = [bytes([i % 256]) * (i % 4) + b"\xff\x00" for i in range(count)]
        out = np.empty(count, dtype=object)
        out[:] = values
        return out.reshape(shape)
    raw = np.arange(count, dtype=np.float64) - count // 2
    if dt.is_bool:
        return (raw.astype(np.int64) % 2 == 0).reshape(shape)
    if dt.is_complex:
        return (raw - 0.5j * raw).astype(dt.as_numpy_dtype).reshape(shape)
    if dt.is_floating:
        return (raw / 2).astype(dt.as_numpy_dtype).reshape(shape)
    info = ml_dtypes.iinfo(dt.as_numpy_dtype)
    return (
        np.clip(raw, info.min, info.max).astype(np.int64).astype(dt.as_numpy_dtype).reshape(shape)
    )


SHAPES = [(), (1,), (2, 3), (0,), (2, 0), (1, 1, 4)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dt", NUMPY_DTYPES, ids=lambda d: d.name)
def test_round_trip(dt, shape):
    array = sample(dt, shape)
    back = make_ndarray(make_tensor_proto(array, dtype=dt))
    assert back.dtype == array.dtype and back.shape == array.shape
    if dt == dtypes.string:
        assert back.tolist() == array.tolist()
    elif dt.name in SUB_BYTE_INTS:
        np.testing.assert_array_equal(back.astype(np.int8), array.astype(np.int8))
    else:
        assert back.tobytes() == array.tobytes()


@pytest.mark.parametrize("dt", NUMPY_DTYPES, ids=lambda d: d.name)
def test_round_trip_fill_via_shape(dt):
    first = sample(dt, (3,))[-1:]
    proto = make_tensor_proto(first, dtype=dt, shape=[2, 3])
    assert not proto.tensor_content  # a fill is one repeated value, as in TF
    back = make_ndarray(proto)
    assert back.shape == (2, 3)
    assert all(v == first[0] for v in back.reshape(-1).tolist())


@pytest.mark.parametrize("dt", [dtypes.resource, dtypes.variant], ids=lambda d: d.name)
def test_round_trip_resource_and_variant(dt):
    if dt == dtypes.resource:
        items = [pb.ResourceHandleProto(device="/cpu:0", name=f"v{i}") for i in range(3)]
    else:
        items = [pb.VariantTensorDataProto(type_name=f"t{i}", metadata=b"\x00") for i in range(3)]
    proto = make_tensor_proto(items, dtype=dt)
    assert proto.dtype == dt.as_datatype_enum
    back = make_ndarray(proto, name="h")
    assert back.dtype == object and back.shape == (3,)
    assert [m.SerializeToString() for m in back] == [m.SerializeToString() for m in items]
    back[0].Clear()  # detached from the proto
    assert make_ndarray(proto)[0].SerializeToString() == items[0].SerializeToString()


def test_resource_without_values_gives_default_handles():
    proto = pb.TensorProto(dtype=dtypes.resource.as_datatype_enum, tensor_shape=shape_to_proto([2]))
    back = make_ndarray(proto)
    assert [m.SerializeToString() for m in back] == [b"", b""]
    assert back[0] is not back[1]


def test_message_tensor_rejects_other_values():
    with pytest.raises(TypeError, match="Expected ResourceHandleProto values"):
        make_tensor_proto([b"x"], dtype=dtypes.resource)


# --- the repeated-field rules ---------------------------------------------------------------------

FIELD_CASES = [
    # (dtype, field, stored values, expected leading elements decoded)
    (dtypes.float32, "float_val", [1.0, 2.0], [1.0, 2.0]),
    (dtypes.float64, "double_val", [0.5, -1.0], [0.5, -1.0]),
    (dtypes.int8, "int_val", [-7, 3], [-7, 3]),
    (dtypes.uint8, "int_val", [255, 1], [255, 1]),
    (dtypes.uint16, "int_val", [65535, 2], [65535, 2]),
    (dtypes.int32, "int_val", [-1, 5], [-1, 5]),
    (dtypes.int4, "int_val", [-8, 7], [-8, 7]),
    (dtypes.int64, "int64_val", [-(2**62), 5], [-(2**62), 5]),
    (dtypes.uint32, "uint32_val", [2**32 - 1, 0], [2**32 - 1, 0]),
    (dtypes.uint64, "uint64_val", [2**64 - 1, 7], [2**64 - 1, 7]),
    (dtypes.bool, "bool_val", [False, True], [False, True]),
    (dtypes.float16, "half_val", [0x3C00, 0x4000], [1.0, 2.0]),
    (dtypes.bfloat16, "half_val", [0x3F80, 0xC000], [1.0, -2.0]),
    (dtypes.complex64, "scomplex_val", [1.0, 2.0, 3.0, -4.0], [1 + 2j, 3 - 4j]),
    (dtypes.complex128, "dcomplex_val", [1.0, 2.0, 3.0, -4.0], [1 + 2j, 3 - 4j]),
    (dtypes.string, "string_val", [b"a", b"\xff"], [b"a", b"\xff"]),
]


def _field_proto(dt, field, values, shape):
    proto = pb.TensorProto(dtype=dt.as_datatype_enum, tensor_shape=shape_to_proto(shape))
    getattr(proto, field).extend(values)
    return proto


@pytest.mark.parametrize(
    ("dt", "field", "stored", "decoded"), FIELD_CASES, ids=[c[0].name for c in FIELD_CASES]
)
def test_fewer_values_repeat_the_last(dt, field, stored, decoded):
    out = make_ndarray(_field_proto(dt, field, stored, [2, 3]))
    assert out.shape == (2, 3)
    assert out.reshape(-1).tolist() == decoded + [decoded[-1]] * (6 - len(decoded))


@pytest.mark.parametrize(
    ("dt", "field", "stored", "decoded"), FIELD_CASES, ids=[c[0].name for c in FIELD_CASES]
)
def test_too_many_values_is_an_error(dt, field, stored, decoded):
    proto = _field_proto(dt, field, stored, [1])
    with pytest.raises(InvalidArgumentError) as info:
        make_ndarray(proto, name="my/const")
    message = str(info.value)
    assert "'my/const'" in message and dt.name in message and "[1]" in message
    assert f"{field} has {len(decoded)} values" in message


def test_scalar_with_a_value_and_empty_shape_with_none():
    stored = [9]
    scalar = make_ndarray(_field_proto(dtypes.int64, "int64_val", stored, []))
    assert scalar.shape == () and scalar.tolist() == stored[0]
    empty = make_ndarray(_field_proto(dtypes.float32, "float_val", [], [4, 0]))
    assert empty.shape == (4, 0) and empty.dtype == np.float32


@pytest.mark.parametrize("dt", NUMPY_DTYPES + [dtypes.variant], ids=lambda d: d.name)
def test_no_values_give_zeros(dt):
    proto = pb.TensorProto(dtype=dt.as_datatype_enum, tensor_shape=shape_to_proto([2, 2]))
    out = make_ndarray(proto)
    assert out.shape == (2, 2) and out.dtype == np.dtype(dt.as_numpy_dtype)
    if dt == dtypes.string:
        assert out.tolist() == [[b"", b""], [b"", b""]]
    elif dt == dtypes.variant:
        assert all(m.SerializeToString() == b"" for m in out.reshape(-1))
    else:
        assert not out.astype(np.float64 if not dt.is_complex else np.complex128).any()


def test_float8_val_for_every_8_bit_float():
    for dt in (
        dtypes.float8_e5m2,
        dtypes.float8_e4m3fn,
        dtypes.float8_e4m3fnuz,
        dtypes.float8_e4m3b11fnuz,
        dtypes.float8_e5m2fnuz,
        dtypes.float4_e2m1fn,
    ):
        values = np.array([1.0, -2.0], dtype=dt.as_numpy_dtype)
        proto = pb.TensorProto(
            dtype=dt.as_datatype_enum, tensor_shape=shape_to_proto([3]), float8_val=values.tobytes()
        )
        assert make_ndarray(proto).astype(np.float32).tolist() == [1.0, -2.0, -2.0]


def test_content_wins_over_repeated_field():
    proto = pb.TensorProto(
        dtype=1,
        tensor_shape=shape_to_proto([2]),
        float_val=[9.0],
        tensor_content=np.array([1, 2], "<f4").tobytes(),
    )
    assert make_ndarray(proto).tolist() == [1.0, 2.0]


# --- malformed protos -----------------------------------------------------------------------------


def test_bad_tensor_content_size_names_the_tensor():
    proto = pb.TensorProto(dtype=1, tensor_shape=shape_to_proto([3]), tensor_content=b"\x00" * 8)
    with pytest.raises(InvalidArgumentError) as info:
        make_ndarray(proto, name="dense/kernel")
    message = str(info.value)
    assert message.startswith("TensorProto 'dense/kernel' (dtype float32, shape [3])")
    assert "8 bytes" in message and "exactly 12" in message
    assert info.value.details["tensor"] == "dense/kernel"


def test_unnamed_tensor_error():
    proto = pb.TensorProto(dtype=1, tensor_shape=shape_to_proto([3]), tensor_content=b"\x00")
    with pytest.raises(InvalidArgumentError, match=r"^TensorProto \(dtype float32, shape \[3\]\)"):
        make_ndarray(proto)


@pytest.mark.parametrize(
    ("shape", "what"), [([-1, 2], "every dimension known"), (None, "unknown rank")]
)
def test_unknown_shapes_are_errors(shape, what):
    proto = pb.TensorProto(dtype=1, tensor_shape=shape_to_proto(shape), float_val=[1.0])
    with pytest.raises(InvalidArgumentError, match=f"'c'.*{what}"):
        make_ndarray(proto, name="c")


def test_negative_dim_is_an_error():
    proto = pb.TensorProto(dtype=1, float_val=[1.0])
    proto.tensor_shape.dim.add(size=-5)
    with pytest.raises(InvalidArgumentError, match=r"shape \[-5\]"):
        make_ndarray(proto, name="c")


@pytest.mark.parametrize("enum", [0, 99, 150])
def test_invalid_dtype(enum):
    proto = pb.TensorProto(dtype=enum, tensor_shape=shape_to_proto([1]))
    with pytest.raises(InvalidArgumentError, match=f"'c' \\(dtype {enum} .*invalid dtype"):
        make_ndarray(proto, name="c")


def test_ref_dtype_in_tensor_proto_is_an_error():
    proto = pb.TensorProto(dtype=101, tensor_shape=shape_to_proto([1]), float_val=[1.0])
    with pytest.raises(InvalidArgumentError, match="float32_ref"):
        make_ndarray(proto, name="c")


def test_odd_complex_parts():
    proto = _field_proto(dtypes.complex64, "scomplex_val", [1.0, 2.0, 3.0], [2])
    with pytest.raises(InvalidArgumentError, match="malformed scomplex_val: odd number"):
        make_ndarray(proto, name="z")


@pytest.mark.parametrize(
    "dt",
    sorted(
        dtypes.QUANTIZED_DTYPES - {d.as_ref for d in dtypes.ALL_DTYPES},
        key=lambda d: d.as_datatype_enum,
    ),
    ids=lambda d: d.name,
)
def test_quantized_tensors_are_unimplemented(dt):
    proto = _field_proto(dt, "int_val", [1], [2])
    with pytest.raises(UnimplementedError, match=f"'q/c' \\(dtype {dt.name}.*{dt.name}"):
        make_ndarray(proto, name="q/c")
    with pytest.raises(UnimplementedError, match=dt.name):
        make_tensor_proto([1, 2], dtype=dt)


def test_resource_tensor_content_is_unimplemented():
    proto = pb.TensorProto(dtype=20, tensor_shape=shape_to_proto([1]), tensor_content=b"\x01")
    with pytest.raises(UnimplementedError, match="tensor_content encoding of resource"):
        make_ndarray(proto, name="r")


def _string_content(strings, lengths=None):
    lengths = [len(s) for s in strings] if lengths is None else lengths
    out = bytearray()
    for length in lengths:
        rest = length
        while rest >> 7:
            out.append((rest & 0x7F) | 0x80)
            rest >>= 7
        out.append(rest)
    return bytes(out) + b"".join(strings)


def test_string_tensor_content():
    strings = [b"a", b"", b"\xff" * 300]
    proto = pb.TensorProto(
        dtype=7, tensor_shape=shape_to_proto([3]), tensor_content=_string_content(strings)
    )
    assert make_ndarray(proto).tolist() == strings


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (_string_content([b"ab"], lengths=[3]), "lengths add up to 3"),
        (b"\x01", "ends inside its 2 lengths"),
        (b"\x80", "ends inside its 2 lengths"),
        (b"\xff" * 6, "longer than 5 bytes"),
    ],
)
def test_malformed_string_tensor_content(content, what):
    proto = pb.TensorProto(dtype=7, tensor_shape=shape_to_proto([2]), tensor_content=content)
    if what.startswith("lengths"):
        proto.tensor_shape.dim[0].size = 1
    with pytest.raises(InvalidArgumentError, match=f"'s'.*{what}"):
        make_ndarray(proto, name="s")


def test_bool_content_bytes_other_than_one_are_true():
    proto = pb.TensorProto(
        dtype=10, tensor_shape=shape_to_proto([3]), tensor_content=b"\x00\x02\xff"
    )
    out = make_ndarray(proto)
    assert out.tolist() == [False, True, True] and out.view(np.uint8).tolist() == [0, 1, 1]


# --- byte order and speed ------------------------------------------------------------------------


def test_big_endian_host_swaps_each_element(monkeypatch):
    values = np.array([1.5, -2.0, 3.0], dtype="<f4")
    cvalues = np.array([1 + 2j, 3 - 4j], dtype="<c8")
    proto = make_tensor_proto(values)
    cproto = pb.TensorProto(
        dtype=8, tensor_shape=shape_to_proto([2]), tensor_content=cvalues.tobytes()
    )
    monkeypatch.setattr(tensor, "_LITTLE_ENDIAN_HOST", False)
    # On a real big-endian host these swapped bytes are the native representation.
    assert make_ndarray(proto).tobytes() == values.byteswap().tobytes()
    assert make_ndarray(cproto).tobytes() == cvalues.byteswap().tobytes()
    assert make_tensor_proto(values).tensor_content == values.byteswap().tobytes()
    one_byte = np.array([1, 2], np.int8)
    assert make_tensor_proto(one_byte).tensor_content == one_byte.tobytes()


def test_large_tensor_content_is_decoded_without_per_element_python():
    values = np.arange(4_000_000, dtype=np.float32)
    proto = make_tensor_proto(values.reshape(2000, 2000))
    start = time.perf_counter()
    out = make_ndarray(proto)
    elapsed = time.perf_counter() - start
    assert out.shape == (2000, 2000) and out.flags.writeable
    assert np.array_equal(out.reshape(-1), values)
    assert elapsed < 1.0, f"decoding 16 MB took {elapsed:.2f}s"


def test_result_does_not_alias_the_proto():
    proto = make_tensor_proto(np.arange(4, dtype=np.int32))
    out = make_ndarray(proto)
    out[0] = 99
    assert make_ndarray(proto)[0] == 0


# --- make_tensor_proto behaviour ------------------------------------------------------------------


def test_tensor_proto_passes_through():
    proto = pb.TensorProto(dtype=1)
    assert make_tensor_proto(proto, dtype="int32") is proto


def test_scalar_shape_is_an_empty_but_present_message():
    assert make_tensor_proto(1.0).SerializeToString(deterministic=True) == (
        b"\x08\x01\x12\x00\x2a\x04\x00\x00\x80\x3f"
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (([1.5],), {"dtype": "int32"}, TypeError, "Expected int32, but got 1.5 of type 'float'."),
        (("a",), {"dtype": "float32"}, TypeError, "Expected float32, but got a of type 'str'."),
        (([1, 2],), {"dtype": "bool"}, TypeError, "Expected bool, but got 1 of type 'int'."),
        (
            ([np.float32(1), 2],),
            {"dtype": "int32"},
            TypeError,
            "Expected int32, but got 1.0 of type 'float32'.",
        ),
        ((b"x",), {"dtype": "int8"}, TypeError, "Expected int8, but got b'x' of type 'bytes'."),
        ((None,), {}, ValueError, "None values not supported."),
        (([[1, 2], [3]],), {}, ValueError, "inhomogeneous"),
        (
            ([1, 2, 3],),
            {"shape": [2]},
            ValueError,
            "Too many elements provided. Takes at most 2, but got 3.",
        ),
        (
            ([1, 2],),
            {"shape": [2, 1], "verify_shape": True},
            TypeError,
            "Expected Tensor's shape: (2, 1), but got (2,).",
        ),
        (
            ([1, 2],),
            {"shape": [3], "allow_broadcast": True},
            TypeError,
            "Expected Tensor's shape: (3,), but got (2,).",
        ),
        (
            ([1],),
            {"verify_shape": True, "allow_broadcast": True},
            ValueError,
            "allow_broadcast and verify_shape are not both allowed.",
        ),
        (
            (np.array([1, 2], np.int32),),
            {"dtype": "string"},
            TypeError,
            "Expected binary or unicode string, got 1",
        ),
        ((np.array([1, 2], np.int32),), {"dtype": "junk"}, TypeError, "Cannot convert"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_make_tensor_proto_errors_like_tf(args, kwargs, error, message):
    with pytest.raises(error) as info:
        make_tensor_proto(*args, **kwargs)
    assert message in str(info.value)


def test_make_tensor_proto_tf_conversions():
    # Each verified against tf.make_tensor_proto 2.21 (see the report in the fixture script).
    assert make_tensor_proto([1], shape=[3], allow_broadcast=True).int_val == [1]
    assert make_tensor_proto([True], dtype="int32").int_val == [1]
    assert make_tensor_proto(np.array([1.5]), dtype="int32").int_val == [1]
    assert make_tensor_proto(1, dtype="complex64").scomplex_val == [1.0, 0.0]
    as_uint8 = make_tensor_proto(bytearray(b"ab"))
    assert as_uint8.dtype == dtypes.uint8.as_datatype_enum and as_uint8.tensor_content == b"ab"


def test_fnuz_float8_fill_goes_to_float8_val():
    # TF's make_tensor_proto has no writer for these; gpugraph uses float8_val like the others.
    proto = make_tensor_proto(np.array([1.0], dtype=ml_dtypes.float8_e4m3fnuz), shape=[4])
    assert proto.float8_val == np.array([1.0], ml_dtypes.float8_e4m3fnuz).tobytes()
    assert make_ndarray(proto).astype(np.float32).tolist() == [1.0] * 4


# --- shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (0,), (2, 3), (None, 4), (1, None, None), None], ids=str)
def test_shape_round_trip(shape):
    assert shape_from_proto(shape_to_proto(shape)) == shape


def test_shape_proto_encoding():
    assert shape_to_proto(()).SerializeToString() == b""
    assert shape_to_proto(None).unknown_rank
    assert [d.size for d in shape_to_proto([None, 0, 5]).dim] == [-1, 0, 5]
    assert [d.size for d in shape_to_proto([np.int64(3)]).dim] == [3]
    existing = shape_to_proto([1, 2])
    copy = shape_to_proto(existing)
    assert copy == existing and copy is not existing


def test_shape_from_proto_rejects_invalid_dims():
    proto = pb.TensorShapeProto()
    proto.dim.add(size=-2)
    with pytest.raises(InvalidArgumentError, match="invalid dimension size -2"):
        shape_from_proto(proto)


def test_float_fields_keep_denormals_while_flush_to_zero_is_set() -> None:
    # A plan runs with the x86 FTZ/DAZ flags set (as TF's kernels): decoding a proto's float
    # field must still give the stored bits (a V1 checkpoint's beta1_power of 6e-45 was
    # restored as 0.0 before).
    from gpugraph import _proto as pb
    from gpugraph.devices.cpu.fpenv import flush_denormals

    want = np.array([6e-45, -1e-40, 1.5, np.finfo(np.float32).tiny, 0.0, -0.0], np.float32)
    proto = pb.TensorProto(dtype=1)
    proto.tensor_shape.dim.add().size = want.size
    proto.float_val.extend(want.tolist())
    complex_proto = pb.TensorProto(dtype=8)
    complex_proto.tensor_shape.dim.add().size = 1
    complex_proto.scomplex_val.extend([6e-45, -1e-40])
    with flush_denormals():
        flushed = np.array([6e-45], np.float64).astype(np.float32)
        got = make_ndarray(proto)
        got_complex = make_ndarray(complex_proto)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    assert got_complex.view(np.float32).view(np.uint32).tolist() == \
        np.array([6e-45, -1e-40], np.float32).view(np.uint32).tolist()
    if flushed[0] != 0:
        pytest.skip("this CPU does not flush denormals (no x86 FTZ/DAZ)")
