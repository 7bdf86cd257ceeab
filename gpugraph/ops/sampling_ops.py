"""Candidate samplers (sampled softmax, NCE) and ComputeAccidentalHits.

Every ``*CandidateSampler`` op takes ``true_classes`` (int64 ``[batch, num_true]``) and returns
``sampled_candidates`` (int64 ``[num_sampled]``), ``true_expected_count`` (float32
``[batch, num_true]``) and ``sampled_expected_count`` (float32 ``[num_sampled]``), with the
semantics of TF's ``candidate_sampler_ops.cc`` and ``range_sampler.cc``:

* A sampler draws ids in ``[0, range)`` with probability ``P(k)``: uniform ``1/range``;
  log-uniform ``(log(k+2) - log(k+1)) / log(range+1)``; fixed unigram ``w_k**distortion / sum``
  (reserved ids and other shards' ids weigh 0); learned unigram ``count_k / total`` with every
  count starting at 1 and each run adding one per true class *after* it sampled.
* ``unique=False``: ``num_sampled`` independent draws, expected count ``num_sampled * P(k)``.
  ``unique=True``: draws are rejected until ``num_sampled`` distinct ids came up, taking
  ``num_tries`` draws; the expected count is ``-expm1(num_tries * log1p(-P(k)))``, except that
  TF keeps ``num_sampled * P(k)`` when no draw was rejected (``num_tries == num_sampled``).
  Both are float32 arithmetic on a float32 ``P(k)``, as in TF: ``P(k)`` and the unique=False
  counts are TF's bits; the unique=True ones are within an ulp or two of TF's (whose
  ``log1pf``/``expm1f`` are the C library's, not always correctly rounded).
* ``AllCandidateSampler`` "samples" ``0 .. num_sampled - 1``, every expected count 1.

``remove_accidental_hits`` is not an attr of these ops: TF's Python wrapper adds a
``ComputeAccidentalHits`` node, which lists every (row, sampled position) where a true class
equals a sampled candidate, with weight ``-FLT_MAX``.

``FixedUnigramCandidateSampler`` reads ``vocab_file`` as TF does when the kernel is made: one
id per non-empty line, its weight the line's last comma-separated field.

The draws are numpy's (the node's seeded stream from :mod:`gpugraph.ops.random_ops`), not
TF's Philox: the ids differ from TF's, their distribution does not.  Like TF's, these kernels
run on the host only.  Where TF would hang or crash, they raise InvalidArgumentError instead:
``unique=True`` with fewer ids of nonzero probability than ``num_sampled`` (TF's rejection loop
never ends), and a learned unigram sampler with ``range_max >= 2**31 - 1``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.random_ops import _stream
from gpugraph.ops.registry import BuildContext, op

_INT32_MAX = 2**31 - 1


# --- the samplers (range_sampler.cc) ---------------------------------------------------------
class _Uniform:
    def __init__(self, range_max: int):
        self.range = range_max
        self.drawable = range_max
        self._p = np.float32(1.0 / range_max)  # TF keeps 1/range as a float

    def probability(self, ids: np.ndarray) -> np.ndarray:
        return np.full(ids.shape, self._p, np.float32)

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return rng.integers(0, self.range, size=count, dtype=np.int64)


class _LogUniform:
    def __init__(self, range_max: int):
        self.range = range_max
        self.drawable = range_max
        self._log_range = np.log1p(float(range_max))

    def probability(self, ids: np.ndarray) -> np.ndarray:
        # In double, then rounded to float: TF's (log((k + 2.0) / (k + 1.0))) / log_range.
        ids = ids.astype(np.float64)
        return (np.log((ids + 2.0) / (ids + 1.0)) / self._log_range).astype(np.float32)

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        # exp(U * log(range + 1)) - 1 is log-uniform; the modulo only guards round-off, as TF's.
        values = np.exp(rng.random(count) * self._log_range).astype(np.int64) - 1
        return values % self.range


class _Weighted:
    """Draws id ``k`` with probability ``weights[k] / total`` by inverse CDF."""

    def __init__(self, range_max: int, weights: np.ndarray):
        self.range = range_max
        self._set(weights)

    def _set(self, weights: np.ndarray) -> None:
        self.weights = weights
        self._cdf = np.cumsum(weights, dtype=np.float64)
        positive = np.flatnonzero(weights > 0)
        self.drawable = len(positive)  # ids a draw can return
        self._last = positive[-1] if len(positive) else 0

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        # side="right" never lands on a zero-weight id; the clamp catches u * total rounding up
        # to the total.
        picks = np.searchsorted(self._cdf, rng.random(count) * self._cdf[-1], side="right")
        return np.minimum(picks, self._last).astype(np.int64)


class _Fixed(_Weighted):
    """TF's FixedUnigramSampler: float32 weights, their float32 total."""

    def __init__(self, range_max: int, weights: np.ndarray):
        super().__init__(range_max, weights)
        # TF adds the weights one by one into a float (cumsum is sequential, sum is not).
        self._total = np.cumsum(weights, dtype=np.float32)[-1] if len(weights) else np.float32(0)

    def probability(self, ids: np.ndarray) -> np.ndarray:
        inside = (ids >= 0) & (ids < len(self.weights))  # TF: 0 past the weights
        with np.errstate(divide="ignore", invalid="ignore"):  # all-zero unigrams: NaN, as TF
            p = self.weights[np.where(inside, ids, 0)] / self._total
        return np.where(inside, p, np.float32(0)).astype(np.float32)


