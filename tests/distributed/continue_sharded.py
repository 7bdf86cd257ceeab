"""Run under ``mpiexec -n N``: a TF continuation fixture trained data-parallel, each rank fed
its 1/N of every recorded batch.  Rank 0 writes ``OUT`` (.npz): the losses averaged over the
ranks, every variable at the end, and each rank's fingerprint of its variables.

    mpiexec -n 2 python tests/distributed/continue_sharded.py FIXTURES_DIR CASE OUT [--gpus N]
"""

from __future__ import annotations

import hashlib
import pathlib
import sys

import numpy as np

import gpugraph as gg

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "runtime"))
from helpers import load_fixture  # noqa: E402


def main(directory: str, case: str, out: str, *rest: str) -> None:
    directory = pathlib.Path(directory)
    config, arrays = load_fixture(directory, case)
    rank, size = gg.distributed.rank(), gg.distributed.size()
    session = {"data_parallel": "mpi"}
    if rest[:1] == ["--gpus"]:
        session["virtual_gpus"] = int(rest[1])
    with gg.Graph().as_default(), gg.Session(config=session) as sess:
        saver = gg.train.import_meta_graph(str(directory / case / config["meta"]))
        saver.restore(sess, str(directory / case / config["checkpoint"]))
        train_op = gg.get_collection(config["train_op_collection"])[0]
        losses = []
        for k in range(config["steps"]):
            feeds = {}
            for key, name in config["feeds"].items():
                batch = arrays[f"feed/{key}"][k]
                rows = len(batch) // size
                feeds[name] = batch[rank * rows:(rank + 1) * rows]
            loss = sess.run([config["loss"], train_op], feeds)[0]
            losses.append(gg.distributed.allreduce_mean(loss))
        values = sess.run({v.op.name: v for v in gg.global_variables()})
    fingerprint = hashlib.sha256(b"".join(np.ascontiguousarray(values[n]).tobytes()
                                          for n in sorted(values))).hexdigest()
    fingerprints = gg.distributed.init().allgather_object(fingerprint, "fingerprints")
    if rank == 0:
        np.savez(out, losses=np.asarray(losses), fingerprints=np.asarray(fingerprints),
                 **{f"end/{n}": v for n, v in values.items()})


if __name__ == "__main__":
    main(*sys.argv[1:])
