"""TF1 input queues and readers: FIFO, padding-FIFO and random-shuffle queues, their enqueue,
dequeue, close and size ops, and the file readers that feed on a queue of file names.

Queues and readers are session resources (:meth:`gpugraph.state.SessionState.resource`),
shared by the threads that queue runners start (:func:`gpugraph.train.start_queue_runners`),
as TF's resource manager shares them: an enqueue blocks while its queue is full, a dequeue while
it is empty, and a closed queue lets its dequeues drain what is left, then raises
OutOfRangeError.  Closing the session cancels every queue, so no thread stays blocked.
Messages are TF's (fifo_queue.cc, queue_base.cc, random_shuffle_queue_op.cc).

A random-shuffle queue hands out elements in numpy's random order (seeded by the op's
``seed``/``seed2`` when set), not TF's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops import dataset_ops
from gpugraph.ops.registry import BuildContext, op


class Queue:
    """One queue of tuples of host arrays, safe to use from several threads."""

    def __init__(self, name: str, kind: str, capacity: int, shapes: list, padded: bool = False,
                 min_after_dequeue: int = 0, rng: np.random.Generator | None = None):
        self.name, self.kind, self.capacity = name, kind, capacity
        self.shapes, self.padded = shapes, padded
        self.min_after_dequeue, self._rng = min_after_dequeue, rng
        self._items: list[tuple] = []
        self._cond = threading.Condition()
        self.closed = self.cancelled = False

    def _wait(self, ready: Any, timeout_ms: int) -> bool:
        timeout = None if timeout_ms is None or timeout_ms < 0 else timeout_ms / 1000
        return self._cond.wait_for(lambda: ready() or self.cancelled, timeout)

    def enqueue(self, node: Any, elements: list[tuple], timeout_ms: int = -1) -> None:
        with self._cond:
            for element in elements:
                if self.closed:
                    raise errors.CancelledError(None, node, f"{self.kind} '{self.name}' is "
                                                "closed.")
                full = lambda: self.capacity < 0 or len(self._items) < self.capacity  # noqa: E731
                if not self._wait(lambda: full() or self.closed, timeout_ms) or self.cancelled:
                    raise errors.CancelledError(None, node, "Enqueue operation was cancelled")
                if self.closed:
                    raise errors.CancelledError(None, node, f"{self.kind} '{self.name}' is "
                                                "closed.")
                self._items.append(element)
                self._cond.notify_all()

    def dequeue(self, node: Any, count: int | None, up_to: bool = False,
                timeout_ms: int = -1) -> list[tuple]:
        want = 1 if count is None else count
        with self._cond:
            out: list[tuple] = []
            while len(out) < want:
                reserve = 0 if self.closed else self.min_after_dequeue
                if not self._wait(lambda: len(self._items) > reserve or self.closed,
                                  timeout_ms) or self.cancelled:
                    raise errors.CancelledError(None, node, "Dequeue operation was cancelled")
                if self._items and (self.closed or len(self._items) > reserve):
                    out.append(self._take())
                    self._cond.notify_all()
                    continue
                if up_to and out:
                    break
                self._items[:0] = out  # (TF gives the elements back on failure)
                raise errors.OutOfRangeError(
                    None, node, f"{self.kind} '{self.name}' is closed and has insufficient "
                    f"elements (requested {want}, current size {len(self._items)})")
            return out

    def _take(self) -> tuple:
        if self._rng is None:
            return self._items.pop(0)
        pick = int(self._rng.integers(len(self._items)))
        self._items[pick], self._items[-1] = self._items[-1], self._items[pick]
        return self._items.pop()

    def close(self, cancel_pending: bool = False) -> None:
        with self._cond:
            self.closed = True
            self.cancelled = self.cancelled or cancel_pending
            self._cond.notify_all()

    def cancel(self) -> None:
        """Wakes every waiting thread with a CancelledError (the session is closing)."""
        self.close(cancel_pending=True)

    def size(self) -> int:
        with self._cond:
            return len(self._items)


def _name(ctx: BuildContext) -> tuple[str, tuple]:
    container = (ctx.attr_or("container", b"") or b"").decode()
    shared = (ctx.attr_or("shared_name", b"") or b"").decode()
    name = shared or ctx.name
    return name, ("queue", container, name)


def _shapes(ctx: BuildContext) -> list:
    # (TensorShapeProtos; an empty list when the queue's shapes are not fixed)
    return [None if s.unknown_rank else tuple(d.size for d in s.dim)
            for s in ctx.attr_or("shapes", [])]


@op("FIFOQueueV2", "FIFOQueue", "PaddingFIFOQueueV2", "PaddingFIFOQueue", host_only=True)
def _fifo_queue(ctx: BuildContext):
    name, key = _name(ctx)
    padded = ctx.op.type.startswith("Padding")
    kind = "PaddingFIFOQueue" if padded else "FIFOQueue"
    queue = ctx.state.resource(key, lambda: Queue(name, kind, ctx.attr_or("capacity", -1),
                                                  _shapes(ctx), padded))
    return lambda: queue


@op("RandomShuffleQueueV2", "RandomShuffleQueue", host_only=True)
def _random_shuffle_queue(ctx: BuildContext):
    name, key = _name(ctx)
    seeds = [ctx.attr_or("seed", 0), ctx.attr_or("seed2", 0)]
    rng = np.random.default_rng(seeds if any(seeds) else None)
    queue = ctx.state.resource(key, lambda: Queue(
        name, "RandomShuffleQueue", ctx.attr_or("capacity", -1), _shapes(ctx),
        min_after_dequeue=ctx.attr_or("min_after_dequeue", 0), rng=rng))
    return lambda: queue


def _timeout(ctx: BuildContext) -> int:
    return int(ctx.attr_or("timeout_ms", -1))


def _host(ctx: BuildContext, value: Any) -> np.ndarray:
    return np.asarray(ctx.device.to_host(value))


@op("QueueEnqueueV2", "QueueEnqueue", host_only=True)
def _enqueue(ctx: BuildContext):
    node, timeout = ctx.op, _timeout(ctx)

    def kernel(queue: Queue, *components: Any) -> None:
        queue.enqueue(node, [tuple(_host(ctx, c) for c in components)], timeout)

    return kernel


@op("QueueEnqueueManyV2", "QueueEnqueueMany", host_only=True)
def _enqueue_many(ctx: BuildContext):
    node, timeout = ctx.op, _timeout(ctx)

    def kernel(queue: Queue, *components: Any) -> None:
        arrays = [_host(ctx, c) for c in components]
        sizes = {a.shape[0] if a.ndim else -1 for a in arrays}
        if len(sizes) != 1 or -1 in sizes:
            raise errors.InvalidArgumentError(
                None, node, "Shape mismatch in tuple component 1. Expected [...], got [...]"
                if len(arrays) > 1 else "Shape must be at least rank 1")
        rows = [tuple(np.array(a[i]) for a in arrays) for i in range(sizes.pop())]
        queue.enqueue(node, rows, timeout)

    return kernel


def _batch(queue: Queue, node: Any, elements: list[tuple], count: int) -> tuple:
    if not elements:
        return tuple(np.zeros((0, *(s or ())), dtype=np.float32) for s in queue.shapes[:count])
    parts = list(zip(*elements))
    if queue.padded:
        return tuple(_padded(list(p)) for p in parts)
    return tuple(dataset_ops._stack(node, list(p)) for p in parts)


def _padded(items: list) -> np.ndarray:
    # PaddingFIFOQueue: every component padded with zeros to the largest in the batch.
    dims = tuple(max(np.shape(i)[k] for i in items) for k in range(np.ndim(items[0])))
    out = np.zeros((len(items), *dims), dtype=np.asarray(items[0]).dtype)
    for row, item in enumerate(items):
        out[(row, *(slice(0, n) for n in np.shape(item)))] = item
    return out


@op("QueueDequeueV2", "QueueDequeue", host_only=True)
def _dequeue(ctx: BuildContext):
    node, timeout = ctx.op, _timeout(ctx)
    return lambda queue: queue.dequeue(node, None, timeout_ms=timeout)[0]


@op("QueueDequeueManyV2", "QueueDequeueMany", "QueueDequeueUpToV2", "QueueDequeueUpTo",
    host_inputs=(1,), host_only=True)
def _dequeue_many(ctx: BuildContext):
    node, timeout, count = ctx.op, _timeout(ctx), ctx.num_outputs
    up_to = "UpTo" in ctx.op.type

    def kernel(queue: Queue, n: Any) -> tuple:
        want = int(np.asarray(n))
        if want < 0:
            raise errors.InvalidArgumentError(None, node, f"DequeueManyOp requested {want} < 0 "
                                              "elements")
        return _batch(queue, node, queue.dequeue(node, want, up_to, timeout), count)

    return kernel


@op("QueueCloseV2", "QueueClose", host_only=True)
def _close(ctx: BuildContext):
    cancel = ctx.attr_or("cancel_pending_enqueues", False)

    def kernel(queue: Queue) -> None:
        queue.close(cancel)

    return kernel


@op("QueueSizeV2", "QueueSize", host_only=True)
def _size(ctx: BuildContext):
    return lambda queue: np.int32(queue.size())


@op("QueueIsClosedV2", "QueueIsClosed", host_only=True)
def _is_closed(ctx: BuildContext):
    return lambda queue: np.bool_(queue.closed)


# --- readers ------------------------------------------------------------------------------------
class Reader:
    """A file reader: records of the files whose names it dequeues, one by one."""

    def __init__(self, name: str, records: Any):
        self.name, self._records = name, records
        self._current: Iterator[tuple[bytes, bytes]] | None = None
        self.produced = self.completed = 0
        self._lock = threading.Lock()

    def read(self, node: Any, queue: Queue, count: int = 1) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        with self._lock:
            while len(out) < count:
                if self._current is None:
                    if out and queue.closed and not queue.size():
                        break
                    filename = queue.dequeue(node, None)[0][0]
                    name = filename.item() if hasattr(filename, "item") else filename
                    name = name.decode() if isinstance(name, bytes) else str(name)
                    self._current = iter(self._records(node, name))
                record = next(self._current, None)
                if record is None:
                    self._current = None
                    self.completed += 1
                    continue
                self.produced += 1
                out.append(record)
        return out

    def reset(self) -> None:
        with self._lock:
            self._current, self.produced, self.completed = None, 0, 0


def _tfrecord_records(ctx: BuildContext):
    kind = ctx.attr_or("compression_type", b"").decode()

    def records(node: Any, name: str):
        offset = 0
        for data in dataset_ops.tfrecords(ctx, name, kind):
            yield f"{name}:{offset}".encode(), data
            offset += len(data) + 16

    return records


def _text_line_records(ctx: BuildContext):
    skip = ctx.attr_or("skip_header_lines", 0)

    def records(node: Any, name: str):
        with dataset_ops._open(ctx, name, "") as f:
            for number, line in enumerate(f, 1):
                if number > skip:
                    yield f"{name}:{number}".encode(), line.rstrip(b"\n").rstrip(b"\r")

    return records


def _fixed_length_records(ctx: BuildContext):
    header, size = ctx.attr_or("header_bytes", 0), ctx.attr("record_bytes")
    footer, hop = ctx.attr_or("footer_bytes", 0), ctx.attr_or("hop_bytes", 0) or size

    def records(node: Any, name: str):
        with dataset_ops._open(ctx, name, "") as f:
            data = f.read()
        body = data[header:len(data) - footer]
        for index, start in enumerate(range(0, len(body) - size + 1, hop)):
            yield f"{name}:{index}".encode(), body[start:start + size]

    return records


def _whole_file_records(ctx: BuildContext):
    def records(node: Any, name: str):
        with dataset_ops._open(ctx, name, "") as f:
            yield name.encode(), f.read()

    return records


_READERS = {"TFRecordReaderV2": _tfrecord_records, "TFRecordReader": _tfrecord_records,
            "TextLineReaderV2": _text_line_records, "TextLineReader": _text_line_records,
            "FixedLengthRecordReaderV2": _fixed_length_records,
            "FixedLengthRecordReader": _fixed_length_records,
            "WholeFileReaderV2": _whole_file_records, "WholeFileReader": _whole_file_records}


@op(*_READERS, host_only=True)
def _reader(ctx: BuildContext):
    container = (ctx.attr_or("container", b"") or b"").decode()
    name = (ctx.attr_or("shared_name", b"") or b"").decode() or ctx.name
    records = _READERS[ctx.op.type](ctx)
    reader = ctx.state.resource(("reader", container, name), lambda: Reader(name, records))
    return lambda: reader


@op("ReaderReadV2", "ReaderRead", host_only=True)
def _reader_read(ctx: BuildContext):
    node = ctx.op

    def kernel(reader: Reader, queue: Queue) -> tuple:
        key, value = reader.read(node, queue)[0]
        return np.asarray(key, dtype=object), np.asarray(value, dtype=object)

    return kernel


@op("ReaderReadUpToV2", "ReaderReadUpTo", host_inputs=(2,), host_only=True)
def _reader_read_up_to(ctx: BuildContext):
    node = ctx.op

    def kernel(reader: Reader, queue: Queue, n: Any) -> tuple:
        got = reader.read(node, queue, int(np.asarray(n)))
        keys = np.empty(len(got), dtype=object)
        values = np.empty(len(got), dtype=object)
        keys[:] = [k for k, _ in got]
        values[:] = [v for _, v in got]
        return keys, values

    return kernel


@op("ReaderNumRecordsProducedV2", "ReaderNumRecordsProduced", host_only=True)
def _reader_records_produced(ctx: BuildContext):
    return lambda reader: np.int64(reader.produced)


@op("ReaderNumWorkUnitsCompletedV2", "ReaderNumWorkUnitsCompleted", host_only=True)
def _reader_work_completed(ctx: BuildContext):
    return lambda reader: np.int64(reader.completed)


@op("ReaderResetV2", "ReaderReset", host_only=True)
def _reader_reset(ctx: BuildContext):
    def kernel(reader: Reader) -> None:
        reader.reset()

    return kernel
