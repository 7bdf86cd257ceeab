"""CTC ops of TF1 speech and OCR graphs: CTCLoss, CTCLossV2, CTCGreedyDecoder and
CTCBeamSearchDecoder.

TF has CPU kernels only (CTCLossV2 has only a cuDNN one), and the results are sequential
recurrences or data-dependent sparse tensors, so all four run on the host, in numpy, following
TF's code (core/util/ctc/*.h, core/kernels/ctc_loss_op.cc, ctc_decoder_ops.cc):

* CTCLoss (blank = classes - 1): per sequence, the softmax of its logits, then the forward and
  backward recurrences in log space, and the gradient softmax - posterior w.r.t. the logits.
  Sequences are vectorized together; time steps run in turn.  The float32 numbers are TF's bit
  for bit (checked against TF and against its calculator compiled as TF builds it): the
  softmax is Eigen's (its AVX exp polynomial without FMA, its summation order, denormals
  flushed to zero as in TF's threads), and TF's scalar libm calls are the C library's, asked
  through ctypes only where a correctly rounded stand-in might differ (see _expf and
  _log_sum_exp).  TF's LogSumExp adds ``log1pf(expf(.))`` in float32 even for doubles, so a
  double loss carries float32 rounding, as TF's does.  TF's rules are kept: the time check
  compares the raw label count (before collapsing; repeats needing a blank between them not
  counted) with sequence_length; a label value >= classes - 1 ends the label; a sequence with
  no valid path gets loss +inf and gradient = softmax; ``ignore_longer_outputs_than_inputs``
  (and sequence_length 0) gives loss 0 and a zero gradient; past sequence_length the gradient
  is 0.  A label of blank (or larger) values only leaves l' = [blank], and TF's backward pass
  writes log_beta(-1, T-1), i.e. log_beta(0, T-2) of its column-major matrix: that element
  starts at log 1 instead of log 0, here too (T = 1 is a heap overrun in TF; here the plain
  result).
* CTCLossV2 is the cuDNN op: blank 0, logits in (cuDNN takes the softmax itself, so
  log-probabilities give the same result), loss and gradient w.r.t. the logits.  TF 2.21 has no
  CPU kernel for it; this one is CTCLoss's algorithm with blank 0, which is what tf.nn.ctc_loss
  computes off the GPU (CTCLoss with the blank moved last).  It keeps the GPU kernel's attr
  checks (no collapse, merge repeated, no ignore).  Labels must lie in [1, classes - 1] (the
  message is gpugraph's), an empty label is allowed (loss -sum log p(blank)), an input shorter
  than its label is CTCLoss's "Not enough time" error; cuDNN's own limits (256 labels) are not
  applied.
* CTCGreedyDecoder takes each step's first maximum (NaN wins only in column 0); its
  log_probability is minus the sum of those maxima (raw logits, not log-softmax), added step
  by step in the input dtype.
* CTCBeamSearchDecoder replays CTCBeamSearchDecoder<T>::Step entry for entry: the same beam
  tree, the C library's expf/logf/log1pf (exp/log for doubles), and gtl::TopN with libstdc++'s
  make_heap/pop_heap/push_heap/sort_heap/sort reproduced step for step, so that equal
  probabilities come out in TF's order too.

Where the C library cannot be loaded, numpy stands in for it (results then differ from TF's
in the last bit now and then).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.registry import BuildContext, dims_text, op
from gpugraph.ops.sparse_tensor_ops import _check_sparse_indices  # SparseTensor::IndicesValid

NEG_INF = float("-inf")


def _invalid(node: Any, message: str) -> errors.InvalidArgumentError:
    return errors.InvalidArgumentError(None, node, message)


def _joined(values: Any) -> str:
    return ",".join(str(int(v)) for v in values)


# --- the C library's float functions (TF calls them; numpy's float32 ones differ by an ulp) ----
@functools.cache
def _libm() -> dict[str, Callable[[float], float]]:
    """expf, logf, log1pf, exp and log of the C library, or numpy stand-ins without one."""
    fallback = {"expf": lambda x: float(np.exp(np.float32(x))),
                "logf": lambda x: float(np.log(np.float32(x))),
                "log1pf": lambda x: float(np.log1p(np.float32(x))),
                "exp": lambda x: float(np.exp(x)), "log": lambda x: float(np.log(x))}
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    except OSError:
        return fallback
    found = {}
    for name in fallback:
        kind = ctypes.c_float if name.endswith("f") else ctypes.c_double
        try:
            fn = getattr(lib, name)
        except AttributeError:
            return fallback
        fn.restype, fn.argtypes = kind, [kind]
        found[name] = fn
    return found


# --- CTCLoss / CTCLossV2: checks -----------------------------------------------------------
def _check_loss_ranks(node: Any, inputs: np.ndarray, indices: np.ndarray, values: np.ndarray,
                      seq_len: np.ndarray) -> None:
    if inputs.ndim != 3:  # noqa: PLR2004
        raise _invalid(node, "inputs is not a 3-Tensor")
    if seq_len.ndim != 1:
        raise _invalid(node, "sequence_length is not a vector")
    if indices.ndim != 2:  # noqa: PLR2004
        raise _invalid(node, "labels_indices is not a matrix")
    if indices.shape[1] <= 1:
        raise _invalid(node, f"labels_indices second dimension must be >= 1. Received "
                             f"{indices.shape[1]}")
    if values.ndim != 1:
        raise _invalid(node, "labels_values is not a vector")


def _loss_labels(node: Any, inputs: np.ndarray, indices: np.ndarray, values: np.ndarray,
                 seq_len: np.ndarray) -> list[np.ndarray]:
    """CTCLossOp::Compute's checks, in its order; the label values of each batch entry."""
    _check_loss_ranks(node, inputs, indices, values, seq_len)
    max_time, batch = inputs.shape[:2]
    if max_time == 0:
        raise _invalid(node, "Max time or first dimension of input cannot be 0.")
    if seq_len.shape[0] != batch:
        raise _invalid(node, f"len(sequence_length) != batch_size.  len(sequence_length):  "
                             f"{seq_len.shape[0]} batch_size: {batch}")
    if indices.shape[0] != values.shape[0]:
        raise _invalid(node, f"labels_indices and labels_values must contain the same number of "
                             f"rows, but saw shapes: {dims_text(indices.shape)} vs. "
                             f"{dims_text(values.shape)}")
    if batch == 0:
        raise _invalid(node, "batch_size must not be 0")
    if indices.shape[1] != 2:  # noqa: PLR2004  (SparseTensor::Create, TF's 2-entry order)
        raise _invalid(node, "Order length must be SparseTensor rank.")
    # The labels' dense shape is [batch, the largest position + 1]: only a batch index or a
    # negative position can fall outside it.
    width = max(0, int(indices[:, 1].max()) + 1) if len(indices) else 0
    try:
        _check_sparse_indices(node, indices, (batch, width))
    except errors.InvalidArgumentError as e:
        raise _invalid(node, f"label SparseTensor is not valid: {e.message}") from None
    for b in range(batch):
        if seq_len[b] > max_time:
            raise _invalid(node, f"sequence_length({b}) <= {max_time}")
    counts = np.bincount(indices[:, 0], minlength=batch)
    return np.split(values, np.cumsum(counts)[:-1])


