"""Generate golden fixtures of the colour ops with real TensorFlow: AdjustContrastv2, RGBToHSV,
HSVToRGB, AdjustSaturation, AdjustHue (image pipelines of TF1 graphs).

Writes ``tests/fixtures/ops/color.pb``, ``color.npz`` and ``color.json`` in the per-op fixture
format of make_op_fixtures.py (whose helpers it uses); tests/runtime/test_ops_against_tf.py runs
the family like the others.  Run it with the TF environment::

    /work/tfenv/bin/python scripts/make_color_fixtures.py

(make_op_fixtures.py run without arguments deletes tests/fixtures/ops/: run this again after.)
"""

from __future__ import annotations

import numpy as np

import make_op_fixtures as mof

F32 = np.float32


def build_color(F):
    rgb = lambda *shape: F.u(shape, F32, 0.0, 1.0)  # noqa: E731
    F.add("AdjustContrastv2", "batch of 2, factor 1.7", images=rgb(2, 4, 5, 3),
          contrast_factor=np.array(1.7, F32))
    F.add("AdjustContrastv2", "one image, 1 channel, factor -0.5", images=rgb(3, 3, 1),
          contrast_factor=np.array(-0.5, F32))
    grey = np.full((2, 2, 3), 0.25, F32)
    F.add("RGBToHSV", "random pixels", images=rgb(6, 7, 3))
    F.add("RGBToHSV", "greys (no hue) and black", images=np.concatenate(
        [grey, np.zeros((2, 2, 3), F32)]))
    F.add("RGBToHSV", "each channel the maximum, ties", images=np.array(
        [[1, 0.2, 0.1], [0.3, 1, 0.1], [0.1, 0.3, 1], [1, 1, 0.5], [0.5, 1, 1], [1, 0.5, 1]],
        F32))
    F.add("RGBToHSV", "float64", images=rgb(4, 3).astype(np.float64))
    F.add("HSVToRGB", "random hsv", images=rgb(5, 6, 3))
    F.add("HSVToRGB", "hue 0 and 1, no saturation", images=np.array(
        [[0, 1, 1], [1, 1, 1], [0.5, 0, 0.7], [0.999, 0.5, 0.5]], F32))
    F.add("AdjustSaturation", "scale 1.5", images=rgb(2, 3, 4, 3), scale=np.array(1.5, F32))
    F.add("AdjustSaturation", "scale 0 (grey)", images=rgb(3, 3, 3), scale=np.array(0, F32))
    F.add("AdjustSaturation", "greys and primaries", images=np.array(
        [[[0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0], [1, 1, 0]]], F32),
        scale=np.array(2.0, F32))
    F.add("AdjustHue", "delta 0.3", images=rgb(2, 4, 4, 3), delta=np.array(0.3, F32))
    F.add("AdjustHue", "delta -0.45", images=rgb(3, 5, 3), delta=np.array(-0.45, F32))
    F.add("AdjustHue", "greys and primaries, delta 0.5", images=np.array(
        [[[0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.2, 0.9, 0.9]]], F32),
        delta=np.array(0.5, F32))
    F.add("RGBToHSV", "last dimension is not 3", images=rgb(2, 4), _error=True)
    F.add("AdjustHue", "not an image (rank 2)", images=rgb(4, 3), delta=np.array(0.1, F32),
          _error=True)


def main():
    mof.generate_family("color", build_color, 1414)


if __name__ == "__main__":
    main()
