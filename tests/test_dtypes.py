"""gpugraph.dtypes against TensorFlow's own DType table (tests/fixtures/tensors/dtypes.json)."""

from __future__ import annotations

import builtins
import json
import pickle
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from gpugraph import _proto as pb
from gpugraph import dtypes
from gpugraph.errors import UnimplementedError

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "tensors" / "dtypes.json").read_text())
TF_DTYPES = FIXTURE["dtypes"]
TF_PROBES = FIXTURE["as_dtype"]

_PLATFORM_TYPES = ("longlong", "ulonglong", "intc", "uintc")


def probe_input(kind: str, spelling):
    """Rebuilds an ``as_dtype`` input from its fixture spelling (see make_tensor_fixtures.py)."""
    if kind in ("name", "enum"):
        return spelling
    if kind == "numpy_dtype":
        return np.dtype(getattr(np, spelling) if spelling in _PLATFORM_TYPES else spelling)
    if kind == "numpy_type":
        return getattr(np, spelling)
    if kind == "ml_dtypes":
        return getattr(ml_dtypes, spelling)
    if kind == "python":
        return getattr(builtins, spelling)
    return np.zeros(2, dtype=spelling)


def _ids(rows, key):
    return [str(row[key]) for row in rows]


# --- the table against TF -------------------------------------------------------------------


def test_fixture_covers_every_datatype_enum_value():
    enum_values = {v for _, v in pb.DataType.items()} - {pb.DataType.Value("DT_INVALID")}
    assert {row["enum"] for row in TF_DTYPES} == enum_values


@pytest.mark.parametrize("tf_row", TF_DTYPES, ids=_ids(TF_DTYPES, "name"))
def test_dtype_properties_match_tf(tf_row):
    dt = dtypes.as_dtype(tf_row["enum"])
    assert dt.name == tf_row["name"]
    assert dt.as_datatype_enum == tf_row["enum"]
    assert str(dt) == tf_row["str"].replace("tf.", "")
    assert repr(dt) == f"gg.{tf_row['name']}"
    assert dt.size == tf_row["size"]
    for flag in (
        "is_floating",
        "is_integer",
        "is_complex",
        "is_bool",
        "is_quantized",
        "is_unsigned",
    ):
        assert getattr(dt, flag) == tf_row[flag], flag
    assert dt.is_ref_dtype == dt._is_ref_dtype == tf_row["is_ref"]
    assert dt.real_dtype.name == tf_row["real_dtype"]
    assert dt.base_dtype.name == tf_row["base_dtype"]
    assert dt.as_ref.name == dt._as_ref.name == tf_row["as_ref"]


@pytest.mark.parametrize("tf_row", TF_DTYPES, ids=_ids(TF_DTYPES, "name"))
def test_min_max_match_tf(tf_row):
    dt = dtypes.as_dtype(tf_row["enum"])
    for attr in ("min", "max"):
        expected = tf_row[attr]
        if "error" in expected:
            with pytest.raises(TypeError, match=f"Cannot find .* value of <dtype: '{dt.name}'>"):
                getattr(dt, attr)
        else:
            value = getattr(dt, attr)
            assert repr(float(value)) == expected["value"] or value == expected["value"], attr


@pytest.mark.parametrize("tf_row", TF_DTYPES, ids=_ids(TF_DTYPES, "name"))
def test_numpy_type_matches_tf(tf_row):
    dt = dtypes.as_dtype(tf_row["enum"])
    if dt.is_quantized:  # TF uses structured dtypes; gpugraph refuses (see the next test)
        return
    if dt.base_dtype in (dtypes.resource, dtypes.variant):  # TF has none; gpugraph: object
        assert dt.as_numpy_dtype is np.object_
        return
    assert np.dtype(dt.as_numpy_dtype).name == tf_row["numpy"]["value"]


@pytest.mark.parametrize("probe", TF_PROBES, ids=[f"{p['kind']}-{p['input']}" for p in TF_PROBES])
def test_as_dtype_matches_tf(probe):
    value = probe_input(probe["kind"], probe["input"])
    if "error" in probe:
        with pytest.raises(TypeError) as info:
            dtypes.as_dtype(value)
        assert str(info.value) == probe["error"]
    else:
        assert dtypes.as_dtype(value).name == probe["result"]


# --- the table itself -------------------------------------------------------------------------


def test_every_enum_round_trips_through_name_and_proto_enum_name():
    for name, enum in pb.DataType.items():
        if name == "DT_INVALID":
            continue
        dt = dtypes.as_dtype(enum)
        assert dtypes.as_dtype(dt.name) is dt
        assert dtypes.as_dtype(dt) is dt
        assert dtypes.DType(enum) == dt
        expected = name[3:].lower().replace("_ref", "")
        aliases = {"float": "float32", "double": "float64", "half": "float16"}
        assert dt.base_dtype.name == aliases.get(expected, expected)


def test_refs_map_to_base():
    for dt in dtypes.ALL_DTYPES:
        ref = dt.as_ref
        assert ref.is_ref_dtype and not dt.is_ref_dtype
        assert ref.as_datatype_enum == dt.as_datatype_enum + 100
        assert ref.base_dtype is dt and ref.as_ref is ref and dt.base_dtype is dt
        if not dt.is_quantized:
            assert ref.as_numpy_dtype is dt.as_numpy_dtype
        assert ref != dt
        assert dt.is_compatible_with(ref) and not ref.is_compatible_with(dt)


