"""tf.data in a graph: dataset ops, iterators and ``IteratorGetNext``, run on the host as TF runs
them, so a graph that reads its batches in-graph trains with no feeds.

A dataset op's output (a DT_VARIANT scalar in TF) is a :class:`Dataset` object here: a recipe
whose ``__iter__`` yields elements, each a tuple of numpy arrays (the flattened components, in
the order of the op's ``output_types``).  Functions (``MapDataset``'s ``f``, a one-shot
iterator's ``dataset_factory``) are compiled from the graph's library like any function call.
Iterators are session resources (:meth:`gpugraph.state.SessionState.resource`): they keep their
position from one ``run`` to the next; ``MakeIterator`` (the initializer) restarts one;
``IteratorGetNext`` past the end raises OutOfRangeError ("End of sequence"), as TF does.

Differences from TF, by design: shuffled orders are drawn from numpy's generator (seeded by the
op's ``seed``/``seed2`` when set), so they are not TF's orders; parallel map, interleave and
prefetch run sequentially (same elements, in the deterministic order TF gives with
``deterministic``/``sloppy`` off); threading and performance options (``OptimizeDataset``,
``ModelDataset``, private thread pools) change nothing.
"""

from __future__ import annotations

import gzip
import itertools
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.io.table import crc32c, mask_crc
from gpugraph.ops.functional_ops import truthy
from gpugraph.ops.registry import BuildContext, op

Element = tuple  # one element: a tuple of numpy arrays


class Dataset:
    """A dataset: ``iter(dataset)`` yields its elements (a fresh pass each time)."""

    def __init__(self, make: Callable[[], Iterator[Element]], label: str):
        self._make, self.label = make, label

    def __iter__(self) -> Iterator[Element]:
        return self._make()

    def __repr__(self) -> str:
        return f"<Dataset {self.label}>"


def _dataset(ctx: BuildContext, make: Callable[..., Callable[[], Iterator[Element]]]) -> Any:
    """A kernel returning ``Dataset(make(*inputs))``."""
    label = f"{ctx.op.type} {ctx.name}"
    return lambda *args: Dataset(make(*args), label)


def _host(ctx: BuildContext, value: Any) -> np.ndarray:
    return np.asarray(ctx.device.to_host(value))


def _int(value: Any) -> int:
    return int(np.asarray(value).reshape(()))


def _function(ctx: BuildContext, attr: str) -> Callable[[list], list]:
    """The function attr ``attr`` compiled; calling it maps arguments to host results."""
    compiled = ctx.functions.compile(ctx.attr(attr), ctx)
    node, device = ctx.op, ctx.device

    def call(args: list) -> list:
        try:
            results = compiled(list(args))
        except errors.OpError as e:
            raise type(e)(e.node_def, e.op, f"{e.message}\n\t [[in function "
                          f"{compiled.name!r} of node {node.name!r} ({node.type})]]",
                          e.details) from e
        return [r if isinstance(r, Dataset) else np.asarray(device.to_host(r)) for r in results]

    return call


# --- sources ------------------------------------------------------------------------------------
@op("TensorSliceDataset", host_only=True)
def _tensor_slice_dataset(ctx: BuildContext):
    def make(*components: Any):
        arrays = [_host(ctx, c) for c in components]
        if len({a.shape[0] if a.ndim else -1 for a in arrays}) != 1 or arrays[0].ndim == 0:
            raise errors.InvalidArgumentError(
                None, ctx.op, "All components must have the same size in the 0th dimension")
        return lambda: (tuple(np.array(a[i]) for a in arrays) for i in range(arrays[0].shape[0]))

    return _dataset(ctx, make)


@op("TensorDataset", host_only=True)
def _tensor_dataset(ctx: BuildContext):
    def make(*components: Any):
        element = tuple(_host(ctx, c) for c in components)
        return lambda: iter([element])

    return _dataset(ctx, make)


@op("RangeDataset", host_only=True)
def _range_dataset(ctx: BuildContext):
    dtype = np.dtype(ctx.attr("output_types")[0])

    def make(start: Any, stop: Any, step: Any):
        first, last, delta = _int(start), _int(stop), _int(step)
        if delta == 0:
            raise errors.InvalidArgumentError(None, ctx.op, "step must be a non-zero integer.")
        return lambda: ((np.asarray(i, dtype),) for i in range(first, last, delta))

    return _dataset(ctx, make)


