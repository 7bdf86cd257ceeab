"""``TensorProto`` <-> numpy ndarray, with TensorFlow's encoding rules.

A TensorProto carries its values in exactly one of two places:

* ``tensor_content``: the raw elements, little-endian, row-major (C order), exactly
  ``num_elements * itemsize`` bytes.  For DT_STRING it is instead ``num_elements`` varint32
  lengths followed by the concatenated bytes (C++ ``port::EncodeStringList``).
* otherwise the dtype's repeated field (table :data:`_FIELDS`): ``float_val``, ``double_val``,
  ``int_val`` (int32/16/8, uint8/16, int4/uint4/int2/uint2), ``int64_val``, ``uint32_val``,
  ``uint64_val``, ``bool_val``, ``string_val``, ``scomplex_val``/``dcomplex_val`` (re, im pairs),
  ``half_val`` (float16 *and* bfloat16, the 16-bit pattern stored as int32), ``float8_val``
  (one byte per element, for the float8 types and float4_e2m1fn), ``resource_handle_val`` and
  ``variant_val``.  Fewer values than elements repeat the last one; no values mean all zeros;
  more values than elements are an error here (TF's runtime silently drops them, while
  ``tf.make_ndarray`` fails with a numpy error).

:func:`make_tensor_proto` makes the same encoding choices as ``tf.make_tensor_proto`` (the test
suite compares serialized bytes with protos TF produced): arrays of more than one element of a
:data:`_CONTENT_DTYPES` type whose size matches the shape go to ``tensor_content``; everything
else (scalars, one-element arrays, ``shape=`` fills, bool, complex, string, uint16, int4-like)
goes to the repeated field.

Values are numpy arrays on the host; gpugraph's ``dtypes`` module is the only dtype table used.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from gpugraph import _proto as pb
from gpugraph import config, dtypes
from gpugraph.errors import InvalidArgumentError, ResourceExhaustedError, UnimplementedError

Shape = tuple[int | None, ...]

# Tested through monkeypatching: the byte-swapping branches only run on big-endian hosts.
_LITTLE_ENDIAN_HOST = sys.byteorder == "little"


# --- shapes ------------------------------------------------------------------------------------


def shape_from_proto(proto: Any) -> Shape | None:
    """Converts a ``TensorShapeProto`` to a tuple; unknown dims (-1) become None.

    Returns None when the rank is unknown (``unknown_rank: true``).

    Raises:
        InvalidArgumentError: a dimension is below -1.
    """
    if proto.unknown_rank:
        return None
    dims = tuple(int(d.size) for d in proto.dim)
    bad = [d for d in dims if d < -1]
    if bad:
        raise InvalidArgumentError(
            None, None, f"TensorShapeProto {list(dims)} has invalid dimension size {bad[0]}"
        )
    return tuple(None if d == -1 else d for d in dims)


def shape_to_proto(shape: Iterable[int | None] | None) -> Any:
    """Converts a shape to a ``TensorShapeProto``.

    ``None`` is an unknown rank (``unknown_rank: true``), a None (or -1) dim an unknown
    dimension (``size: -1``), and ``()`` a scalar (the empty message).
    """
    if shape is None:
        return pb.TensorShapeProto(unknown_rank=True)
    if isinstance(shape, pb.TensorShapeProto):
        return pb.TensorShapeProto.FromString(shape.SerializeToString())
    proto = pb.TensorShapeProto()
    for dim in shape:
        proto.dim.add(size=-1 if dim is None else int(dim))
    return proto


# --- error context -----------------------------------------------------------------------------


class _Ctx(NamedTuple):
    """What an error message says about the tensor being decoded."""

    name: str | None
    dtype: str
    shape: object

    def error(self, what: str, cls: type = InvalidArgumentError) -> Exception:
        tensor = f"TensorProto {self.name!r}" if self.name else "TensorProto"
        message = f"{tensor} (dtype {self.dtype}, shape {self.shape}): {what}"
        details = {"tensor": self.name, "dtype": self.dtype, "shape": self.shape}
        return cls(None, None, message, details)


# --- per-dtype repeated-field codecs -----------------------------------------------------------


class _Field(NamedTuple):
    """How one dtype's values sit in a TensorProto repeated field."""

    name: str
    # (field value, numpy dtype) -> flat ndarray of that dtype; ValueError if malformed.
    decode: Callable[[Any, np.dtype], np.ndarray]
    # flat ndarray -> what goes into the field (a list to extend, or bytes to assign).
    encode: Callable[[np.ndarray], Any]


