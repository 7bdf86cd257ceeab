"""``tf.train.QueueRunner``, ``tf.train.Coordinator`` and ``tf.train.start_queue_runners``.

A QueueRunner (the ``queue_runners`` collection of an imported meta graph) names a queue and
the ops that fill, close and cancel it.  :meth:`QueueRunner.create_threads` starts one thread per
enqueue op, each running it in a loop with ``sess.run`` as TF's runner does: when the op raises
one of the runner's "queue closed" errors (OutOfRangeError: an input producer's epochs are
over) the last thread closes the queue, so the dequeues drain it and then raise
OutOfRangeError in the training loop; any other error is handed to the coordinator, which
stops every thread.  A coordinator's stop runs each runner's cancel op.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from gpugraph import _proto as pb
from gpugraph import errors
from gpugraph.framework import names
from gpugraph.framework.graph import Graph, get_default_graph


class QueueRunner:
    """Holds a queue op and the ops that fill, close and cancel it."""

    def __init__(self, queue: Any, enqueue_ops: list, close_op: Any, cancel_op: Any,
                 queue_closed_exception_types: tuple = (errors.OutOfRangeError,)):
        self.queue = queue
        self.enqueue_ops = list(enqueue_ops)
        self.close_op = close_op
        self.cancel_op = cancel_op
        self.queue_closed_exception_types = tuple(queue_closed_exception_types)

        self._lock = threading.Lock()
        self._running = 0
        self.exceptions_raised: list[BaseException] = []

    @property
    def name(self) -> str:
        return self.queue.name

    def create_threads(self, sess: Any, coord: Coordinator | None = None,
                       daemon: bool = False, start: bool = False) -> list[threading.Thread]:
        """A thread per enqueue op (plus one that cancels the queue when ``coord`` stops)."""
        threads = [threading.Thread(target=self._run, args=(sess, op, coord), daemon=daemon,
                                    name=f"QueueRunnerThread-{self.name}-{op.name}")
                   for op in self.enqueue_ops]
        with self._lock:
            self._running += len(threads)
        if coord is not None:
            threads.append(threading.Thread(target=self._close_on_stop, args=(sess, coord),
                                            daemon=True, name=f"QueueRunnerCancel-{self.name}"))
            for thread in threads:
                coord.register_thread(thread)
        if start:
            for thread in threads:
                thread.start()
        return threads

    def _run(self, sess: Any, enqueue_op: Any, coord: Coordinator | None) -> None:
        try:
            while coord is None or not coord.should_stop():
                try:
                    sess.run(enqueue_op)
                except self.queue_closed_exception_types:
                    with self._lock:
                        self._running -= 1
                        last = self._running == 0
                    if last:  # the last thread out closes the queue
                        with contextlib.suppress(Exception):
                            sess.run(self.close_op)
                    return
        except Exception as e:  # noqa: BLE001  (handed to the coordinator, as TF's runner does)
            if isinstance(e, errors.CancelledError) or getattr(sess, "_closed", False):
                return
            self.exceptions_raised.append(e)
            if coord is not None:
                coord.request_stop(e)
            else:
                raise

    def _close_on_stop(self, sess: Any, coord: Coordinator) -> None:
        coord.wait_for_stop()
        with contextlib.suppress(Exception):
            sess.run(self.cancel_op)

    @classmethod
    def from_proto(cls, proto: Any, import_scope: str | None = None,
                   graph: Graph | None = None) -> QueueRunner:
        graph = graph or get_default_graph()
        op = lambda n: graph.as_graph_element(names.prepend_name_scope(n, import_scope))  # noqa: E731
        codes = list(proto.queue_closed_exception_types) or [errors.OUT_OF_RANGE]
        return cls(op(proto.queue_name), [op(n) for n in proto.enqueue_op_name],
                   op(proto.close_op_name), op(proto.cancel_op_name),
                   tuple(errors.exception_type_from_error_code(c) for c in codes))

    def to_proto(self, export_scope: str | None = None) -> Any | None:
        if export_scope is not None and not self.queue.name.startswith(export_scope):
            return None
        strip = lambda n: names.strip_name_scope(n, export_scope)  # noqa: E731
        return pb.QueueRunnerDef(
            queue_name=strip(self.queue.name),
            enqueue_op_name=[strip(op.name) for op in self.enqueue_ops],
            close_op_name=strip(self.close_op.name),
            cancel_op_name=strip(self.cancel_op.name),
            queue_closed_exception_types=[c.error_code for c in self.queue_closed_exception_types],
        )


class Coordinator:
    """``tf.train.Coordinator``: a stop flag the training loop and the queue threads share."""

    def __init__(self, clean_stop_exception_types: tuple | None = None):
        self._clean = tuple(clean_stop_exception_types if clean_stop_exception_types is not None
                            else (errors.OutOfRangeError,))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._exc_info: tuple | None = None
        self._threads: set[threading.Thread] = set()
        self._joined = False

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def request_stop(self, ex: BaseException | None = None) -> None:
        """Asks every thread to stop; ``ex`` (not a clean-stop type) is re-raised by join()."""
        with self._lock:
            if ex is not None and self._exc_info is None and not isinstance(ex, self._clean):
                self._exc_info = (type(ex), ex, ex.__traceback__)
            self._stop.set()

    def clear_stop(self) -> None:
        with self._lock:
            self._joined, self._exc_info = False, None
            self._stop.clear()

    def wait_for_stop(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)

    @contextlib.contextmanager
    def stop_on_exception(self) -> Iterator[None]:
        try:
            yield
        except Exception as e:  # noqa: BLE001  (handed over, as TF's does)
            self.request_stop(e)

    def register_thread(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.add(thread)

    def join(self, threads: list | None = None, stop_grace_period_secs: float = 120,
             ignore_live_threads: bool = False) -> None:
        """Waits for the threads (after a stop request); re-raises the first error reported."""
        with self._lock:
            waiting = set(threads or ()) | self._threads
        self._stop.wait()
        deadline = time.monotonic() + stop_grace_period_secs
        for thread in waiting:
            if thread.is_alive():
                thread.join(max(deadline - time.monotonic(), 0))
        self._joined = True
        alive = [t.name for t in waiting if t.is_alive()]
        if self._exc_info is not None:
            raise self._exc_info[1].with_traceback(self._exc_info[2])
        if alive and not ignore_live_threads:
            raise RuntimeError(f"Coordinator stopped with threads still running: "
                               f"{' '.join(alive)}")

    @property
    def joined(self) -> bool:
        return self._joined

    def raise_requested_exception(self) -> None:
        if self._exc_info is not None:
            raise self._exc_info[1].with_traceback(self._exc_info[2])


def start_queue_runners(sess: Any = None, coord: Coordinator | None = None, daemon: bool = True,
                        start: bool = True, collection: str = "queue_runners") -> list:
    """Starts the threads of every QueueRunner in ``collection`` (TF's function)."""
    if sess is None:
        from gpugraph.session import get_default_session  # noqa: PLC0415  (a layer above)

        sess = get_default_session()
        if sess is None:
            raise ValueError("Cannot start queue runners: No default session is registered. Use "
                             "`with sess.as_default()` or pass an explicit session to "
                             "tf.start_queue_runners(sess=sess)")
    threads = []
    for runner in sess.graph.get_collection(collection):
        threads.extend(runner.create_threads(sess, coord=coord, daemon=daemon, start=start))
    return threads


def add_queue_runner(qr: QueueRunner, collection: str = "queue_runners") -> None:
    get_default_graph().add_to_collection(collection, qr)
