"""Generate the real-TensorFlow fixtures for gpugraph's dtype and TensorProto tests.

gpugraph never imports TensorFlow; this script is the only place that does.  It rewrites two
JSON files under ``tests/fixtures/tensors/``:

``tensor_cases.json``
    ``{"tensorflow": version, "cases": [case, ...]}``.  Each case is one TensorProto:

    * ``id``: a unique name; ``source``: ``"make_tensor_proto"`` (TF built it from ``call``) or
      ``"hand"`` (parsed from the text-format ``text``, to cover encodings TF's Python writer never
      produces: short repeated fields, string ``tensor_content``, float8_val, ...).
    * ``call``: ``{"values": VALUE, "dtype": TF name or null, "shape": list or null}``, the
      ``tf.make_tensor_proto`` arguments (VALUE encoding below).
    * ``proto``: base64 of TF's ``SerializeToString(deterministic=True)``, so a writer can be
      compared byte for byte.
    * ``make_ndarray``: ARRAY that ``tf.make_ndarray`` returned, or ``{"error": "..."}``.
    * ``runtime``: ARRAY that a ``Const`` node holding the proto evaluated to in a
      ``tf.compat.v1.Session``, or ``{"error": "..."}``.
    * ``expect``: what gpugraph must reproduce: ``"make_ndarray"``, ``"runtime"`` (where the
      two TF paths disagree or only the runtime succeeds) or ``"error"`` (gpugraph rejects it).

    ARRAY is ``{"dtype": TF name, "shape": [...], "data": base64 of the raw little-endian
    C-order bytes}`` (bfloat16/half as their 16-bit patterns; int4/uint4/int2/uint2 as int8
    values, since TF's paths disagree on the unused high bits of their bytes), or for string arrays
    ``{"dtype": "string", "shape": [...], "items": [base64 per element]}``.

    VALUE is ``{"py": TREE}`` for Python values (TREE is JSON with ``{"bytes": b64}`` for
    bytes and ``{"complex": [re, im]}`` for complex), ``{"ndarray": {"dtype": numpy dtype str,
    "shape": [...], "data": b64}}`` for numpy arrays (``"object"`` arrays use ``"items"``: a
    list of TREEs) and ``{"npscalar": {"dtype": ..., "data": b64}}`` for numpy scalars.

``dtypes.json``
    ``{"dtypes": [...], "as_dtype": [...]}``: every ``DType`` TF defines with its properties
    (name, enum, size, is_* flags, numpy type, min/max, real/base/ref types), and what
    ``tf.as_dtype`` made of a list of probe inputs (``[kind, spelling]``; see ``PROBES``).

Run from the repository root with the TF environment of ``scripts/fixtures_requirements.txt``::

    /work/tfenv/bin/python scripts/make_tensor_fixtures.py

The output is deterministic (fixed values, no randomness).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import base64  # noqa: E402
import builtins  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from tensorflow.core.framework import tensor_pb2  # noqa: E402
from tensorflow.python.framework import dtypes as tf_dtypes  # noqa: E402

tf.disable_v2_behavior()
tf.get_logger().setLevel("ERROR")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "tensors"

NUMERIC = [
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "complex64",
    "complex128",
    "bool",
    "float8_e5m2",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e4m3b11fnuz",
    "float8_e5m2fnuz",
    "float4_e2m1fn",
    "int4",
    "uint4",
    "int2",
    "uint2",
]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------
# Encoding values and arrays as JSON
# ---------------------------------------------------------------------------


def encode_tree(value):
    if isinstance(value, (list, tuple)):
        return [encode_tree(v) for v in value]
    if isinstance(value, bytes):
        return {"bytes": b64(value)}
    if isinstance(value, complex):
        return {"complex": [value.real, value.imag]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot encode {value!r}")


def encode_value(value):
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            items = [encode_tree(v) for v in value.reshape(-1).tolist()]
            return {"ndarray": {"dtype": "object", "shape": list(value.shape), "items": items}}
        return {
            "ndarray": {
                "dtype": value.dtype.str if value.dtype.kind in "SU" else value.dtype.name,
                "shape": list(value.shape),
                "data": b64(np.ascontiguousarray(value).tobytes()),
            }
        }
    if isinstance(value, np.generic):
        return {"npscalar": {"dtype": value.dtype.name, "data": b64(value.tobytes())}}
    return {"py": encode_tree(value)}


SUB_BYTE_INTS = ("int4", "uint4", "int2", "uint2")


def encode_array(array):
    name = tf.as_dtype(array.dtype).name
    if name in SUB_BYTE_INTS:
        # The byte's unused high bits differ between TF's paths (sign-extended or not); only the
        # value is meaningful, so store these as int8 values.
        return {
            "dtype": name,
            "shape": list(array.shape),
            "data": b64(array.astype(np.int8).tobytes()),
        }
    if name == "string":
        items = [b64(v) for v in array.reshape(-1).tolist()]
        return {
            "dtype": name,
            "shape": list(array.shape),
            "items": items,
            "item_types": sorted({type(v).__name__ for v in array.reshape(-1).tolist()}),
        }
    return {
        "dtype": name,
        "shape": list(array.shape),
        "data": b64(np.ascontiguousarray(array).tobytes()),
    }


def error_text(exc):
    first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
    # TF's proto debug strings carry a per-process random marker (goo.gle/debugonly,
    # goo.gle/debugproto, ...); drop it to keep the output deterministic.
    first_line = re.sub(r"goo\.gle/debug\w+\s*", "", first_line)
    return f"{type(exc).__name__}: {first_line}"


# ---------------------------------------------------------------------------
# Evaluating a proto with TF
# ---------------------------------------------------------------------------


def run_const(proto):
    """What a Const node holding ``proto`` evaluates to in a TF1 Session."""
    graph = tf.Graph()
    graph_def = tf.GraphDef()
    node = graph_def.node.add(name="c", op="Const")
    node.attr["dtype"].type = proto.dtype
    node.attr["value"].tensor.CopyFrom(proto)
    try:
        with graph.as_default():
            tf.import_graph_def(graph_def, name="")
        with tf.Session(graph=graph) as sess:
            return encode_array(np.asarray(sess.run("c:0")))
    except Exception as e:  # noqa: BLE001 - recorded, not swallowed
        return {"error": error_text(e)}


def run_make_ndarray(proto):
    try:
        return encode_array(np.asarray(tf.make_ndarray(proto)))
    except Exception as e:  # noqa: BLE001 - recorded
        return {"error": error_text(e)}


def choose_expectation(case):
    """Which TF result gpugraph must match (see the module docstring).

    ``tf.make_ndarray`` when it succeeds: fetching a string *scalar* from a Session goes
    through ``np.bytes_``, which drops trailing NUL bytes, so the runtime result is not exact
    there.  Otherwise the runtime (e.g. string fills with no values, float8_val of the fnuz
    types, string tensor_content, which make_ndarray cannot decode).
    """
    nd, rt = case["make_ndarray"], case["runtime"]
    if "error" not in nd and "error" not in rt and nd != rt:
        print(f"  note {case['id']}: make_ndarray and the runtime disagree: {nd} vs {rt}")
    if "error" not in nd:
        return "make_ndarray"
    return "runtime" if "error" not in rt else "error"


def record(case_id, proto, source, expect=None, **extra):
    case = {
        "id": case_id,
        "source": source,
        **extra,
        "proto": b64(proto.SerializeToString(deterministic=True)),
        "make_ndarray": run_make_ndarray(proto),
        "runtime": run_const(proto),
    }
    case["expect"] = expect or choose_expectation(case)
    return case


# ---------------------------------------------------------------------------
# make_tensor_proto cases
# ---------------------------------------------------------------------------


def sample_values(name):
    """Six values of TF dtype ``name`` covering its range (incl. min/max, -0.0, inf, nan)."""
    np_type = tf.as_dtype(name).as_numpy_dtype
    if name == "bool":
        return np.array([True, False, True, True, False, False])
    if name.startswith("complex"):
        return np.array([1 + 2j, -0.5j, 3.25, np.inf, -0.0, 1e-3 - 7j], dtype=np_type)
    if tf.as_dtype(name).is_floating:
        top = float(ml_dtypes.finfo(np_type).max)
        special = (
            [np.inf, np.nan]
            if name in ("float16", "bfloat16", "float32", "float64")
            else [-top, top / 2]
        )
        return np.array([0.0, -1.5, 2.25, -0.0, *special], dtype=np.float64).astype(np_type)
    info = ml_dtypes.iinfo(np_type)
    values = [info.min, info.max, 0, 1, info.max // 2, max(info.min, -1)]
    return (
        np.array(values, dtype=object)
        .astype(np.int64 if info.min < 0 else np.uint64)
        .astype(np_type)
    )


def python_scalar(name):
    dtype = tf.as_dtype(name)
    if dtype.is_bool:
        return True
    if dtype.is_complex:
        return 1.5 - 2j
    if dtype.is_floating:
        return 1.5
    return 1


def per_dtype_calls():
    calls = []
    for name in NUMERIC:
        values = sample_values(name)
        calls += [
            (f"{name}_2x3", values.reshape(2, 3), None, None),
            (f"{name}_scalar", values[2], None, None),
            (f"{name}_one", values[1:2], None, None),
            (f"{name}_empty", values[:0], None, None),
            (f"{name}_2x0", values[:0].reshape(2, 0), None, None),
            (f"{name}_splat", python_scalar(name), name, [2, 2]),
            (f"{name}_partial", values[:2], None, [5]),
            (f"{name}_as_dtype", [python_scalar(name)] * 3, name, None),
        ]
    return calls


def python_calls():
    return [
        ("py_int_matrix", [[1, 2, 3], [4, 5, 6]], None, None),
        ("py_int_big", [1, 2**40], None, None),
        ("py_int_scalar", 7, None, None),
        ("py_int_big_scalar", 2**40, None, None),
        ("py_float_list", [1.0, 2.5], None, None),
        ("py_float_scalar", 2.5, None, None),
        ("py_bool_matrix", [[True, False]], None, None),
        ("py_bool_scalar", True, None, None),
        ("py_complex_scalar", 1 + 2j, None, None),
        ("py_complex_list", [1 + 2j, 3 - 4j], None, None),
        ("py_empty_list", [], None, None),
        ("py_empty_shaped", [], "float32", [0, 3]),
        ("py_empty_shaped_infer", [], None, [2, 0]),
        ("py_float_fill", 1.0, None, [3, 2]),
        ("py_int_fill_int64", 0, "int64", [4]),
        ("py_half_fill", 0.5, "float16", [3]),
        ("py_bfloat16_fill", 1.0, "bfloat16", [2, 2]),
        ("py_bool_fill", True, None, [3]),
        ("py_complex64_fill", 1 + 1j, "complex64", [2]),
        ("py_uint32_fill", 7, "uint32", [3]),
        ("py_uint64_fill", 7, "uint64", [2]),
        ("py_uint16_fill", 3, "uint16", [2]),
        ("py_partial_list", [1.0, 2.0], "float32", [4]),
        ("py_int_as_float64", [1, 2], "float64", None),
        ("py_float_as_bfloat16", [1.5, 2.5, -3.0], "bfloat16", None),
        ("py_nested_float", [[[1.0], [2.0]], [[3.0], [4.0]]], None, None),
        ("np_int32_as_float32", np.array([1, 2, 3], np.int32), "float32", None),
        ("np_float32_big", np.arange(256, dtype=np.float32) / 7, None, None),
        (
            "np_float32_fortran",
            np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
            None,
            None,
        ),
        ("np_int64_no_narrowing", np.array([1, 2], np.int64), None, None),
        ("np_float64_no_narrowing", np.array([1.0, 2.0]), None, None),
        ("np_float32_scalar_fill", np.float32(2.0), None, [2, 3]),
        ("np_half_scalar_fill", np.float16(1.0), None, [3]),
    ]


def string_calls():
    return [
        ("str_scalar", "abc", None, None),
        ("str_empty_scalar", b"", None, None),
        ("str_nonutf8_scalar", b"\xff\xfe\x00", None, None),
        ("str_unicode_scalar", "h\u00e9llo \u2603", None, None),
        ("str_list_mixed", ["a", "", b"\x00\x01", b"\x7f"], None, None),
        ("str_matrix", [[b"ab", b"c"], [b"", b"\xff\x00"]], None, None),
        ("str_fill", "fill", None, [2, 2]),
        ("str_as_dtype", ["x", "y"], "string", None),
        ("str_np_bytes", np.array([b"a\x00", b"b", b"ccc"]), None, None),
        ("str_np_unicode", np.array(["x", "yz", "\u00e9"]), None, None),
        ("str_np_object", np.array([b"p", "q", b"\x80"], dtype=object), None, None),
        ("str_np_2x0", np.zeros((2, 0), dtype=object), "string", None),
        ("str_long", [b"x" * 200, b"y"], None, None),
    ]


def make_tensor_proto_cases():
    cases = []
    for case_id, values, dtype, shape in per_dtype_calls() + python_calls() + string_calls():
        try:
            proto = tf.make_tensor_proto(values, dtype=dtype, shape=shape)
        except Exception as e:  # noqa: BLE001 - TF cannot make it; nothing to record
            print(f"  skip {case_id}: tf.make_tensor_proto raised {error_text(e)}")
            continue
        call = {"values": encode_value(values), "dtype": dtype, "shape": shape}
        cases.append(record(case_id, proto, "make_tensor_proto", call=call))
    return cases


# ---------------------------------------------------------------------------
# Hand-built protos
# ---------------------------------------------------------------------------


def string_list_content(strings):
    """port::EncodeStringList: varint32 lengths, then the bytes."""
    out = bytearray()
    for s in strings:
        n = len(s)
        while n >> 7:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
    return bytes(out) + b"".join(strings)


def text_bytes(data):
    return "".join(f"\\{b:03o}" for b in data)


BOOL_CONTENT = text_bytes(b"\x00\x01\x01")
FLOAT_1_2 = text_bytes(np.array([1, 2], "<f4").tobytes())
FLOAT_1 = text_bytes(np.array([1], "<f4").tobytes())
COMPLEX_CONTENT = text_bytes(np.array([1 + 2j, -3j], "<c8").tobytes())
UINT16_CONTENT = text_bytes(np.array([1, 65535], "<u2").tobytes())
STRING_CONTENT = text_bytes(string_list_content([b"a", b"", b"xyz", b"q" * 200]))

HAND = [
    # (id, text format, expect override or None)
    ("short_float_val", "dtype: DT_FLOAT tensor_shape {dim {size: 5}} float_val: [1, 2]", None),
    ("no_values_float", "dtype: DT_FLOAT tensor_shape {dim {size: 3}}", None),
    ("no_values_scalar_int64", "dtype: DT_INT64 tensor_shape {}", None),
    ("no_values_bool_2x2", "dtype: DT_BOOL tensor_shape {dim {size: 2} dim {size: 2}}", None),
    ("no_values_half", "dtype: DT_HALF tensor_shape {dim {size: 2}}", None),
    ("no_values_complex64", "dtype: DT_COMPLEX64 tensor_shape {dim {size: 2}}", None),
    ("no_values_string", "dtype: DT_STRING tensor_shape {dim {size: 2}}", None),
    (
        "short_double_val",
        "dtype: DT_DOUBLE tensor_shape {dim {size: 2} dim {size: 2}} double_val: [0.5, -1]",
        None,
    ),
    ("short_int8", "dtype: DT_INT8 tensor_shape {dim {size: 3}} int_val: [-7]", None),
    ("short_uint8", "dtype: DT_UINT8 tensor_shape {dim {size: 3}} int_val: [255, 1]", None),
    ("short_int16", "dtype: DT_INT16 tensor_shape {dim {size: 3}} int_val: [-32768]", None),
    ("short_uint16", "dtype: DT_UINT16 tensor_shape {dim {size: 2}} int_val: [65535]", None),
    (
        "short_int32",
        "dtype: DT_INT32 tensor_shape {dim {size: 2} dim {size: 3}} int_val: [1, 2, 3]",
        None,
    ),
    ("short_int64", "dtype: DT_INT64 tensor_shape {dim {size: 3}} int64_val: [-5]", None),
    (
        "short_uint32",
        "dtype: DT_UINT32 tensor_shape {dim {size: 2}} uint32_val: [4294967295]",
        None,
    ),
    (
        "short_uint64",
        "dtype: DT_UINT64 tensor_shape {dim {size: 3}} uint64_val: [18446744073709551615, 3]",
        None,
    ),
    ("short_bool", "dtype: DT_BOOL tensor_shape {dim {size: 4}} bool_val: [true, false]", None),
    ("short_string", 'dtype: DT_STRING tensor_shape {dim {size: 3}} string_val: ["a", "b"]', None),
    (
        "short_scomplex",
        "dtype: DT_COMPLEX64 tensor_shape {dim {size: 3}} scomplex_val: [1, 2]",
        None,
    ),
    (
        "short_dcomplex",
        "dtype: DT_COMPLEX128 tensor_shape {dim {size: 3}} dcomplex_val: [1, 2, 3, 4]",
        None,
    ),
    ("short_half", "dtype: DT_HALF tensor_shape {dim {size: 3}} half_val: [15360, 16384]", None),
    ("splat_bfloat16", "dtype: DT_BFLOAT16 tensor_shape {dim {size: 2}} half_val: [16256]", None),
    ("short_int4", "dtype: DT_INT4 tensor_shape {dim {size: 3}} int_val: [-3, 7]", None),
    ("short_uint4", "dtype: DT_UINT4 tensor_shape {dim {size: 2}} int_val: [15]", None),
    (
        "content_wins_over_field",
        "dtype: DT_FLOAT tensor_shape {dim {size: 2}} float_val: 9 "
        f'tensor_content: "{FLOAT_1_2}"',
        None,
    ),
    (
        "content_bool",
        f'dtype: DT_BOOL tensor_shape {{dim {{size: 3}}}} tensor_content: "{BOOL_CONTENT}"',
        None,
    ),
    (
        "content_complex64",
        f'dtype: DT_COMPLEX64 tensor_shape {{dim {{size: 2}}}} tensor_content: "{COMPLEX_CONTENT}"',
        None,
    ),
    (
        "content_uint16",
        f'dtype: DT_UINT16 tensor_shape {{dim {{size: 2}}}} tensor_content: "{UINT16_CONTENT}"',
        None,
    ),
    (
        "content_string",
        f'dtype: DT_STRING tensor_shape {{dim {{size: 4}}}} tensor_content: "{STRING_CONTENT}"',
        None,
    ),
    ("empty_2x0", "dtype: DT_FLOAT tensor_shape {dim {size: 2} dim {}}", None),
    ("empty_string_0", "dtype: DT_STRING tensor_shape {dim {}}", None),
    ("ref_dtype_float", "dtype: DT_FLOAT_REF tensor_shape {dim {size: 2}} float_val: 3", None),
    # gpugraph rejects these; TF's two paths are recorded for the record.
    (
        "too_many_values",
        "dtype: DT_FLOAT tensor_shape {dim {size: 2}} float_val: [1, 2, 3]",
        "error",
    ),
    (
        "content_too_short",
        f'dtype: DT_FLOAT tensor_shape {{dim {{size: 3}}}} tensor_content: "{FLOAT_1}"',
        "error",
    ),
    ("unknown_dim", "dtype: DT_FLOAT tensor_shape {dim {size: -1}} float_val: 1", "error"),
    ("unknown_rank", "dtype: DT_FLOAT tensor_shape {unknown_rank: true} float_val: 1", "error"),
]

FLOAT8_TYPES = [
    "float8_e5m2",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e4m3b11fnuz",
    "float8_e5m2fnuz",
    "float4_e2m1fn",
]


def hand_cases():
    specs = list(HAND)
    for name in FLOAT8_TYPES:
        enum = f"DT_{name.upper()}"
        two = np.array([1.0, -2.0], dtype=tf.as_dtype(name).as_numpy_dtype).view(np.uint8)
        specs.append(
            (
                f"float8_val_{name}",
                f"dtype: {enum} tensor_shape {{dim {{size: 4}}}} "
                f'float8_val: "{text_bytes(two.tobytes())}"',
                None,
            )
        )
    cases = []
    for case_id, text, expect in specs:
        proto = text_format.Parse(text, tensor_pb2.TensorProto())
        cases.append(record(case_id, proto, "hand", text=text, expect=expect))
    return cases


# ---------------------------------------------------------------------------
# dtypes.json
# ---------------------------------------------------------------------------

PROBES = [
    *[["name", n] for n in sorted(tf_dtypes._STRING_TO_TF)],  # noqa: SLF001
    ["name", "int"],
    ["name", "junk"],
    ["name", "Float32"],
    ["name", "DT_FLOAT"],
    *[["enum", e] for e in (0, 1, 14, 19, 33, 34, 99, 100, 101, 133, 134, 200, -1)],
    *[
        ["numpy_dtype", s]
        for s in (
            "float16",
            "float32",
            "float64",
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "bool",
            "complex64",
            "complex128",
            "object",
            "S3",
            "U3",
            "V4",
            "datetime64[s]",
            "longlong",
            "ulonglong",
            "intc",
            "uintc",
        )
    ],
    *[
        ["numpy_type", s]
        for s in (
            "float32",
            "int_",
            "uint",
            "longlong",
            "ulonglong",
            "intc",
            "uintc",
            "bytes_",
            "str_",
            "object_",
            "bool_",
            "void",
            "longdouble",
        )
    ],
    *[
        ["ml_dtypes", s]
        for s in (
            "bfloat16",
            "float8_e5m2",
            "float8_e4m3fn",
            "float8_e4m3fnuz",
            "float8_e4m3b11fnuz",
            "float8_e5m2fnuz",
            "float4_e2m1fn",
            "int4",
            "uint4",
            "int2",
            "uint2",
            "float8_e3m4",
        )
    ],
    *[["python", s] for s in ("float", "int", "bool", "object", "str", "bytes", "complex")],
    ["array", "float64"],
    ["array", "uint16"],
]


def probe_input(kind, spelling):
    if kind in ("name", "enum"):
        return spelling
    if kind == "numpy_dtype":
        return np.dtype(
            getattr(np, spelling)
            if spelling in ("longlong", "ulonglong", "intc", "uintc")
            else spelling
        )
    if kind == "numpy_type":
        return getattr(np, spelling)
    if kind == "ml_dtypes":
        return getattr(ml_dtypes, spelling)
    if kind == "python":
        return getattr(builtins, spelling)
    return np.zeros(2, dtype=spelling)


def dtype_facts(dtype):
    def attempt(fn):
        try:
            value = fn()
        except Exception as e:  # noqa: BLE001 - recorded
            return {"error": type(e).__name__}
        if isinstance(value, (np.generic, float)):
            return {"value": repr(float(value))}
        return {"value": value}

    return {
        "enum": dtype.as_datatype_enum,
        "name": dtype.name,
        "str": str(dtype),
        "size": dtype.size,
        "is_floating": dtype.is_floating,
        "is_integer": dtype.is_integer,
        "is_complex": dtype.is_complex,
        "is_bool": dtype.is_bool,
        "is_quantized": dtype.is_quantized,
        "is_unsigned": dtype.is_unsigned,
        "is_ref": dtype._is_ref_dtype,  # noqa: SLF001
        "numpy": attempt(lambda: np.dtype(dtype.as_numpy_dtype).name),
        "min": attempt(lambda: dtype.min),
        "max": attempt(lambda: dtype.max),
        "real_dtype": dtype.real_dtype.name,
        "base_dtype": dtype.base_dtype.name,
        "as_ref": dtype._as_ref.name,  # noqa: SLF001
    }


def dtypes_fixture():
    table = [
        dtype_facts(tf_dtypes._INTERN_TABLE[e])  # noqa: SLF001
        for e in sorted(tf_dtypes._INTERN_TABLE)
    ]  # noqa: SLF001
    probes = []
    for kind, spelling in PROBES:
        try:
            result = {"result": tf.as_dtype(probe_input(kind, spelling)).name}
        except TypeError as e:
            result = {"error": str(e)}
        probes.append({"kind": kind, "input": spelling, **result})
    return {"tensorflow": tf.__version__, "dtypes": table, "as_dtype": probes}


def write_json(path, data):
    """JSON with one line per list item (small, and diffs show which case changed)."""
    lines = ["{"]
    for i, (key, value) in enumerate(sorted(data.items())):
        comma = "," if i < len(data) - 1 else ""
        if isinstance(value, list):
            items = [json.dumps(v, sort_keys=True) for v in value]
            body = ",\n".join(f"  {item}" for item in items)
            lines.append(f" {json.dumps(key)}: [\n{body}\n ]{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{comma}")
    path.write_text("\n".join(lines) + "\n}\n")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cases = make_tensor_proto_cases() + hand_cases()
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    write_json(OUT / "tensor_cases.json", {"tensorflow": tf.__version__, "cases": cases})
    write_json(OUT / "dtypes.json", dtypes_fixture())


if __name__ == "__main__":
    main()