def _filenames(ctx: BuildContext, value: Any) -> list[str]:
    return [f.decode() if isinstance(f, bytes) else str(f)
            for f in np.asarray(_host(ctx, value), dtype=object).reshape(-1)]


def _open(ctx: BuildContext, path: str, compression: str) -> Any:
    try:
        if compression == "GZIP":
            return gzip.open(path, "rb")
        handle = open(path, "rb")  # noqa: SIM115  (closed by the reader)
        if compression == "ZLIB":
            data = zlib.decompress(handle.read())
            handle.close()
            import io  # noqa: PLC0415

            return io.BytesIO(data)
        return handle
    except OSError as e:
        raise errors.NotFoundError(None, ctx.op, f"{path}; {e.strerror}") from None


def _compression(ctx: BuildContext, value: Any) -> str:
    text = np.asarray(_host(ctx, value), dtype=object).reshape(-1)
    name = text[0] if text.size else b""
    name = name.decode() if isinstance(name, bytes) else str(name)
    if name not in ("", "GZIP", "ZLIB"):
        raise errors.InvalidArgumentError(None, ctx.op, f"Unsupported compression type: {name}.")
    return name


def tfrecords(ctx: BuildContext, path: str, compression: str) -> Iterator[bytes]:
    """The records of a TFRecord file (length, masked crc of it, data, masked crc of it)."""
    with _open(ctx, path, compression) as f:
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise errors.DataLossError(None, ctx.op, f"truncated record at the end of {path}")
            length, length_crc = struct.unpack("<QI", header)
            if mask_crc(crc32c(header[:8])) != length_crc:
                raise errors.DataLossError(None, ctx.op, f"corrupted record in {path}: length "
                                           "checksum mismatch")
            data, data_crc = f.read(length), f.read(4)
            if len(data) < length or len(data_crc) < 4:
                raise errors.DataLossError(None, ctx.op, f"truncated record in {path}")
            if mask_crc(crc32c(data)) != struct.unpack("<I", data_crc)[0]:
                raise errors.DataLossError(None, ctx.op, f"corrupted record in {path}: data "
                                           "checksum mismatch")
            yield data


def _string(value: bytes) -> np.ndarray:
    return np.asarray(value, dtype=object)


@op("TFRecordDataset", "TFRecordDatasetV2", host_only=True)
def _tfrecord_dataset(ctx: BuildContext):
    def make(filenames: Any, compression: Any, *_buffer: Any):
        names, kind = _filenames(ctx, filenames), _compression(ctx, compression)
        return lambda: ((_string(r),) for name in names for r in tfrecords(ctx, name, kind))

    return _dataset(ctx, make)


@op("TextLineDataset", host_only=True)
def _text_line_dataset(ctx: BuildContext):
    def lines(name: str, kind: str) -> Iterator[Element]:
        with _open(ctx, name, kind) as f:
            for line in f:
                yield (_string(line.rstrip(b"\n").rstrip(b"\r")),)

    def make(filenames: Any, compression: Any, *_buffer: Any):
        names, kind = _filenames(ctx, filenames), _compression(ctx, compression)
        return lambda: (e for name in names for e in lines(name, kind))

    return _dataset(ctx, make)


@op("FixedLengthRecordDataset", "FixedLengthRecordDatasetV2", host_only=True)
def _fixed_length_record_dataset(ctx: BuildContext):
    def records(name: str, header: int, size: int, footer: int, kind: str):
        with _open(ctx, name, kind) as f:
            data = f.read()
        body = data[header:len(data) - footer if footer else len(data)]
        for start in range(0, len(body) - size + 1, size):
            yield (_string(body[start:start + size]),)

    def make(filenames: Any, header: Any, size: Any, footer: Any, _buffer: Any,
             compression: Any = None):
        names = _filenames(ctx, filenames)
        kind = "" if compression is None else _compression(ctx, compression)
        h, n, t = _int(header), _int(size), _int(footer)
        return lambda: (e for name in names for e in records(name, h, n, t, kind))

    return _dataset(ctx, make)


