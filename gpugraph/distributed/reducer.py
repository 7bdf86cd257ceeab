"""Averaging a step's gradients over the ranks, in fused buckets (Horovod's tensor fusion).

A plan with data parallelism (:mod:`gpugraph.plan.data_parallel`) hands every gradient to
:meth:`GradientReducer.enqueue` as soon as it is computed and takes the average back with
:meth:`GradientReducer.result` just before its first reader (the optimizer update).  Dense
gradients of one device and dtype are packed into one flat buffer and summed by one
all-reduce; a bucket starts as soon as it holds ``GPUGRAPH_FUSION_BYTES`` (the step goes on
computing while it reduces), and the rest start when the first average is needed.  Sparse
gradients (an ``IndexedSlices``' values and indices) are gathered from every rank, values
divided by the number of ranks, so duplicate rows sum as one process's larger batch would.

Every rank runs the same plan, so every rank enqueues the same gradients in the same order and
the buckets match without any negotiation between ranks.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np

from gpugraph import config
from gpugraph.distributed import collectives

DENSE, VALUES, INDICES = "dense", "values", "indices"


class Ticket:
    """One gradient of one step, from enqueue to its average."""

    __slots__ = ("name", "kind", "value", "device", "bucket", "offset", "result")

    def __init__(self, name: str, kind: str, value: Any, device: Any):
        self.name, self.kind, self.value, self.device = name, kind, value, device
        self.bucket: _Bucket | None = None
        self.offset = 0
        self.result: Any = None


class _Bucket:
    def __init__(self, tickets: list[Ticket], handle: Any, ops: Any):
        self.tickets, self.handle, self.ops = tickets, handle, ops


class GradientReducer:
    """Averages gradients over the ranks of ``world`` (see the module doc)."""

    def __init__(self, world: Any):
        self.world = world
        self.size = world.size
        self.fusion_bytes = config.settings.fusion_bytes
        self.pending: list[Ticket] = []
        self.pending_bytes = 0
        self._collectives: dict[int, Any] = {}
        self.reductions = 0  # all-reduces and gathers started (for reports and tests)
        self.seconds = 0.0  # host time spent starting and waiting for them (benchmarks)

    def collectives(self, device: Any) -> Any:
        found = self._collectives.get(id(device))
        if found is None:
            found = self._collectives[id(device)] = collectives.for_device(self.world, device)
        return found

    def enqueue(self, name: str, kind: str, value: Any, device: Any) -> Ticket:
        """Hands over gradient ``name`` (a dense gradient, or sparse values or indices)."""
        ticket = Ticket(name, kind, value, device)
        self.pending.append(ticket)
        if kind == DENSE:
            self.pending_bytes += int(value.nbytes)
            if self.pending_bytes >= self.fusion_bytes:
                started = time.perf_counter()
                self.flush()
                self.seconds += time.perf_counter() - started
        return ticket

    def result(self, ticket: Ticket) -> Any:
        """The average of ``ticket``'s gradient over the ranks (its indices, gathered)."""
        if ticket.result is None:
            started = time.perf_counter()
            if ticket.bucket is None:
                self.flush()  # (it is pending: start or gather everything pending, in order)
            if ticket.result is None:
                self._finish(ticket.bucket)
            self.seconds += time.perf_counter() - started
        result, ticket.result, ticket.value = ticket.result, None, None
        return result

    def flush(self) -> None:
        """Starts the all-reduces of every pending dense gradient (one per device and dtype),
        and the gathers of pending sparse ones, in enqueue order."""
        pending, self.pending, self.pending_bytes = self.pending, [], 0
        groups: dict[tuple, list[Ticket]] = {}
        for ticket in pending:
            if ticket.kind == DENSE:
                groups.setdefault((id(ticket.device), ticket.value.dtype.str), []).append(ticket)
        for tickets in groups.values():
            self._start(tickets)
        for ticket in pending:  # (gathered now, so every rank gathers in the same order)
            if ticket.kind != DENSE:
                self._gather(ticket)

    def _start(self, tickets: list[Ticket]) -> None:
        device = tickets[0].device
        xp = device.xp
        offset = 0
        for ticket in tickets:
            ticket.offset = offset
            offset += int(ticket.value.size)
        with _on(device):
            flat = xp.concatenate([xp.ravel(t.value) for t in tickets]) if len(tickets) > 1 \
                else xp.ravel(tickets[0].value)
        ops = self.collectives(device)
        bucket = _Bucket(tickets, ops.start_sum(flat), ops)
        for ticket in tickets:
            ticket.bucket = bucket
        self.reductions += 1

    def _finish(self, bucket: _Bucket) -> None:
        names = ", ".join(t.name for t in bucket.tickets[:3])
        total = bucket.ops.finish_sum(bucket.handle, f"the all-reduce of gradients {names}"
                                      + (" ..." if len(bucket.tickets) > 3 else ""))
        with _on(bucket.tickets[0].device):
            total /= total.dtype.type(self.size)
            for ticket in bucket.tickets:
                value = ticket.value
                part = total[ticket.offset:ticket.offset + value.size].reshape(value.shape)
                ticket.result = part
                ticket.bucket = None

    def _gather(self, ticket: Ticket) -> None:
        ops = self.collectives(ticket.device)
        gathered = ops.gather_rows(ticket.value, f"the gather of sparse gradient {ticket.name}")
        if ticket.kind == VALUES:
            with _on(ticket.device):
                gathered /= gathered.dtype.type(self.size)
        ticket.result = gathered
        self.reductions += 1


def _on(device: Any) -> Any:
    """The device's context (a CUDA GPU's: its arrays are made on it), or none."""
    return device.run_context() or contextlib.nullcontext()


def average_over_ranks(world: Any, value: Any) -> np.ndarray:
    """The mean of a host value over the ranks (losses and metrics for reporting)."""
    array = np.asarray(value)
    total = world.allreduce_sum(np.ascontiguousarray(array, dtype=np.float64).reshape(-1),
                                "the average of a reported value")
    return (total / world.size).reshape(array.shape).astype(array.dtype, copy=False)