def _target(node: Any, b: int, label: np.ndarray, classes: int, collapse: bool) -> list[int]:
    """PopulateLPrimes for one entry: the target l (a value >= classes - 1 ends it)."""
    if len(label) == 0:
        raise _invalid(node, f"Labels length is zero in batch {b}")
    target: list[int] = []
    finished = False
    for i, value in enumerate(label.tolist()):
        if i > 0 and collapse and value == label[i - 1]:
            continue
        if value >= classes - 1:
            finished = True
        elif finished:
            raise _invalid(node, f"Saw a non-null label (index >= num_classes - 1) following a "
                                 f"null label, batch: {b} num_classes: {classes} labels: "
                                 f"{_joined(label)} labels seen so far: {_joined(target)}")
        else:
            target.append(value)
    if any(v < 0 for v in target):
        raise _invalid(node, f"All labels must be nonnegative integers, batch: {b} labels: "
                             f"{_joined(target)}")
    return target


def _target_v2(node: Any, b: int, label: np.ndarray, classes: int) -> list[int]:
    # cuDNN's labels: 1 .. classes - 1, 0 being the blank (the message is gpugraph's own).
    if ((label < 1) | (label >= classes)).any():
        raise _invalid(node, f"CTCLossV2 labels must be in [1, {classes - 1}] (0 is the blank), "
                             f"batch: {b} labels: {_joined(label)}")
    return label.tolist()


def _check_time(node: Any, b: int, required: int, available: int) -> None:
    if required > available:
        raise _invalid(node, f"Not enough time for target transition sequence (required: "
                             f"{required}, available: {available}){b}You can turn this error "
                             f"into a warning by using the flag ignore_longer_outputs_than_inputs")


# --- CTCLoss / CTCLossV2: the recurrences --------------------------------------------------
def _libm_each(name: str, x: np.ndarray) -> np.ndarray:
    """The C library's float function ``name`` on each element (what TF's scalar code calls;
    about 0.3 microseconds a value, so kept to the values that need it)."""
    fn = _libm()[name]
    flat = x.astype(np.float32).ravel().tolist()
    return np.fromiter(map(fn, flat), np.float32, len(flat)).reshape(x.shape)


def _other_float(exact: np.ndarray, rounded: np.ndarray) -> np.ndarray:
    """The float on the far side of ``exact`` (double) from its rounding ``rounded``."""
    away = np.where(exact > rounded, np.inf, -np.inf).astype(rounded.dtype)
    return np.nextafter(rounded, away)


def _expf(x: np.ndarray) -> np.ndarray:
    """glibc's expf of float32 ``x``: the correctly rounded exp, which glibc (at most 0.502 ulp
    off) misses only within 0.002 ulp of a midpoint between floats; those ask the C library
    (numpy's own float32 exp differs for some 40% of inputs)."""
    with np.errstate(over="ignore", invalid="ignore"):
        exact = np.exp(x.astype(np.float64))
        out = exact.astype(np.float32)
        step = np.abs(_other_float(exact, out).astype(np.float64) - out)
        near = np.abs(exact - out) > 0.49 * step
    if near.any():
        out[near] = _libm_each("expf", x[near])
    return out