def _cast_from(wire: type) -> Callable[[Any, np.dtype], np.ndarray]:
    def decode(values: Any, dtype: np.dtype) -> np.ndarray:
        return np.fromiter(values, dtype=wire, count=len(values)).astype(dtype)

    return decode


# float32 fields, read from the wire while the x86 flush-to-zero flags are set (a plan runs with
# them, as TF's kernels do): protobuf hands their values to Python as doubles, a conversion
# that then turns float32 denormals (a late Adam ``beta1_power`` of 6e-45) into zeros.  The
# serialized bytes still hold the exact bits.
_FIXED32_FIELDS = {"float_val": 5, "scomplex_val": 9}


def _flushing_denormals() -> bool:
    return np.array([1e-40]).astype(np.float32)[0] == 0


def _fixed32_values(proto: Any, name: str) -> np.ndarray:
    number, data = _FIXED32_FIELDS[name], proto.SerializeToString()
    chunks, pos = [], 0
    while pos < len(data):
        tag, pos = _wire_varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _wire_varint(data, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if field == number:
                chunks.append(data[pos:pos + size])
            pos += size
        elif wire == 2:
            size, pos = _wire_varint(data, pos)
            if field == number:
                chunks.append(data[pos:pos + size])
            pos += size
        else:
            raise ValueError(f"wire type {wire} in a TensorProto")
    return np.frombuffer(b"".join(chunks), dtype="<u4").copy()


def _wire_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _decode_bits16(values: Any, dtype: np.dtype) -> np.ndarray:
    # half_val holds the 16-bit pattern in an int32; keep the low 16 bits.
    return np.fromiter(values, dtype=np.int32, count=len(values)).astype(np.uint16).view(dtype)


def _decode_bytes8(values: bytes, dtype: np.dtype) -> np.ndarray:
    return np.frombuffer(values, dtype=np.uint8).view(dtype).copy()


def _complex_from(wire: type) -> Callable[[Any, np.dtype], np.ndarray]:
    def decode(values: Any, dtype: np.dtype) -> np.ndarray:
        if len(values) % 2:
            raise ValueError(f"odd number ({len(values)}) of real/imaginary parts")
        return np.fromiter(values, dtype=wire, count=len(values)).view(dtype)

    return decode


def _decode_objects(values: Any, dtype: np.dtype) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        if isinstance(value, bytes):
            out[i] = value
        else:  # a proto message: detach it from the TensorProto it came from
            out[i] = type(value).FromString(value.SerializeToString())
    return out


def _encode_list(wire: type) -> Callable[[np.ndarray], list]:
    return lambda flat: flat.astype(wire).tolist()


def _encode_bits16(flat: np.ndarray) -> list[int]:
    return flat.view(np.uint16).astype(np.int32).tolist()


def _encode_bytes8(flat: np.ndarray) -> bytes:
    return flat.view(np.uint8).tobytes()


def _encode_complex(part: type) -> Callable[[np.ndarray], list]:
    return lambda flat: flat.view(part).tolist()  # re, im interleaved, as TF


def _encode_strings(flat: np.ndarray) -> list[bytes]:
    return [_as_bytes(v) for v in flat.tolist()]


def _encode_messages(flat: np.ndarray) -> list:
    return list(flat)


def _build_fields() -> dict[dtypes.DType, _Field]:
    int_field = _Field("int_val", _cast_from(np.int32), _encode_list(np.int32))
    half_field = _Field("half_val", _decode_bits16, _encode_bits16)
    float8_field = _Field("float8_val", _decode_bytes8, _encode_bytes8)
    fields = {
        dtypes.float32: _Field("float_val", _cast_from(np.float32), _encode_list(np.float32)),
        dtypes.float64: _Field("double_val", _cast_from(np.float64), _encode_list(np.float64)),
        dtypes.int64: _Field("int64_val", _cast_from(np.int64), _encode_list(np.int64)),
        dtypes.uint32: _Field("uint32_val", _cast_from(np.uint32), _encode_list(np.uint32)),
        dtypes.uint64: _Field("uint64_val", _cast_from(np.uint64), _encode_list(np.uint64)),
        dtypes.bool: _Field("bool_val", _cast_from(np.bool_), _encode_list(np.bool_)),
        dtypes.complex64: _Field(
            "scomplex_val", _complex_from(np.float32), _encode_complex(np.float32)
        ),
        dtypes.complex128: _Field(
            "dcomplex_val", _complex_from(np.float64), _encode_complex(np.float64)
        ),
        dtypes.float16: half_field,
        dtypes.bfloat16: half_field,
        dtypes.string: _Field("string_val", _decode_objects, _encode_strings),
        dtypes.resource: _Field("resource_handle_val", _decode_objects, _encode_messages),
        dtypes.variant: _Field("variant_val", _decode_objects, _encode_messages),
    }
    for dt in (
        dtypes.int32,
        dtypes.int16,
        dtypes.int8,
        dtypes.uint8,
        dtypes.uint16,
        dtypes.int4,
        dtypes.uint4,
        dtypes.int2,
        dtypes.uint2,
    ):
        fields[dt] = int_field
    for dt in (
        dtypes.float8_e5m2,
        dtypes.float8_e4m3fn,
        dtypes.float8_e4m3fnuz,
        dtypes.float8_e4m3b11fnuz,
        dtypes.float8_e5m2fnuz,
        dtypes.float4_e2m1fn,
    ):
        fields[dt] = float8_field
    return fields


_FIELDS = _build_fields()

# Types tf.make_tensor_proto writes as tensor_content (tensor_util._TENSOR_CONTENT_TYPES, less
# the quantized ones gpugraph cannot represent).  uint16 and int4/uint4/int2/uint2 are not in it.
_CONTENT_DTYPES = frozenset([
    dtypes.float16, dtypes.bfloat16, dtypes.float32, dtypes.float64,
    dtypes.int8, dtypes.int16, dtypes.int32, dtypes.int64,
    dtypes.uint8, dtypes.uint32, dtypes.uint64,
    dtypes.float8_e5m2, dtypes.float8_e4m3fn, dtypes.float8_e4m3fnuz,
    dtypes.float8_e4m3b11fnuz, dtypes.float8_e5m2fnuz, dtypes.float4_e2m1fn,
])  # fmt: skip

_MESSAGE_CLASSES = {
    dtypes.resource: pb.ResourceHandleProto,
    dtypes.variant: pb.VariantTensorDataProto,
}


# --- byte order --------------------------------------------------------------------------------


def _swap_bytes(flat: np.ndarray) -> np.ndarray:
    size = flat.dtype.itemsize // (2 if flat.dtype.kind == "c" else 1)
    if size == 1:
        return flat
    return flat.view(np.dtype(f"u{size}")).byteswap().view(flat.dtype)


def _from_little_endian(content: bytes, dtype: np.dtype) -> np.ndarray:
    flat = np.frombuffer(content, dtype=dtype)
    if dtype == np.bool_:  # TF bytes other than 0/1 would make odd numpy bools
        return flat.view(np.uint8) != 0
    return flat.copy() if _LITTLE_ENDIAN_HOST else _swap_bytes(flat.copy())


def _to_little_endian(array: np.ndarray) -> bytes:
    flat = np.ascontiguousarray(array).reshape(-1)
    return (flat if _LITTLE_ENDIAN_HOST else _swap_bytes(flat.copy())).tobytes()


# --- TensorProto -> ndarray --------------------------------------------------------------------


def make_ndarray(proto: Any, *, name: str | None = None) -> np.ndarray:
    """Converts a ``TensorProto`` to a new numpy array (``tf.make_ndarray``).

    Strings come back as an object array of ``bytes``; resource and variant tensors as object
    arrays of ``ResourceHandleProto`` / ``VariantTensorDataProto`` messages.

    Args:
        proto: a ``tensorflow.TensorProto`` message.
        name: what the tensor is (e.g. the Const node's name), used in error messages.

    Raises:
        InvalidArgumentError: the proto is malformed: bad dtype, unknown or negative
            dimensions, ``tensor_content`` of the wrong size, more values than the shape holds.
        UnimplementedError: quantized dtypes, and resource/variant ``tensor_content``.
    """
    ctx = _Ctx(name, _dtype_label(proto.dtype), _shape_label(proto.tensor_shape))
    dtype = _proto_dtype(proto.dtype, ctx)
    shape = _concrete_shape(proto.tensor_shape, ctx)
    np_dtype = _numpy_dtype(dtype, ctx)
    count = math.prod(shape)
    _check_size(count, np_dtype, ctx)
    if proto.tensor_content:
        flat = _decode_content(proto.tensor_content, dtype, np_dtype, count, ctx)
    else:
        flat = _decode_field(proto, dtype, np_dtype, count, ctx)
    return flat.reshape(shape)


_OBJECT_BYTES = 64


def _check_size(count: int, np_dtype: np.dtype, ctx: _Ctx) -> None:
    """Refuses a shape whose array would pass the memory cap, before allocating: a few bytes
    of TensorProto (one value, repeated) may claim any size."""
    # (an object element, a string or a handle message, costs a Python object besides its slot)
    claimed = count * (np_dtype.itemsize if np_dtype != object else _OBJECT_BYTES)
    cap = config.max_tensor_bytes()
    if claimed > cap:
        raise ctx.error(f"its {count:,} elements would take {claimed:,} bytes, more than the "
                        f"{cap:,} allowed (GPUGRAPH_MAX_TENSOR_BYTES)", ResourceExhaustedError)


def _dtype_label(enum: int) -> str:
    try:
        return dtypes.as_dtype(enum).name
    except TypeError:
        return f"{enum} ({pb.DataType.Name(enum) if enum in pb.DataType.values() else 'unknown'})"


def _shape_label(shape_proto: Any) -> object:
    return "<unknown rank>" if shape_proto.unknown_rank else [d.size for d in shape_proto.dim]


def _proto_dtype(enum: int, ctx: _Ctx) -> dtypes.DType:
    try:
        dtype = dtypes.as_dtype(enum)
    except TypeError:
        raise ctx.error("invalid dtype") from None
    if dtype.is_ref_dtype:  # TF rejects these too: refs are for edges, never values
        raise ctx.error(f"reference dtype {dtype.name} is not valid for a tensor value")
    return dtype


def _concrete_shape(shape_proto: Any, ctx: _Ctx) -> tuple[int, ...]:
    if shape_proto.unknown_rank:
        raise ctx.error("a constant tensor needs a known shape, not an unknown rank")
    dims = tuple(int(d.size) for d in shape_proto.dim)
    if any(d < 0 for d in dims):
        raise ctx.error("a constant tensor needs every dimension known and >= 0")
    return dims


def _numpy_dtype(dtype: dtypes.DType, ctx: _Ctx) -> np.dtype:
    try:
        return np.dtype(dtype.as_numpy_dtype)
    except UnimplementedError as e:
        raise ctx.error(f"cannot convert: {e}", UnimplementedError) from e


def _decode_content(
    content: bytes, dtype: dtypes.DType, np_dtype: np.dtype, count: int, ctx: _Ctx
) -> np.ndarray:
    if dtype == dtypes.string:
        return _decode_string_list(content, count, ctx)
    if dtype in _MESSAGE_CLASSES:
        raise ctx.error(
            f"tensor_content encoding of {dtype.name} is not supported", UnimplementedError
        )
    expected = count * np_dtype.itemsize
    if len(content) != expected:
        raise ctx.error(
            f"tensor_content has {len(content)} bytes; {count} elements of {dtype.name} "
            f"need exactly {expected}"
        )
    return _from_little_endian(content, np_dtype)


def _decode_string_list(content: bytes, count: int, ctx: _Ctx) -> np.ndarray:
    # port::DecodeStringList: `count` varint32 lengths, then the strings back to back.
    lengths, pos = [], 0
    try:
        for _ in range(count):
            length, pos = _read_varint32(content, pos)
            lengths.append(length)
    except IndexError:
        raise ctx.error(f"string tensor_content ends inside its {count} lengths") from None
    except ValueError as e:
        raise ctx.error(f"string tensor_content: {e}") from None
    if sum(lengths) != len(content) - pos:
        raise ctx.error(
            f"string tensor_content holds {len(content) - pos} bytes of string data but its "
            f"lengths add up to {sum(lengths)}"
        )
    out = np.empty(count, dtype=object)
    for i, length in enumerate(lengths):
        out[i], pos = content[pos : pos + length], pos + length
    return out


_VARINT32_MAX_BYTES = 5


def _read_varint32(data: bytes, pos: int) -> tuple[int, int]:
    """Reads a little-endian base-128 varint of at most 5 bytes; returns (value, next pos)."""
    result = 0
    for i in range(_VARINT32_MAX_BYTES):
        byte = data[pos + i]
        result |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return result & 0xFFFFFFFF, pos + i + 1
    raise ValueError(f"a length varint at byte {pos} is longer than {_VARINT32_MAX_BYTES} bytes")


def _decode_field(
    proto: Any, dtype: dtypes.DType, np_dtype: np.dtype, count: int, ctx: _Ctx
) -> np.ndarray:
    field = _FIELDS[dtype]
    try:
        if field.name in _FIXED32_FIELDS and _flushing_denormals():
            values = _fixed32_values(proto, field.name).view(np_dtype)
        else:
            values = field.decode(getattr(proto, field.name), np_dtype)
    except ValueError as e:
        raise ctx.error(f"malformed {field.name}: {e}") from e
    if len(values) == count:
        return values
    if len(values) > count:
        raise ctx.error(
            f"{field.name} has {len(values)} values but the shape holds only {count} elements"
        )
    if len(values) == 0:
        return _zeros(dtype, np_dtype, count)
    out = np.empty(count, dtype=np_dtype)
    out[: len(values)] = values
    out[len(values) :] = values[-1]  # Matches TF: fewer values than elements repeat the last.
    return out


def _zeros(dtype: dtypes.DType, np_dtype: np.dtype, count: int) -> np.ndarray:
    if dtype == dtypes.string:
        return np.full(count, b"", dtype=object)
    if dtype in _MESSAGE_CLASSES:
        out = np.empty(count, dtype=object)
        out[:] = [_MESSAGE_CLASSES[dtype]() for _ in range(count)]
        return out
    return np.zeros(count, dtype=np_dtype)


# --- ndarray / Python values -> TensorProto ----------------------------------------------------


def make_tensor_proto(
    values: Any,
    dtype: Any = None,
    shape: Sequence[int] | None = None,
    verify_shape: bool = False,
    allow_broadcast: bool = False,
) -> Any:
    """Creates a ``TensorProto`` the way ``tf.make_tensor_proto`` does.

    Python values are converted as TF converts them (floats to float32, ints to int32 when
    they fit, str to UTF-8 bytes); numpy arrays keep their dtype unless ``dtype`` is given.
    With ``shape``, ``values`` may hold fewer elements than the shape (a fill: the last value
    repeats when read back).  Resource/variant tensors (an extension over TF) take sequences of
    ``ResourceHandleProto`` / ``VariantTensorDataProto`` messages.

    Args:
        values: a Python scalar or (nested) list, a numpy array or scalar, or a TensorProto
            (returned unchanged).
        dtype: anything :func:`gpugraph.dtypes.as_dtype` accepts, or None to infer.
        shape: the tensor's shape, or None for the shape of ``values``.
        verify_shape: require ``values`` to have exactly ``shape``.
        allow_broadcast: allow a scalar or one-element ``values`` for any ``shape``.

    Raises:
        TypeError: values incompatible with ``dtype``, or a shape mismatch under
            ``verify_shape``/``allow_broadcast`` (as TF).
        ValueError: None values, ragged lists, or more values than ``shape`` holds (as TF).
        UnimplementedError: quantized dtypes.
    """
    if allow_broadcast and verify_shape:
        raise ValueError("allow_broadcast and verify_shape are not both allowed.")
    if isinstance(values, pb.TensorProto):
        return values
    target = dtypes.as_dtype(dtype) if dtype is not None else None
    if target is not None and target.is_quantized:
        raise UnimplementedError(
            None,
            None,
            f"make_tensor_proto: quantized dtype {target.name} is not supported",
            {"dtype": target.name},
        )
    if target is not None and target.base_dtype in _MESSAGE_CLASSES:
        return _message_tensor_proto(values, target.base_dtype, shape)
    array = _to_ndarray(values, target, shape)
    value_dtype = dtypes.as_dtype(array.dtype)
    if target is not None and target.base_dtype != value_dtype.base_dtype:
        raise TypeError(f"`dtype` {target} is not compatible with {values} of dtype {array.dtype}.")
    full_shape, same_size = _target_shape(array, shape, verify_shape, allow_broadcast)
    proto = pb.TensorProto(
        dtype=value_dtype.as_datatype_enum, tensor_shape=shape_to_proto(full_shape)
    )
    if same_size and value_dtype in _CONTENT_DTYPES and array.size > 1:
        proto.tensor_content = _to_little_endian(array)
    elif value_dtype == dtypes.string and not isinstance(values, np.ndarray):
        # From the original values, not the array: numpy strips trailing NULs of bytes.
        proto.string_val.extend(_as_bytes(v) for v in _flatten(values))
    else:
        _fill_field(proto, value_dtype, array.reshape(-1))
    return proto


def _fill_field(proto: Any, dtype: dtypes.DType, flat: np.ndarray) -> None:
    field = _FIELDS[dtype]
    content = field.encode(flat)
    if isinstance(content, bytes):
        setattr(proto, field.name, content)
    else:
        getattr(proto, field.name).extend(content)


def _to_ndarray(values: Any, target: dtypes.DType | None, shape: Sequence[int] | None) -> Any:
    np_type = target.as_numpy_dtype if target is not None else None
    if _is_array_like(values):
        array = np.asarray(values)
        return array.astype(np_type) if np_type is not None else array
    if values is None:
        raise ValueError("None values not supported.")
    if shape is not None and math.prod(int(d) for d in shape) == 0:
        array = np.empty([int(d) for d in shape], dtype=np_type)
    else:
        _check_compatible(values, target)
        array = np.array(values, dtype=np_type)
        dense = _dense_dims(values)
        if list(array.shape) != dense:
            raise ValueError(
                f"Expected values {values} to be a dense tensor with shape {dense}, but got "
                f"shape {list(array.shape)}."
            )
    return _narrow_python_default(array) if target is None else array


def _narrow_python_default(array: np.ndarray) -> np.ndarray:
    # Matches TF: Python floats become float32, Python ints int32 unless that loses values.
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype == np.int64:
        narrow = array.astype(np.int32)
        if np.array_equal(narrow, array):
            return narrow
    return array


def _is_array_like(obj: Any) -> bool:
    # tensor_util._is_array_like: numpy arrays and scalars, __array__ / __array_interface__
    # objects, and buffers other than bytes (so a bytearray is a uint8 array, as in TF).
    if callable(getattr(obj, "__array__", None)):
        return True
    if isinstance(getattr(obj, "__array_interface__", None), dict):
        return True
    try:
        memoryview(obj)
    except TypeError:
        return False
    return not isinstance(obj, bytes)


def _dense_dims(values: Any) -> list[int]:
    if not isinstance(values, (list, tuple)):
        return []
    if not values:
        return [0]
    return [len(values), *_dense_dims(values[0])]


def _flatten(values: Any) -> Iterator[Any]:
    if isinstance(values, (list, tuple)):
        for item in values:
            yield from _flatten(item)
    else:
        yield values


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"Expected binary or unicode string, got {value!r}")


