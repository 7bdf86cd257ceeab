"""Resuming a training run from its checkpoint: what ``gpugraph resume`` does.

:func:`resume` finds the ``.meta`` and the latest checkpoint, restores, runs the train op with
batches from data files, reports progress, and saves checkpoints TF can read (global_step
continues, the Saver's ``max_to_keep`` is honoured across runs).  An interrupt (Ctrl-C) saves
a final checkpoint before returning.  With a log directory it continues the run's TensorBoard
curves (the graph's summaries, the loss and steps/s); it can finish by exporting a SavedModel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import gpugraph as gg
from gpugraph import config, errors
from gpugraph.distributed import mpi
from gpugraph.train import checkpoint_management as cm
from gpugraph.train import device_record


class ResumeError(errors.InvalidArgumentError):
    """Bad input to :func:`resume` (missing files, unknown tensors, mismatched feeds)."""


@dataclasses.dataclass
class FeedSource:
    """A tensor fed from an array: ``images:0`` <- ``data.npz`` key ``train_images``."""

    tensor: str
    path: str
    key: str | None = None

    @classmethod
    def parse(cls, spec: str) -> FeedSource:
        """``TENSOR=FILE[:KEY]`` as given on the command line."""
        if "=" not in spec:
            raise ResumeError(None, None, f"--feed {spec!r}: expected TENSOR=FILE[:KEY]")
        tensor, path = spec.split("=", 1)
        key = None
        if ":" in path and path.rsplit(":", 1)[0].endswith(".npz"):
            path, key = path.rsplit(":", 1)
        return cls(tensor if ":" in tensor else f"{tensor}:0", path, key)

    def load(self) -> np.ndarray:
        if not os.path.exists(self.path):
            raise ResumeError(None, None, f"--feed {self.tensor}: no such file {self.path!r}")
        try:
            _check_feed_size(self.path)
            with open(self.path, "rb") as f:
                data = np.load(f, allow_pickle=False)
                if isinstance(data, np.ndarray):
                    return data
                key = self.key or (data.files[0] if len(data.files) == 1 else None)
                if key is None or key not in data.files:
                    raise ResumeError(None, None, f"--feed {self.tensor}: {self.path} holds "
                                      f"{', '.join(data.files)}; name one as FILE:KEY")
                return data[key]
        except errors.OpError:
            raise
        except Exception as e:  # noqa: BLE001  (numpy's, zipfile's, struct's: a damaged file)
            raise ResumeError(None, None, f"--feed {self.tensor}: cannot read {self.path}: "
                              f"{type(e).__name__}: {e}") from None


def _check_feed_size(path: str) -> None:
    """Refuses an .npz whose members would unpack to more than the memory cap (a zip bomb,
    or a damaged size field) before numpy allocates for them."""
    import zipfile  # noqa: PLC0415

    if not zipfile.is_zipfile(path):
        return
    with zipfile.ZipFile(path) as archive:
        total = sum(info.file_size for info in archive.infolist())
    if total > config.max_tensor_bytes():
        raise errors.ResourceExhaustedError(
            None, None, f"--feed {path}: its arrays would take {total:,} bytes, more than the "
            f"{config.max_tensor_bytes():,} allowed (GPUGRAPH_MAX_TENSOR_BYTES)",
            {"file": path})


@dataclasses.dataclass
class ResumeOptions:
    """Everything :func:`resume` needs (the CLI's flags)."""

    checkpoint: str
    steps: int = 100
    feeds: list[FeedSource] = dataclasses.field(default_factory=list)
    batch_size: int | None = None
    seed: int = 0
    shuffle: bool = True  # False: batches in the files' row order
    meta: str | None = None
    train_op: str | None = None
    loss: str | None = None
    save_every: int | None = None
    out: str | None = None
    session_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    clear_devices: bool = False
    tags: list[str] | None = None  # a SavedModel's tag set (default: "train", else its only one)
    logdir: str | None = None  # TensorBoard event files go here
    summary_every: int = 100
    summary_op: str | None = None  # default: the graph's summaries collection (its MergeSummary)
    export_savedmodel: str | None = None  # a SavedModel of the trained variables goes here
    data_parallel: bool = False  # one of the ranks of `mpiexec -n N` (gpugraph.distributed)


@dataclasses.dataclass
class ResumeResult:
    restored: str
    saved: list[str]
    first_step: int
    last_step: int
    losses: list[float]
    interrupted: bool
    cuda_graphs: dict | None = None  # Session.cuda_graph_report() when a device captured
    legacy_checkpoint: bool = False  # restored from a V1 checkpoint (saves are V2)
    pipelines: int = 0  # in-graph input pipelines started (iterator initializers, queue runners)
    input_ended: bool = False  # the in-graph input ran out (OutOfRangeError) before the steps
    summaries: int = 0  # events with summaries written to the log directory
    exported: str | None = None  # the SavedModel directory written


def find_checkpoint(path: str) -> str:
    """A checkpoint prefix from a prefix or a directory with a ``checkpoint`` state file."""
    if os.path.isdir(path):
        latest = cm.latest_checkpoint(path)
        if latest is None:
            raise ResumeError(None, None, f"{path} has no checkpoint (no 'checkpoint' state file "
                              "naming an existing .index)")
        return latest
    if not cm.checkpoint_exists(path):
        raise ResumeError(None, None, f"{path} is neither a directory nor a checkpoint prefix "
                          f"({path}.index does not exist)")
    return path


class _Batches:
    """Shuffled mini-batches over equally long arrays; epochs cycle, reshuffled by the seed.
    Data-parallel rank r of N takes the r-th of N equal parts of each (global) batch."""

    def __init__(self, arrays: dict[str, np.ndarray], batch_size: int | None, seed: int,
                 ranks: _Ranks | None = None, shuffle: bool = True):
        sizes = {name: len(a) for name, a in arrays.items()}
        if len(set(sizes.values())) > 1:
            raise ResumeError(None, None, "--feed arrays differ in length: " + ", ".join(
                f"{n} has {s}" for n, s in sizes.items()))
        self.arrays = arrays
        self.n = next(iter(sizes.values()), 0)
        self.batch = batch_size or self.n
        self.rng = np.random.default_rng(seed) if shuffle else None
        self.order = np.arange(0)
        self.rank, self.size = (ranks.world.rank, ranks.world.size) if ranks else (0, 1)
        if arrays and self.batch % self.size:
            raise ResumeError(None, None, f"--data-parallel: the batch of {self.batch} rows does "
                              f"not split evenly over {self.size} ranks (--batch-size is the "
                              "global batch; make it a multiple of the number of ranks)")

    def next(self) -> dict[str, np.ndarray]:
        if not self.arrays:
            return {}
        if len(self.order) < self.batch:
            epoch = self.rng.permutation(self.n) if self.rng else np.arange(self.n)
            self.order = np.concatenate([self.order, epoch])
        pick, self.order = self.order[:self.batch], self.order[self.batch:]
        part = self.batch // self.size
        pick = pick[self.rank * part:(self.rank + 1) * part]
        return {name: a[pick] for name, a in self.arrays.items()}


class _Ranks:
    """A data-parallel resume's agreement between ranks: one start (the same graph and
    checkpoint files everywhere), one loss to report, and one decision to stop."""

    def __init__(self) -> None:
        self.world = gg.distributed.init()

    @property
    def leads(self) -> bool:
        return self.world.rank == 0

    def check_same_files(self, paths: list[str]) -> None:
        """Refuses ranks that would restore different files (checked before any step)."""
        mine = []
        for path in paths:
            try:
                with open(path, "rb") as f:
                    mine.append((path, mpi.digest(f.read())))
            except OSError as e:
                mine.append((path, f"unreadable: {e.strerror}"))
        seen = self.world.allgather_object(mine, "the start-up check of the ranks' files")
        differ = [f"rank {k} has {p} ({d})" for k, files in enumerate(seen)
                  for (p, d), (p0, d0) in zip(files, seen[0]) if d != d0 or p != p0]
        if differ:
            raise errors.DataParallelError(
                None, None, "--data-parallel: the ranks would not start from the same files: "
                f"rank 0 has {', '.join(f'{p} ({d})' for p, d in seen[0])}; "
                + "; ".join(differ), {"files": seen})

    def agree(self, loss: float | None, stop: bool) -> tuple[float | None, bool]:
        """The loss averaged over the ranks, and whether any rank was interrupted."""
        total = self.world.allreduce_sum(np.array([loss or 0.0, float(stop)]),
                                         "the step's loss and stop flag")
        return (None if loss is None else float(total[0] / self.world.size)), bool(total[1])


def resume(options: ResumeOptions, progress: Callable[[int, float | None], None] | None = None
           ) -> ResumeResult:
    """Restores ``options.checkpoint`` and trains ``options.steps`` steps (see module doc)."""
    if gg.saved_model.contains_saved_model(options.checkpoint):
        return _resume_saved_model(options, progress)
    prefix = find_checkpoint(options.checkpoint)
    meta = options.meta or cm.meta_graph_filename(prefix)
    if not os.path.exists(meta):
        raise ResumeError(None, None, f"no meta graph {meta} next to the checkpoint (use --meta)")
    _check_export_dir(options.export_savedmodel)
    ranks = _ranks(options, [meta, prefix + ".index"])
    out_dir = options.out or os.path.dirname(prefix) or "."
    os.makedirs(out_dir, exist_ok=True)
    graph = gg.Graph()
    with graph.as_default(), gg.Session(graph=graph, config=_config(options)) as sess:
        saver = gg.train.import_meta_graph(meta, clear_devices=options.clear_devices)
        if saver is None:
            raise ResumeError(None, None, f"{meta} has no variables to restore")
        _adopt_existing(saver, out_dir)
        saver.restore(sess, prefix)
        train_op = _element(graph, options.train_op, "train_op", "--train-op")
        loss = _loss_tensor(graph, options.loss)
        batches = _Batches(_load_feeds(graph, options.feeds), options.batch_size, options.seed,
                           ranks, options.shuffle)
        step_tensor = _global_step(graph)
        coord = gg.train.Coordinator()
        threads, pipelines = ([], 0) if options.feeds else _start_pipelines(sess, graph, coord)
        if pipelines and ranks:
            raise ResumeError(None, None, "--data-parallel: the graph reads its own input "
                              "(tf.data or queues), which every rank would read whole; feed it "
                              "with --feed, which --data-parallel splits over the ranks")
        try:
            result = _loop(sess, saver, prefix, out_dir, train_op, loss, batches, step_tensor,
                           options, progress, ranks)
        finally:
            coord.request_stop()
            coord.join(threads, stop_grace_period_secs=10, ignore_live_threads=True)
        if options.export_savedmodel and (ranks is None or ranks.leads):
            result.exported = _export(sess, options.export_savedmodel,
                                      [gg.saved_model.tag_constants.TRAINING])
    result.legacy_checkpoint = not os.path.exists(prefix + ".index")
    result.pipelines = pipelines
    return result


def _resume_saved_model(options: ResumeOptions, progress: Callable | None) -> ResumeResult:
    """A SavedModel's training tag set loaded as TF's loader does (variables restored, assets
    and the main op), then trained and saved as checkpoints (``--out``, by default
    ``<export_dir>_resumed``)."""
    export_dir = os.path.normpath(options.checkpoint)
    tags = options.tags or _training_tags(export_dir)
    out_dir = options.out or f"{export_dir}_resumed"
    _check_export_dir(options.export_savedmodel)
    model = os.path.join(export_dir, gg.saved_model.loader.PB)
    ranks = _ranks(options, [model if os.path.exists(model) else model + "txt",
                             os.path.join(export_dir, "variables", "variables.index")])
    os.makedirs(out_dir, exist_ok=True)
    graph = gg.Graph()
    with graph.as_default(), gg.Session(graph=graph, config=_config(options)) as sess:
        loaded = gg.saved_model.load(sess, tags, export_dir, clear_devices=options.clear_devices)
        saver = gg.train.Saver()
        train_op = _element(graph, options.train_op, "train_op", "--train-op")
        loss = _loss_tensor(graph, options.loss)
        batches = _Batches(_load_feeds(graph, options.feeds), options.batch_size, options.seed,
                           ranks, options.shuffle)
        result = _loop(sess, saver, export_dir, out_dir, train_op, loss, batches,
                       _global_step(graph), options, progress, ranks)
        if options.export_savedmodel and (ranks is None or ranks.leads):
            result.exported = _export(sess, options.export_savedmodel, tags, loaded, export_dir)
    return result


def _ranks(options: ResumeOptions, files: list[str]) -> _Ranks | None:
    """With --data-parallel: the ranks, after checking they start from the same files."""
    if not options.data_parallel:
        return None
    ranks = _Ranks()
    ranks.check_same_files(files)
    return ranks


def _config(options: ResumeOptions) -> dict[str, Any]:
    if not options.data_parallel:
        return options.session_config
    return {**options.session_config, "data_parallel": "mpi"}


def _check_export_dir(path: str | None) -> None:
    """Refuses a non-empty export directory before training, not after it."""
    if path and os.path.isdir(path) and os.listdir(path):
        raise ResumeError(None, None, f"--export-savedmodel {path}: the directory exists and is "
                          "not empty (a SavedModel is written into a new or empty directory)")


def _export(sess: Any, export_dir: str, tags: list[str], loaded: Any = None,
            source: str | None = None) -> str:
    """The trained variables and the graph as a SavedModel tagged ``tags``; a SavedModel's
    other tag sets (its serving graph) and signatures come along as they were, over the new
    variables."""
    builder = gg.saved_model.Builder(export_dir)
    signatures = dict(loaded.signature_def) if loaded is not None else None
    builder.add_meta_graph_and_variables(sess, tags, signature_def_map=signatures)
    if loaded is not None:
        for meta in gg.saved_model.loader.read_saved_model(source).meta_graphs:
            if set(meta.meta_info_def.tags) != set(tags):
                builder.add_meta_graph_def(meta, os.path.join(source, "assets"))
    builder.save()
    return export_dir


def _training_tags(export_dir: str) -> list[str]:
    sets = [list(m.meta_info_def.tags) for m in
            gg.saved_model.loader.read_saved_model(export_dir).meta_graphs]
    for tags in sets:
        if set(tags) == {gg.saved_model.tag_constants.TRAINING}:
            return tags
    if len(sets) == 1:
        return sets[0]
    raise ResumeError(None, None, f"{export_dir} has several tag sets and none is just 'train': "
                      f"{sets}; choose one with --tags")


def _start_pipelines(sess: Any, graph: Any, coord: Any) -> tuple[list, int]:
    """Starts the graph's own input pipelines as a TF1 training script does before its loop:
    the tf.data iterator initializers (``MakeIterator``; one-shot iterators start by
    themselves), the local variables (input producers' epoch counters; Savers do not save
    them), and the queue runners' threads.  Returns (threads, pipelines started)."""
    initializers = [op for op in graph.get_operations() if op.type == "MakeIterator"]
    if initializers:
        sess.run(initializers)
    runners = graph.get_collection("queue_runners")
    if runners:
        if gg.local_variables():
            sess.run(gg.local_variables_initializer())
        threads = gg.train.start_queue_runners(sess, coord)
        return threads, len(initializers) + len(runners)
    return [], len(initializers)


def _loop(sess: Any, saver: Any, prefix: str, out_dir: str, train_op: Any, loss: Any,
          batches: _Batches, step_tensor: Any, options: ResumeOptions,
          progress: Callable | None, ranks: _Ranks | None = None) -> ResumeResult:
    first = _step(sess, step_tensor, prefix)
    saved: list[str] = []
    losses: list[float] = []
    interrupted = ended = False
    fetches = [train_op] + ([loss] if loss is not None else [])
    leads = ranks is None or ranks.leads  # (only rank 0 logs and reports)
    board = _TensorBoard(sess.graph, options, first) if options.logdir and leads else None
    with _deferred_interrupt() as stop:
        for k in range(options.steps):
            if stop.requested and ranks is None:  # between steps: none is left half-applied
                interrupted = True
                break
            logs = board is not None and board.due(k)
            extra = board.summary if logs else []
            try:
                values = sess.run(fetches + extra, batches.next())
            except gg.errors.OutOfRangeError:  # an in-graph input ran out: TF's end of input
                if options.feeds:
                    raise
                ended = True
                break
            value = float(values[1]) if loss is not None else None
            halt = False
            if ranks is not None:  # (every rank stops after the same step)
                value, halt = ranks.agree(value, stop.requested)
            if value is not None:
                losses.append(value)
            if logs:
                board.write(first + k, values[len(fetches):], value)
            if progress and leads:
                progress(k + 1, value)
            if options.save_every and (k + 1) % options.save_every == 0 and k + 1 < options.steps:
                saved.append(_save(sess, saver, out_dir, step_tensor, first + k + 1))
            if halt:
                interrupted = True
                break
        interrupted = interrupted or (stop.requested and ranks is None)
    last = _step(sess, step_tensor, None, default=first + len(losses))
    saved.append(_save(sess, saver, out_dir, step_tensor, last))
    report = sess.cuda_graph_report()
    captured = report if report["replays"] or report["eager_runs"] else None
    if board:
        board.close()
    return ResumeResult(prefix, saved, first, last, losses, interrupted, captured,
                        input_ended=ended, summaries=board.written if board else 0)


class _TensorBoard:
    """``--logdir``: the resumed run's curves continue TF's.  A ``SessionLog START`` at the
    restored step makes TensorBoard drop what the earlier run logged past its checkpoint; then
    on the first step and every ``summary_every`` steps the graph's summaries, the loss (tag
    ``loss``, unless the graph's summaries hold one) and steps/s (``global_step/sec``).  As
    TF's SummarySaverHook and StepCounterHook (MonitoredTrainingSession, Estimator) do, the
    summaries are fetched in the train op's own run and logged at the global step that run
    started from."""

    def __init__(self, graph: Any, options: ResumeOptions, first: int):
        self.every = max(1, options.summary_every)
        self.summary = _summary_tensors(graph, options.summary_op)
        self.writer = gg.summary.FileWriter(options.logdir, graph)
        start = gg.summary.SessionLog(status=gg.summary.SessionLog.START)
        self.writer.add_session_log(start, first)
        self.mark = (first, time.perf_counter())
        self.written = 0

    def due(self, k: int) -> bool:
        """Whether step ``k`` (0-based) logs: the first, then every ``every``-th."""
        return k == 0 or (k + 1) % self.every == 0

    def write(self, step: int, summaries: list, loss: float | None) -> None:
        merged = gg.summary.Summary.FromString(b"".join(_serialized(s) for s in summaries))
        scalars = {}
        if loss is not None and "loss" not in {v.tag for v in merged.value}:
            scalars["loss"] = loss
        last_step, last_time = self.mark
        now = time.perf_counter()
        if step > last_step and self.written:
            scalars["global_step/sec"] = (step - last_step) / max(now - last_time, 1e-9)
        self.mark = (step, now)
        merged.value.extend(gg.summary.scalar_summary(scalars).value)
        if merged.value:
            self.writer.add_summary(merged, step)
            self.written += 1

    def close(self) -> None:
        self.writer.close()


def _summary_tensors(graph: Any, name: str | None) -> list:
    """``--summary-op``, else the graph's ``summaries`` collection: the MergeSummary op that
    merges exactly that collection when the graph has one (tf.summary.merge_all's op), else
    each summary (merged here as MergeSummary does, by concatenating their values)."""
    if name:
        return [_element(graph, name, "summaries", "--summary-op")]
    items = [t for t in graph.get_collection("summaries") if isinstance(t, gg.Tensor)]
    names = {t.name for t in items}
    for op in graph.get_operations():
        if op.type == "MergeSummary" and names and {t.name for t in op.inputs} == names:
            return [op.outputs[0]]
    return items


def _serialized(value: Any) -> bytes:
    item = np.asarray(value, dtype=object).reshape(-1)[0]
    return item if isinstance(item, bytes) else bytes(item)


class _Stop:
    requested = False


@contextlib.contextmanager
def _deferred_interrupt():
    """Turns SIGINT into a flag checked between steps (main thread only)."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        stop.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _save(sess: Any, saver: Any, out_dir: str, step_tensor: Any, step: int) -> str:
    return saver.save(sess, os.path.join(out_dir, "model"), global_step=step)


def _adopt_existing(saver: Any, out_dir: str) -> None:
    """Continues the output directory's checkpoint list, so max_to_keep spans runs."""
    state = cm.get_checkpoint_state(out_dir)
    if state is not None:  # only gpugraph's own: never delete the checkpoint TF wrote
        ours = [p for p in state.all_model_checkpoint_paths
                if os.path.exists(device_record.record_path(p))]
        saver.recover_last_checkpoints(ours)


def _element(graph: Any, name: str | None, collection: str, flag: str) -> Any:
    if name:
        try:
            return graph.as_graph_element(name)
        except (KeyError, ValueError) as e:
            raise ResumeError(None, None, f"{flag} {name!r}: {e}") from None
    items = graph.get_collection(collection)
    if not items:
        raise ResumeError(None, None, f"the graph has no {collection!r} collection; name the op "
                          f"to run with {flag}")
    return items[0]


def _loss_tensor(graph: Any, name: str | None) -> Any:
    if name:
        return _element(graph, name, "loss", "--loss")
    items = [t for t in graph.get_collection("loss") if isinstance(t, gg.Tensor)]
    if items:
        return items[0]
    try:
        return graph.get_tensor_by_name("loss:0")
    except KeyError:
        return None


def _global_step(graph: Any) -> Any:
    items = graph.get_collection("global_step")
    if items:
        return items[0]
    try:
        return graph.get_tensor_by_name("global_step:0")
    except KeyError:
        return None


def _step(sess: Any, tensor: Any, prefix: str | None, default: int = 0) -> int:
    if tensor is not None:
        return int(sess.run(tensor))
    if prefix is not None and "-" in prefix and prefix.rsplit("-", 1)[1].isdigit():
        return int(prefix.rsplit("-", 1)[1])
    return default


def _load_feeds(graph: Any, feeds: list[FeedSource]) -> dict[str, np.ndarray]:
    arrays = {}
    for feed in feeds:
        try:
            tensor = graph.get_tensor_by_name(feed.tensor)
        except (KeyError, ValueError):
            placeholders = [op.outputs[0].name for op in graph.get_operations()
                            if op.type in ("Placeholder", "PlaceholderWithDefault")]
            raise ResumeError(None, None, f"--feed {feed.tensor}: no such tensor; the graph's "
                              f"placeholders are {', '.join(placeholders)}") from None
        array = feed.load()
        want = tensor.shape
        if want.rank is not None and (array.ndim != want.rank or not want[1:].is_compatible_with(
                array.shape[1:])):
            raise ResumeError(None, None, f"--feed {feed.tensor}: {feed.path} rows have shape "
                              f"{list(array.shape[1:])} but the tensor takes rows of "
                              f"{want.as_list()[1:]}")
        arrays[feed.tensor] = array
    return arrays
