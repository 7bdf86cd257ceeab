"""list_variables / load_variable / load_checkpoint / NewCheckpointReader against what TF's own
CheckpointReader reported for the same TF-written checkpoints (tests/fixtures/saver)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from saver_support import CASES, FIXTURES, record, values

import gpugraph as gg
from gpugraph import errors

SAVED = [c for c in CASES if record(c)["checkpoint"]]


def _prefix(case: str) -> str:
    return str(FIXTURES / case / record(case)["checkpoint"])


def _full_values(case: str) -> dict[str, np.ndarray]:
    """Checkpoint key -> value, partitioned variables reassembled (keys as the first Saver)."""
    out: dict[str, list] = {}
    for name, value in sorted(values(case).items()):
        base, _, part = name.rpartition("/part_")
        out.setdefault(base if part.isdigit() else name, []).append(value)
    return {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in out.items()}


@pytest.mark.parametrize("case", SAVED)
def test_reader_maps_match_tf(case: str) -> None:
    want = record(case)["reader"]
    reader = gg.train.NewCheckpointReader(_prefix(case))
    assert reader.get_variable_to_shape_map() == want["shape_map"]
    dtype_map = reader.get_variable_to_dtype_map()
    assert {k: v.name for k, v in dtype_map.items()} == want["dtype_map"]
    assert all(isinstance(v, gg.DType) for v in dtype_map.values())
    assert reader.debug_string().hex() == want["debug_string_hex"]


@pytest.mark.parametrize("case", SAVED)
def test_list_variables_matches_tf(case: str) -> None:
    want = [tuple(x) for x in record(case)["reader"]["list_variables"]]
    assert gg.train.list_variables(_prefix(case)) == want
    assert gg.train.list_variables(FIXTURES / case / "tf") == want  # the directory's latest


def test_get_tensor_values_and_scalars() -> None:
    case = "resource_options"
    reader = gg.train.NewCheckpointReader(_prefix(case))
    want = values(case)
    step = reader.get_tensor("global_step")
    assert isinstance(step, np.int64) and step == want["global_step"]  # a scalar, as TF
    np.testing.assert_array_equal(reader.get_tensor("dense/kernel"), want["dense/kernel"])
    np.testing.assert_array_equal(reader.get_tensor(b"dense/bias"), want["dense/bias"])
    assert reader.has_tensor("count") and not reader.has_tensor("nope")


@pytest.mark.parametrize("case", ["partitioned_ref", "dict_var_list", "sharded_two_cpus"])
def test_load_variable_reassembles(case: str) -> None:
    rec = record(case)
    spec = rec["savers"][0]["var_list"]
    renamed = {v: k for k, v in spec.items()} if isinstance(spec, dict) else {}
    for name, value in _full_values(case).items():
        key = renamed.get(name, name)
        got = gg.train.load_variable(str(FIXTURES / case / "tf"), key + ":0")
        assert got.dtype == value.dtype
        np.testing.assert_array_equal(got, value, err_msg=key)


def test_missing_tensor_is_not_found_naming_key_and_checkpoint() -> None:
    prefix = _prefix("ref_default")
    with pytest.raises(errors.NotFoundError) as e:
        gg.train.load_variable(prefix, "layer/nope")
    assert str(e.value) == f"Key layer/nope not found in checkpoint {prefix}"


def test_missing_checkpoint_is_not_found(tmp_path) -> None:
    prefix = str(tmp_path / "model-3")
    with pytest.raises(errors.NotFoundError, match="Unsuccessful TensorSliceReader constructor: "
                       f"Failed to find any matching files for {prefix}"):
        gg.train.NewCheckpointReader(prefix)
    with pytest.raises(errors.NotFoundError, match="a directory"):
        gg.train.NewCheckpointReader(tmp_path)
    with pytest.raises(ValueError, match="Couldn't find 'checkpoint' file or checkpoints in "
                       f"given directory {tmp_path}"):
        gg.train.list_variables(tmp_path)


def test_damaged_tensor_is_data_loss_naming_the_file(tmp_path) -> None:
    shutil.copytree(FIXTURES / "ref_default" / "tf", tmp_path / "tf")
    prefix = str(tmp_path / "tf" / "model-7")
    data_file = prefix + ".data-00000-of-00001"
    raw = bytearray(open(data_file, "rb").read())
    raw[-1] ^= 1
    open(data_file, "wb").write(bytes(raw))
    reader = gg.train.NewCheckpointReader(prefix)
    assert reader.get_variable_to_shape_map()["layer/w"] == [3, 2]  # the index is fine
    with pytest.raises(errors.DataLossError, match=data_file):
        reader.get_tensor("layer/w")
    with open(prefix + ".index", "r+b") as f:
        f.truncate(10)
    with pytest.raises(errors.DataLossError, match=prefix + ".index"):
        gg.train.list_variables(prefix)