def _log_sum_exp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TF's ctc::LogSumExp, elementwise: the larger plus log1pf(expf(smaller - larger)), the
    correction in float32 whatever the dtype; log(0) = -inf on either side returns the other.

    glibc's log1pf is not the correctly rounded log1p (1% of inputs differ) but within an ulp
    of it, so it is one of the two floats around the exact value: where both give the same
    sum, that is TF's; the others (a few percent; all of them for doubles) ask the C library."""
    both = (a != NEG_INF) & (b != NEG_INF)
    total = np.where(a == NEG_INF, b, a)
    if not both.any():
        return total
    larger = np.where(a > b, a, b)[both]
    with np.errstate(invalid="ignore"):
        e = _expf((np.where(a > b, b, a)[both] - larger).astype(np.float32))
        exact = np.log1p(e.astype(np.float64))
    near = exact.astype(np.float32)
    sums = larger + near.astype(larger.dtype)
    unsure = sums != larger + _other_float(exact, near).astype(larger.dtype)
    if unsure.any():
        sums[unsure] = larger[unsure] + _libm_each("log1pf", e[unsure]).astype(larger.dtype)
    total[both] = sums
    return total


class _Lattice:
    """The CTC lattice of a batch: l' (targets with blanks around and between) per entry,
    padded with blanks, and which transitions TF allows into each position."""

    def __init__(self, targets: list[list[int]], steps: np.ndarray, blank: int, merge: bool):
        width = max(2, *(2 * len(t) + 1 for t in targets))  # 2: TF's alpha(1, 0)
        self.primes = np.full((len(targets), width), blank, np.int64)
        for b, target in enumerate(targets):
            self.primes[b, 1:2 * len(target):2] = target
        self.lengths = np.array([2 * len(t) + 1 for t in targets])
        # the distinct classes of each entry (padded with its blank), and each position's slot
        distinct = [np.unique(row, return_inverse=True) for row in self.primes]
        self.classes = np.full((len(targets), max(len(d[0]) for d in distinct)), blank, np.int64)
        for b, (values, _) in enumerate(distinct):
            self.classes[b, :len(values)] = values
        self.slots = np.stack([inverse.reshape(-1) for _, inverse in distinct])
        self.steps = steps
        u = np.arange(width)
        self.u = u
        lp = self.primes
        self.stay = merge | (lp == blank)  # (u, t-1) -> (u, t): blanks, or labels when merging
        two_back = np.concatenate([np.full((len(targets), 2), -1), lp[:, :-2]], axis=1)
        # (u-2) -> u skips a blank: not into a blank, nor between equal labels when merging
        self.skip = (two_back >= 0) & (lp != blank) & ~(merge & (lp == two_back))

    def window(self, t: int) -> np.ndarray:
        """The positions TF computes at step t: enough time left, no label skipped."""
        low = np.maximum(0, self.lengths - 2 * (self.steps - t))[:, None]
        high = np.minimum(self.lengths, 2 * (t + 1))[:, None]
        return (self.u >= low) & (self.u < high)


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """x[..., u - k] (k > 0) or x[..., u + |k|] (k < 0), log(0) where that is outside."""
    out = np.full_like(x, NEG_INF)
    if k > 0:
        out[..., k:] = x[..., :-k]
    else:
        out[..., :k] = x[..., -k:]
    return out


def _forward(emit: np.ndarray, lat: _Lattice) -> np.ndarray:
    """log alpha [T, B, U'] (CalculateForwardVariables)."""
    alpha = np.full_like(emit, NEG_INF)
    alpha[0, :, 0] = emit[0, :, 0]
    alpha[0, :, 1] = np.where(lat.lengths > 1, emit[0, :, 1], NEG_INF)
    for t in range(1, emit.shape[0]):
        prev = alpha[t - 1]
        total = np.where(lat.stay, prev, NEG_INF)
        total = _log_sum_exp(total, _shift(prev, 1))
        total = _log_sum_exp(total, np.where(lat.skip, _shift(prev, 2), NEG_INF))
        live = lat.window(t) & (t < lat.steps)[:, None]
        alpha[t] = np.where(live, emit[t] + total, NEG_INF)
    return alpha


def _backward(emit: np.ndarray, lat: _Lattice, quirk: bool) -> np.ndarray:
    """log beta [T, B, U'] (CalculateBackwardVariables).  ``quirk``: CTCLoss's out-of-matrix
    write for l' = [blank] (see the module docstring)."""
    beta = np.full_like(emit, NEG_INF)
    rows = np.arange(len(lat.steps))
    last = np.maximum(lat.steps - 1, 0)
    beta[last, rows, np.maximum(lat.lengths - 2, 0)] = 0
    beta[last, rows, lat.lengths - 1] = 0
    seeded = quirk & (lat.lengths == 1)
    # (u+2) is reached from u when u is a label that may skip the blank after it
    skip_ok = np.concatenate([lat.skip[:, 2:], np.zeros((len(rows), 2), bool)], axis=1)
    for t in range(emit.shape[0] - 2, -1, -1):
        ahead = beta[t + 1] + emit[t + 1]
        total = np.full_like(ahead, NEG_INF)
        total[:, 0] = np.where(seeded & (t == lat.steps - 2), 0.0, NEG_INF)
        total = _log_sum_exp(total, np.where(lat.stay, ahead, NEG_INF))
        total = _log_sum_exp(total, _shift(ahead, -1))
        total = _log_sum_exp(total, np.where(skip_ok, _shift(ahead, -2), NEG_INF))
        live = lat.window(t) & (t < lat.steps - 1)[:, None]
        beta[t] = np.where(live, total, beta[t])
    return beta


