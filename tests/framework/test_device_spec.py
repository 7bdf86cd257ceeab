"""DeviceSpec parsing, canonical strings and merging against TF's documented behaviour.

Expected values come from /work/shared/reference/tf_facts.md §6 (verified with TF 2.21) and from
TF's python/framework/device_spec.py and xla/tsl/util/device_name_utils.cc.
"""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from gpugraph.errors import DeviceSpecError, InvalidArgumentError
from gpugraph.framework.device_spec import (
    DeviceSpec,
    canonical_name,
    merge_device,
    parse_full_name,
)

# (input, canonical string)
CANONICAL = [
    ("/gpu:0", "/device:GPU:0"),
    ("/cpu:*", "/device:CPU:*"),
    ("CPU", "/device:CPU:*"),
    ("cpu", "/device:CPU:*"),
    ("gpu:0", "/device:GPU:0"),
    ("/GPU:0", "/device:GPU:0"),
    ("/Gpu:1", "/device:GPU:1"),
    ("/tpu:0", "/device:TPU:0"),
    ("custom:1", "/device:CUSTOM:1"),
    ("/epu", "/device:EPU:*"),
    ("/job:worker/gpu:3", "/job:worker/device:GPU:3"),
    ("/device:XLA_CPU:0", "/device:XLA_CPU:0"),
    ("/device:GPU:*", "/device:GPU:*"),
    ("/device:cpu:0", "/device:CPU:0"),
    ("/device:gpu:1", "/device:GPU:1"),
    ("/device:tpu:0", "/device:tpu:0"),  # only exactly cpu/gpu are uppercased
    ("/device:Cpu:0", "/device:Cpu:0"),
    ("/job:ps/task:2", "/job:ps/task:2"),
    ("/job:ps/replica:1/task:2/device:CPU:0", "/job:ps/replica:1/task:2/device:CPU:0"),
    ("/job:*", "/job:*"),  # job is verbatim, even "*"
    ("/job:1abc", "/job:1abc"),
    ("/cpu:0/job:a", "/job:a/device:CPU:0"),  # any order in, canonical order out
    ("/device:CPU:0/task:1/replica:2/job:j", "/job:j/replica:2/task:1/device:CPU:0"),
    ("", ""),
    ("/", ""),
    ("//", ""),
    ("//job:a//gpu:1/", "/job:a/device:GPU:1"),
    ("/:0/job:a", "/job:a"),  # pieces with an empty key are ignored
    ("/job:a/job:b", "/job:b"),  # a repeated key: the last one wins
]


@pytest.mark.parametrize(("spec", "expected"), CANONICAL)
def test_from_string_canonical(spec: str, expected: str) -> None:
    parsed = DeviceSpec.from_string(spec)
    assert parsed.to_string() == expected
    assert str(parsed) == expected
    assert canonical_name(spec) == expected


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        ("/job:w/replica:1/task:2/device:GPU:3", ("w", 1, 2, "GPU", 3)),
        ("/gpu:*", (None, None, None, "GPU", None)),
        ("CPU", (None, None, None, "CPU", None)),
        ("", (None, None, None, None, None)),
        ("/job:*", ("*", None, None, None, None)),
    ],
)
def test_from_string_fields(spec: str, fields: tuple) -> None:
    parsed = DeviceSpec.from_string(spec)
    assert dataclasses.astuple(parsed)[:5] == fields


ERRORS = [
    ("/device:GPU",
     "Unknown attribute 'device' is encountered while parsing the device spec: '/device:GPU'."),
    ("/foo:1", "Unknown attribute 'foo' is encountered while parsing the device spec: '/foo:1'."),
    ("/xla_cpu:0",
     "Unknown attribute 'xla_cpu' is encountered while parsing the device spec: '/xla_cpu:0'."),
    ("/job", "Unknown attribute 'job' is encountered while parsing the device spec: '/job'."),
    ("/job:a:b",
     "Unknown attribute 'job' is encountered while parsing the device spec: '/job:a:b'."),
    ("/gpu:0/cpu:0",
     "Multiple device types are not allowed while parsing the device spec: /gpu:0/cpu:0."),
    ("/gpu:0/device:CPU:0",
     "Multiple device types are not allowed while parsing the device spec: /gpu:0/device:CPU:0."),
    ("/replica:x", "invalid literal for int() with base 10: 'x'"),
    ("/task:y", "invalid literal for int() with base 10: 'y'"),
    ("/gpu:x", "invalid literal for int() with base 10: 'x'"),
    ("/device:GPU:x", "invalid literal for int() with base 10: 'x'"),
    ("/device:GPU:", "invalid literal for int() with base 10: ''"),
    # replica/task are converted after the loop in TF, so the unknown key is reported first.
    ("/replica:x/foo:1",
     "Unknown attribute 'foo' is encountered while parsing the device spec: '/replica:x/foo:1'."),
]


