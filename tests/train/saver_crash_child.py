"""Saving processes to kill, for tests/train/test_checkpoint_crash.py (not a test module).

``python saver_crash_child.py OUT_DIR META_FILE SEED N_RANDOM`` imports gpugraph once, builds
the graph (variables from META_FILE, ``Saver(max_to_keep=2)``) and a session, then forks one
saving process per scenario, each saving into its own directory ``OUT_DIR/<scenario>``:

* ``count``: saves 3 times, then counts the file-system mutations (opens for writing,
  renames, removals, directory creations) of one more save and writes the count to
  ``OUT_DIR/count``;
* ``at<k>`` for k = 1..count+1: saves 3 times, then in the 4th save kills itself with SIGKILL
  right before the k-th mutation (k = count+1: the save completes);
* ``random<i>``: saves in a loop until the driver kills it with SIGKILL after a random delay.

Every save sets each variable to ``value(name, shape, dtype, step)`` first, so the test can
check a restored checkpoint bit for bit from its step.  Prints one JSON line per scenario:
``{"dir", "signal", "exit"}``.  Forking after the import keeps ~25 processes within seconds.
"""

from __future__ import annotations

import builtins
import json
import os
import random
import signal
import sys
import time
import traceback

import numpy as np

WARMUP = 3  # saves before the instrumented one: old checkpoints exist and get deleted


def value(name: str, shape, dtype, step: int) -> np.ndarray:
    """The value every variable holds when checkpoint ``step`` is saved."""
    size = int(np.prod(shape))
    base = (np.arange(size, dtype=np.int64) * 7 + len(name)) % 251
    return (base + step).astype(dtype).reshape(shape)


def setup(meta_file: str):
    import gpugraph as gg
    from gpugraph.train.meta_graph import import_scoped_meta_graph

    graph = gg.Graph()
    with graph.as_default():
        import_scoped_meta_graph(meta_file)
        saver = gg.train.Saver(max_to_keep=2)
    sess = gg.Session(graph=graph)
    return graph, saver, sess


def save_step(graph, saver, sess, directory: str, step: int) -> None:
    for var in graph.get_collection("variables"):
        want = value(var.op.name, var.shape.as_list(), var.dtype.base_dtype.as_numpy_dtype, step)
        sess.run(var.initializer, {var.initial_value: want})
    saver.save(sess, os.path.join(directory, "model"), global_step=step)


class Tripwire:
    """Counts file-system mutations; with ``kill_at``, SIGKILLs the process before that one."""

    def __init__(self, kill_at: int | None):
        self.kill_at, self.count, self.armed = kill_at, 0, False

    def event(self) -> None:
        if not self.armed:
            return
        self.count += 1
        if self.count == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def install(self) -> None:
        def wrap(module, name, writes=lambda *a, **k: True):
            original = getattr(module, name)

            def wrapped(*args, **kwargs):
                if writes(*args, **kwargs):
                    self.event()
                return original(*args, **kwargs)

            setattr(module, name, wrapped)

        def opens_for_writing(file, mode="r", *args, **kwargs):
            return any(c in mode for c in "wax+")

        wrap(builtins, "open", opens_for_writing)
        for name in ("replace", "rename", "remove", "unlink", "rmdir", "makedirs", "mkdir"):
            wrap(os, name)


def run_child(scenario: dict, graph, saver, sess, directory: str) -> None:
    os.makedirs(directory)
    if scenario["kind"] == "random":
        step = 0
        while True:
            step += 1
            save_step(graph, saver, sess, directory, step)
    tripwire = Tripwire(scenario.get("kill_at"))
    tripwire.install()
    for step in range(1, WARMUP + 1):
        save_step(graph, saver, sess, directory, step)
    tripwire.armed = True
    save_step(graph, saver, sess, directory, WARMUP + 1)
    tripwire.armed = False
    if scenario["kind"] == "count":
        with open(os.path.join(os.path.dirname(directory), "count"), "w") as f:
            f.write(str(tripwire.count))


def fork(scenario: dict, context, directory: str, delay: float | None = None) -> dict:
    pid = os.fork()
    if pid == 0:  # the saving process
        code = 0
        try:
            run_child(scenario, *context, directory)
        except BaseException:  # noqa: BLE001  (reported through the exit status)
            traceback.print_exc()
            code = 1
        os._exit(code)
    if delay is not None:
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return {"dir": directory, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
            "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}


def main(out: str, meta_file: str, seed: int, n_random: int) -> None:
    context = setup(meta_file)
    fork({"kind": "count"}, context, os.path.join(out, "count_run"))
    with open(os.path.join(out, "count")) as f:
        count = int(f.read())
    results = [fork({"kind": "at", "kill_at": k}, context, os.path.join(out, f"at{k:02d}"))
               for k in range(1, count + 2)]
    rng = random.Random(seed)
    for i in range(n_random):
        delay = rng.uniform(0.0, 0.25)
        results.append(fork({"kind": "random"}, context, os.path.join(out, f"random{i:02d}"),
                            delay))
    print(json.dumps({"count": count, "results": results}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
