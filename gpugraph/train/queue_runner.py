"""``tf.train.QueueRunner`` as a graph-level record (the ``queue_runners`` collection).

gpugraph keeps the QueueRunnerDef's ops so meta graphs round-trip; it does not start queue
threads (input queues are outside what gpugraph runs).
"""

from __future__ import annotations

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

    @property
    def name(self) -> str:
        return self.queue.name

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