# --- transformations --------------------------------------------------------------------------
@op("RepeatDataset", host_only=True)
def _repeat_dataset(ctx: BuildContext):
    def make(dataset: Dataset, count: Any):
        times = _int(count)

        def run() -> Iterator[Element]:
            for _ in (itertools.count() if times < 0 else range(times)):
                empty = True
                for element in dataset:
                    empty = False
                    yield element
                if empty:  # (an empty dataset repeated forever is still empty)
                    return

        return run

    return _dataset(ctx, make)


@op("ShuffleDataset", "ShuffleDatasetV2", "ShuffleDatasetV3", host_only=True)
def _shuffle_dataset(ctx: BuildContext):
    # TF's buffer shuffle: fill a buffer, then hand out a random slot and refill it.  The
    # orders are numpy's, not TF's (documented); a new pass reshuffles, as TF's default.
    kind, node = ctx.op.type, ctx.op

    def make(dataset: Dataset, buffer_size: Any, *rest: Any):
        size = _int(buffer_size)
        if size <= 0 and size != -2:
            raise errors.InvalidArgumentError(None, node, "buffer_size must be greater than zero.")
        seeds = [_int(s) for s in rest[:2]] if kind != "ShuffleDatasetV2" else [0, 0]
        rng = np.random.default_rng(seeds if any(seeds) else None)

        def run() -> Iterator[Element]:
            buffer: list = []
            for element in dataset:
                if size < 0 or len(buffer) < size:
                    buffer.append(element)
                    if size < 0 or len(buffer) < size:
                        continue
                pick = int(rng.integers(len(buffer)))
                yield buffer[pick]
                buffer[pick] = buffer[-1]
                buffer.pop()
            while buffer:
                pick = int(rng.integers(len(buffer)))
                yield buffer[pick]
                buffer[pick] = buffer[-1]
                buffer.pop()

        return run

    return _dataset(ctx, make)


@op("MapDataset", "ParallelMapDataset", "ParallelMapDatasetV2", host_only=True)
def _map_dataset(ctx: BuildContext):
    fn = _function(ctx, "f")
    captured = len(ctx.attr_or("Targuments", []))

    def make(dataset: Dataset, *rest: Any):
        other = list(rest[:captured])  # (the parallel forms add num_parallel_calls after)
        return lambda: (tuple(fn([*element, *other])) for element in dataset)

    return _dataset(ctx, make)


@op("FilterDataset", host_only=True)
def _filter_dataset(ctx: BuildContext):
    fn = _function(ctx, "predicate")

    def make(dataset: Dataset, *other: Any):
        return lambda: (e for e in dataset if truthy(fn([*e, *other])[0]))

    return _dataset(ctx, make)


@op("FlatMapDataset", host_only=True)
def _flat_map_dataset(ctx: BuildContext):
    fn = _function(ctx, "f")

    def make(dataset: Dataset, *other: Any):
        return lambda: (inner for e in dataset for inner in fn([*e, *other])[0])

    return _dataset(ctx, make)


@op("InterleaveDataset", "ParallelInterleaveDatasetV2", "ParallelInterleaveDatasetV3",
    "ParallelInterleaveDatasetV4", host_only=True)
def _interleave_dataset(ctx: BuildContext):
    # TF's deterministic interleave: a cycle of `cycle_length` input datasets, `block_length`
    # elements from each in turn; an exhausted one is replaced by the next input element's.
    fn = _function(ctx, "f")
    captured = len(ctx.attr_or("Targuments", []))

    def make(dataset: Dataset, *rest: Any):
        other = list(rest[:captured])
        cycle_length, block_length = _int(rest[captured]), _int(rest[captured + 1])

        def run() -> Iterator[Element]:
            inputs = iter(dataset)
            cycle: list = []
            for element in inputs:
                cycle.append(iter(fn([*element, *other])[0]))
                if len(cycle) == max(cycle_length, 1):
                    break
            while cycle:
                for slot in range(len(cycle)):
                    it = cycle[slot]
                    for _ in range(max(block_length, 1)):
                        value = next(it, None) if it is not None else None
                        if value is None:
                            nxt = next(inputs, None)
                            cycle[slot] = it = None if nxt is None else iter(fn([*nxt, *other])[0])
                            break
                        yield value
                cycle = [c for c in cycle if c is not None]

        return run

    return _dataset(ctx, make)


