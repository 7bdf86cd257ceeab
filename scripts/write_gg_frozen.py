"""Writes ``tests/fixtures/frozen/<case>_gg.pb`` with gpugraph (run with the project's Python):
each fixture's training graph and checkpoint frozen by ``gg.graph_util.convert_variables_to_
constants``; ``scripts/make_frozen_fixtures.py --check-gg`` then has TF run them::

    .venv/bin/python scripts/write_gg_frozen.py
    /work/tfenv/bin/python scripts/make_frozen_fixtures.py --check-gg
"""

from __future__ import annotations

import pathlib

import gpugraph as gg

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "frozen"

for case in ("mlp", "cnn"):
    with gg.Graph().as_default() as graph, gg.Session() as sess:
        saver = gg.train.import_meta_graph(str(FIXTURES / f"{case}.meta"))
        saver.restore(sess, str(FIXTURES / f"{case}-0"))
        frozen = gg.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), ["y"])
    (FIXTURES / f"{case}_gg.pb").write_bytes(frozen.SerializeToString(deterministic=True))
    print("wrote", FIXTURES / f"{case}_gg.pb")
