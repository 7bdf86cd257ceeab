"""Detection ops of TF1 object-detection graphs: non-max suppression and crop-and-resize.

Both follow TF's CPU kernels (image/non_max_suppression_op.cc, image/crop_and_resize_op.cc)
operation for operation, in the same float widths, so that selections and crops match bit for
bit:

* NMS runs on the host, as TF's CPU kernels do: its output size depends on the data.  IoU is
  computed in float32 from boxes given as any two opposite corners (a box of area <= 0
  overlaps nothing); the candidates' scores, the thresholds and the soft-NMS decay are in the
  scores' dtype T (half or float), and each IoU is rounded to T before it is compared.
  Candidates go highest score first, equal scores lowest index first; a candidate needs a score
  strictly above ``score_threshold`` and is suppressed by an IoU strictly above
  ``iou_threshold``.  Hard NMS is vectorized; soft-NMS (V5's sigma > 0), and the odd IoUs (NaN,
  infinite) whose weight is not 1, replay TF's queue loop as written, decaying scores with the
  C library's expf as TF does.
* CropAndResize maps a box's normalized ``[y1, x1, y2, x2]`` (flipped corners flip the crop)
  onto ``[0, size - 1]`` pixel coordinates; a crop of size 1 samples the box's centre (a double
  expression in TF); samples outside the image take ``extrapolation_value``.  The sampling
  tables are built on the host from the boxes (TF's CPU kernel checks them there too); the
  pixels are gathered and blended on the op's device.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import heapq
from collections.abc import Callable
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops._indexing import host_copy, scatter_at
from gpugraph.ops.registry import BuildContext, dims_text, op


# --- argument checks shared by the NMS ops -------------------------------------------------
def _invalid(node: Any, message: str) -> errors.InvalidArgumentError:
    return errors.InvalidArgumentError(None, node, message)


def _scalar(node: Any, value: Any, name: str, rank_note: bool = False) -> np.ndarray:
    """A 0-D host input; V3 alone appends the rank to some of its messages."""
    value = np.asarray(value)
    if value.ndim:
        note = f" (Shape must be rank 0 but is rank {value.ndim})" if rank_note else ""
        raise _invalid(node, f"{name} must be 0-D, got shape {dims_text(value.shape)}{note}")
    return value


def _unit_threshold(node: Any, value: np.ndarray, dtype: np.dtype) -> Any:
    # TF converts the threshold to the boxes' dtype first: a float 1.0002 is half 1.0, in range.
    threshold = np.asarray(value).astype(dtype)[()]
    if not (threshold >= 0 and threshold <= 1):  # NaN fails too
        raise _invalid(node, "iou_threshold must be in [0, 1]")
    return threshold


def _check_boxes(node: Any, boxes: Any, scores: Any, overlaps: bool) -> int:
    """The number of boxes, after TF's shape checks of boxes (or overlaps) and scores."""
    shape = tuple(boxes.shape)
    if overlaps:
        if len(shape) != 2:
            raise _invalid(node, f"overlaps must be 2-D{dims_text(shape)}")
        if shape[1] != shape[0]:
            raise _invalid(node, f"overlaps must be square{dims_text(shape)}")
    else:
        if len(shape) != 2:
            raise _invalid(node, f"boxes must be 2-D{dims_text(shape)} (Shape must be rank 2 "
                                 f"but is rank {len(shape)})")
        if shape[1] != 4:
            raise _invalid(node, f"boxes must have 4 columns (Dimension must be 4 but is "
                                 f"{shape[1]})")
    if scores.ndim != 1:
        raise _invalid(node, f"scores must be 1-D{dims_text(scores.shape)} (Shape must be rank 1 "
                             f"but is rank {scores.ndim})")
    if scores.shape[0] != shape[0]:
        raise _invalid(node, f"scores has incompatible shape (Dimensions must be equal, but are "
                             f"{shape[0]} and {scores.shape[0]})")
    return shape[0]