def _stack(node: Any, items: list) -> np.ndarray:
    try:
        return np.stack(items)
    except ValueError:
        shapes = sorted({tuple(np.shape(i)) for i in items})
        raise errors.InvalidArgumentError(
            None, node, f"Cannot batch tensors with different shapes in component 0. First "
            f"element had shape {list(shapes[0])} and element 1 had shape "
            f"{list(shapes[-1])}.") from None


@op("BatchDataset", "BatchDatasetV2", host_only=True)
def _batch_dataset(ctx: BuildContext):
    node = ctx.op

    def make(dataset: Dataset, batch_size: Any, drop_remainder: Any = False, *_parallel: Any):
        size, drop = _int(batch_size), bool(np.asarray(drop_remainder))
        if size <= 0:
            raise errors.InvalidArgumentError(None, node, "Batch size must be greater than zero.")

        def run() -> Iterator[Element]:
            it = iter(dataset)
            while True:
                batch = list(itertools.islice(it, size))
                if not batch or (drop and len(batch) < size):
                    return
                yield tuple(_stack(node, list(parts)) for parts in zip(*batch))

        return run

    return _dataset(ctx, make)


@op("PaddedBatchDataset", "PaddedBatchDatasetV2", host_only=True)
def _padded_batch_dataset(ctx: BuildContext):
    node, count = ctx.op, ctx.attr("N")

    def pad(items: list, shape: np.ndarray, value: np.ndarray) -> np.ndarray:
        dims = [max(np.shape(i)[k] for i in items) if d < 0 else int(d)
                for k, d in enumerate(shape)]
        out = np.full((len(items), *dims), value, dtype=np.asarray(items[0]).dtype)
        for row, item in enumerate(items):
            item = np.asarray(item)
            if any(a > b for a, b in zip(item.shape, dims)):
                raise errors.InvalidArgumentError(
                    None, node, "Attempted to pad to a smaller size than the input element.")
            out[(row, *tuple(slice(0, n) for n in item.shape))] = item
        return out

    def make(dataset: Dataset, batch_size: Any, *rest: Any):
        shapes = [_host(ctx, s).reshape(-1) for s in rest[:count]]
        values = [_host(ctx, v) for v in rest[count:2 * count]]
        drop = bool(np.asarray(rest[2 * count])) if len(rest) > 2 * count else False
        size = _int(batch_size)

        def run() -> Iterator[Element]:
            it = iter(dataset)
            while True:
                batch = list(itertools.islice(it, size))
                if not batch or (drop and len(batch) < size):
                    return
                yield tuple(pad(list(parts), shapes[k], values[k])
                            for k, parts in enumerate(zip(*batch)))

        return run

    return _dataset(ctx, make)


@op("TakeDataset", host_only=True)
def _take_dataset(ctx: BuildContext):
    def make(dataset: Dataset, count: Any):
        n = _int(count)
        return lambda: iter(dataset) if n < 0 else itertools.islice(dataset, n)

    return _dataset(ctx, make)


@op("SkipDataset", host_only=True)
def _skip_dataset(ctx: BuildContext):
    def make(dataset: Dataset, count: Any):
        n = _int(count)  # (a negative count skips everything)
        return lambda: itertools.islice(dataset, n, None) if n >= 0 else iter(())

    return _dataset(ctx, make)


@op("ZipDataset", host_only=True)
def _zip_dataset(ctx: BuildContext):
    def make(*datasets: Dataset):
        return lambda: (tuple(v for e in parts for v in e) for parts in zip(*datasets))

    return _dataset(ctx, make)


@op("ConcatenateDataset", host_only=True)
def _concatenate_dataset(ctx: BuildContext):
    def make(first: Dataset, second: Dataset):
        return lambda: itertools.chain(first, second)

    return _dataset(ctx, make)


@op("CacheDataset", "CacheDatasetV2", host_only=True)
def _cache_dataset(ctx: BuildContext):
    # In memory (filename ""): the first complete pass is recorded, later passes replay it.
    def make(dataset: Dataset, _filename: Any, *_resource: Any):
        cache: list = []
        complete = [False]

        def run() -> Iterator[Element]:
            if complete[0]:
                yield from cache
                return
            cache.clear()
            for element in dataset:
                cache.append(element)
                yield element
            complete[0] = True

        return run

    return _dataset(ctx, make)