def test_module_constants():
    assert dtypes.half is dtypes.float16 and dtypes.double is dtypes.float64
    assert dtypes.half_ref is dtypes.float16_ref and dtypes.double_ref is dtypes.float64_ref
    for dt in dtypes.ALL_DTYPES:
        assert getattr(dtypes, dt.name) is dt
        assert getattr(dtypes, dt.name + "_ref") is dt.as_ref
        assert dt.name in dtypes.__all__ and dt.name + "_ref" in dtypes.__all__
    assert [dt.as_datatype_enum for dt in dtypes.ALL_DTYPES] == list(range(1, 34))


@pytest.mark.parametrize(
    ("dt", "np_type"),
    [
        (dtypes.bfloat16, ml_dtypes.bfloat16),
        (dtypes.float8_e5m2, ml_dtypes.float8_e5m2),
        (dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fn),
        (dtypes.float8_e4m3fnuz, ml_dtypes.float8_e4m3fnuz),
        (dtypes.float8_e4m3b11fnuz, ml_dtypes.float8_e4m3b11fnuz),
        (dtypes.float8_e5m2fnuz, ml_dtypes.float8_e5m2fnuz),
        (dtypes.float4_e2m1fn, ml_dtypes.float4_e2m1fn),
        (dtypes.int4, ml_dtypes.int4),
        (dtypes.uint4, ml_dtypes.uint4),
        (dtypes.int2, ml_dtypes.int2),
        (dtypes.uint2, ml_dtypes.uint2),
        (dtypes.float16, np.float16),
        (dtypes.bool, np.bool_),
        (dtypes.string, np.object_),
        (dtypes.resource, np.object_),
        (dtypes.variant, np.object_),
    ],
)
def test_numpy_mapping(dt, np_type):
    assert dt.as_numpy_dtype is np_type
    assert dt.as_ref.as_numpy_dtype is np_type
    if dt not in (dtypes.resource, dtypes.variant):
        assert dtypes.as_dtype(np.dtype(np_type)) is dt
        assert dtypes.as_dtype(np_type) is dt
    assert dt.is_numpy_compatible == (dt not in (dtypes.resource, dtypes.variant))


def test_bfloat16_bit_layout_is_upper_half_of_float32():
    value = np.array([1.0, 3.140625], dtype=dtypes.bfloat16.as_numpy_dtype)
    assert value.view(np.uint16).tolist() == [0x3F80, 0x4049]


@pytest.mark.parametrize("dt", sorted(dtypes.QUANTIZED_DTYPES, key=lambda d: d.as_datatype_enum))
def test_quantized_types_exist_but_have_no_numpy_type(dt):
    assert dt.is_quantized and not dt.is_numpy_compatible
    assert dtypes.as_dtype(dt.name) is dt
    with pytest.raises(UnimplementedError, match=f"Quantized dtype {dt.name} "):
        dt.as_numpy_dtype  # noqa: B018


def test_quantized_set_is_the_five_types_and_their_refs():
    names = {dt.name for dt in dtypes.QUANTIZED_DTYPES}
    base = {"qint8", "quint8", "qint16", "quint16", "qint32"}
    assert names == base | {n + "_ref" for n in base}


# --- as_dtype inputs and equality ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("float", dtypes.float32),
        ("half_ref", dtypes.float16_ref),
        (1, dtypes.float32),
        (np.int64(3), dtypes.int32),
        (119, dtypes.float16_ref),
        (np.float64, dtypes.float64),
        (np.dtype("<U7"), dtypes.string),
        (np.dtype("S2"), dtypes.string),
        (np.dtypes.StringDType(), dtypes.string),
        (np.zeros(3, dtype=ml_dtypes.bfloat16), dtypes.bfloat16),
        (np.float32(1.0), dtypes.float32),
        (float, dtypes.float32),
        (bool, dtypes.bool),
        (object, dtypes.string),
    ],
)
def test_as_dtype_inputs(value, expected):
    assert dtypes.as_dtype(value) is expected


@pytest.mark.parametrize(
    "junk", [None, "junk", 0, 100, 134, [1], int, str, complex, 1.5, np.dtype([("a", np.int8)])]
)
def test_as_dtype_rejects_junk_like_tf(junk):
    with pytest.raises(
        TypeError,
        match=r"Cannot convert the argument `type_value`: .* to a "
        r"TensorFlow DType\.",
    ):
        dtypes.as_dtype(junk)


def test_equality_and_hash():
    assert dtypes.float32 == "float32" == dtypes.float32
    assert dtypes.float32 == "float" and dtypes.float32 == 1 and dtypes.float32 == np.float32
    assert np.float32 == dtypes.float32
    assert dtypes.float32 != dtypes.float32_ref
    assert dtypes.float32 != "junk"
    assert dtypes.float32 != None  # noqa: E711
    assert not (dtypes.float32 != "float32")
    assert {dtypes.float32: 1}[dtypes.as_dtype("float")] == 1
    assert hash(dtypes.DType(1)) == hash(dtypes.float32)


def test_dtype_is_immutable_and_picklable():
    with pytest.raises(AttributeError, match="immutable"):
        dtypes.float32.foo = 1
    assert pickle.loads(pickle.dumps(dtypes.int4_ref)) is dtypes.int4_ref


def test_invalid_enum_in_constructor():
    with pytest.raises(TypeError, match="not a valid DataType"):
        dtypes.DType(0)
    with pytest.raises(TypeError, match="not a valid DataType"):
        dtypes.DType(150)


def test_limits_for_numpy_types():
    assert (dtypes.uint4.min, dtypes.uint4.max, dtypes.int2.min, dtypes.int2.max) == (0, 15, -2, 1)
    assert dtypes.float32.max == np.finfo(np.float32).max
    assert float(dtypes.bfloat16.max) == float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
    with pytest.raises(TypeError, match="quantized type"):
        dtypes.qint8.min  # noqa: B018
