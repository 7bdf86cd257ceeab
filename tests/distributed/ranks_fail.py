"""Run under ``mpiexec -n 2``: failure cases of a data-parallel session (the tests' helper).

    python ranks_fail.py raise|hang|differ|graph OUT_DIR

* ``raise``: rank 1 raises at step 5, after rank 0 saved a checkpoint at step 3;
* ``hang``: rank 1 stops calling collectives at step 5 (it sleeps), rank 0 times out;
* ``differ``: rank 1 changes a variable before the first step;
* ``graph``: rank 1 imports a graph with one more node;
* ``broadcast``: as ``differ``, then rank 0's variables are broadcast: the run goes on.
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

import gpugraph as gg

ROOT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "train"
CASE = "mlp_softmax_v2_momentum_ref"


def main(mode: str, out: str) -> None:
    data = np.load(ROOT / CASE / "continue.npz")
    rank = gg.distributed.rank()
    with gg.Graph().as_default(), gg.Session(config={"data_parallel": "mpi"}) as sess:
        saver = gg.train.import_meta_graph(str(ROOT / CASE / f"{CASE}-3.meta"))
        saver.restore(sess, str(ROOT / CASE / f"{CASE}-3"))
        if mode == "graph" and rank == 1:
            gg.constant(1.0, name="only_on_rank_1")
        if mode in ("differ", "broadcast") and rank == 1:
            variable = gg.global_variables()[0]  # (its initializer, fed another value)
            value = sess.run(variable)
            sess.run(variable.initializer, {variable.initializer.inputs[1]: value * 2})
        if mode == "broadcast":  # (rank 0's values everywhere, scalars too: then all agree)
            assert gg.distributed.broadcast_variables(sess) == len(gg.global_variables())
        train_op = gg.get_collection("train_op")[0]
        for k in range(20):
            if k == 5 and rank == 1 and mode == "raise":
                raise RuntimeError("rank 1 fails on purpose")
            if k == 5 and rank == 1 and mode == "hang":
                time.sleep(600)
            sess.run(train_op, {"x:0": data["feed/x"][k][4 * rank:4 * rank + 4],
                                "y:0": data["feed/y"][k][4 * rank:4 * rank + 4]})
            if k == 2:
                saver.save(sess, f"{out}/model", global_step=k + 4)


if __name__ == "__main__":
    main(*sys.argv[1:])