# Eigen's exp of 8 floats at a time (pexp_float), as TF's x86 build runs it: AVX without FMA,
# so each multiply-add rounds twice.
_EXP_CONSTANTS = [np.float32(c) for c in (
    88.723, -104.0, 87.0, 1.44269504088896341, -0.693359375, 2.12194440e-4,
    0.49999988079071044921875, 0.16666518151760101318359375, 4.166965186595916748046875e-2,
    8.36894474923610687255859375e-3, 1.37449637986719608306884765625e-3)]


def _eigen_exp(x: np.ndarray) -> np.ndarray:
    high, low, _, log2e, c1, c2, p2, p3, p4, p5, p6 = _EXP_CONSTANTS
    one, half = np.float32(1), np.float32(0.5)
    with np.errstate(over="ignore", invalid="ignore"):
        clamped = np.minimum(x, high)
        m = np.floor(clamped * log2e + half)
        r = m * c1 + clamped
        r = m * c2 + r
        r2 = r * r
        even = r2 * (r2 * p6 + p4) + p2
        y = r * (r2 * p5 + p3) + even
        y = r2 * y + (r + one)
        # 2^m * y: exact but below 2^-126, where both of Eigen's ldexp paths round once
        scaled = np.ldexp(y, np.clip(m, -300, 300).astype(np.int32)).astype(np.float32)
    return np.where(x < low, np.float32(0), np.maximum(scaled, x))


_PACKET = 8  # floats in one of Eigen's AVX packets


def _eigen_sum(e: np.ndarray) -> np.ndarray:
    """Eigen's sum of each row (last axis) of an aligned float array: packets of 8 in two
    accumulators, the packet summed as ((0+4)+(2+6)) + ((1+5)+(3+7)), then the rest in order."""
    size, n = e.shape[-1], _PACKET
    packed = size - size % n
    if packed == 0:
        total = e[..., 0]
        for i in range(1, size):
            total = total + e[..., i]
        return total
    acc = e[..., 0:n]
    if packed > n:
        second, pairs_end = e[..., n:2 * n], packed - packed % (2 * n)
        for i in range(2 * n, pairs_end, 2 * n):
            acc, second = acc + e[..., i:i + n], second + e[..., i + n:i + 2 * n]
        acc = acc + second
        if packed > pairs_end:
            acc = acc + e[..., pairs_end:pairs_end + n]
    quad = acc[..., :4] + acc[..., 4:]
    total = (quad[..., 0] + quad[..., 2]) + (quad[..., 1] + quad[..., 3])
    for i in range(packed, size):
        total = total + e[..., i]
    return total


def _flush(x: np.ndarray) -> np.ndarray:
    """TF's kernels run with denormals flushed to zero: a float below 2^-126 is 0 (so a class
    whose logit is some 87 below the largest has probability 0, and log -inf)."""
    return np.where(np.abs(x) < np.finfo(np.float32).tiny, np.float32(0), x)


def _softmax(inputs: np.ndarray) -> np.ndarray:
    """The softmax over classes as CTCLossCalculator computes it for floats: Eigen's exp (the
    last classes of a row too), Eigen's sum, a division.  Doubles (whose results carry float32
    rounding anyway) use numpy's exp and sum."""
    shifted = inputs - inputs.max(axis=2, keepdims=True)
    if inputs.dtype != np.float32:
        exps = np.exp(shifted)
        return exps / exps.sum(axis=2, keepdims=True)
    exps = _flush(_eigen_exp(shifted))
    return _flush(exps / _eigen_sum(exps)[..., None])


def _logs(probs: np.ndarray, lat: _Lattice) -> np.ndarray:
    """log y [T, B, U'] of each lattice position's class, as TF's scalar code takes it: the C
    library's logf for floats, once per distinct class of a sequence."""
    classes = np.broadcast_to(lat.classes, (probs.shape[0],) + lat.classes.shape)
    chosen = np.take_along_axis(probs, classes, axis=2)
    if probs.dtype == np.float32:
        logs = _libm_each("logf", chosen)
    else:
        with np.errstate(divide="ignore"):
            logs = np.log(chosen)
    slots = np.broadcast_to(lat.slots, (probs.shape[0],) + lat.slots.shape)
    return np.take_along_axis(logs, slots, axis=2)