class _Learned(_Weighted):
    """TF's (ThreadUnsafe)UnigramSampler: integer counts, all 1 at first, +1 per true class."""

    def __init__(self, range_max: int):
        super().__init__(range_max, np.ones(range_max, np.int64))
        self.total = range_max
        self.lock = threading.Lock()

    def probability(self, ids: np.ndarray) -> np.ndarray:
        # static_cast<float>(weight) / total_weight (an int, converted to float).
        return self.weights[ids].astype(np.float32) / np.float32(self.total)

    def update(self, ids: np.ndarray) -> None:
        ids = ids[:max(_INT32_MAX - self.total, 0)]  # TF stops counting at INT32_MAX in all
        np.add.at(self.weights, ids, 1)
        self.total += len(ids)
        self._set(self.weights)


def _learned(ctx: BuildContext, range_max: int) -> _Learned:
    # The learned samplers' counts live as long as the session (TF keeps them in the node's
    # kernel, which a session makes once): a session resource per node.  (A node of that
    # name in a changed graph may have another range.)
    return ctx.state.resource(("learned-sampler", ctx.name, range_max),
                              lambda: _Learned(range_max))


# --- drawing and expected counts -------------------------------------------------------------
def _draw_unique(sampler: Any, rng: np.random.Generator, count: int) -> tuple[np.ndarray, int]:
    """The first ``count`` distinct ids of a stream of draws and the number of draws that took
    (TF's rejection loop, run a chunk of draws at a time)."""
    draws = np.empty(0, np.int64)
    chunk = max(2 * count, 16)
    while True:
        draws = np.concatenate([draws, sampler.sample(rng, chunk)])
        _, first = np.unique(draws, return_index=True)
        if len(first) >= count:
            first.sort()
            return draws[first[:count]], int(first[count - 1]) + 1 if count else 0
        chunk *= 2


def expected_count(p: np.ndarray, num_sampled: int, num_tries: int) -> np.ndarray:
    """TF's ExpectedCountHelper, in float32 as TF computes it."""
    p = np.asarray(p, np.float32)
    if num_tries == num_sampled:  # always for unique=False, and when nothing was rejected
        return p * np.float32(num_sampled)
    # TF calls the C library's log1pf and expm1f.  Each step here runs in double and is rounded
    # to float: the correctly rounded result, which glibc's misses by an ulp at times (numpy's
    # float32 log1p/expm1 stray further).
    log = np.log1p(-p.astype(np.float64)).astype(np.float32)
    return (-np.expm1((np.float32(num_tries) * log).astype(np.float64))).astype(np.float32)


def _true_classes(node: Any, value: Any, num_true: int) -> np.ndarray:
    true = np.asarray(value, np.int64)
    if true.ndim != 2:
        raise errors.InvalidArgumentError(None, node, "true_classes must be a matrix")
    if true.shape[1] != num_true:
        # (TF's message names the columns "expected" and num_true "was".)
        raise errors.InvalidArgumentError(
            None, node, f"true_classes must have num_true columns, expected: {true.shape[1]} "
            f"was: {num_true}")
    return true


def _check_in_range(node: Any, ids: np.ndarray, range_max: int) -> None:
    bad = ids[(ids < 0) | (ids >= range_max)]
    if bad.size:
        raise errors.InvalidArgumentError(
            None, node, f"`true_candidate` out of range [0, {range_max}), received {bad[0]}")


