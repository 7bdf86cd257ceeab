"""Generate golden fixtures of the detection ops with real TensorFlow.

Writes ``tests/fixtures/ops/detection.pb``, ``detection.npz`` and
``detection.json`` in the per-op fixture format of make_op_fixtures.py (see
its docstring: case ``i`` under ``c<i>/``, placeholders ``c<i>/in<j>``, the
op ``c<i>/op``), whose helpers it uses; tests/runtime/test_ops_against_tf.py
runs the family like the others.  Run it with the pinned TF environment::

    /work/tfenv/bin/python scripts/make_detection_fixtures.py

(make_op_fixtures.py run without arguments deletes tests/fixtures/ops/, these
files included: run this script again after it.)  Determinism as there: fixed
numpy seed, single-threaded session, byte-identical files on every run.

Ops: NonMaxSuppression (V1 to V5), NonMaxSuppressionWithOverlaps,
CropAndResize, CropAndResizeGradImage, CropAndResizeGradBoxes.

Notes on TF 2.21 CPU behaviour the cases pin down
------------------------------------------------
* NMS picks the highest score first and, among equal scores, the lowest
  index.  A candidate needs a score strictly above ``score_threshold`` (V1
  and V2 use the dtype's lowest(): -inf, NaN and lowest() itself are never
  selected) and is suppressed by an IoU strictly above ``iou_threshold``.
* IoU is computed in float32 from boxes given as any two opposite corners; a
  box of area <= 0 has IoU 0 with everything.  Corners are ordered with
  std::min/max, so a NaN coordinate in the second position of a pair is
  dropped (the box degenerates and overlaps nothing).  With half boxes each
  IoU is rounded to half before it is compared.
* Thresholds are converted to the boxes' dtype before V2-V5 check
  ``iou_threshold`` in [0, 1] (a float 1.0002 with half boxes is half 1.0
  and passes); NaN fails.  NonMaxSuppressionWithOverlaps has no range check.
  max_output_size 0 selects nothing, a negative one raises.
* V4/V5 with pad_to_max_output_size pad the indices (and V5's scores) with
  zeros up to max_output_size; valid_outputs counts the real ones.
* Soft-NMS (V5, soft_nms_sigma > 0): a candidate's score is multiplied by
  exp(-0.5 * iou^2 / sigma) (in the scores' dtype) for each box selected
  since it was last examined; a decayed candidate goes back into the queue
  while its score stays above score_threshold, and iou_threshold is then
  unused.  In hard mode a NaN or -inf similarity (overlaps matrix) decays
  the score to 0 or NaN instead of suppressing: the candidate comes back
  with score 0 (if 0 > score_threshold) or is dropped.
* CropAndResize maps normalized y to y * (height - 1); a crop size of 1
  samples the centre 0.5 * (y1 + y2) * (height - 1); samples outside
  [0, height - 1] take extrapolation_value; flipped corners flip the crop.
  The output is float32 for every image dtype.  box_ind outside [0, batch)
  raises OutOfRangeError (before the non-finite boxes check); boxes [n, 0]
  with an empty box_ind mean no boxes.
* CropAndResizeGradImage adds, per crop pixel, its four bilinear weights
  (or the nearest pixel) into a T-typed image; CropAndResizeGradBoxes
  supports only bilinear and returns float32 d/d(y1, x1, y2, x2).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_op_fixtures as mof  # noqa: E402
from make_op_fixtures import F16, F32, F64, f16, f32, i32  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

NAN, INF = np.nan, np.inf


def boxes_at(F, n, dt=F32, lo=0.05, hi=0.4, flip=False):
    """n boxes [y1, x1, y2, x2] in the unit square; flip: random corner order."""
    yc, xc = F.rng.uniform(0.0, 1.0, (2, n))
    h, w = F.rng.uniform(lo, hi, (2, n))
    boxes = np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=1)
    if flip:
        swap_y, swap_x = F.rng.uniform(size=(2, n)) < 0.5
        boxes[swap_y] = boxes[swap_y][:, [2, 1, 0, 3]]
        boxes[swap_x] = boxes[swap_x][:, [0, 3, 2, 1]]
    return np.asarray(boxes, dt)


def clusters(F, n_clusters, per, dt=F32, jitter=0.04):
    """Groups of heavily overlapping boxes (many suppressions)."""
    base = np.repeat(boxes_at(F, n_clusters, F64, 0.2, 0.4), per, axis=0)
    return np.asarray(base + F.rng.uniform(-jitter, jitter, base.shape), dt)


def build_nms(F):
    b = clusters(F, 3, 4)
    s = F.u([12], F32, 0.0, 1.0)
    F.add("NonMaxSuppression", boxes=b, scores=s, max_output_size=i32(5),
          iou_threshold=0.5)
    F.add("NonMaxSuppression", "attr iou_threshold outside [0, 1]",
          boxes=b, scores=s, max_output_size=i32(5), iou_threshold=1.5,
          _error=True)
    F.add("NonMaxSuppressionV2", "equal scores: lowest index first",
          boxes=clusters(F, 2, 3), scores=f32([0.5] * 6),
          max_output_size=i32(6), iou_threshold=f32(0.3))
    F.add("NonMaxSuppressionV2",
          "-inf, lowest() and NaN scores are never selected",
          boxes=f32([[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5], [6, 6, 7, 7],
                     [8, 8, 9, 9]]),
          scores=f32([-INF, np.finfo(F32).min, NAN, -1e38, 0.0]),
          max_output_size=i32(5), iou_threshold=f32(0.5))
    F.add("NonMaxSuppressionV2", "half boxes, float threshold",
          boxes=clusters(F, 3, 3, F16), scores=F.u([9], F16, 0.0, 1.0),
          max_output_size=i32(9), iou_threshold=f32(0.4))
    F.add("NonMaxSuppressionV3", "IoU == threshold (0.5) is kept, score == "
          "threshold is dropped, IoU 0 of touching boxes",
          boxes=f32([[0, 0, 1, 1], [0, 0, 1, 2], [0, 2, 1, 3], [5, 5, 6, 6]]),
          scores=f32([0.6, 0.9, 0.7, 0.25]), max_output_size=i32(4),
          iou_threshold=f32(0.5), score_threshold=f32(0.25))
    F.add("NonMaxSuppressionV3", "iou_threshold 0: any overlap suppresses",
          boxes=f32([[0, 0, 1, 1], [0.99, 0.99, 2, 2], [0, 1, 1, 2],
                     [3, 3, 4, 4]]),
          scores=f32([0.9, 0.8, 0.7, 0.6]), max_output_size=i32(4),
          iou_threshold=f32(0.0), score_threshold=f32(-INF))
    flipped = boxes_at(F, 16, flip=True)
    F.add("NonMaxSuppressionV3", "corners in any order",
          boxes=flipped, scores=F.u([16], F32, 0.0, 1.0),
          max_output_size=i32(10), iou_threshold=f32(0.1),
          score_threshold=f32(0.2))
    F.add("NonMaxSuppressionV3", "zero-area and inverted-zero boxes never "
          "suppress nor get suppressed; a NaN second corner degenerates",
          boxes=f32([[0, 0, 1, 1], [0, 0, 0, 1], [0.5, 0.5, 0.5, 0.5],
                     [0, 0, 1, 1], [0, 0, NAN, 1], [0.1, 0, 1, 1]]),
          scores=f32([0.9, 0.95, 0.85, 0.8, 0.7, 0.6]),
          max_output_size=i32(6), iou_threshold=f32(0.5),
          score_threshold=f32(0.0))
    big = clusters(F, 40, 5, jitter=0.06)
    F.add("NonMaxSuppressionV3", "200 boxes, 50 outputs",
          boxes=big, scores=F.u([200], F32, 0.0, 1.0),
          max_output_size=i32(50), iou_threshold=f32(0.5),
          score_threshold=f32(0.05))
    F.add("NonMaxSuppressionV3", "max_output_size 0", boxes=b, scores=s,
          max_output_size=i32(0), iou_threshold=f32(0.5),
          score_threshold=f32(0.0))
    F.add("NonMaxSuppressionV3", "no boxes", boxes=np.zeros((0, 4), F32),
          scores=np.zeros((0,), F32), max_output_size=i32(3),
          iou_threshold=f32(0.5), score_threshold=f32(0.0))
    F.add("NonMaxSuppressionV3", "half boxes: float 1.0002 rounds to half "
          "1.0, in range", boxes=clusters(F, 2, 3, F16),
          scores=F.u([6], F16, 0.0, 1.0), max_output_size=i32(6),
          iou_threshold=f32(1.0002), score_threshold=f32(0.1))
    F.add("NonMaxSuppressionV3", "half thresholds with float boxes",
          boxes=clusters(F, 3, 3), scores=F.u([9], F32, 0.0, 1.0),
          max_output_size=i32(9), iou_threshold=f16(0.35),
          score_threshold=f16(0.2))
    for iou in (1.5, -0.1, NAN):
        F.add("NonMaxSuppressionV3", f"iou_threshold {iou!r}", boxes=b,
              scores=s, max_output_size=i32(5), iou_threshold=f32(iou),
              score_threshold=f32(0.0), _error=True)
    F.add("NonMaxSuppressionV3", "negative max_output_size", boxes=b,
          scores=s, max_output_size=i32(-1), iou_threshold=f32(0.5),
          score_threshold=f32(0.0), _error=True)
    F.add("NonMaxSuppressionV3", "max_output_size of rank 1", boxes=b,
          scores=s, max_output_size=i32([5]), iou_threshold=f32(0.5),
          score_threshold=f32(0.0), _error=True)
    F.add("NonMaxSuppressionV3", "boxes with 3 columns", boxes=b[:, :3],
          scores=s, max_output_size=i32(5), iou_threshold=f32(0.5),
          score_threshold=f32(0.0), _error=True)
    F.add("NonMaxSuppressionV3", "fewer scores than boxes", boxes=b,
          scores=s[:7], max_output_size=i32(5), iou_threshold=f32(0.5),
          score_threshold=f32(0.0), _error=True)
    F.add("NonMaxSuppressionV4", "padded to max_output_size",
          boxes=clusters(F, 3, 3), scores=F.u([9], F32, 0.0, 1.0),
          max_output_size=i32(8), iou_threshold=f32(0.5),
          score_threshold=f32(0.3), pad_to_max_output_size=True)
    F.add("NonMaxSuppressionV4", "not padded", boxes=clusters(F, 3, 3),
          scores=F.u([9], F32, 0.0, 1.0), max_output_size=i32(8),
          iou_threshold=f32(0.5), score_threshold=f32(0.3),
          pad_to_max_output_size=False)
    F.add("NonMaxSuppressionV4", "half, padded, no box above the threshold",
          boxes=clusters(F, 1, 3, F16), scores=f16([0.1, 0.2, 0.3]),
          max_output_size=i32(4), iou_threshold=f32(0.5),
          score_threshold=f32(0.5), pad_to_max_output_size=True)
    build_nms_v5(F)
    ov = F.u([5, 5], F32, 0.0, 1.0)
    F.add("NonMaxSuppressionWithOverlaps", "asymmetric overlaps: "
          "overlaps[candidate, selected] is compared", overlaps=ov,
          scores=F.u([5], F32, 0.0, 1.0), max_output_size=i32(5),
          overlap_threshold=f32(0.5), score_threshold=f32(0.0))
    F.add("NonMaxSuppressionWithOverlaps", "threshold above 1, negative "
          "overlaps", overlaps=F.u([6, 6], F32, -2.0, 2.0),
          scores=F.u([6], F32, 0.0, 1.0), max_output_size=i32(4),
          overlap_threshold=f32(1.2), score_threshold=f32(0.1))
    F.add("NonMaxSuppressionWithOverlaps", "-inf and NaN overlaps decay "
          "instead of suppressing",
          overlaps=f32([[1, -INF, NAN, 0], [-INF, 1, 0, 0], [NAN, 0, 1, 0],
                        [0, 0, 0, 1]]),
          scores=f32([0.9, 0.8, 0.7, 0.6]), max_output_size=i32(4),
          overlap_threshold=f32(0.5), score_threshold=f32(-1.0))
    F.add("NonMaxSuppressionWithOverlaps", "overlaps not square",
          overlaps=F.u([3, 2]), scores=F.u([3]), max_output_size=i32(2),
          overlap_threshold=f32(0.5), score_threshold=f32(0.0),
          _error=True)


def build_nms_v5(F):
    F.add("NonMaxSuppressionV5", "sigma 0: hard NMS with scores",
          boxes=clusters(F, 3, 3), scores=F.u([9], F32, 0.0, 1.0),
          max_output_size=i32(9), iou_threshold=f32(0.4),
          score_threshold=f32(0.0), soft_nms_sigma=f32(0.0),
          pad_to_max_output_size=False)
    F.add("NonMaxSuppressionV5", "soft-NMS: decayed scores, re-ordering, "
          "padded", boxes=clusters(F, 3, 4, jitter=0.08),
          scores=F.u([12], F32, 0.2, 1.0), max_output_size=i32(14),
          iou_threshold=f32(0.5), score_threshold=f32(0.0),
          soft_nms_sigma=f32(0.5), pad_to_max_output_size=True)
    F.add("NonMaxSuppressionV5", "soft-NMS with a score threshold that "
          "prunes decayed boxes", boxes=clusters(F, 4, 4, jitter=0.05),
          scores=F.u([16], F32, 0.3, 1.0), max_output_size=i32(12),
          iou_threshold=f32(0.1), score_threshold=f32(0.35),
          soft_nms_sigma=f32(0.2), pad_to_max_output_size=False)
    F.add("NonMaxSuppressionV5", "half soft-NMS",
          boxes=clusters(F, 3, 3, F16, jitter=0.08),
          scores=F.u([9], F16, 0.2, 1.0), max_output_size=i32(9),
          iou_threshold=f16(0.5), score_threshold=f16(0.05),
          soft_nms_sigma=f16(0.3), pad_to_max_output_size=True)
    F.add("NonMaxSuppressionV5", "negative soft_nms_sigma",
          boxes=clusters(F, 1, 3), scores=F.u([3]), max_output_size=i32(3),
          iou_threshold=f32(0.5), score_threshold=f32(0.0),
          soft_nms_sigma=f32(-0.5), pad_to_max_output_size=False,
          _error=True)


def crop_boxes(F, n, lo=-0.3, hi=1.3):
    """Normalized boxes, partly outside [0, 1], corners in any order."""
    return F.u([n, 4], F32, lo, hi)


def build_crop(F):
    img = F.u([2, 5, 6, 3], F32, -2.0, 2.0)
    boxes = crop_boxes(F, 5)
    ind = i32([0, 1, 1, 0, 1])
    F.add("CropAndResize", "bilinear, boxes partly outside and flipped",
          image=img, boxes=boxes, box_ind=ind, crop_size=i32([4, 3]),
          method="bilinear", extrapolation_value=0.0)
    F.add("CropAndResize", "extrapolation_value -1, whole image box",
          image=img, boxes=np.concatenate([boxes, f32([[0, 0, 1, 1]])]),
          box_ind=i32([1, 0, 0, 1, 1, 0]), crop_size=i32([5, 6]),
          method="bilinear", extrapolation_value=-1.0)
    F.add("CropAndResize", "nearest", image=img, boxes=boxes, box_ind=ind,
          crop_size=i32([4, 5]), method="nearest", extrapolation_value=0.5)
    F.add("CropAndResize", "crop size 1 samples the box centre",
          image=img, boxes=f32([[0.1, 0.2, 0.7, 0.9], [0.3, -0.5, 0.9, 0.5],
                                [1.2, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]),
          box_ind=i32([0, 1, 0, 1]), crop_size=i32([1, 1]),
          method="bilinear", extrapolation_value=9.0)
    F.add("CropAndResize", "crop height 1, nearest", image=img,
          boxes=boxes, box_ind=ind, crop_size=i32([1, 4]), method="nearest",
          extrapolation_value=0.0)
    F.add("CropAndResize", "uint8 image", image=F.ri([1, 4, 4, 2], 0, 256,
                                                      np.uint8),
          boxes=crop_boxes(F, 3, 0.0, 1.0), box_ind=i32([0, 0, 0]),
          crop_size=i32([3, 3]), method="bilinear", extrapolation_value=0.0)
    F.add("CropAndResize", "half image", image=F.u([1, 4, 3, 2], F16),
          boxes=crop_boxes(F, 2), box_ind=i32([0, 0]), crop_size=i32([3, 2]),
          method="bilinear", extrapolation_value=0.0)
    F.add("CropAndResize", "float64 image, 1x1 image",
          image=F.u([2, 1, 1, 2], F64), boxes=f32([[0, 0, 1, 1],
                                                   [0, 0, 0, 0]]),
          box_ind=i32([0, 1]), crop_size=i32([2, 2]), method="bilinear",
          extrapolation_value=0.0)
    F.add("CropAndResize", "no boxes", image=img,
          boxes=np.zeros((0, 4), F32), box_ind=np.zeros((0,), np.int32),
          crop_size=i32([2, 2]), method="bilinear", extrapolation_value=0.0)
    F.add("CropAndResize", "box_ind outside [0, batch)", image=img,
          boxes=boxes[:2], box_ind=i32([0, 2]), crop_size=i32([2, 2]),
          method="bilinear", extrapolation_value=0.0, _error=True)
    F.add("CropAndResize", "non-finite box", image=img,
          boxes=f32([[0, 0, 1, 1], [0, 0, INF, 1]]), box_ind=i32([0, 1]),
          crop_size=i32([2, 2]), method="bilinear", extrapolation_value=0.0,
          _error=True)
    F.add("CropAndResize", "crop size 0", image=img, boxes=boxes[:2],
          box_ind=i32([0, 1]), crop_size=i32([0, 2]), method="bilinear",
          extrapolation_value=0.0, _error=True)


def build_crop_grads(F):
    boxes = crop_boxes(F, 4)
    ind = i32([0, 1, 0, 0])
    grads = F.u([4, 3, 4, 2], F32)
    for method, dt in (("bilinear", tf.float32), ("nearest", tf.float32),
                       ("bilinear", tf.float16), ("bilinear", tf.float64)):
        F.add("CropAndResizeGradImage", "overlapping boxes accumulate",
              grads=grads, boxes=boxes, box_ind=ind,
              image_size=i32([2, 5, 6, 2]), T=dt, method=method)
    F.add("CropAndResizeGradImage", "crop size 1",
          grads=F.u([3, 1, 1, 2]), boxes=f32([[0.1, 0.2, 0.7, 0.9],
                                               [0.3, -0.5, 0.9, 0.5],
                                               [0.2, 0.2, 0.2, 0.2]]),
          box_ind=i32([0, 0, 1]), image_size=i32([2, 4, 4, 2]),
          T=tf.float32, method="bilinear")
    F.add("CropAndResizeGradImage", "depth differs from grads",
          grads=grads, boxes=boxes, box_ind=ind,
          image_size=i32([2, 5, 6, 3]), T=tf.float32, method="bilinear",
          _error=True)
    img = F.u([2, 5, 6, 2], F32, -2.0, 2.0)
    F.add("CropAndResizeGradBoxes", grads=grads, image=img, boxes=boxes,
          box_ind=ind, method="bilinear")
    F.add("CropAndResizeGradBoxes", "crop size 1 and [1, 3]",
          grads=F.u([3, 1, 3, 2]), image=img,
          boxes=f32([[0.1, 0.2, 0.7, 0.9], [0.3, -0.5, 0.9, 0.5],
                     [0.6, 0.9, 0.2, 0.1]]),
          box_ind=i32([0, 1, 1]), method="bilinear")
    F.add("CropAndResizeGradBoxes", "uint8 image",
          grads=F.u([2, 3, 3, 1]), image=F.ri([1, 4, 4, 1], 0, 256, np.uint8),
          boxes=crop_boxes(F, 2, 0.0, 1.0), box_ind=i32([0, 0]),
          method="bilinear")
    F.add("CropAndResizeGradBoxes", "image and grads depth differ",
          grads=grads, image=F.u([2, 5, 6, 3]), boxes=boxes, box_ind=ind,
          method="bilinear", _error=True)


def build_detection(F):
    build_nms(F)
    build_crop(F)
    build_crop_grads(F)


def main():
    mof.generate_family("detection", build_detection, 1313)


if __name__ == "__main__":
    main()
