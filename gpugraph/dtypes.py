"""TensorFlow ``DataType`` <-> numpy: the one table, mirroring ``tf.dtypes``.

Every fact about a dtype (its enum value, TF name, numpy type, kind) lives in :data:`_ROWS`;
the :class:`DType` properties, the lookup tables behind :func:`as_dtype` and the module
constants (``float32``, ``float32_ref``, ...) are all derived from it.

Numpy mapping:

* bfloat16, the float8/float4 types and int4/uint4/int2/uint2 come from ``ml_dtypes`` (the same
  types TF itself uses), so their bit layouts match TF's.
* ``string`` maps to numpy ``object`` arrays holding ``bytes``; ``resource`` and ``variant`` to
  ``object`` arrays of opaque handles (TF has no numpy type for them at all).
* ``*_ref`` types map to their base type's numpy type, as in TF.
* Quantized types (``qint8`` ...) exist so graphs that mention them import, but gpugraph has no
  numpy representation for them: asking for one raises :class:`~gpugraph.errors.UnimplementedError`.
"""

from __future__ import annotations

import builtins
import operator
from typing import Any, NamedTuple

import ml_dtypes
import numpy as np

from gpugraph import errors

_REF_OFFSET = 100  # DT_FOO_REF == DT_FOO + 100 (types.proto)

# Kinds; each drives the is_* predicates and min/max.
_FLOAT = "float"
_SINT = "int"
_UINT = "uint"
_COMPLEX = "complex"
_BOOL = "bool"
_STRING = "string"
_OPAQUE = "opaque"  # resource, variant: handles with no numeric value
_QUANT = "quantized"


class _Row(NamedTuple):
    enum: int
    name: str
    kind: str
    # numpy scalar type; for quantized types this is only the storage type (for ``size``),
    # never handed out, and for string/opaque types it is np.object_.
    np_type: type


_ROWS: tuple[_Row, ...] = (
    _Row(1, "float32", _FLOAT, np.float32),
    _Row(2, "float64", _FLOAT, np.float64),
    _Row(3, "int32", _SINT, np.int32),
    _Row(4, "uint8", _UINT, np.uint8),
    _Row(5, "int16", _SINT, np.int16),
    _Row(6, "int8", _SINT, np.int8),
    _Row(7, "string", _STRING, np.object_),
    _Row(8, "complex64", _COMPLEX, np.complex64),
    _Row(9, "int64", _SINT, np.int64),
    _Row(10, "bool", _BOOL, np.bool_),
    _Row(11, "qint8", _QUANT, np.int8),
    _Row(12, "quint8", _QUANT, np.uint8),
    _Row(13, "qint32", _QUANT, np.int32),
    _Row(14, "bfloat16", _FLOAT, ml_dtypes.bfloat16),
    _Row(15, "qint16", _QUANT, np.int16),
    _Row(16, "quint16", _QUANT, np.uint16),
    _Row(17, "uint16", _UINT, np.uint16),
    _Row(18, "complex128", _COMPLEX, np.complex128),
    _Row(19, "float16", _FLOAT, np.float16),
    _Row(20, "resource", _OPAQUE, np.object_),
    _Row(21, "variant", _OPAQUE, np.object_),
    _Row(22, "uint32", _UINT, np.uint32),
    _Row(23, "uint64", _UINT, np.uint64),
    _Row(24, "float8_e5m2", _FLOAT, ml_dtypes.float8_e5m2),
    _Row(25, "float8_e4m3fn", _FLOAT, ml_dtypes.float8_e4m3fn),
    _Row(26, "float8_e4m3fnuz", _FLOAT, ml_dtypes.float8_e4m3fnuz),
    _Row(27, "float8_e4m3b11fnuz", _FLOAT, ml_dtypes.float8_e4m3b11fnuz),
    _Row(28, "float8_e5m2fnuz", _FLOAT, ml_dtypes.float8_e5m2fnuz),
    _Row(29, "int4", _SINT, ml_dtypes.int4),
    _Row(30, "uint4", _UINT, ml_dtypes.uint4),
    _Row(31, "int2", _SINT, ml_dtypes.int2),
    _Row(32, "uint2", _UINT, ml_dtypes.uint2),
    _Row(33, "float4_e2m1fn", _FLOAT, ml_dtypes.float4_e2m1fn),
)