# (Python types, numpy scalar types) each kind of dtype accepts (tensor_util._TF_TO_IS_OK).
_INTEGRAL = ((numbers.Integral,), (np.integer,))
_REAL = ((numbers.Real,), (np.integer, np.floating))
_COMPLEX = ((numbers.Complex,), (np.number,))
_TEXT = ((bytes, str), (np.bytes_, np.str_))
_BOOL = ((bool,), (np.bool_,))


def _accepted_types(target: dtypes.DType) -> tuple[tuple, tuple] | None:
    if target.is_bool:
        return _BOOL
    if target.is_integer:
        return _INTEGRAL
    if target.is_floating:
        return _REAL
    if target.is_complex:
        return _COMPLEX
    if target.base_dtype == dtypes.string:
        return _TEXT
    return None


def _check_compatible(values: Any, target: dtypes.DType | None) -> None:
    accepted = _accepted_types(target) if target is not None else None
    if accepted is None:
        return
    python_types, numpy_types = accepted
    for leaf in _flatten(values):
        ok = isinstance(leaf, python_types + numpy_types) or (
            isinstance(leaf, np.ndarray) and issubclass(leaf.dtype.type, numpy_types)
        )
        if not ok:
            raise TypeError(
                f"Expected {target.name}, but got {leaf} of type '{type(leaf).__name__}'."
            )