@pytest.mark.parametrize(("spec", "message"), ERRORS)
def test_from_string_errors(spec: str, message: str) -> None:
    with pytest.raises(DeviceSpecError) as info:
        DeviceSpec.from_string(spec)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, InvalidArgumentError)


def test_from_string_errors_are_not_cached_away() -> None:
    for _ in range(2):
        with pytest.raises(DeviceSpecError):
            DeviceSpec.from_string("/device:GPU")


def test_from_string_passthrough_and_none() -> None:
    spec = DeviceSpec(job="a")
    assert DeviceSpec.from_string(spec) is spec
    assert DeviceSpec.from_string(None) == DeviceSpec()
    with pytest.raises(TypeError):
        DeviceSpec.from_string(3)  # type: ignore[arg-type]


def test_constructor_normalises_like_tf() -> None:
    spec = DeviceSpec(job="ps", replica="1", task=2, device_type="gpu", device_index="0")
    assert spec == DeviceSpec.from_string("/job:ps/replica:1/task:2/gpu:0")
    assert spec.replica == 1 and spec.device_index == 0 and spec.device_type == "GPU"
    assert DeviceSpec(device_type="Gpu").device_type == "Gpu"
    with pytest.raises(DeviceSpecError, match="invalid literal"):
        DeviceSpec(task="x")


# (outer, inner, merged): inner's set fields win, one field at a time.
MERGES = [
    ("/job:ps/task:1", "/device:GPU:2", "/job:ps/task:1/device:GPU:2"),
    ("/job:ps/task:1/device:GPU:2", "/cpu:0", "/job:ps/task:1/device:CPU:0"),
    ("/job:ps/task:1/device:GPU:2", "/job:worker", "/job:worker/task:1/device:GPU:2"),
    ("/job:ps/task:1/device:GPU:2", "/device:GPU:*", "/job:ps/task:1/device:GPU:2"),
    # Matches TF: type and index merge independently, so the outer index survives a new type.
    ("/device:GPU:2", "CPU", "/device:CPU:2"),
    ("/job:a", "", "/job:a"),
    ("", "/gpu:1", "/device:GPU:1"),
    (None, None, ""),
    # import_meta_graph under tf.device: the stored device is the inner one (tf_facts §6.3).
    ("/job:worker/device:CPU:0", "/job:ps/task:3/device:GPU:7", "/job:ps/task:3/device:GPU:7"),
    ("/job:worker/device:CPU:0", "/device:CPU:1", "/job:worker/device:CPU:1"),
    ("/job:worker/device:CPU:0", "", "/job:worker/device:CPU:0"),
    # Saver's RestoreV2 under ops.device("cpu:0") inside an outer job scope (tf_facts §6.5).
    ("/job:worker", "cpu:0", "/job:worker/device:CPU:0"),
]


@pytest.mark.parametrize(("outer", "inner", "merged"), MERGES)
def test_merge_device(outer: str | None, inner: str | None, merged: str) -> None:
    assert merge_device(outer, inner) == merged
    spec = DeviceSpec.from_string(outer).make_merged_spec(DeviceSpec.from_string(inner))
    assert spec.to_string() == merged


def _apply_scopes(scopes: list[str], op_device: str = "") -> str:
    """What graph mode does with a tf.device stack: innermost scope first, skip empty ones."""
    device = op_device
    for scope in reversed(scopes):
        if scope:
            device = merge_device(scope, device)
    return device


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["/job:ps/task:1", "/device:GPU:2"], "/job:ps/task:1/device:GPU:2"),
        (["/job:ps/task:1", "/device:GPU:2", "/cpu:0"], "/job:ps/task:1/device:CPU:0"),
        (["/job:ps/task:1", "/device:GPU:2", "/job:worker"], "/job:worker/task:1/device:GPU:2"),
        (["/job:ps/task:1", "/device:GPU:2", "/device:GPU:*"], "/job:ps/task:1/device:GPU:2"),
        (["/job:ps/task:1", "", "/device:GPU:2", ""], "/job:ps/task:1/device:GPU:2"),
        # TF's DeviceSpec docstring example.
        (["/job:train", "/job:ps/device:GPU:0"], "/job:ps/device:GPU:0"),
        (["/job:train", "/device:GPU:1"], "/job:train/device:GPU:1"),
    ],
)
def test_nested_scopes_innermost_wins(scopes: list[str], expected: str) -> None:
    assert _apply_scopes(scopes) == expected


