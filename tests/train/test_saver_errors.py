"""Saver.restore on bad input: every problem named, and no variable touched by a failure.

Graphs come from tests/fixtures/saver (ref variables: ``ref_default``; resource variables:
``resource_options``; a dict var_list: ``dict_var_list``; two data files: ``sharded_two_cpus``).
Damaged checkpoints are written with gpugraph's own bundle writer or by editing saved files.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from saver_support import CONFIG, assign, build_saver, import_variables, record, values

import gpugraph as gg
from gpugraph import errors
from gpugraph.io import bundle

KERNEL = {"ref_default": "layer/w", "resource_options": "dense/kernel"}
BIAS = {"ref_default": "layer/b", "resource_options": "dense/bias"}


class Setup:
    """A session over a case's variables and Saver, every variable set to a known value."""

    def __init__(self, case: str):
        self.case = case
        self.graph = gg.Graph()
        with self.graph.as_default():
            self.vars = import_variables(case)
            self.saver = build_saver(record(case)["savers"][0], self.vars)
        self.sess = gg.Session(graph=self.graph, config=CONFIG)
        self.before = {k: (v - 7).astype(v.dtype) for k, v in values(case).items()}
        for name, value in self.before.items():
            assign(self.sess, self.vars[name], value)

    def current(self) -> dict:
        return self.sess.run({n: self.vars[n] for n in self.before})

    def assert_unchanged(self) -> None:
        now = self.current()
        for name, value in self.before.items():
            np.testing.assert_array_equal(now[name], value, err_msg=name)

    def checkpoint(self, path, drop=(), change=None) -> str:
        """Writes the case's values (keys as the Saver names them) with edits; returns prefix."""
        tensors = {k: v for k, v in values(self.case).items() if k not in drop}
        tensors.update(change or {})
        bundle.write_bundle(str(path), tensors)
        return str(path)


@pytest.fixture(params=["ref_default", "resource_options"])
def setup(request):
    s = Setup(request.param)
    yield s
    s.sess.close()


def test_missing_variable_names_it_and_the_checkpoint(setup, tmp_path) -> None:
    name = KERNEL[setup.case]
    prefix = setup.checkpoint(tmp_path / "ckpt", drop=[name])
    with pytest.raises(errors.NotFoundError) as e:
        setup.saver.restore(setup.sess, prefix)
    message = str(e.value)
    assert message.startswith("Restoring from checkpoint failed. This is most likely due to a "
                              "Variable name or other graph key that is missing")
    assert f"Key {name} not found in checkpoint {prefix} (needed by variable {name})" in message
    assert e.value.details["problems"][0]["variable"] == name
    assert not isinstance(e.value, ValueError)
    setup.assert_unchanged()


def test_every_missing_variable_is_reported_at_once(setup, tmp_path) -> None:
    prefix = setup.checkpoint(tmp_path / "ckpt", drop=[KERNEL[setup.case], BIAS[setup.case]])
    with pytest.raises(errors.NotFoundError) as e:
        setup.saver.restore(setup.sess, prefix)
    reported = {p["variable"] for p in e.value.details["problems"]}
    assert reported == {KERNEL[setup.case], BIAS[setup.case]}
    setup.assert_unchanged()


def test_dtype_mismatch_names_variable_and_both_dtypes(setup, tmp_path) -> None:
    name = BIAS[setup.case]
    wrong = values(setup.case)[name].astype(np.int32)
    prefix = setup.checkpoint(tmp_path / "ckpt", change={name: wrong})
    with pytest.raises(errors.InvalidArgumentError) as e:
        setup.saver.restore(setup.sess, prefix)
    message = str(e.value)
    assert "mismatch between the current graph and the graph from the checkpoint" in message
    assert (f"tensor_name = {name}; expected dtype float does not equal original dtype int32 "
            f"(variable {name}, checkpoint {prefix})") in message
    setup.assert_unchanged()


def test_shape_mismatch_names_variable_and_both_shapes(setup, tmp_path) -> None:
    """Ref and resource alike (TF silently reshapes a resource variable)."""
    name = KERNEL[setup.case]
    shape = list(values(setup.case)[name].shape)
    wrong = np.zeros([shape[0], shape[1] + 1], np.float32)
    prefix = setup.checkpoint(tmp_path / "ckpt", change={name: wrong})
    with pytest.raises(errors.InvalidArgumentError) as e:
        setup.saver.restore(setup.sess, prefix)
    want = f"[{shape[0]}, {shape[1]}]"
    assert (f"Variable {name} has shape {want} but the checkpoint holds tensor {name} with "
            f"shape {list(wrong.shape)}") in str(e.value)
    problem = e.value.details["problems"][0]
    assert (problem["graph"], problem["stored"]) == (shape, list(wrong.shape))
    setup.assert_unchanged()