def _sampler_op(ctx: BuildContext, sampler: Any):
    """The kernel of a sampler op around ``sampler`` (TF's BaseCandidateSamplerOp)."""
    node, device, rng = ctx.op, ctx.device, _stream(ctx)
    num_true, num_sampled = int(ctx.attr("num_true")), int(ctx.attr("num_sampled"))
    unique = bool(ctx.attr("unique"))
    lock = getattr(sampler, "lock", None) or threading.Lock()

    def kernel(true_classes: Any) -> tuple[Any, Any, Any]:
        true = _true_classes(node, device.to_host(true_classes), num_true)
        if unique and num_sampled > sampler.range:
            raise errors.InvalidArgumentError(None, node, "Sampler's range is too small.")
        _check_in_range(node, true.reshape(-1), sampler.range)
        if unique and num_sampled > sampler.drawable:  # TF would loop forever
            raise errors.InvalidArgumentError(
                None, node, f"unique=True needs {num_sampled} distinct candidates, but only "
                f"{sampler.drawable} of the {sampler.range} have a nonzero probability")
        with lock:  # a learned sampler's counts change between drawing and updating
            if unique:
                sampled, tries = _draw_unique(sampler, rng, num_sampled)
            else:
                sampled, tries = sampler.sample(rng, num_sampled), num_sampled
            true_count = expected_count(sampler.probability(true), num_sampled, tries)
            sampled_count = expected_count(sampler.probability(sampled), num_sampled, tries)
            if hasattr(sampler, "update"):
                sampler.update(true.reshape(-1))
        return tuple(device.to_device(v) for v in (sampled, true_count, sampled_count))

    return kernel


def _range_max(ctx: BuildContext, unigram: bool = False) -> int:
    range_max = int(ctx.attr("range_max"))
    if range_max <= 0:
        raise errors.InvalidArgumentError(None, ctx.op, "range_max must be positive")
    if unigram and range_max >= _INT32_MAX:
        raise errors.InvalidArgumentError(
            None, ctx.op, f"range_max must be less than {_INT32_MAX} for unigram samplers, "
            f"got {range_max}")
    return range_max


# --- the ops ---------------------------------------------------------------------------------
@op("UniformCandidateSampler", host_only=True)
def _uniform_candidate_sampler(ctx: BuildContext):
    return _sampler_op(ctx, _Uniform(_range_max(ctx)))


@op("LogUniformCandidateSampler", host_only=True)
def _log_uniform_candidate_sampler(ctx: BuildContext):
    return _sampler_op(ctx, _LogUniform(_range_max(ctx)))


@op("LearnedUnigramCandidateSampler", "ThreadUnsafeUnigramCandidateSampler", host_only=True)
def _learned_unigram_candidate_sampler(ctx: BuildContext):
    return _sampler_op(ctx, _learned(ctx, _range_max(ctx, unigram=True)))


@op("AllCandidateSampler", host_only=True)
def _all_candidate_sampler(ctx: BuildContext):
    node, device = ctx.op, ctx.device
    num_true, num_sampled = int(ctx.attr("num_true")), int(ctx.attr("num_sampled"))

    def kernel(true_classes: Any) -> tuple[Any, Any, Any]:
        true = _true_classes(node, device.to_host(true_classes), num_true)
        _check_in_range(node, true.reshape(-1), num_sampled)  # its range is num_sampled
        return (device.to_device(np.arange(num_sampled, dtype=np.int64)),
                device.to_device(np.ones(true.shape, np.float32)),
                device.to_device(np.ones(num_sampled, np.float32)))

    return kernel


@op("FixedUnigramCandidateSampler", host_only=True)
def _fixed_unigram_candidate_sampler(ctx: BuildContext):
    # TF reads the distribution when it makes the kernel; so do we, when the plan is built.
    range_max = int(ctx.attr("range_max"))
    vocab_file = ctx.attr_or("vocab_file", b"")
    vocab_file = vocab_file.decode() if isinstance(vocab_file, bytes) else vocab_file
    unigrams = [float(u) for u in ctx.attr_or("unigrams", [])]
    if not vocab_file and not unigrams:
        raise errors.InvalidArgumentError(None, ctx.op,
                                          "Must provide either vocab_file or unigrams.")
    if vocab_file and unigrams:
        raise errors.InvalidArgumentError(None, ctx.op,
                                          "Must only provide one of vocab_file and unigrams.")
    if vocab_file:
        unigrams = _read_vocab(ctx.op, vocab_file)
    weights = _unigram_weights(ctx, unigrams)
    if len(weights) != range_max:
        raise errors.InvalidArgumentError(
            None, ctx.op, f"range is {range_max} must be equal to weights size  {len(weights)}")
    return _sampler_op(ctx, _Fixed(range_max, weights))


