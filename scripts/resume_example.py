"""The main job on the bundled example: resume a TF-written training run without TF.

The example (tests/fixtures/train/mlp_sparse_adam_resource) is a 20-16-3 MLP trained by real
TensorFlow 2.21 for 3 steps with Adam and saved by ``tf.train.Saver``; ``continue.npz`` holds
the next 20 batches and the loss TF itself computed on each.  This script follows TF's resume
recipe with gpugraph in TF's place, prints gpugraph's loss next to TF's for every step, and
saves a checkpoint that TensorFlow can restore.

    python scripts/resume_example.py [--out DIR]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

import numpy as np

import gpugraph as gg

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/train/mlp_sparse_adam_resource"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="directory for the new checkpoint (default: a temp dir)")
    args = parser.parse_args(argv)
    data = np.load(EXAMPLE / "continue.npz")
    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="gpugraph-example-"))
    out.mkdir(parents=True, exist_ok=True)
    with gg.Graph().as_default(), gg.Session() as sess:
        checkpoint = gg.train.latest_checkpoint(str(EXAMPLE))
        saver = gg.train.import_meta_graph(checkpoint + ".meta")
        saver.restore(sess, checkpoint)
        train_op = gg.get_collection("train_op")[0]
        print(f"restored {checkpoint} at global_step {sess.run('global_step:0')}")
        print(f"{'step':>5} {'gpugraph loss':>14} {'TF loss':>10}")
        for k, tf_loss in enumerate(data["loss"]):
            feeds = {"x:0": data["feed/x"][k], "y:0": data["feed/y"][k]}
            loss, _ = sess.run(["loss:0", train_op], feeds)
            print(f"{k + 4:>5} {loss:>14.6f} {tf_loss:>10.6f}")
        path = saver.save(sess, str(out / "model"), global_step=sess.run("global_step:0"))
    print(f"saved {path} (TF-format: .index, .data-00000-of-00001, .meta; "
          f"latest_checkpoint({str(out)!r}) -> {gg.train.latest_checkpoint(str(out))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