# Non-canonical names ``tf.as_dtype`` also accepts (dtypes.py ``_STRING_TO_TF``), each with a
# ``_ref`` twin.
_NAME_ALIASES = {"half": "float16", "float": "float32", "double": "float64"}


class DType:
    """The type of a tensor's elements (``tf.DType``).

    Instances are immutable and interned by :func:`as_dtype`; compare them with ``==``, which
    also accepts anything :func:`as_dtype` accepts (``gg.float32 == "float32"`` is True).
    """

    __slots__ = ("_enum", "_row")

    def __init__(self, type_enum: int):
        enum = operator.index(type_enum)
        row = _ROW_BY_ENUM.get(enum - _REF_OFFSET if enum > _REF_OFFSET else enum)
        if row is None:
            raise TypeError(f"{type_enum!r} is not a valid DataType enum value.")
        object.__setattr__(self, "_enum", enum)
        object.__setattr__(self, "_row", row)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"DType is immutable; cannot set {key!r}")

    # --- identity -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """TF's name: ``"float32"``, ``"float32_ref"``, ..."""
        return self._row.name + ("_ref" if self.is_ref_dtype else "")

    @property
    def as_datatype_enum(self) -> int:
        """The ``DataType`` enum value (``DT_FLOAT`` == 1, ``DT_FLOAT_REF`` == 101)."""
        return self._enum

    @property
    def is_ref_dtype(self) -> builtins.bool:
        """True for the TF1 reference types (``float32_ref``)."""
        return self._enum > _REF_OFFSET

    _is_ref_dtype = is_ref_dtype  # TF's spelling

    @property
    def as_ref(self) -> DType:
        """The reference type of this type (itself if already one)."""
        return self if self.is_ref_dtype else _INTERN[self._enum + _REF_OFFSET]

    _as_ref = as_ref  # TF's spelling

    @property
    def base_dtype(self) -> DType:
        """The non-reference type of this type (itself if not a reference)."""
        return _INTERN[self._enum - _REF_OFFSET] if self.is_ref_dtype else self

    @property
    def real_dtype(self) -> DType:
        """float32/float64 for complex64/complex128; this type itself otherwise (as in TF)."""
        if self._row.kind == _COMPLEX:
            return float32 if self._row.name == "complex64" else float64
        return self

    # --- numpy -----------------------------------------------------------------------------

    @property
    def as_numpy_dtype(self) -> type:
        """The numpy scalar type (``np.float32``, ``ml_dtypes.bfloat16``, ``np.object_``).

        Raises:
            UnimplementedError: for quantized types, which gpugraph cannot represent.
        """
        if self._row.kind == _QUANT:
            raise errors.UnimplementedError(
                None,
                None,
                f"Quantized dtype {self.name} has no numpy representation in gpugraph; "
                "graphs using it can be imported but its values cannot be read or computed.",
                {"dtype": self.name},
            )
        return self._row.np_type

    @property
    def is_numpy_compatible(self) -> builtins.bool:
        """Whether :attr:`as_numpy_dtype` gives a type whose arrays hold real values.

        False for resource/variant (object arrays of opaque handles) and for quantized types.
        """
        return self._row.kind not in (_OPAQUE, _QUANT)

    @property
    def size(self) -> int:
        """Bytes per element; 0 for string, resource and variant (as in TF)."""
        if self._row.kind in (_STRING, _OPAQUE):
            return 0
        return np.dtype(self._row.np_type).itemsize

    # --- kind predicates -------------------------------------------------------------------

    @property
    def is_floating(self) -> builtins.bool:
        """True for float16/32/64, bfloat16 and the float8/float4 types."""
        return self._row.kind == _FLOAT

    @property
    def is_integer(self) -> builtins.bool:
        """True for the (non-quantized) signed and unsigned integer types."""
        return self._row.kind in (_SINT, _UINT)

    @property
    def is_unsigned(self) -> builtins.bool:
        """True for uint8/16/32/64, uint4 and uint2 (not for quint*, as in TF)."""
        return self._row.kind == _UINT

    @property
    def is_complex(self) -> builtins.bool:
        """True for complex64 and complex128."""
        return self._row.kind == _COMPLEX

    @property
    def is_bool(self) -> builtins.bool:
        """True for bool."""
        return self._row.kind == _BOOL

    @property
    def is_quantized(self) -> builtins.bool:
        """True for qint8, quint8, qint16, quint16 and qint32."""
        return self._row.kind == _QUANT

    @property
    def min(self) -> Any:
        """The smallest finite value of a real numeric type (TypeError otherwise)."""
        return self._limits("minimum").min

    @property
    def max(self) -> Any:
        """The largest finite value of a real numeric type (TypeError otherwise)."""
        return self._limits("maximum").max

    def _limits(self, what: str) -> Any:
        if self._row.kind == _FLOAT:
            return ml_dtypes.finfo(self._row.np_type)
        if self._row.kind in (_SINT, _UINT):
            return ml_dtypes.iinfo(self._row.np_type)
        kind = "quantized type" if self.is_quantized else "type"
        raise TypeError(f"Cannot find {what} value of {self} with {kind} {self.base_dtype}.")

    def is_compatible_with(self, other: Any) -> builtins.bool:
        """True if a tensor of ``other``'s type converts implicitly to this type (TF1 refs)."""
        other = as_dtype(other)
        return self._enum in (other._enum, other.base_dtype._enum)

    # --- dunder ----------------------------------------------------------------------------

    def __eq__(self, other: object) -> builtins.bool:
        if other is None:
            return False
        if not isinstance(other, DType):
            try:
                other = as_dtype(other)
            except TypeError:
                return False
        return self._enum == other._enum

    def __ne__(self, other: object) -> builtins.bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self._enum)

    def __repr__(self) -> str:
        return f"gg.{self.name}"

    def __str__(self) -> str:
        return f"<dtype: {self.name!r}>"

    def __reduce__(self) -> tuple:
        return as_dtype, (self.name,)