# Options and performance stages that pass their input through unchanged.
@op("PrefetchDataset", "OptimizeDataset", "OptimizeDatasetV2", "ModelDataset",
    "MaxIntraOpParallelismDataset", "PrivateThreadPoolDataset",
    "ExperimentalMaxIntraOpParallelismDataset", "ExperimentalPrivateThreadPoolDataset",
    "AssertNextDataset", "ExperimentalAssertNextDataset", "AssertCardinalityDataset",
    "NonSerializableDataset", "OptionsDataset", host_only=True)
def _pass_through_dataset(ctx: BuildContext):
    return lambda dataset, *_options: dataset


# --- iterators ----------------------------------------------------------------------------------
class IteratorResource:
    """An iterator: where a pass over its dataset stands, kept between runs."""

    def __init__(self, name: str):
        self.name = name
        self._elements: Iterator[Element] | None = None

    def reset(self, dataset: Dataset) -> None:
        self._elements = iter(dataset)

    @property
    def initialized(self) -> bool:
        return self._elements is not None

    def next(self, node: Any) -> Element:
        if self._elements is None:
            raise errors.FailedPreconditionError(
                None, node, "GetNext() failed because the iterator has not been initialized. "
                "Ensure that you have run the initializer operation for this iterator before "
                "getting the next element.")
        element = next(self._elements, None)
        if element is None:
            raise errors.OutOfRangeError(None, node, "End of sequence")
        return element


def _resource_key(ctx: BuildContext) -> tuple:
    container = (ctx.attr_or("container", b"") or b"").decode()
    shared = (ctx.attr_or("shared_name", b"") or b"").decode()
    return ("iterator", container, shared or ctx.name)


@op("IteratorV2", "Iterator", host_only=True)
def _iterator(ctx: BuildContext):
    key = _resource_key(ctx)
    resource = ctx.state.resource(key, lambda: IteratorResource(key[2]))
    return lambda: resource


@op("OneShotIterator", host_only=True)
def _one_shot_iterator(ctx: BuildContext):
    # The dataset is made by the factory function once, the first time the op runs.
    key = _resource_key(ctx)
    factory = _function(ctx, "dataset_factory")

    def make() -> IteratorResource:
        resource = IteratorResource(key[2])
        resource.reset(factory([])[0])
        return resource

    return lambda: ctx.state.resource(key, make)


@op("MakeIterator", host_only=True)
def _make_iterator(ctx: BuildContext):
    def kernel(dataset: Dataset, iterator: IteratorResource) -> None:
        iterator.reset(dataset)

    return kernel


@op("IteratorGetNext", "IteratorGetNextSync", host_only=True)
def _iterator_get_next(ctx: BuildContext):
    node, count = ctx.op, ctx.num_outputs

    def kernel(iterator: IteratorResource) -> tuple:
        element = iterator.next(node)
        if len(element) != count:
            raise errors.InvalidArgumentError(
                None, node, f"The iterator yields {len(element)} components; the node has "
                f"{count} outputs.")
        return tuple(element)

    return kernel


@op("IteratorToStringHandle", host_only=True)
def _iterator_to_string_handle(ctx: BuildContext):
    handles = ctx.state.resource(("iterator-handles",), dict)

    def kernel(iterator: IteratorResource) -> Any:
        handle = f"gpugraph-iterator:{id(iterator)}:{iterator.name}".encode()
        handles[handle] = iterator
        return np.asarray(handle, dtype=object)

    return kernel


@op("IteratorFromStringHandle", "IteratorFromStringHandleV2", host_only=True)
def _iterator_from_string_handle(ctx: BuildContext):
    handles, node = ctx.state.resource(("iterator-handles",), dict), ctx.op

    def kernel(handle: Any) -> IteratorResource:
        key = np.asarray(handle, dtype=object).reshape(())[()]
        key = key if isinstance(key, bytes) else str(key).encode()
        found = handles.get(key)
        if found is None:
            raise errors.InvalidArgumentError(
                None, node, f"Could not find an iterator for string handle {key!r} (make it with "
                "IteratorToStringHandle in this session).")
        return found

    return kernel
