"""The exact bytes of the string outputs of the ``lookup`` and ``strings`` fixture families.

test_ops_against_tf.py checks a string output through its hash and length (a fixture's npz
cannot hold object arrays); the records keep TF's strings themselves under ``"strings"``
(scripts/make_lookup_fixtures.py), and this compares them byte for byte.  Each case runs once,
in a session of its own family (tables outlive a run), as in the fixtures.  Text-file cases
name their vocabulary files relative to the repository root, the directory this runs from.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import gpugraph as gg
from gpugraph import _proto as pb

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "ops"
FAMILIES = ("lookup", "strings")


def _records():
    for family in FAMILIES:
        for record in json.loads((FIXTURES / f"{family}.json").read_text()):
            if "strings" in record:
                yield pytest.param(family, record, id=f"{family}-{record['case']}-{record['op']}")


class _Family:
    def __init__(self, family: str, virtual_gpus: int):
        graph_def = pb.GraphDef()
        graph_def.ParseFromString((FIXTURES / f"{family}.pb").read_bytes())
        self.graph = gg.Graph()
        with self.graph.as_default():
            gg.import_graph_def(graph_def, name="")
        with np.load(FIXTURES / f"{family}.npz") as data:
            self.arrays = {k: data[k] for k in data.files}
        self.session = gg.Session(graph=self.graph, config={"virtual_gpus": virtual_gpus})


_LOADED: dict[tuple[str, int], _Family] = {}


@pytest.mark.parametrize("virtual_gpus", [0, 1], ids=["cpu", "virtual_gpu"])
@pytest.mark.parametrize(("family", "record"), list(_records()))
def test_string_outputs_match_tf(family: str, record: dict, virtual_gpus: int) -> None:
    key = (family, virtual_gpus)
    if key not in _LOADED:
        _LOADED[key] = _Family(family, virtual_gpus)
    fam = _LOADED[key]
    case = record["case"]
    names = list(record["strings"])
    feeds = {f"{case}/in{j}:0": fam.arrays[f"{case}/in{j}"] for j in range(record["inputs"])}
    with fam.graph.as_default():
        got = fam.session.run(names + record["fetches"] + record["targets"], feeds)
    for name, value in zip(names, got[:len(names)], strict=True):
        want = record["strings"][name]
        array = np.asarray(value, dtype=object)
        assert list(array.shape) == want["shape"], name
        expected = [s.encode("latin-1") for s in want["latin1"]]
        assert [bytes(v) for v in array.reshape(-1)] == expected, (name, record["desc"])