def test_make_merged_spec_keeps_both_inputs() -> None:
    outer, inner = DeviceSpec.from_string("/job:a/gpu:1"), DeviceSpec.from_string("/task:2")
    assert outer.make_merged_spec(inner) == DeviceSpec("a", None, 2, "GPU", 1)
    assert outer.to_string() == "/job:a/device:GPU:1"
    assert inner.to_string() == "/task:2"


def test_immutable() -> None:
    spec = DeviceSpec.from_string("/gpu:0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.device_index = 1  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        spec.extra = 1  # type: ignore[attr-defined]
    assert DeviceSpec.from_string("/gpu:0").device_index == 0


def test_caching_keeps_value_semantics() -> None:
    first, second = DeviceSpec.from_string("/gpu:0"), DeviceSpec.from_string("/gpu:0")
    built = DeviceSpec(device_type="GPU", device_index=0)
    assert first is second  # cached parse
    assert first == built and hash(first) == hash(built)
    assert len({first, built, DeviceSpec.from_string("/device:GPU:0")}) == 1
    assert DeviceSpec.from_string("/gpu:*") != first
    assert pickle.loads(pickle.dumps(first)) == first
    assert pickle.loads(pickle.dumps(first)).to_string() == "/device:GPU:0"


def test_replace_and_is_empty() -> None:
    spec = DeviceSpec.from_string("/job:a/cpu:0")
    assert spec.replace(device_type="gpu").to_string() == "/job:a/device:GPU:0"
    assert spec.replace(device_index=None).to_string() == "/job:a/device:CPU:*"
    assert spec.replace(job=None, device_type=None).to_string() == ""
    assert spec.to_string() == "/job:a/device:CPU:0"
    assert DeviceSpec.from_string("").is_empty
    assert DeviceSpec.from_string("/").is_empty
    assert not spec.is_empty
    assert "_string" not in repr(spec)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [(None, ""), ("", ""), ("/gpu:0", "/device:GPU:0"), (DeviceSpec(job="w"), "/job:w")],
)
def test_canonical_name(spec: str | DeviceSpec | None, expected: str) -> None:
    assert canonical_name(spec) == expected


_HOST = "/job:localhost/replica:0/task:0"

# (name, canonical string of the parse)
FULL_NAMES_OK = [
    (f"{_HOST}/device:CPU:0", f"{_HOST}/device:CPU:0"),
    (f"{_HOST}/cpu:0", f"{_HOST}/device:CPU:0"),  # legacy lowercase form
    (f"{_HOST}/GPU:1", f"{_HOST}/device:GPU:1"),
    ("/CPU:0", "/device:CPU:0"),
    ("/gpu:*", "/device:GPU:*"),
    ("/device:GPU", "/device:GPU:*"),  # a missing id is allowed
    ("/device:GPU:*", "/device:GPU:*"),
    ("/device:XLA_CPU:0", "/device:XLA_CPU:0"),
    ("/device:Cpu:0", "/device:Cpu:0"),  # case kept; placement then finds no such type
    ("/job:*/replica:*/task:*/device:*:*", ""),
    ("/task:1/job:a_1", "/job:a_1/task:1"),  # any order
    ("/device:CPU:0/gpu:1", "/device:GPU:1"),  # the last type wins
    ("/", ""),
    ("", ""),
]

FULL_NAMES_BAD = [
    "/job:1abc",  # job must start with a letter
    "/job:a-b",
    "/job:",
    "/job:a/",  # a trailing slash is not a piece
    "//job:a",
    "/job:a:b",
    "/replica:x",
    "/replica:-1",
    "/task:",
    "/device:GPU:",
    "/device:GPU:x",
    "/device:1GPU:0",
    "/cpu",  # legacy names need the colon
    "/Gpu:0",  # legacy names are exactly cpu, CPU, gpu, GPU
    "/gpu:x",
    "gpu:0",  # a local name, not a full one
    "job:a",
    "/foo:1",
]


@pytest.mark.parametrize(("name", "expected"), FULL_NAMES_OK)
def test_parse_full_name_accepts(name: str, expected: str) -> None:
    parsed = parse_full_name(name)
    assert parsed is not None
    assert parsed.to_string() == expected


@pytest.mark.parametrize("name", FULL_NAMES_BAD)
def test_parse_full_name_rejects(name: str) -> None:
    assert parse_full_name(name) is None


def test_parse_full_name_wildcards_are_unset() -> None:
    parsed = parse_full_name("/job:*/replica:*/task:3/device:GPU:*")
    assert parsed == DeviceSpec(task=3, device_type="GPU")