def _target_shape(
    array: np.ndarray, shape: Sequence[int] | None, verify_shape: bool, allow_broadcast: bool
) -> tuple[tuple[int, ...], bool]:
    """Returns (the proto's shape, whether ``array`` fills it exactly), checking as TF does."""
    if shape is None:
        return array.shape, True
    full = tuple(int(d) for d in shape)
    size = math.prod(full)
    if allow_broadcast:
        if array.shape not in ((1,), ()) and array.size != size:
            raise TypeError(f"Expected Tensor's shape: {full}, but got {array.shape}.")
    else:
        if verify_shape and array.shape != full:
            raise TypeError(f"Expected Tensor's shape: {full}, but got {array.shape}.")
        if array.size > size:
            raise ValueError(
                f"Too many elements provided. Takes at most {size:d}, but got {array.size:d}."
            )
    return full, size == array.size


def _message_tensor_proto(values: Any, dtype: dtypes.DType, shape: Sequence[int] | None) -> Any:
    cls = _MESSAGE_CLASSES[dtype]
    if isinstance(values, cls):
        array = np.empty((), dtype=object)
        array[()] = values
    else:
        array = np.asarray(values, dtype=object)
    for item in array.reshape(-1):
        if not isinstance(item, cls):
            raise TypeError(
                f"Expected {cls.DESCRIPTOR.name} values for a {dtype.name} tensor, "
                f"got {type(item).__name__}: {item!r}"
            )
    full_shape, _ = _target_shape(array, shape, verify_shape=False, allow_broadcast=False)
    proto = pb.TensorProto(dtype=dtype.as_datatype_enum, tensor_shape=shape_to_proto(full_shape))
    _fill_field(proto, dtype, array.reshape(-1))
    return proto


__all__ = ["make_ndarray", "make_tensor_proto", "shape_from_proto", "shape_to_proto"]
