"""Bad .meta input: gpugraph raises gpugraph.errors with the messages TF 2.21 gave.

tests/fixtures/meta/errors/errors.json records what real TF raised for each broken file.  Where
TF raised ValueError/KeyError, gpugraph raises the same builtin (GraphDefError is both a
ValueError and an InvalidArgumentError) with TF's exact message.  Where TF crashed with a raw
UnicodeDecodeError (truncated or random bytes) or silently imported nothing (an empty file),
gpugraph raises DataLossError naming the file instead: that difference is deliberate.
"""

from __future__ import annotations

import json
import pathlib

import pytest

import gpugraph as gg
from gpugraph import errors

# Every import here runs with both node tables: read through upb, and scanned from the wire.
pytestmark = pytest.mark.usefixtures("node_tables")

ERRORS = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "meta" / "errors"
RECORDS = json.loads((ERRORS / "errors.json").read_text())
DATA_LOSS_FILES = {"truncated.meta", "random_bytes.meta", "empty.meta", "bad_text.meta",
                   "truncated_text.meta"}


def _import(record: dict):
    graph = gg.Graph()
    with graph.as_default():
        mapped = {f"{p['name']}:0": gg.placeholder(p["dtype"], p["shape"], name=p["name"])
                  for p in record["setup"]["placeholders"]}
        kwargs = dict(record["kwargs"])
        if "input_map" in kwargs:
            kwargs["input_map"] = {k: mapped[v] for k, v in kwargs["input_map"].items()}
        return gg.train.import_meta_graph(str(ERRORS / record["file"]), **kwargs)


def _ids(records):
    return [r["file"] + ("+input_map" if r["kwargs"] else "") for r in records]


SAME_AS_TF = [r for r in RECORDS if r["exception"] in ("ValueError", "KeyError")]


@pytest.mark.parametrize("record", SAME_AS_TF, ids=_ids(SAME_AS_TF))
def test_same_exception_and_message_as_tf(record):
    builtin = {"ValueError": ValueError, "KeyError": KeyError}[record["exception"]]
    with pytest.raises(builtin) as info:
        _import(record)
    text = str(info.value)
    assert text == record["message"]
    if builtin is ValueError:
        assert isinstance(info.value, errors.InvalidArgumentError)


def test_unregistered_op_is_not_found_naming_op_and_node():
    record = next(r for r in RECORDS if r["file"] == "unregistered_op.meta")
    with pytest.raises(errors.NotFoundError) as info:
        _import(record)
    assert "Op type not registered 'FooBarOp'" in str(info.value)
    assert record["message"].startswith("Op type not registered 'FooBarOp'")
    assert info.value.details["op"] == "FooBarOp"


@pytest.mark.parametrize("name", sorted(DATA_LOSS_FILES))
def test_damaged_files_raise_data_loss_naming_the_file(name):
    path = ERRORS / name
    with pytest.raises(errors.DataLossError) as info:
        gg.train.import_meta_graph(str(path))
    assert str(path) in str(info.value)
    assert info.value.details["path"] == str(path)


def test_missing_file_is_not_found():
    path = ERRORS / "missing.meta"
    with pytest.raises(errors.NotFoundError, match="File does not exist. Received: .*missing.meta"):
        gg.train.import_meta_graph(str(path))


@pytest.mark.parametrize("cut", [1, 7, 100, 1000, 5000])
def test_every_truncation_of_a_real_meta_is_data_loss(tmp_path, cut):
    data = (ERRORS.parent / "mlp_ref_sgd" / "mlp_ref_sgd-3.meta").read_bytes()
    path = tmp_path / "cut.meta"
    path.write_bytes(data[:cut])
    with pytest.raises(errors.DataLossError, match="truncated or corrupt"):
        gg.train.import_meta_graph(str(path))


def test_random_bytes_never_leak_decode_errors(tmp_path):
    import random

    rng = random.Random(0)
    for i in range(200):
        path = tmp_path / f"r{i}.meta"
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
        with gg.Graph().as_default():
            with pytest.raises(errors.OpError):
                gg.train.import_meta_graph(str(path))