def _loss_and_gradient(inputs: np.ndarray, targets: list[list[int] | None], steps: np.ndarray,
                       blank: int, merge: bool, quirk: bool) -> tuple[np.ndarray, np.ndarray]:
    """Loss [B] and gradient [T, B, C]; a None target is an entry TF skips (loss 0)."""
    batch = inputs.shape[1]
    loss = np.zeros(batch, inputs.dtype)
    grad = np.zeros_like(inputs)
    live = [b for b in range(batch) if targets[b] is not None]
    if not live:
        return loss, grad
    lat = _Lattice([targets[b] for b in live], steps[live], blank, merge)
    horizon = int(lat.steps.max())
    probs = _softmax(inputs[:horizon, live])
    emit = _logs(probs, lat)
    alpha, beta = _forward(emit, lat), _backward(emit, lat, quirk)
    paths = alpha + beta
    # log p(z|x): summed over u in order at t = 0, as TF does
    log_p = np.full(len(live), NEG_INF, inputs.dtype)
    for u in range(paths.shape[2]):
        log_p = _log_sum_exp(log_p, paths[0, :, u])
    # Each class's share of the paths through it, summed over u in order.
    shares = np.full(probs.shape, NEG_INF, inputs.dtype)
    entries = np.arange(len(live))
    for u in range(paths.shape[2]):
        column = lat.primes[:, u]
        shares[:, entries, column] = _log_sum_exp(shares[:, entries, column], paths[:, :, u])
    # TF's expf: float32 whatever the dtype
    posterior = _expf((shares - log_p[None, :, None]).astype(np.float32))
    dy = probs - (_flush(posterior) if probs.dtype == np.float32 else posterior).astype(probs.dtype)
    dy = np.where(np.isneginf(log_p)[None, :, None], probs, dy)  # no valid path: dy = y
    dy[np.arange(horizon)[:, None] >= lat.steps[None, :]] = 0
    loss[live] = -log_p
    grad[:horizon, live] = dy
    return loss, grad


def _ctc_targets(node: Any, labels: list[np.ndarray], seq_len: np.ndarray, classes: int,
                 v2: bool, collapse: bool, ignore: bool) -> list[list[int] | None]:
    """Each entry's target, or None for the entries TF skips (loss 0, zero gradient): an
    empty input, and a label longer than the input when told to ignore those."""
    for b in range(len(seq_len)):
        if seq_len[b] < 0:
            raise _invalid(node, f"seq_len({b}) < 0")
    targets: list[list[int] | None] = []
    for b, label in enumerate(labels):
        target = _target_v2(node, b, label, classes) if v2 else \
            _target(node, b, label, classes, collapse)
        if not ignore:
            _check_time(node, b, len(label), int(seq_len[b]))
        skipped = seq_len[b] == 0 or (ignore and len(label) > seq_len[b])
        targets.append(None if skipped else target)
    return targets


def _ctc_loss_kernel(node: Any, v2: bool, collapse: bool, merge: bool,
                     ignore: bool) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    def kernel(inputs: Any, indices: Any, values: Any, seq_len: Any) -> Any:
        inputs, seq_len = np.asarray(inputs), np.asarray(seq_len)
        labels = _loss_labels(node, inputs, np.asarray(indices), np.asarray(values), seq_len)
        classes = inputs.shape[2]
        targets = _ctc_targets(node, labels, seq_len, classes, v2, collapse, ignore)
        steps = seq_len.astype(np.int64)
        if not v2:
            return _loss_and_gradient(inputs, targets, steps, classes - 1, merge, quirk=True)
        # What tf.nn.ctc_loss runs off the GPU: CTCLoss with class 0, the blank, moved last.
        moved = [None if t is None else [v - 1 for v in t] for t in targets]
        loss, grad = _loss_and_gradient(np.roll(inputs, -1, axis=2), moved, steps,
                                        classes - 1, merge, quirk=False)
        return loss, np.roll(grad, 1, axis=2)

    return kernel


@op("CTCLoss", host_only=True)
def _ctc_loss(ctx: BuildContext):
    return _ctc_loss_kernel(ctx.op, False, ctx.attr_or("preprocess_collapse_repeated", False),
                            ctx.attr_or("ctc_merge_repeated", True),
                            ctx.attr_or("ignore_longer_outputs_than_inputs", False))


@op("CTCLossV2", host_only=True)
def _ctc_loss_v2(ctx: BuildContext):
    # TF's only kernel (cuDNN) refuses these when it is built.
    if ctx.attr_or("preprocess_collapse_repeated", False):
        raise _invalid(ctx.op, "GPU CTCLossOp requires preprocess_collapse_repeated to be false")
    if not ctx.attr_or("ctc_merge_repeated", True):
        raise _invalid(ctx.op, "GPU CTCLossOp requires ctc_merge_repeated to be true")
    if ctx.attr_or("ignore_longer_outputs_than_inputs", False):
        raise _invalid(ctx.op, "GPU CTCLossOp requires ignore_longer_outputs_than_inputs tobe "
                               "false")
    return _ctc_loss_kernel(ctx.op, True, False, True, False)


# --- decoders: checks and sparse outputs ---------------------------------------------------
def _decoder_inputs(node: Any, inputs: Any, seq_len: Any) -> tuple[np.ndarray, np.ndarray]:
    """CTCDecodeHelper::ValidateInputsGenerateOutputs's checks."""
    inputs, seq_len = np.asarray(inputs), np.asarray(seq_len)
    if inputs.ndim != 3:  # noqa: PLR2004
        raise _invalid(node, "inputs is not a 3-Tensor")
    if inputs.size == 0:
        raise _invalid(node, "inputs must not be empty")
    if seq_len.ndim != 1:
        raise _invalid(node, "sequence_length is not a vector")
    max_time, batch = inputs.shape[:2]
    if seq_len.shape[0] != batch:
        raise errors.FailedPreconditionError(
            None, node, f"len(sequence_length) != batch_size.  len(sequence_length):  "
                        f"{seq_len.shape[0]} batch_size: {batch}")
    for b in range(batch):
        if seq_len[b] > max_time:
            raise errors.FailedPreconditionError(None, node, f"sequence_length({b}) <= {max_time}")
    return inputs, seq_len


