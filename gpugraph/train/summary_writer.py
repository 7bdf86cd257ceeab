"""``tf.compat.v1.summary.FileWriter``: TensorBoard event files.

The record framing (TFRecord with masked crc32c), the file naming
(``events.out.tfevents.<time>.<host>``), the ``brain.Event:2`` version event and the queue
flushed by a background thread are tensorboardX's ``EventFileWriter``, a maintained writer of
TensorBoard's format, rather than a copy of it here; gpugraph builds the ``Event`` protos
(tensorboardX's classes: the same wire format as TF's) from the serialized ``Summary`` bytes
its summary ops produce and from the graph's GraphDef.
"""

from __future__ import annotations

import os
import time
from typing import Any

from tensorboardX.event_file_writer import EventFileWriter
from tensorboardX.proto import event_pb2, summary_pb2

from gpugraph.framework.graph import Graph


Event = event_pb2.Event
SessionLog = event_pb2.SessionLog
Summary = summary_pb2.Summary


def scalar_summary(values: dict[str, float]) -> Any:
    """A ``Summary`` of ``simple_value`` scalars (what ``tf.compat.v1.Summary(value=[...])``
    builds by hand for values computed outside the graph)."""
    return Summary(value=[Summary.Value(tag=tag, simple_value=float(v))
                          for tag, v in values.items()])


class FileWriter:
    """Writes summaries and the graph to an event file in ``logdir`` (TF's FileWriter)."""

    def __init__(self, logdir: str | os.PathLike, graph: Graph | None = None,
                 max_queue: int = 10, flush_secs: float = 120, graph_def: Any = None,
                 filename_suffix: str | None = None, session: Any = None):
        del session  # (TF's v2 summary-op path; a TF1 FileWriter ignores it here)
        self._logdir = os.fspath(logdir)
        os.makedirs(self._logdir, exist_ok=True)
        self._writer = EventFileWriter(self._logdir, max_queue, flush_secs,
                                       filename_suffix or "")
        self._closed = False
        if graph is not None or graph_def is not None:
            # (TF writes the graph, then the MetaGraphDef built from it, for TensorBoard)
            self.add_graph(graph, graph_def=graph_def)
            from gpugraph.train.meta_graph import create_meta_graph_def  # noqa: PLC0415

            graph_def = graph_def if graph_def is not None else \
                graph.as_graph_def(add_shapes=True)
            self.add_meta_graph(create_meta_graph_def(graph_def=graph_def, graph=graph))

    def get_logdir(self) -> str:
        return self._logdir

    def add_event(self, event: Any) -> None:
        """Writes an ``Event`` proto (or its serialized bytes)."""
        if isinstance(event, bytes):
            event = event_pb2.Event.FromString(event)
        if not event.wall_time:
            event.wall_time = time.time()
        self._writer.add_event(event)

    def add_summary(self, summary: Any, global_step: int | None = None) -> None:
        """Writes a ``Summary`` (the serialized bytes a summary op returns, or a proto) for
        step ``global_step``."""
        if hasattr(summary, "tolist"):  # a 0-d object array fetched from a summary op
            summary = summary.reshape(()).item() if summary.ndim == 0 else summary.tolist()
        if not isinstance(summary, bytes):
            summary = summary.SerializeToString()
        event = event_pb2.Event(summary=summary_pb2.Summary.FromString(summary))
        if global_step is not None:
            event.step = int(global_step)
        self.add_event(event)

    def add_session_log(self, session_log: Any, global_step: int | None = None) -> None:
        """Writes a ``SessionLog`` (``START`` at a resumed run's step tells TensorBoard to drop
        the earlier run's events from that step on, as TF's SummarySaverHook does)."""
        event = event_pb2.Event(session_log=session_log)
        if global_step is not None:
            event.step = int(global_step)
        self.add_event(event)

    def add_graph(self, graph: Graph | None, global_step: int | None = None,
                  graph_def: Any = None) -> None:
        """Writes the graph (its GraphDef) for TensorBoard's graph view."""
        graph_def = graph_def if graph_def is not None else graph.as_graph_def(add_shapes=True)
        event = event_pb2.Event(graph_def=graph_def.SerializeToString(deterministic=True))
        if global_step is not None:
            event.step = int(global_step)
        self.add_event(event)

    def add_meta_graph(self, meta_graph_def: Any, global_step: int | None = None) -> None:
        """Writes a MetaGraphDef (TensorBoard shows its collections and signatures)."""
        event = event_pb2.Event(meta_graph_def=meta_graph_def.SerializeToString(
            deterministic=True))
        if global_step is not None:
            event.step = int(global_step)
        self.add_event(event)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        if not self._closed:
            self._writer.close()
            self._closed = True

    def reopen(self) -> None:
        if self._closed:
            self._writer.reopen()
            self._closed = False

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
