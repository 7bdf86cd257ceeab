"""Generate golden fixtures of ResizeBicubic and ResizeBicubicGrad with real TensorFlow
(``tf.image.resize_bicubic`` of TF1 super-resolution and augmentation graphs): the legacy
scaler (Keys' kernel with a = -0.75, edge pixels repeated), align_corners, and
half_pixel_centers (a = -0.5, taps outside the image dropped and the weights renormalized).

Writes ``tests/fixtures/ops/bicubic.{pb,npz,json}`` in the per-op fixture format of
make_op_fixtures.py; tests/runtime/test_ops_against_tf.py runs the family like the others::

    /work/tfenv/bin/python scripts/make_bicubic_fixtures.py

(make_op_fixtures.py run without arguments deletes tests/fixtures/ops/: run this again after.)
"""

from __future__ import annotations

import numpy as np

import make_op_fixtures as mof

F32, F64, I32 = np.float32, np.float64, np.int32
MODES = ({"align_corners": False, "half_pixel_centers": False},
         {"align_corners": True, "half_pixel_centers": False},
         {"align_corners": False, "half_pixel_centers": True})


def build_bicubic(F):
    for mode in MODES:
        for shape, size in (([2, 5, 7, 3], [9, 4]), ([1, 4, 4, 1], [8, 8]),
                            ([1, 6, 3, 2], [2, 1])):
            F.add("ResizeBicubic", images=F.u(shape, F32, -2, 2), size=np.array(size, I32),
                  **mode)
            F.add("ResizeBicubicGrad", grads=F.u([shape[0], *size, shape[3]], F32, -1, 1),
                  original_image=F.u(shape, F32), **mode)
    F.add("ResizeBicubic", "int32 pixels", images=F.ri([1, 3, 5, 2], 0, 255),
          size=np.array([7, 6], I32))
    F.add("ResizeBicubic", "float64", images=F.u([1, 4, 3, 1], F64),
          size=np.array([5, 5], I32), half_pixel_centers=True)
    F.add("ResizeBicubicGrad", "float64 original", grads=F.u([1, 5, 5, 1], F32),
          original_image=F.u([1, 4, 3, 1], F64))
    F.add("ResizeBicubic", "size not positive", images=F.u([1, 3, 3, 1]),
          size=np.array([0, 4], I32), _error=True)


def main():
    mof.generate_family("bicubic", build_bicubic, 4242)


if __name__ == "__main__":
    main()