def _sparse(paths: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """StoreAllDecodedSequences for one path rank: indices [n, 2], values [n], shape [2]."""
    rows = [(b, t) for b, path in enumerate(paths) for t in range(len(path))]
    indices = np.array(rows, np.int64).reshape(-1, 2)
    values = np.array([v for path in paths for v in path], np.int64)
    longest = max((len(p) for p in paths), default=0)
    return indices, values, np.array([len(paths), longest], np.int64)


# --- CTCGreedyDecoder ------------------------------------------------------------------------
def _row_max(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TF's RowMax over the last axis: the first strictly greater value from column 0 on, so a
    NaN wins only in column 0."""
    index = np.zeros(steps.shape[:-1], np.int64)
    if steps.shape[-1] > 1:
        rest = np.where(np.isnan(steps[..., 1:]), -np.inf, steps[..., 1:])
        best = rest.argmax(axis=-1)
        beats = np.take_along_axis(rest, best[..., None], axis=-1)[..., 0] > steps[..., 0]
        index = np.where(beats, best + 1, 0)
    return index, np.take_along_axis(steps, index[..., None], axis=-1)[..., 0]


@op("CTCGreedyDecoder", host_only=True)
def _ctc_greedy_decoder(ctx: BuildContext):
    node = ctx.op
    merge, blank_attr = ctx.attr_or("merge_repeated", False), ctx.attr_or("blank_index", -1)

    def kernel(inputs: Any, seq_len: Any) -> Any:
        inputs, seq_len = _decoder_inputs(node, inputs, seq_len)
        classes = inputs.shape[2]
        blank = classes + blank_attr if blank_attr < 0 else blank_attr
        if not 0 <= blank < classes:
            raise _invalid(node, f"blank_index expected to be between {-classes} and "
                                 f"{classes - 1} but was {blank_attr}")
        best, top = _row_max(inputs)  # [T, B]
        log_prob = np.zeros(inputs.shape[1], inputs.dtype)
        for t in range(inputs.shape[0]):  # summed step by step, in the input dtype
            log_prob = np.where(t < seq_len, log_prob + -top[t], log_prob)
        paths = []
        for b in range(inputs.shape[1]):
            classes_b = best[:max(int(seq_len[b]), 0), b]
            keep = classes_b != blank
            if merge:
                keep[1:] &= classes_b[1:] != classes_b[:-1]
            paths.append(classes_b[keep].tolist())
        return (*_sparse(paths), log_prob[:, None])

    return kernel


# --- CTCBeamSearchDecoder: libstdc++'s heap and sort, as gtl::TopN runs them ----------------
Less = Callable[[Any, Any], bool]


def _push_hole(v: list, first: int, hole: int, top: int, value: Any, comp: Less) -> None:
    """std::__push_heap: ``value`` rises from ``hole`` towards ``top`` in v[first:]."""
    parent = (hole - 1) // 2
    while hole > top and comp(v[first + parent], value):
        v[first + hole] = v[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    v[first + hole] = value


def _adjust_heap(v: list, first: int, hole: int, length: int, value: Any, comp: Less) -> None:
    """std::__adjust_heap on v[first:first + length]: the hole sinks to a leaf, then ``value``
    rises from there."""
    top, child = hole, hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if comp(v[first + child], v[first + child - 1]):
            child -= 1
        v[first + hole] = v[first + child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        v[first + hole] = v[first + child - 1]
        hole = child - 1
    _push_hole(v, first, hole, top, value, comp)


def _pop_heap_into(v: list, first: int, last: int, result: int, comp: Less) -> None:
    """std::__pop_heap: the top goes to ``result``, whose value is sifted into [first, last)."""
    value = v[result]
    v[result] = v[first]
    _adjust_heap(v, first, 0, last - first, value, comp)


def _make_heap(v: list, first: int, last: int, comp: Less) -> None:
    length = last - first
    if length <= 1:
        return
    parent = (length - 2) // 2
    while True:
        _adjust_heap(v, first, parent, length, v[first + parent], comp)
        if parent == 0:
            return
        parent -= 1


def _pop_heap(v: list, comp: Less) -> None:
    if len(v) > 1:
        _pop_heap_into(v, 0, len(v) - 1, len(v) - 1, comp)


def _push_heap(v: list, comp: Less) -> None:
    _push_hole(v, 0, len(v) - 1, 0, v[-1], comp)


def _sort_heap(v: list, first: int, last: int, comp: Less) -> None:
    while last - first > 1:
        last -= 1
        _pop_heap_into(v, first, last, last, comp)


def _linear_insert(v: list, last: int, comp: Less) -> None:
    """std::__unguarded_linear_insert."""
    value = v[last]
    prev = last - 1
    while comp(value, v[prev]):
        v[last] = v[prev]
        last = prev
        prev -= 1
    v[last] = value


_RUN = 16  # libstdc++'s _S_threshold: std::sort leaves runs this short to insertion sort


def _std_sort(v: list, comp: Less) -> None:
    """libstdc++'s std::sort: introsort down to runs of 16, then insertion sort."""
    if len(v) > 1:
        _introsort(v, 0, len(v), 2 * (len(v).bit_length() - 1), comp)
        if len(v) > _RUN:
            _insertion(v, 0, _RUN, comp)
            for i in range(_RUN, len(v)):
                _linear_insert(v, i, comp)
        else:
            _insertion(v, 0, len(v), comp)


def _insertion(v: list, first: int, last: int, comp: Less) -> None:
    """std::__insertion_sort."""
    for i in range(first + 1, last):
        if comp(v[i], v[first]):
            value = v[i]
            v[first + 1:i + 1] = v[first:i]
            v[first] = value
        else:
            _linear_insert(v, i, comp)


def _introsort(v: list, first: int, last: int, depth: int, comp: Less) -> None:
    while last - first > _RUN:
        if depth == 0:  # std::__partial_sort of the whole range: heap select, sort_heap
            _make_heap(v, first, last, comp)
            _sort_heap(v, first, last, comp)
            return
        depth -= 1
        cut = _partition_pivot(v, first, last, comp)
        _introsort(v, cut, last, depth, comp)
        last = cut


def _partition_pivot(v: list, first: int, last: int, comp: Less) -> int:
    mid = first + (last - first) // 2
    a, b, c = first + 1, mid, last - 1
    # std::__move_median_to_first
    if comp(v[a], v[b]):
        median = b if comp(v[b], v[c]) else (c if comp(v[a], v[c]) else a)
    elif comp(v[a], v[c]):
        median = a
    else:
        median = c if comp(v[b], v[c]) else b
    v[first], v[median] = v[median], v[first]
    # std::__unguarded_partition of [first + 1, last) around v[first]
    lo, hi, pivot = first + 1, last, v[first]
    while True:
        while comp(v[lo], pivot):
            lo += 1
        hi -= 1
        while comp(pivot, v[hi]):
            hi -= 1
        if not lo < hi:
            return lo
        v[lo], v[hi] = v[hi], v[lo]
        lo += 1


class _TopN:
    """gtl::TopN<BeamEntry*, BeamComparer>: keeps the ``limit`` entries of highest
    newp.total, unordered until it overflows once, a min-heap afterwards."""

    UNORDERED, BOTTOM_KNOWN, HEAP_SORTED = range(3)

    def __init__(self, limit: int):
        self.limit, self.items, self.state = limit, [], self.UNORDERED

    @staticmethod
    def better(a: _Entry, b: _Entry) -> bool:  # BeamComparer
        return a.newp[0] > b.newp[0]

    def push(self, entry: _Entry) -> None:
        items, better = self.items, self.better
        if self.limit == 0:
            return
        if self.state != self.HEAP_SORTED:
            items.append(entry)
            if len(items) == self.limit + 1:
                _make_heap(items, 0, len(items), better)
                _pop_heap(items, better)
                items.pop()
                self.state = self.HEAP_SORTED
            elif self.state == self.BOTTOM_KNOWN and not better(items[-1], items[0]):
                items[0], items[-1] = items[-1], items[0]  # keep the bottom in front
        elif better(entry, items[0]):
            _pop_heap(items, better)
            items[-1] = entry
            _push_heap(items, better)

    def bottom(self) -> _Entry:
        """peek_bottom: finds the least entry by a scan, once, and keeps it in front."""
        items = self.items
        if self.state == self.UNORDERED:
            least = 0
            for i in range(1, len(items)):
                if self.better(items[least], items[i]):
                    least = i
            items[0], items[least] = items[least], items[0]
            self.state = self.BOTTOM_KNOWN
        return items[0]

    def extract(self) -> list[_Entry]:
        """Extract: the entries, best first (the TopN keeps its state until reset)."""
        out, self.items = self.items, []
        if self.state == self.HEAP_SORTED:
            _sort_heap(out, 0, len(out), self.better)
        else:
            _std_sort(out, self.better)
        return out

    def reset(self) -> None:
        self.items, self.state = [], self.UNORDERED


# --- CTCBeamSearchDecoder: the search --------------------------------------------------------
class _Entry:
    """A BeamEntry: a prefix (its label and parent), log probabilities [total, blank, label]
    at the previous step (oldp) and this one (newp), and children by label."""

    __slots__ = ("parent", "label", "children", "oldp", "newp")

    def __init__(self, parent: _Entry | None, label: int):
        self.parent, self.label, self.children = parent, label, {}
        self.oldp = [NEG_INF, NEG_INF, NEG_INF]
        self.newp = [NEG_INF, NEG_INF, NEG_INF]

    def active(self) -> bool:
        return self.newp[0] != NEG_INF

    def labels(self, merge: bool) -> list[int]:
        """LabelSeq: root to here; merging drops a label equal to the one after it."""
        out, entry, after = [], self, -1
        while entry.parent is not None:
            if not merge or entry.label != after:
                out.append(entry.label)
            after, entry = entry.label, entry.parent
        return out[::-1]


class _Arithmetic:
    """T's scalar arithmetic as TF's beam search does it: values of dtype T, libm calls."""

    def __init__(self, dtype: np.dtype):
        self.t = dtype.type
        libm = _libm()
        self.expf, self.log1pf = libm["expf"], libm["log1pf"]
        single = dtype == np.float32
        self.exp, self.log = (libm["expf"], libm["logf"]) if single else (libm["exp"], libm["log"])

    def log_sum_exp(self, a: Any, b: Any) -> Any:
        """ctc::LogSumExp: log1pf(expf(.)) in float even for double (as TF's template does)."""
        if a == NEG_INF:
            return b
        if b == NEG_INF:
            return a
        larger, smaller = (a, b) if a > b else (b, a)
        gap = float(np.float32(smaller - larger))
        return larger + self.t(self.log1pf(self.expf(gap)))

    def normalizer(self, raw: np.ndarray) -> Any:
        """max + log(sum exp(raw - max)): libm's exp per class, summed in order."""
        top = raw.max()
        exps = np.array([self.exp(v) for v in (raw - top).tolist()], raw.dtype)
        return top + self.t(self.log(float(np.add.accumulate(exps)[-1])))


class _BeamSearch:
    """ctc::CTCBeamSearchDecoder<T> with the default scorer and no label selection."""

    def __init__(self, classes: int, width: int, dtype: np.dtype):
        self.classes, self.width, self.blank = classes, width, classes - 1
        self.math = _Arithmetic(dtype)
        self.leaves = _TopN(width)
        root = _Entry(None, -1)
        root.newp[0] = root.newp[1] = dtype.type(0)
        self.leaves.push(root)

    def candidate(self, total: Any) -> bool:
        leaves = self.leaves
        return total > NEG_INF and (len(leaves.items) < self.width or
                                    total > leaves.bottom().newp[0])

    def step(self, raw: np.ndarray) -> None:
        offset = self.math.normalizer(raw)
        shifted = raw - offset  # logit - norm_offset, per class
        branches = self.leaves.extract()
        self.leaves.reset()
        for entry in branches:
            entry.oldp = entry.newp[:]
        for entry in branches:
            self._extend(entry, raw, shifted, offset)
            self.leaves.push(entry)
        for entry in branches:
            if self.candidate(entry.oldp[0]):
                self._grow(entry, shifted)

    def _extend(self, entry: _Entry, raw: np.ndarray, shifted: np.ndarray, offset: Any) -> None:
        """The prefix itself one step on: its label repeated, or a blank after it."""
        lse, p = self.math.log_sum_exp, entry.newp
        parent = entry.parent
        if parent is not None:
            if parent.active():
                # a repeated label needs a blank in between: only the parent's blank paths
                previous = parent.oldp[1] if entry.label == parent.label else parent.oldp[0]
                p[2] = lse(p[2], previous)
            p[2] = p[2] + shifted[entry.label]
        p[1] = entry.oldp[0] + raw[self.blank] - offset
        p[0] = lse(p[1], p[2])

    def _grow(self, entry: _Entry, shifted: np.ndarray) -> None:
        """New prefixes: ``entry`` plus one label, those that make the beam."""
        scores = shifted[:self.classes - 1] + entry.oldp[0]
        if 0 <= entry.label < self.classes - 1:
            scores[entry.label] = shifted[entry.label] + entry.oldp[1]
        full = len(self.leaves.items) == self.width
        # The beam's bottom only rises while it is full: labels below it now never make it.
        # Existing children are visited anyway: TF deactivates an inactive one that fails,
        # resetting its oldp too, which stops it growing if it is a later branch of this step.
        threshold = self.leaves.bottom().newp[0] if full else NEG_INF
        passing = scores > threshold
        visits = set(np.flatnonzero(passing).tolist()).union(entry.children)
        for label in sorted(visits):
            child = entry.children.get(label)
            if child is not None and child.active():
                continue
            score = scores[label]
            if passing[label] and self.candidate(score):
                if child is None:
                    child = entry.children[label] = _Entry(entry, label)
                if len(self.leaves.items) == self.width:
                    self.leaves.bottom().newp = [NEG_INF, NEG_INF, NEG_INF]
                child.newp = [score, NEG_INF, score]
                self.leaves.push(child)
            elif child is not None:
                child.oldp = [NEG_INF, NEG_INF, NEG_INF]
                child.newp = [NEG_INF, NEG_INF, NEG_INF]

    def top_paths(self, node: Any, n: int, merge: bool) -> tuple[list[list[int]], list[Any]]:
        if n > self.width:
            raise _invalid(node, "requested more paths than the beam width.")
        if n > len(self.leaves.items):
            raise _invalid(node, "Less leaves in the beam search than requested.")
        best = _TopN(n)
        for entry in self.leaves.items:
            best.push(entry)
        chosen = best.extract()[:n]
        return [e.labels(merge) for e in chosen], [e.newp[0] for e in chosen]


@op("CTCBeamSearchDecoder", host_only=True)
def _ctc_beam_search_decoder(ctx: BuildContext):
    node = ctx.op
    width, top = ctx.attr("beam_width"), ctx.attr("top_paths")
    merge = ctx.attr_or("merge_repeated", True)

    def kernel(inputs: Any, seq_len: Any) -> Any:
        inputs, seq_len = _decoder_inputs(node, inputs, seq_len)
        batch, classes = inputs.shape[1:]
        log_prob = np.zeros((batch, top), inputs.dtype)
        paths: list[list[list[int]]] = []
        for b in range(batch):
            search = _BeamSearch(classes, width, inputs.dtype)
            for t in range(int(seq_len[b])):
                search.step(inputs[t, b])
            found, log_prob[b] = search.top_paths(node, top, merge)
            paths.append(found)
        outputs = [_sparse([p[k] for p in paths]) for k in range(top)]
        return (*[o[0] for o in outputs], *[o[1] for o in outputs], *[o[2] for o in outputs],
                log_prob)

    return kernel