_ROW_BY_ENUM: dict[int, _Row] = {row.enum: row for row in _ROWS}
_INTERN: dict[int, DType] = {
    enum: DType(enum) for row in _ROWS for enum in (row.enum, row.enum + _REF_OFFSET)
}


def _build_name_table() -> dict[str, DType]:
    table = {dt.name: dt for dt in _INTERN.values()}
    for alias, canonical in _NAME_ALIASES.items():
        table[alias] = table[canonical]
        table[alias + "_ref"] = table[canonical + "_ref"]
    return table


def _build_numpy_table() -> dict[type, DType]:
    # Keyed by numpy scalar type, as TF's _NP_TO_TF: np.dtype(x).type finds the entry.
    table: dict[Any, DType] = {
        row.np_type: _INTERN[row.enum] for row in _ROWS if row.kind not in (_QUANT, _OPAQUE)
    }
    table[np.bytes_] = table[np.str_] = table[np.object_]
    # Platform types (np.longlong, np.uint, ...) are distinct scalar types that only compare
    # equal to the fixed-width ones; map each to its fixed-width twin.
    for platform_type in (np.intc, np.uintc, np.int_, np.uint, np.longlong, np.ulonglong):
        if platform_type not in table:
            fixed = next(t for t in table if np.dtype(t) == np.dtype(platform_type))
            table[platform_type] = table[fixed]
    # numpy 2's variable-width strings: StringDType().type is the builtin str, which TF does
    # not accept, so this one is keyed by the dtype's class.
    table[np.dtypes.StringDType] = table[np.object_]
    return table


_BY_NAME = _build_name_table()
_BY_NUMPY = _build_numpy_table()
_BY_PYTHON_TYPE = {
    builtins.float: _BY_NAME["float32"],
    builtins.bool: _BY_NAME["bool"],
    builtins.object: _BY_NAME["string"],
}


def as_dtype(type_value: Any) -> DType:
    """Converts ``type_value`` to a :class:`DType` (``tf.as_dtype``).

    Accepts a DType, a ``DataType`` enum value, a TF name (``"float32"``, ``"float"``,
    ``"half"``, ``"float32_ref"``), a numpy dtype or scalar type (including ``ml_dtypes``
    types and string dtypes), anything with a numpy ``.dtype``, or the Python types
    ``float``/``bool``/``object``, exactly the inputs ``tf.as_dtype`` accepts.

    Raises:
        TypeError: ``type_value`` names no dtype (message as in TF).
    """
    if isinstance(type_value, DType):
        return _INTERN[type_value.as_datatype_enum]
    if isinstance(type_value, np.dtype):
        found = _BY_NUMPY.get(type_value.type) or _BY_NUMPY.get(type(type_value))
        if found is not None:
            return found
    found = _lookup(type_value)
    if found is not None:
        return found
    if hasattr(type_value, "dtype"):
        try:
            found = _BY_NUMPY.get(np.dtype(type_value.dtype).type)
        except TypeError:
            found = None
        if found is not None:
            return found
    raise TypeError(
        f"Cannot convert the argument `type_value`: {type_value!r} to a TensorFlow DType."
    )


