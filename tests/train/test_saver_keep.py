"""max_to_keep bookkeeping against TF's: state file text and files on disk after every save."""

from __future__ import annotations

import json
import os
import pathlib

import gpugraph as gg

FIXTURE = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "saver_keep"


def test_max_to_keep_sequence_matches_tf(tmp_path, monkeypatch) -> None:
    expected = json.loads((FIXTURE / "sequence.json").read_text())
    monkeypatch.chdir(tmp_path)
    os.makedirs("ckpt")
    with gg.Graph().as_default(), gg.Session() as sess:
        saver = gg.train.import_meta_graph(str(FIXTURE / "model.meta"))
        sess.run(gg.global_variables_initializer())
        for record in expected:
            sess.run("bump")
            saver.save(sess, "ckpt/model", global_step=record["step"], write_meta_graph=False)
            files = sorted(f for f in os.listdir("ckpt") if not f.endswith(".gpugraph-devices.json"))
            assert (tmp_path / "ckpt" / "checkpoint").read_text() == record["state"]
            assert files == record["files"], record["step"]
            assert saver.last_checkpoints == record["last_checkpoints"]
