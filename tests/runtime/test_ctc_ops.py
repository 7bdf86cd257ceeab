"""CTC ops where TF gives no CPU fixture (tests/fixtures/ops/ctc.* cover the rest): CTCLossV2's
checks and inputs, and the libstdc++ sort the beam search replays."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import node

import gpugraph as gg
from gpugraph import errors
from gpugraph.ops import ctc_ops


@pytest.fixture
def graph():
    with gg.Graph().as_default() as g:
        yield g


def _loss_v2(x: np.ndarray, labels: list[list[int]], seq_len: list[int], **attrs):
    """CTCLossV2's (loss, gradient) in a session."""
    rows = [[b, t] for b, label in enumerate(labels) for t in range(len(label))]
    values = [v for label in labels for v in label]
    op = node("CTCLossV2", gg.constant(x), gg.constant(np.array(rows, np.int64).reshape(-1, 2)),
              gg.constant(np.array(values, np.int32)), gg.constant(np.array(seq_len, np.int32)),
              **attrs)
    with gg.Session() as sess:
        return sess.run(op.outputs)


@pytest.mark.parametrize(("attr", "value", "message"), [
    ("preprocess_collapse_repeated", True, "requires preprocess_collapse_repeated to be false"),
    ("ctc_merge_repeated", False, "requires ctc_merge_repeated to be true"),
    ("ignore_longer_outputs_than_inputs", True,
     "requires ignore_longer_outputs_than_inputs tobe false"),
])
def test_v2_refuses_what_the_cudnn_kernel_refuses(graph, attr, value, message) -> None:
    # TF's only CTCLossV2 kernel (cuDNN) fails when it is built, with these messages.
    x = np.zeros((3, 1, 4), np.float32)
    with pytest.raises(errors.InvalidArgumentError, match=message):
        _loss_v2(x, [[1]], [3], **{attr: value})


@pytest.mark.parametrize("label", [0, 4, -1])
def test_v2_labels_exclude_the_blank(graph, label) -> None:
    x = np.zeros((3, 1, 4), np.float32)
    with pytest.raises(errors.InvalidArgumentError, match=r"must be in \[1, 3\] \(0 is the blank"):
        _loss_v2(x, [[1, label]], [3])


def test_v2_takes_logits_or_log_probabilities(graph) -> None:
    # cuDNN takes the softmax of its input itself: log-probabilities give the same loss.
    x = np.random.RandomState(0).standard_normal((6, 2, 5)).astype(np.float32) * 2
    log_probs = x - np.log(np.exp(x).sum(axis=2, keepdims=True))
    labels, seq_len = [[1, 2, 2], [4]], [6, 4]
    loss, grad = _loss_v2(x, labels, seq_len)
    loss_lp, grad_lp = _loss_v2(log_probs.astype(np.float32), labels, seq_len)
    np.testing.assert_allclose(loss_lp, loss, rtol=1e-5)
    np.testing.assert_allclose(grad_lp, grad, rtol=1e-5, atol=1e-6)
    assert (grad[4:, 1] == 0).all()  # past sequence_length


def test_v2_empty_label_is_all_blanks(graph) -> None:
    x = np.random.RandomState(1).standard_normal((5, 1, 3)).astype(np.float32)
    loss, grad = _loss_v2(x, [[]], [5])
    probs = np.exp(x) / np.exp(x).sum(axis=2, keepdims=True)
    np.testing.assert_allclose(loss, [-np.log(probs[:, 0, 0]).sum()], rtol=1e-5)
    expected = probs.copy()
    expected[:, :, 0] -= 1  # the only path: blank at every step
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [1, 5, 16, 17, 40, 300])
def test_std_sort_sorts(size) -> None:
    # The replay of libstdc++'s introsort (and its heap-sort fallback) orders like sorted().
    values = list(np.random.RandomState(size).permutation(size))
    better = lambda a, b: a > b  # noqa: E731
    ordered = values[:]
    ctc_ops._std_sort(ordered, better)
    assert ordered == sorted(values, reverse=True)
    heap = values[:]
    ctc_ops._introsort(heap, 0, size, 0, better)
    ctc_ops._insertion(heap, 0, size, better)
    assert heap == sorted(values, reverse=True)