def test_missing_and_mismatched_together(setup, tmp_path) -> None:
    bias = BIAS[setup.case]
    prefix = setup.checkpoint(tmp_path / "ckpt", drop=[KERNEL[setup.case]],
                              change={bias: np.zeros([9], np.float32)})
    with pytest.raises(errors.NotFoundError) as e:
        setup.saver.restore(setup.sess, prefix)
    kinds = [p["kind"] for p in e.value.details["problems"]]
    assert kinds == ["missing", "shape"]
    setup.assert_unchanged()


def test_checkpoint_key_and_variable_differ(tmp_path) -> None:
    """A dict var_list: the message names the key and the variable it restores."""
    s = Setup("dict_var_list")
    tensors = {"beta": values("dict_var_list")["b"]}
    bundle.write_bundle(str(tmp_path / "ckpt"), tensors)
    with pytest.raises(errors.NotFoundError) as e:
        s.saver.restore(s.sess, str(tmp_path / "ckpt"))
    assert "Key custom/alpha not found in checkpoint" in str(e.value)
    assert "(needed by variable a)" in str(e.value)
    assert "Key pieces not found" in str(e.value)
    s.assert_unchanged()


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_missing_checkpoint_is_not_found_and_value_error(setup, tmp_path, make) -> None:
    path = tmp_path / "model-3"
    if make == "directory":
        path.mkdir()
    with pytest.raises(errors.NotFoundError) as e:
        setup.saver.restore(setup.sess, path)
    assert isinstance(e.value, ValueError)
    assert isinstance(e.value, gg.train.CheckpointNotFoundError)
    assert str(e.value).startswith(f"The passed save_path is not a valid checkpoint: {path}")
    assert e.value.details["path"] == str(path)
    if make == "directory":
        assert "latest_checkpoint" in str(e.value)
    with pytest.raises(ValueError, match="not a valid checkpoint"):
        setup.saver.restore(setup.sess, path)
    setup.assert_unchanged()


def test_none_path_is_value_error(setup) -> None:
    with pytest.raises(ValueError, match="Can't load save_path when it is None."):
        setup.saver.restore(setup.sess, None)


def _saved(setup: Setup, tmp_path) -> str:
    """A valid checkpoint of other values, saved by the Saver itself."""
    for name, value in values(setup.case).items():
        assign(setup.sess, setup.vars[name], value)
    prefix = setup.saver.save(setup.sess, str(tmp_path / "model"), global_step=1)
    for name, value in setup.before.items():
        assign(setup.sess, setup.vars[name], value)
    return prefix


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_index_is_data_loss_naming_the_file(setup, tmp_path, damage) -> None:
    prefix = _saved(setup, tmp_path)
    index = prefix + ".index"
    data = open(index, "rb").read()
    replacement = {"truncated": data[: len(data) // 2], "empty": b"",
                   "garbage": bytes(range(256)) * 2}[damage]
    with open(index, "wb") as f:
        f.write(replacement)
    with pytest.raises(errors.DataLossError) as e:
        setup.saver.restore(setup.sess, prefix)
    assert index in str(e.value)
    setup.assert_unchanged()


def test_flipped_data_byte_is_data_loss_naming_the_file(setup, tmp_path) -> None:
    prefix = _saved(setup, tmp_path)
    data_file = prefix + ".data-00000-of-00001"
    _flip(data_file, os.path.getsize(data_file) // 2)
    with pytest.raises(errors.DataLossError) as e:
        setup.saver.restore(setup.sess, prefix)
    assert data_file in str(e.value)
    assert "Checksum does not match" in str(e.value)
    setup.assert_unchanged()


def test_truncated_data_file_is_data_loss(setup, tmp_path) -> None:
    prefix = _saved(setup, tmp_path)
    data_file = prefix + ".data-00000-of-00001"
    with open(data_file, "r+b") as f:
        f.truncate(os.path.getsize(data_file) - 4)
    with pytest.raises(errors.DataLossError) as e:
        setup.saver.restore(setup.sess, prefix)
    assert data_file in str(e.value)
    setup.assert_unchanged()


def test_damage_in_a_later_shard_undoes_the_earlier_ones(tmp_path) -> None:
    """Sharded restore: shard 0's assigns run before shard 1's RestoreV2 fails; all undone."""
    s = Setup("sharded_two_cpus")
    prefix = _saved(s, tmp_path)
    last = prefix + ".data-00001-of-00002"
    _flip(last, 0)
    with pytest.raises(errors.DataLossError) as e:
        s.saver.restore(s.sess, prefix)
    assert last in str(e.value)
    s.assert_unchanged()
    s.saver.restore(s.sess, _saved(s, tmp_path / "again"))  # a good one still restores
    np.testing.assert_array_equal(s.current()["a"], values("sharded_two_cpus")["a"])


def _flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x40]))
