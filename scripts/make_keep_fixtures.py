"""TF's max_to_keep bookkeeping, recorded: the state file and files on disk after each save.

Run with a TF interpreter:  python scripts/make_keep_fixtures.py
Writes tests/fixtures/saver_keep/: model.meta (one variable, a Saver with max_to_keep=2) and
sequence.json: for saves at steps 1..5 (relative save path "ckpt/model"), TF's `checkpoint`
file text and the sorted list of files in ckpt/ after each save, plus last_checkpoints.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

import tensorflow as tf

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "saver_keep"


def main() -> None:
    v1 = tf.compat.v1
    v1.disable_eager_execution()
    OUT.mkdir(parents=True, exist_ok=True)
    with tf.Graph().as_default():
        var = v1.get_variable("w", initializer=tf.constant([1.0, 2.0]), use_resource=False)
        bump = v1.assign_add(var, [1.0, 1.0], name="bump")
        saver = v1.train.Saver(max_to_keep=2)
        v1.train.export_meta_graph(str(OUT / "model.meta"), saver_def=saver.as_saver_def())
        work = tempfile.mkdtemp()
        cwd = os.getcwd()
        os.chdir(work)
        steps = []
        try:
            with v1.Session() as sess:
                sess.run(v1.global_variables_initializer())
                os.makedirs("ckpt")
                for step in range(1, 6):
                    sess.run(bump)
                    saver.save(sess, "ckpt/model", global_step=step, write_meta_graph=False)
                    steps.append({"step": step,
                                  "state": pathlib.Path("ckpt/checkpoint").read_text(),
                                  "files": sorted(os.listdir("ckpt")),
                                  "last_checkpoints": list(saver.last_checkpoints)})
        finally:
            os.chdir(cwd)
            shutil.rmtree(work)
    (OUT / "sequence.json").write_text(json.dumps(steps, indent=1) + "\n")
    print(json.dumps(steps[-1], indent=1))


if __name__ == "__main__":
    main()