def _lookup(type_value: Any) -> DType | None:
    # TF does one dict lookup over enums, names, Python types and numpy types; splitting it by
    # the input's type gives the same answers (True == 1 finds float32 in both).
    if isinstance(type_value, str):
        return _BY_NAME.get(type_value)
    if isinstance(type_value, (int, np.integer)):
        return _INTERN.get(int(type_value))
    if isinstance(type_value, type):
        return _BY_PYTHON_TYPE.get(type_value) or _BY_NUMPY.get(type_value)
    return None


def _pair(name: str) -> tuple[DType, DType]:
    dt = _BY_NAME[name]
    return dt, dt.as_ref


float16, float16_ref = _pair("float16")
half, half_ref = float16, float16_ref
bfloat16, bfloat16_ref = _pair("bfloat16")
float32, float32_ref = _pair("float32")
float64, float64_ref = _pair("float64")
double, double_ref = float64, float64_ref
int8, int8_ref = _pair("int8")
int16, int16_ref = _pair("int16")
int32, int32_ref = _pair("int32")
int64, int64_ref = _pair("int64")
uint8, uint8_ref = _pair("uint8")
uint16, uint16_ref = _pair("uint16")
uint32, uint32_ref = _pair("uint32")
uint64, uint64_ref = _pair("uint64")
# TF's name; inside this module the builtin is spelled builtins.bool.
bool, bool_ref = _pair("bool")  # noqa: A001
complex64, complex64_ref = _pair("complex64")
complex128, complex128_ref = _pair("complex128")
string, string_ref = _pair("string")
resource, resource_ref = _pair("resource")
variant, variant_ref = _pair("variant")
qint8, qint8_ref = _pair("qint8")
quint8, quint8_ref = _pair("quint8")
qint16, qint16_ref = _pair("qint16")
quint16, quint16_ref = _pair("quint16")
qint32, qint32_ref = _pair("qint32")
float8_e5m2, float8_e5m2_ref = _pair("float8_e5m2")
float8_e4m3fn, float8_e4m3fn_ref = _pair("float8_e4m3fn")
float8_e4m3fnuz, float8_e4m3fnuz_ref = _pair("float8_e4m3fnuz")
float8_e4m3b11fnuz, float8_e4m3b11fnuz_ref = _pair("float8_e4m3b11fnuz")
float8_e5m2fnuz, float8_e5m2fnuz_ref = _pair("float8_e5m2fnuz")
float4_e2m1fn, float4_e2m1fn_ref = _pair("float4_e2m1fn")
int4, int4_ref = _pair("int4")
uint4, uint4_ref = _pair("uint4")
int2, int2_ref = _pair("int2")
uint2, uint2_ref = _pair("uint2")

ALL_DTYPES: tuple[DType, ...] = tuple(_INTERN[row.enum] for row in _ROWS)
"""Every non-reference DType, in enum order."""

QUANTIZED_DTYPES = frozenset(dt for dt in _INTERN.values() if dt.is_quantized)
"""The quantized DTypes and their reference twins (``tf.dtypes.QUANTIZED_DTYPES``)."""

__all__ = [
    "DType",
    "as_dtype",
    "ALL_DTYPES",
    "QUANTIZED_DTYPES",
    "half",
    "half_ref",
    "double",
    "double_ref",
]
__all__ += [dt.name for dt in _INTERN.values()]  # float32, float32_ref, ...


def type_string(dtype: Any) -> str:
    """TF's C++ ``DataTypeString`` ("float", "int64", "float_ref") used in runtime messages."""
    from gpugraph import _proto as pb

    return pb.DataType.Name(as_dtype(dtype).as_datatype_enum)[3:].lower()