# --- similarity ------------------------------------------------------------------------------
def _mini(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Eigen::numext::mini is std::min, ``b < a ? b : a``: a NaN wins only as the first argument.
    return np.where(b < a, b, a)


def _maxi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(a < b, b, a)  # std::max


class _Boxes:
    """Boxes' ordered corners and areas (float32), each computed once as TF computes it for
    every pair."""

    def __init__(self, boxes: np.ndarray):
        y1, x1, y2, x2 = (boxes[:, k].astype(np.float32) for k in range(4))
        self.ymin, self.xmin, self.ymax, self.xmax = _mini(y1, y2), _mini(x1, x2), \
            _maxi(y1, y2), _maxi(x1, x2)
        self.area = (self.ymax - self.ymin) * (self.xmax - self.xmin)
        # Without NaNs, numpy's min/max agree with std::min/max but for the sign of a zero
        # (which no comparison sees), and are much faster.
        exact = np.isnan(boxes).any()
        self.min, self.max = (_mini, _maxi) if exact else (np.minimum, np.maximum)

    def iou(self, i: np.ndarray, j: int) -> np.ndarray:
        """TF's IOU(candidate i, selected j) in float32 (the order matters only for NaN)."""
        zero, lo, hi = np.float32(0), self.min, self.max
        height = hi(lo(self.ymax[i], self.ymax[j]) - hi(self.ymin[i], self.ymin[j]), zero)
        width = hi(lo(self.xmax[i], self.xmax[j]) - hi(self.xmin[i], self.xmin[j]), zero)
        inter = height * width
        area_i, area_j = self.area[i], self.area[j]
        with np.errstate(all="ignore"):
            iou = inter / (area_i + area_j - inter)
        return np.where((area_i <= 0) | (area_j <= 0), zero, iou)


Similarity = Callable[[np.ndarray, int], np.ndarray]  # (candidate indices, selected) -> float32


def _box_similarity(boxes: np.ndarray) -> Similarity:
    return _Boxes(boxes).iou


def _overlap_similarity(overlaps: np.ndarray) -> Similarity:
    return lambda candidates, chosen: overlaps[candidates, chosen]


# --- the selection (DoNonMaxSuppressionOp) ---------------------------------------------------
@functools.cache
def _libm_expf() -> Callable[[float], float] | None:
    try:
        expf = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6").expf
    except (OSError, AttributeError, TypeError):
        return None
    expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return expf


def _expf(x: float) -> np.float32:
    """The C library's expf, which TF's soft-NMS decay calls: glibc's differs from the correctly
    rounded exp (the fallback) in about one float in 1,600, and numpy's float32 exp far more."""
    expf = _libm_expf()
    return np.float32(expf(x)) if expf is not None else np.float32(np.exp(np.float64(x)))


class _Problem:
    """One NMS run on the host: scores and thresholds in the scores' dtype T."""

    def __init__(self, scores: np.ndarray, similarity: Similarity, size: int, iou: Any,
                 score: Any, sigma: Any):
        self.t = scores.dtype.type
        self.scores, self.similarity, self.size = scores, similarity, size
        self.iou, self.score = self.t(iou), self.t(score)
        self.soft = bool(sigma > 0)
        self.scale = self.t(self.t(-0.5) / self.t(sigma)) if self.soft else self.t(0)

    def similar(self, candidates: np.ndarray, chosen: int) -> np.ndarray:
        # TF rounds each (float) similarity to T before using it.
        return self.similarity(candidates, chosen).astype(self.t)

    def weight(self, sim: Any) -> Any:
        """suppress_weight: exp(scale * sim^2) in T, and 0 for a hard overlap."""
        t = self.t
        weight = t(_expf(float(t(self.scale * sim) * sim)))  # Eigen's exp<half> is half(expf)
        return weight if self.soft or sim <= self.iou else t(0)

    def candidates(self) -> np.ndarray:
        """Scores strictly above the threshold, highest first, equal ones lowest index first."""
        ids = np.flatnonzero(self.scores > self.score)
        return ids[np.lexsort((ids, -self.scores[ids]))]

    def run(self) -> tuple[np.ndarray, np.ndarray]:
        """(selected indices, their scores after soft suppression)."""
        selected = None if self.soft else self.hard()
        if selected is None:
            return self.exact()
        return selected, self.scores[selected]

    def hard(self) -> np.ndarray | None:
        """Greedy hard NMS, vectorized over the candidates; None where a similarity would
        decay a score instead (NaN or infinite IoUs, a NaN threshold): see :meth:`exact`."""
        order = self.candidates()
        selected: list[int] = []
        while order.size and len(selected) < self.size:
            selected.append(int(order[0]))
            rest = order[1:]
            sim = self.similar(rest, selected[-1])
            over = sim > self.iou
            # TF multiplies the score by exp(0 * sim^2), exactly 1 for a finite sim <= threshold
            if (~over & ~((sim <= self.iou) & np.isfinite(sim))).any():
                return None
            order = rest[~over]
        return np.asarray(selected, dtype=np.int64)

    def exact(self) -> tuple[np.ndarray, np.ndarray]:
        """TF's loop as written: a priority queue of candidates whose decayed scores go back in,
        each compared only with the boxes selected since its last visit, newest first."""
        t = self.t
        queue = [(-float(self.scores[i]), int(i), 0, self.scores[i]) for i in self.candidates()]
        heapq.heapify(queue)  # (score, index) keys are unique: any heap pops in TF's order
        selected: list[int] = []
        kept: list[Any] = []
        while len(selected) < self.size and queue:
            _, box, begin, score = heapq.heappop(queue)
            original, hard = score, False
            newest_first = np.asarray(selected[begin:][::-1], dtype=np.int64)
            for sim in self.similar(newest_first, box):
                score = t(score * self.weight(sim))
                if not self.soft and sim > self.iou:
                    hard = True
                    break
                if score <= self.score:
                    break
            begin = len(selected)
            if hard:
                continue
            if score == original:
                selected.append(box)
                kept.append(score)
            elif score > self.score:
                heapq.heappush(queue, (-float(score), box, begin, score))
        return np.asarray(selected, dtype=np.int64), np.asarray(kept, dtype=self.scores.dtype)


def _suppress(node: Any, device: Any, boxes: Any, scores: Any, size: np.ndarray, iou: Any,
              score: Any, sigma: Any = 0, overlaps: bool = False, pad: bool = False) -> tuple:
    """(selected indices, selected scores, valid count) on ``device``, after the box checks."""
    _check_boxes(node, boxes, scores, overlaps)
    count = int(size)
    if count < 0:
        raise _invalid(node, "output size must be non-negative")
    host_scores = host_copy(device, scores)
    host_boxes = host_copy(device, boxes)
    similarity = _overlap_similarity(host_boxes) if overlaps else _box_similarity(host_boxes)
    problem = _Problem(host_scores, similarity, count, iou, score, sigma)
    selected, kept = problem.run()
    valid = selected.size
    if pad:  # zeros after the valid entries, as TF's vector resize
        selected = np.concatenate([selected, np.zeros(count - valid, dtype=selected.dtype)])
        kept = np.concatenate([kept, np.zeros(count - valid, dtype=kept.dtype)])
    return (device.to_device(selected.astype(np.int32)), device.to_device(kept),
            device.to_device(np.asarray(valid, dtype=np.int32)))


def _lowest(dtype: np.dtype) -> Any:
    # V1/V2 take every score above lowest(): -inf, NaN and lowest() itself are dropped.
    return np.finfo(dtype).min


@op("NonMaxSuppression", host_inputs=(2,))
def _nms_v1(ctx: BuildContext):
    node, device = ctx.op, ctx.device
    iou = np.float32(ctx.attr_or("iou_threshold", 0.5))

    def kernel(boxes: Any, scores: Any, max_output_size: Any) -> Any:
        size = _scalar(node, max_output_size, "max_output_size")
        threshold = _unit_threshold(node, iou, np.dtype(np.float32))
        return _suppress(node, device, boxes, scores, size, threshold,
                         _lowest(np.dtype(np.float32)))[0]

    return kernel


@op("NonMaxSuppressionV2", host_inputs=(2, 3))
def _nms_v2(ctx: BuildContext):
    node, device = ctx.op, ctx.device

    def kernel(boxes: Any, scores: Any, max_output_size: Any, iou_threshold: Any) -> Any:
        size = _scalar(node, max_output_size, "max_output_size")
        iou = _scalar(node, iou_threshold, "iou_threshold")
        threshold = _unit_threshold(node, iou, scores.dtype)
        return _suppress(node, device, boxes, scores, size, threshold, _lowest(scores.dtype))[0]

    return kernel


def _nms_thresholds(node: Any, dtype: np.dtype, max_output_size: Any, iou_threshold: Any,
                    score_threshold: Any, rank_note: bool = False) -> tuple:
    """V3-V5's (size, iou threshold, score threshold), checked in TF's order."""
    size = _scalar(node, max_output_size, "max_output_size", rank_note)
    iou = _unit_threshold(node, _scalar(node, iou_threshold, "iou_threshold", rank_note), dtype)
    score = _scalar(node, score_threshold, "score_threshold").astype(dtype)[()]
    return size, iou, score


@op("NonMaxSuppressionV3", host_inputs=(2, 3, 4))
def _nms_v3(ctx: BuildContext):
    node, device = ctx.op, ctx.device

    def kernel(boxes: Any, scores: Any, *scalars: Any) -> Any:
        size, iou, score = _nms_thresholds(node, scores.dtype, *scalars, rank_note=True)
        return _suppress(node, device, boxes, scores, size, iou, score)[0]

    return kernel


@op("NonMaxSuppressionV4", host_inputs=(2, 3, 4))
def _nms_v4(ctx: BuildContext):
    node, device = ctx.op, ctx.device
    pad = ctx.attr_or("pad_to_max_output_size", False)

    def kernel(boxes: Any, scores: Any, *scalars: Any) -> tuple:
        size, iou, score = _nms_thresholds(node, scores.dtype, *scalars)
        selected, _, valid = _suppress(node, device, boxes, scores, size, iou, score, pad=pad)
        return selected, valid

    return kernel


@op("NonMaxSuppressionV5", host_inputs=(2, 3, 4, 5))
def _nms_v5(ctx: BuildContext):
    node, device = ctx.op, ctx.device
    pad = ctx.attr_or("pad_to_max_output_size", False)

    def kernel(boxes: Any, scores: Any, max_output_size: Any, iou_threshold: Any,
               score_threshold: Any, soft_nms_sigma: Any) -> tuple:
        size, iou, score = _nms_thresholds(node, scores.dtype, max_output_size, iou_threshold,
                                           score_threshold)
        sigma = _scalar(node, soft_nms_sigma, "soft_nms_sigma").astype(scores.dtype)[()]
        if not sigma >= 0:
            raise _invalid(node, "soft_nms_sigma_val must be >= 0")
        return _suppress(node, device, boxes, scores, size, iou, score, sigma, pad=pad)

    return kernel


@op("NonMaxSuppressionWithOverlaps", host_inputs=(2, 3, 4))
def _nms_with_overlaps(ctx: BuildContext):
    node, device = ctx.op, ctx.device

    def kernel(overlaps: Any, scores: Any, max_output_size: Any, overlap_threshold: Any,
               score_threshold: Any) -> Any:
        size = _scalar(node, max_output_size, "max_output_size")
        # no range check here: any float overlap threshold goes
        threshold = _scalar(node, overlap_threshold, "overlap_threshold").astype(np.float32)
        score = _scalar(node, score_threshold, "score_threshold").astype(np.float32)
        return _suppress(node, device, overlaps, scores, size, threshold[()], score[()],
                         overlaps=True)[0]

    return kernel


# --- crop and resize: sampling tables ---------------------------------------------------------
def _axis(lo: np.ndarray, hi: np.ndarray, crop: int, size: int, ratio_first: bool) -> np.ndarray:
    """The float32 image coordinate of each crop row (column) of each box: [num_boxes, crop]."""
    last = np.float32(size - 1)
    if crop == 1:
        # TF's ``0.5 * (y1 + y2) * (size - 1)`` is a double expression, rounded once to float.
        middle = 0.5 * (lo + hi).astype(np.float64) * (size - 1)
        return middle.astype(np.float32)[:, None]
    if ratio_first:  # CropAndResizeGradBoxes: (y2 - y1) * ((size - 1) / (crop - 1))
        scale = (hi - lo) * (last / np.float32(crop - 1))
    else:
        scale = (hi - lo) * last / np.float32(crop - 1)
    return lo[:, None] * last + np.arange(crop, dtype=np.float32) * scale[:, None]


class _Sampling:
    """Where each pixel of each crop reads the image (host tables, as TF's CPU loops)."""

    def __init__(self, boxes: np.ndarray, crop: tuple[int, int], image: tuple[int, int],
                 ratio_first: bool = False):
        (crop_h, crop_w), (self.height, self.width) = crop, image
        self.ys = _axis(boxes[:, 0], boxes[:, 2], crop_h, self.height, ratio_first)
        self.xs = _axis(boxes[:, 1], boxes[:, 3], crop_w, self.width, ratio_first)
        # outside the image: TF's ``c < 0 || c > size - 1`` (NaN is never inside here)
        self.rows_in = (self.ys >= 0) & (self.ys <= np.float32(self.height - 1))
        self.cols_in = (self.xs >= 0) & (self.xs <= np.float32(self.width - 1))
        self.inside = self.rows_in[:, :, None] & self.cols_in[:, None, :]

    @staticmethod
    def _linear(coords: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, ...]:
        """(floor, ceil, lerp) per coordinate; 0 outside (the value is not used there)."""
        c = np.where(inside, coords, np.float32(0))
        low = np.floor(c)
        return low.astype(np.int64), np.ceil(c).astype(np.int64), (c - low).astype(np.float32)

    def bilinear(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        return self._linear(self.ys, self.rows_in), self._linear(self.xs, self.cols_in)

    def nearest(self) -> tuple[np.ndarray, np.ndarray]:
        # roundf of a non-negative coordinate: halves away from zero, exact in double
        def rounded(c: np.ndarray, inside: np.ndarray) -> np.ndarray:
            return np.floor(np.where(inside, c, 0).astype(np.float64) + 0.5).astype(np.int64)

        return rounded(self.ys, self.rows_in), rounded(self.xs, self.cols_in)


# --- crop and resize: checks -------------------------------------------------------------------
def _count_boxes(node: Any, boxes: Any, box_index: Any) -> int:
    """ParseAndCheckBoxSizes: no boxes at all (both empty) passes whatever the shapes."""
    if boxes.size == 0 and box_index.size == 0:
        return 0
    if boxes.ndim != 2:
        raise _invalid(node, f"boxes must be 2-D{dims_text(boxes.shape)}")
    if boxes.shape[1] != 4:
        raise _invalid(node, "boxes must have 4 columns")
    if box_index.ndim != 1:
        raise _invalid(node, f"box_index must be 1-D{dims_text(box_index.shape)}")
    if box_index.shape[0] != boxes.shape[0]:
        raise _invalid(node, "box_index has incompatible shape")
    return boxes.shape[0]


def _check_image(node: Any, image: Any) -> None:
    if image.ndim != 4:
        raise _invalid(node, f"input image must be 4-D{dims_text(image.shape)}")
    if image.shape[1] <= 0 or image.shape[2] <= 0:
        raise _invalid(node, "image dimensions must be positive")


def _check_grads(node: Any, grads: Any) -> None:
    if grads.ndim != 4:
        raise _invalid(node, f"grads image must be 4-D{dims_text(grads.shape)}")
    if grads.shape[1] <= 0 or grads.shape[2] <= 0:
        raise _invalid(node, "grads dimensions must be positive")


def _check_grad_boxes(node: Any, grads: Any, boxes: Any, box_index: Any) -> int:
    count = _count_boxes(node, boxes, box_index)
    if grads.shape[0] != count:
        raise _invalid(node, "boxes and grads have incompatible shape")
    return count


def _host_boxes(device: Any, node: Any, boxes: Any, box_index: Any, count: int,
                batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The boxes ([count, 4] float32) and their image indices, on the host, range-checked."""
    index = host_copy(device, box_index).reshape(-1)[:count].astype(np.int64)
    if ((index < 0) | (index >= batch)).any():
        raise errors.OutOfRangeError(None, node, "box_index has values outside [0, batch_size)")
    return host_copy(device, boxes).reshape(count, 4).astype(np.float32), index


def _method(ctx: BuildContext, allowed: tuple[str, ...]) -> str:
    method = ctx.attr_or("method", "bilinear")
    method = method.decode() if isinstance(method, bytes) else method
    if method not in allowed:
        wanted = " or ".join(f"'{m}'" for m in allowed)
        raise _invalid(ctx.op, f"method must be {wanted}{method}")
    return method


# --- crop and resize: kernels --------------------------------------------------------------------
@op("CropAndResize", host_inputs=(3,))
def _crop_and_resize(ctx: BuildContext):
    node, xp, device = ctx.op, ctx.xp, ctx.device
    method = _method(ctx, ("bilinear", "nearest"))
    fill = float(ctx.attr_or("extrapolation_value", 0.0))

    def kernel(image: Any, boxes: Any, box_index: Any, crop_size: Any) -> Any:
        _check_image(node, image)
        if boxes.ndim != 2:
            raise _invalid(node, f"boxes must be 2-D, got: {dims_text(boxes.shape)}")
        if box_index.ndim != 1:
            raise _invalid(node, f"box_indices must be rank 1 but is shape "
                                 f"{dims_text(box_index.shape)}")
        count = _count_boxes(node, boxes, box_index)
        crop = np.asarray(crop_size)
        if crop.ndim != 1:
            raise _invalid(node, f"crop_size must be 1-D{dims_text(crop.shape)}")
        if crop.shape[0] != 2:
            raise _invalid(node, f"crop_size must have two elements{dims_text(crop.shape)}")
        crop_h, crop_w = int(crop[0]), int(crop[1])
        if crop_h <= 0 or crop_w <= 0:
            raise _invalid(node, "crop dimensions must be positive")
        host, index = _host_boxes(device, node, boxes, box_index, count, image.shape[0])
        if not np.isfinite(host).all():
            raise _invalid(node, "Boxes contains at least one element that is not finite")
        sampling = _Sampling(host, (crop_h, crop_w), image.shape[1:3])
        batch = device.to_device(index[:, None, None])
        if method == "nearest":
            rows, cols = map(device.to_device, sampling.nearest())
            out = image[batch, rows[:, :, None], cols[:, None, :]].astype(np.float32)
        else:
            out = _blend(xp, device, image, batch, sampling)
        inside = device.to_device(sampling.inside[..., None])
        return xp.where(inside, out, xp.full((), fill, dtype=np.float32))

    return kernel


def _corners_of(image: Any, batch: Any, rows: tuple, cols: tuple) -> list:
    """The four float32 source pixels (top-left, top-right, bottom-left, bottom-right)."""
    return [image[batch, r[:, :, None], c[:, None, :]].astype(np.float32)
            for r in rows for c in cols]


def _blend(xp: Any, device: Any, image: Any, batch: Any, sampling: _Sampling) -> Any:
    (top, bottom, y_lerp), (left, right, x_lerp) = sampling.bilinear()
    rows = (device.to_device(top), device.to_device(bottom))
    cols = (device.to_device(left), device.to_device(right))
    top_left, top_right, bottom_left, bottom_right = _corners_of(image, batch, rows, cols)
    x_lerp = device.to_device(x_lerp[:, None, :, None])
    y_lerp = device.to_device(y_lerp[:, :, None, None])
    upper = top_left + (top_right - top_left) * x_lerp
    lower = bottom_left + (bottom_right - bottom_left) * x_lerp
    return upper + (lower - upper) * y_lerp


def _grad_image_sizes(node: Any, grads: Any, image_size: Any) -> tuple[int, int, int, int]:
    size = np.asarray(image_size)
    if size.ndim != 1:
        raise _invalid(node, f"image_size must be 1-D{dims_text(size.shape)}")
    if size.shape[0] != 4:
        raise _invalid(node, f"image_size must have 4 elements{dims_text(size.shape)}")
    batch, height, width, depth = (int(v) for v in size)
    if height <= 0 or width <= 0:
        raise _invalid(node, "image dimensions must be positive")
    if grads.shape[3] != depth:
        raise _invalid(node, "image_size and grads are incompatible")
    return batch, height, width, depth


class _Pixels:
    """The crop pixels that sample inside the image, in TF's loop order (box, y, x)."""

    def __init__(self, sampling: _Sampling, index: np.ndarray):
        box, self.y, self.x = np.nonzero(sampling.inside)
        self.flat = np.flatnonzero(sampling.inside)
        self.image = index[box]
        self.box = box
        self.sampling = sampling


@op("CropAndResizeGradImage", host_inputs=(3,))
def _crop_and_resize_grad_image(ctx: BuildContext):
    node, xp, device = ctx.op, ctx.xp, ctx.device
    method = _method(ctx, ("bilinear", "nearest"))
    dtype = ctx.attr("T")

    def kernel(grads: Any, boxes: Any, box_index: Any, image_size: Any) -> Any:
        _check_grads(node, grads)
        count = _check_grad_boxes(node, grads, boxes, box_index)
        batch, height, width, depth = _grad_image_sizes(node, grads, image_size)
        out = xp.zeros((batch, height, width, depth), dtype=dtype)
        host, index = _host_boxes(device, node, boxes, box_index, count, batch)
        pixels = _Pixels(_Sampling(host, grads.shape[1:3], (height, width)), index)
        if not pixels.flat.size or not depth:
            return out
        g = grads.reshape(-1, depth)[device.to_device(pixels.flat)]  # [pixels, depth]
        targets, values = _grad_image_parts(xp, device, pixels, g, method)
        channels = device.to_device(np.arange(depth)[None, :, None])
        images, rows, cols = (device.to_device(t[:, None, :]) for t in targets)
        # one scatter in TF's order: pixel, channel, then the corners
        scatter_at(xp, device, "add", out, (images, rows, cols, channels),
                   values.astype(dtype))
        return out

    return kernel


def _grad_image_parts(xp: Any, device: Any, pixels: _Pixels, g: Any, method: str) -> tuple:
    """Per pixel the (image, row, col) of each target corner ([pixels, corners]) and the
    float32 values ([pixels, depth, corners]) TF adds there."""
    images = pixels.image[:, None]
    if method == "nearest":
        rows, cols = pixels.sampling.nearest()
        targets = (images, rows[pixels.box, pixels.y][:, None], cols[pixels.box, pixels.x][:, None])
        return targets, g[:, :, None]
    ((top, bottom, y_lerp), (left, right, x_lerp)) = pixels.sampling.bilinear()
    ty, by = top[pixels.box, pixels.y], bottom[pixels.box, pixels.y]
    lx, rx = left[pixels.box, pixels.x], right[pixels.box, pixels.x]
    rows = np.stack([ty, ty, by, by], axis=1)
    cols = np.stack([lx, rx, lx, rx], axis=1)
    one = np.float32(1)
    yl = device.to_device(y_lerp[pixels.box, pixels.y][:, None])
    xl = device.to_device(x_lerp[pixels.box, pixels.x][:, None])
    dtop, dbottom = (one - yl) * g, yl * g
    parts = [(one - xl) * dtop, xl * dtop, (one - xl) * dbottom, xl * dbottom]
    return (np.broadcast_to(images, rows.shape), rows, cols), xp.stack(parts, axis=-1)


@op("CropAndResizeGradBoxes")
def _crop_and_resize_grad_boxes(ctx: BuildContext):
    node, xp, device = ctx.op, ctx.xp, ctx.device
    _method(ctx, ("bilinear",))

    def kernel(grads: Any, image: Any, boxes: Any, box_index: Any) -> Any:
        _check_grads(node, grads)
        if image.ndim != 4:
            raise _invalid(node, f"input image must be 4-D{dims_text(image.shape)}")
        if image.shape[1] <= 0 or image.shape[2] <= 0:
            raise _invalid(node, "image dimensions must be positive")
        if image.shape[3] != grads.shape[3]:
            raise _invalid(node, "image, grads depth differ")
        count = _check_grad_boxes(node, grads, boxes, box_index)
        out = xp.zeros((count, 4), dtype=np.float32)
        host, index = _host_boxes(device, node, boxes, box_index, count, image.shape[0])
        sampling = _Sampling(host, grads.shape[1:3], image.shape[1:3], ratio_first=True)
        pixels = _Pixels(sampling, index)
        depth = grads.shape[3]
        if not pixels.flat.size or not depth:
            return out
        terms = _box_terms(xp, device, grads, image, pixels)  # [pixels, depth, 4]
        shape = (pixels.box.size, depth, 4)
        rows = device.to_device(np.broadcast_to(pixels.box[:, None, None], shape))
        cols = device.to_device(np.broadcast_to(np.arange(4), shape))
        scatter_at(xp, device, "add", out, (rows, cols), terms)  # in TF's order per box
        return out

    return kernel


def _box_terms(xp: Any, device: Any, grads: Any, image: Any, pixels: _Pixels) -> Any:
    """What each (pixel, channel) adds to dy1, dx1, dy2, dx2: [pixels, depth, 4] float32."""
    sampling = pixels.sampling
    (top, bottom, y_lerp), (left, right, x_lerp) = sampling.bilinear()
    b, y, x = pixels.box, pixels.y, pixels.x
    at = device.to_device
    images = at(pixels.image)
    tl, tr, bl, br = (image[images, at(r[b, y]), at(c[b, x])].astype(np.float32)
                      for r in (top, bottom) for c in (left, right))
    one = np.float32(1)
    yl, xl = at(y_lerp[b, y][:, None]), at(x_lerp[b, x][:, None])
    g = grads.reshape(-1, grads.shape[3])[at(pixels.flat)]
    grad_y = ((one - xl) * (bl - tl) + xl * (br - tr)) * g
    grad_x = ((one - yl) * (tr - tl) + yl * (br - bl)) * g
    (y1, y2), (x1, x2) = (_edge_factors(y, sampling.ys.shape[1], sampling.height),
                          _edge_factors(x, sampling.xs.shape[1], sampling.width))
    return xp.stack([grad_y * at(y1[:, None]), grad_x * at(x1[:, None]),
                     grad_y * at(y2[:, None]), grad_x * at(x2[:, None])], axis=-1)


def _edge_factors(position: np.ndarray, crop: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """d coordinate / d (first, second) box edge of each crop position, float32."""
    if crop == 1:
        # TF: ``grad * 0.5 * (size - 1)`` in double, added to the float sum; here the product
        # is rounded to float first (at most an ulp of each term apart)
        half = np.full(position.shape, 0.5 * (size - 1), dtype=np.float32)
        return half, half
    ratio = np.float32(size - 1) / np.float32(crop - 1)
    moved = position.astype(np.float32) * ratio
    return np.float32(size - 1) - moved, moved