def _unigram_weights(ctx: BuildContext, unigrams: list) -> np.ndarray:
    """TF's FillReservedIds + LoadFromUnigrams: this shard's ids, each ``w ** distortion``."""
    shards, shard = int(ctx.attr_or("num_shards", 1)), int(ctx.attr_or("shard", 0))
    distortion = float(np.float32(ctx.attr_or("distortion", 1.0)))
    reserved = int(ctx.attr_or("num_reserved_ids", 0))
    weights = [np.float32(0)] * sum(1 for i in range(reserved) if i % shards == shard)
    # TF numbers the unigrams from the count of *this shard's* reserved ids, not from
    # num_reserved_ids (they differ when num_shards > 1); kept, since it decides which are ours.
    first = len(weights)
    for word_id, w in enumerate(unigrams, start=first):
        if word_id % shards == shard:
            # std::pow(float, float) is glibc's powf, correctly rounded: the double power
            # rounded to float (numpy's float32 power is off by an ulp at times).
            weights.append(np.float32(float(np.float32(w)) ** distortion))
    return np.asarray(weights, np.float32)


def _read_vocab(node: Any, path: str) -> list:
    """The last comma-separated field of each non-empty line, as TF's LoadFromFile reads it
    (weights only: which shard keeps which line is decided with the unigrams)."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise errors.NotFoundError(None, node, f"{path}; No such file or directory") from None
    except OSError as e:
        raise errors.UnknownError(None, node, f"{path}; {os.strerror(e.errno or 0)}") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":  # the newline that ends the file starts no line
        lines.pop()
    values = []
    for raw in lines:
        line = raw[:-1] if raw.endswith("\r") else raw  # TF's ReadLine drops one '\r'
        if not line:
            continue  # an empty line is no word (TF skips it without counting an id)
        value = _parse_float(line.split(",")[-1])
        if value is None:
            raise errors.InvalidArgumentError(None, node,
                                              f"Wrong vocabulary format at line: {line}")
        values.append(value)
    return values


def _parse_float(text: str) -> float | None:
    """absl's SimpleAtof: a number with optional ASCII blanks around it, else None."""
    text = text.strip(" \t\n\v\f\r")
    if not text or not text.isascii() or "_" in text:  # Python's float() takes 1_000
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    with np.errstate(over="ignore"):  # past float's range: +-inf, as absl gives
        return float(np.float32(value))


@op("ComputeAccidentalHits", host_only=True)
def _compute_accidental_hits(ctx: BuildContext):
    node, device = ctx.op, ctx.device
    num_true = int(ctx.attr("num_true"))

    def kernel(true_classes: Any, sampled_candidates: Any) -> tuple[Any, Any, Any]:
        true = np.asarray(device.to_host(true_classes), np.int64)
        sampled = np.asarray(device.to_host(sampled_candidates), np.int64)
        if true.ndim != 2 or true.shape[1] != num_true:
            raise errors.InvalidArgumentError(
                None, node, "true_candidates must be a batch_size * num_true matrix")
        if sampled.ndim != 1:
            raise errors.InvalidArgumentError(
                None, node, "sampled_candidates must be a vector, which is typically an output "
                "from CandidateSampler")
        flat = true.reshape(-1)
        # A candidate sampled twice maps to its LAST position (TF fills a map in order).
        keys, first_reversed = np.unique(sampled[::-1], return_index=True)
        last = len(sampled) - 1 - first_reversed
        at = np.minimum(np.searchsorted(keys, flat), max(len(keys) - 1, 0))
        hits = np.flatnonzero(keys[at] == flat) if len(keys) else np.empty(0, np.int64)
        # Row-major order of the true classes, as TF's loops over rows then columns.
        indices = (hits // max(num_true, 1)).astype(np.int32)
        ids = last[at[hits]].astype(np.int64)
        weights = np.full(len(hits), -np.finfo(np.float32).max, np.float32)
        return device.to_device(indices), device.to_device(ids), device.to_device(weights)

    return kernel
