"""Multinomial and RandomShuffle: TF's distributions and seed semantics (numpy's stream, not
TF's Philox: see gpugraph/ops/random_ops.py)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import out

import gpugraph as gg
from gpugraph import errors


def _draw(probabilities, samples: int, seed: int = 1, runs: int = 1):
    with gg.Graph().as_default():
        logits = gg.constant(np.log(np.asarray(probabilities, np.float32)))
        m = out("Multinomial", logits, gg.constant(np.int32(samples)), T=gg.dtypes.float32,
                seed=seed, seed2=7, output_dtype=gg.dtypes.int64)
        with gg.Session() as sess:
            return [sess.run(m) for _ in range(runs)]


def test_multinomial_follows_the_softmax_of_its_logits() -> None:
    (draws,) = _draw([[0.1, 0.2, 0.7], [0.5, 0.5, 1e-30]], 40000)
    assert draws.shape == (2, 40000) and draws.dtype == np.int64
    np.testing.assert_allclose(np.bincount(draws[0], minlength=3) / 40000, [0.1, 0.2, 0.7],
                               atol=0.01)
    np.testing.assert_allclose(np.bincount(draws[1], minlength=3) / 40000, [0.5, 0.5, 0],
                               atol=0.01)


def test_seeded_streams_repeat_per_session_and_advance_per_run() -> None:
    first = _draw([[1.0, 1.0, 1.0, 1.0]], 50, runs=2)
    again = _draw([[1.0, 1.0, 1.0, 1.0]], 50, runs=2)
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], first[1])


def test_multinomial_rejects_a_vector_of_logits() -> None:
    with gg.Graph().as_default():
        logits = gg.placeholder(gg.dtypes.float32, None, name="logits")
        m = out("Multinomial", logits, gg.constant(np.int32(3)), T=gg.dtypes.float32)
        with gg.Session() as sess, pytest.raises(errors.InvalidArgumentError, match="matrix"):
            sess.run(m, {logits: np.zeros(3, np.float32)})


def test_random_shuffle_permutes_the_first_dimension() -> None:
    values = np.arange(24).reshape(8, 3)
    with gg.Graph().as_default():
        shuffled = out("RandomShuffle", gg.constant(values), T=gg.dtypes.int64, seed=3, seed2=4)
        with gg.Session() as sess:
            got = sess.run(shuffled)
    assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, values.tolist()))
    assert not np.array_equal(got, values)
