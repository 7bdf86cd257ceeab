"""The candidate samplers against TF's facts that per-op fixtures cannot hold.

The sampled ids are numpy's draws, not TF's Philox stream (gpugraph/ops/sampling_ops.py), so
they are checked by their properties: ranges, uniqueness, their distribution over many draws
(seeded, hence deterministic) and repeatability per seed.  What is deterministic is compared
with TF's own values, recorded by scripts/make_sampling_fixtures.py in
tests/fixtures/samplers/sampler_facts.json (its docstring describes every key): each class's
probability and unique=False expected count, a learned sampler's counts run after run, TF's
vocabulary-file errors, and TF's unique=True runs, whose expected counts fit
ExpectedCountHelper for exactly one number of draws.

Every test's name starts with ``test_sampling_``, so ``-k sampling`` selects this file with the
``sampling`` fixture family of test_ops_against_tf.py.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import gpugraph as gg
from gpugraph import _proto as pb
from gpugraph import errors
from gpugraph.framework.attrs import to_attr_value
from gpugraph.framework.graph import get_default_graph
from gpugraph.ops import sampling_ops

FACTS = json.loads((pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "samplers"
                    / "sampler_facts.json").read_text())
MAX_ULPS = 2  # TF's expm1f is glibc's, an ulp off the correctly rounded value at times


def _spec_id(spec: dict) -> str:
    attrs = spec["attrs"]
    extra = "-".join(f"{k}={v}" for k, v in sorted(attrs.items())
                     if k not in ("unigrams", "vocab", "range_max"))
    source = "-vocab" if "vocab" in attrs else ""
    return f"{spec['op']}-{attrs['range_max']}{source}{'-' + extra if extra else ''}"


def _op(op_type: str, *inputs, **attrs):
    """One op in the default graph; float lists (unigrams) become list(f) attrs."""
    protos = {k: pb.AttrValue(list=pb.AttrValue.ListValue(f=v))
              if isinstance(v, list) and v and isinstance(v[0], float) else to_attr_value(v)
              for k, v in attrs.items()}
    return get_default_graph().create_op(op_type, list(inputs), attrs=protos)


class _Sampler:
    """One sampler node of ``spec`` in its own graph and session (fresh sampler state)."""

    def __init__(self, spec: dict, num_true: int, num_sampled: int, unique: bool,
                 seed: tuple[int, int] = (0, 0), tmp: pathlib.Path | None = None,
                 config: dict | None = None):
        attrs = dict(spec["attrs"])
        if "vocab" in attrs:
            path = tmp / "vocab.txt"
            path.write_text(attrs.pop("vocab"), newline="")
            attrs["vocab_file"] = str(path)
        self.graph = gg.Graph()
        with self.graph.as_default():
            self.true = gg.placeholder(gg.dtypes.int64, [None, num_true], name="true")
            self.op = _op(spec["op"], self.true, num_true=num_true, num_sampled=num_sampled,
                          unique=unique, seed=seed[0], seed2=seed[1], **attrs)
        self.session = gg.Session(graph=self.graph, config=config)

    def __call__(self, true, fetch=(0, 1, 2)) -> list[np.ndarray]:
        return self.session.run([self.op.outputs[k] for k in fetch],
                                {self.true: np.asarray(true, np.int64)})

    def __enter__(self) -> _Sampler:
        return self

    def __exit__(self, *exc) -> None:
        self.session.close()


def _every_class(range_max: int) -> np.ndarray:
    return np.arange(range_max, dtype=np.int64).reshape(-1, 1)


def _tf_p(spec: dict) -> np.ndarray:
    """TF's float32 P(k) of every class of the sampler ``spec``."""
    for record in FACTS["probabilities"]:
        if record["op"] == spec["op"] and record["attrs"] == spec["attrs"]:
            return np.asarray(record["p"], np.float32)
    raise KeyError(spec)


def _formula(p, num_sampled: int, num_tries: int) -> np.ndarray:
    """ExpectedCountHelper (range_sampler.cc), float32, correctly rounded functions."""
    p = np.asarray(p, np.float32)
    if num_tries == num_sampled:
        return p * np.float32(num_sampled)
    log1p = np.log1p(-p.astype(np.float64)).astype(np.float32)
    return (-np.expm1((np.float32(num_tries) * log1p).astype(np.float64))).astype(np.float32)


def _fitting_tries(p: np.ndarray, counts: np.ndarray, num_sampled: int) -> list[int]:
    """Every number of draws for which the formula gives exactly ``counts``: ``num_sampled``
    (no rejection) or the ones near log1p(-count) / log1p(-p) of the best-conditioned entry."""
    candidates = {num_sampled}
    usable = np.flatnonzero((counts < 0.999) & (p > 0))
    if usable.size:
        i = usable[np.argmax(p[usable])]
        estimate = np.log1p(-float(counts[i])) / np.log1p(-float(p[i]))
        candidates |= {int(round(estimate)) + d for d in range(-2, 3)}
    return [t for t in sorted(candidates)
            if t >= num_sampled and np.array_equal(_formula(p, num_sampled, t), counts)]


# --- unique=False: TF's expected counts, exactly ---------------------------------------------
@pytest.mark.parametrize("record", FACTS["probabilities"], ids=_spec_id)
def test_sampling_probabilities_equal_tfs(record: dict, tmp_path: pathlib.Path) -> None:
    # num_sampled = 1, unique=False: true_expected_count is P(k) itself.
    with _Sampler(record, 1, 1, False, (1, 2), tmp_path) as run:
        _, counts, _ = run(_every_class(record["attrs"]["range_max"]))
    np.testing.assert_array_equal(counts.reshape(-1), np.asarray(record["p"], np.float32))


@pytest.mark.parametrize("record", FACTS["expected_counts"],
                         ids=lambda r: f"{_spec_id(r)}-n{r['num_sampled']}")
def test_sampling_unique_false_expected_counts_equal_tfs(record: dict,
                                                         tmp_path: pathlib.Path) -> None:
    n, range_max = record["num_sampled"], record["attrs"]["range_max"]
    want = np.asarray(record["counts"], np.float32)
    with _Sampler(record, 1, n, False, (3, n), tmp_path) as run:
        for _ in range(3):
            sampled, true_counts, sampled_counts = run(_every_class(range_max))
            assert sampled.dtype == np.int64 and sampled.shape == (n,)
            assert true_counts.dtype == sampled_counts.dtype == np.float32
            np.testing.assert_array_equal(true_counts.reshape(-1), want)
            assert sampled.min() >= 0 and sampled.max() < range_max
            # a sampled id's count is its class's count
            np.testing.assert_array_equal(sampled_counts, want[sampled])


# --- unique=True ------------------------------------------------------------------------------
@pytest.mark.parametrize("record", FACTS["unique_runs"],
                         ids=lambda r: f"{_spec_id(r)}-n{r['num_sampled']}-t{r['num_tries']}")
def test_sampling_helper_gives_tfs_unique_counts(record: dict) -> None:
    """TF's own unique=True outputs: gpugraph's ExpectedCountHelper, given TF's number of
    draws, gives TF's counts (within the ulps of glibc's expm1f)."""
    p, n, tries = _tf_p(record), record["num_sampled"], record["num_tries"]
    true, sampled = np.asarray(record["true_classes"]), np.asarray(record["sampled"])
    for ids, key in ((true, "true_expected_count"), (sampled, "sampled_expected_count")):
        got = sampling_ops.expected_count(p[ids], n, tries).reshape(-1)
        want = np.asarray(record[key], np.float32)
        far = np.abs(got.view(np.int32).astype(np.int64) - want.view(np.int32)).max()
        assert far <= MAX_ULPS, (key, got, want)
        if tries == n:  # the shortcut: p * num_sampled, exactly
            np.testing.assert_array_equal(got, want)


UNIQUE_SPECS = [(r, n) for r in FACTS["probabilities"] for n in (2, 5)
                if np.count_nonzero(r["p"]) >= n]


@pytest.mark.parametrize(("record", "n"), UNIQUE_SPECS, ids=lambda v: _spec_id(v)
                         if isinstance(v, dict) else f"n{v}")
def test_sampling_unique_draws_are_distinct_and_counted_by_tfs_formula(
        record: dict, n: int, tmp_path: pathlib.Path) -> None:
    p, range_max = np.asarray(record["p"], np.float32), record["attrs"]["range_max"]
    drawable = np.flatnonzero(p > 0)
    rng = np.random.default_rng(5)
    learned = "Unigram" in record["op"] and "Fixed" not in record["op"]
    with _Sampler(record, 2, n, True, (7, 11), tmp_path) as run:
        for _ in range(1 if learned else 10):  # a learned sampler's P changes after a run
            true = rng.choice(drawable, size=(3, 2))
            sampled, true_counts, sampled_counts = run(true)
            assert len(set(sampled.tolist())) == n
            assert np.isin(sampled, drawable).all() and sampled.max() < range_max
            counts = np.concatenate([true_counts.reshape(-1), sampled_counts])
            ids = np.concatenate([true.reshape(-1), sampled])
            assert _fitting_tries(p[ids], counts, n), (ids, counts)


def test_sampling_num_tries_counts_the_rejected_draws() -> None:
    """Uniform over 10, 8 distinct: the draws TF's counts imply average the coupon
    collector's sum(10 / (10 - i), i < 8) = 15.29, and often exceed 8 (rejections)."""
    spec = {"op": "UniformCandidateSampler", "attrs": {"range_max": 10}}
    p = _tf_p(spec)
    tries = []
    with _Sampler(spec, 1, 8, True, (13, 17)) as run:
        for _ in range(100):
            sampled, true_counts, sampled_counts = run([[0], [9]])
            counts = np.concatenate([true_counts.reshape(-1), sampled_counts])
            fits = _fitting_tries(p[np.r_[0, 9, sampled]], counts, 8)
            assert len(fits) == 1, counts
            tries.append(fits[0])
    assert abs(np.mean(tries) - 15.29) < 1.5 and max(tries) > 8


def test_sampling_num_sampled_equal_to_range_is_a_permutation() -> None:
    spec = {"op": "LogUniformCandidateSampler", "attrs": {"range_max": 20}}
    with _Sampler(spec, 1, 20, True, (5, 6)) as run:
        sampled, _, _ = run([[3]])
    np.testing.assert_array_equal(np.sort(sampled), np.arange(20))


def test_sampling_unique_needs_enough_candidates_of_nonzero_probability() -> None:
    # TF would loop forever (reserved ids are never drawn); gpugraph raises.
    spec = {"op": "FixedUnigramCandidateSampler",
            "attrs": {"range_max": 6, "unigrams": [1.0, 2.0, 3.0, 4.0], "num_reserved_ids": 2}}
    with _Sampler(spec, 1, 5, True, (1, 1)) as run:
        with pytest.raises(errors.InvalidArgumentError, match="only 4 of the 6 have a nonzero"):
            run([[3]])
    with _Sampler(spec, 1, 4, True, (1, 1)) as run:  # all four: a permutation of ids 2..5
        np.testing.assert_array_equal(np.sort(run([[3]])[0]), [2, 3, 4, 5])


# --- the distribution --------------------------------------------------------------------------
@pytest.mark.parametrize("record", FACTS["probabilities"], ids=_spec_id)
def test_sampling_draws_follow_tfs_probabilities(record: dict, tmp_path: pathlib.Path) -> None:
    """Pearson's chi-square of 20000 draws against TF's P(k): under a bound 8 standard
    deviations above its mean (seeded: the same draws every time)."""
    p = np.asarray(record["p"], np.float64)
    with _Sampler(record, 1, 20000, False, (19, 23), tmp_path) as run:
        sampled, _, _ = run([[int(np.argmax(p))]])
    counts = np.bincount(sampled, minlength=len(p)).astype(np.float64)
    assert counts[p == 0].sum() == 0  # reserved ids, other shards: never drawn
    keep = p > 0
    expected = p[keep] / p[keep].sum() * len(sampled)
    statistic = ((counts[keep] - expected) ** 2 / expected).sum()
    dof = keep.sum() - 1
    assert statistic < dof + 8 * np.sqrt(2 * max(dof, 1)) + 10, statistic


def test_sampling_log_uniform_mean_is_its_distributions() -> None:
    range_max = 1000
    k = np.arange(range_max)
    mean = (k * np.log((k + 2.0) / (k + 1.0))).sum() / np.log1p(range_max)
    spec = {"op": "LogUniformCandidateSampler", "attrs": {"range_max": range_max}}
    with _Sampler(spec, 1, 50000, False, (29, 31)) as run:
        sampled, _, _ = run([[0]])
    assert abs(sampled.mean() - mean) < 0.03 * mean


# --- seeds ---------------------------------------------------------------------------------------
def _draws(seed: tuple[int, int], runs: int = 2, op: str = "UniformCandidateSampler"):
    spec = {"op": op, "attrs": {"range_max": 1000}}
    with _Sampler(spec, 1, 20, False, seed) as run:
        return [run([[1]])[0] for _ in range(runs)]


@pytest.mark.parametrize("op", ["UniformCandidateSampler", "LogUniformCandidateSampler",
                                "LearnedUnigramCandidateSampler"])
def test_sampling_seeds_repeat_per_session_and_advance_per_run(op: str) -> None:
    first, again = _draws((3, 4), op=op), _draws((3, 4), op=op)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], _draws((3, 5), op=op)[0])


def test_sampling_unseeded_samplers_differ_from_session_to_session() -> None:
    assert not np.array_equal(_draws((0, 0), 1)[0], _draws((0, 0), 1)[0])


def test_sampling_two_nodes_draw_from_their_own_streams() -> None:
    with gg.Graph().as_default():
        true = gg.constant(np.array([[1]], np.int64))
        a, b = (_op("UniformCandidateSampler", true, num_true=1, num_sampled=20, unique=False,
                    range_max=1000, seed=3, seed2=s).outputs[0] for s in (4, 5))
        with gg.Session() as sess:
            first_a, first_b = sess.run([a, b])
            second_a = sess.run(a)  # running b did not advance a's stream, nor the reverse
    np.testing.assert_array_equal(first_a, _draws((3, 4), 1)[0])
    assert not np.array_equal(first_a, first_b) and not np.array_equal(first_a, second_a)


# --- learned unigram samplers: the counts learn the true classes --------------------------------
@pytest.mark.parametrize("record", FACTS["learned_runs"], ids=lambda r: r["op"])
def test_sampling_learned_counts_follow_tfs_run_after_run(record: dict) -> None:
    true, n = record["true_classes"], record["num_sampled"]
    fetches = [(1,), (0, 1, 2), (1, 2), (0, 1)]  # a new plan per fetch list, one sampler
    with _Sampler(record, 2, n, False, (23, 29)) as run:
        for want, fetch in zip(record["counts_per_run"], fetches, strict=True):
            got = run(true, fetch)[fetch.index(1)]
            np.testing.assert_array_equal(got.reshape(-1), np.asarray(want, np.float32))
    with _Sampler(record, 2, n, False, (23, 29)) as fresh:  # a new session starts over
        np.testing.assert_array_equal(fresh(true, (1,))[0].reshape(-1),
                                      np.asarray(record["counts_per_run"][0], np.float32))


def test_sampling_learned_sampler_draws_its_true_classes_more_often() -> None:
    spec = {"op": "ThreadUnsafeUnigramCandidateSampler", "attrs": {"range_max": 10}}
    with _Sampler(spec, 1, 1, False, (2, 3)) as run:
        for _ in range(90):
            run([[7]] * 10)  # count(7) = 1 + 900, every other class 1: P(7) = 901 / 909
        many = np.concatenate([run([[7]])[0] for _ in range(200)])
    assert (many == 7).mean() > 0.95


def test_sampling_learned_sampler_rejects_true_classes_out_of_range() -> None:
    spec = {"op": "LearnedUnigramCandidateSampler", "attrs": {"range_max": 4}}
    with _Sampler(spec, 1, 2, False) as run, pytest.raises(
            errors.InvalidArgumentError, match=r"out of range \[0, 4\), received 4"):
        run([[4]])


# --- vocabulary files ---------------------------------------------------------------------------
@pytest.mark.parametrize("record", FACTS["vocab_errors"], ids=lambda r: repr(r["attrs"]["vocab"]))
def test_sampling_vocab_file_errors_are_tfs(record: dict, tmp_path: pathlib.Path) -> None:
    with _Sampler(record, 1, 1, False, tmp=tmp_path) as run:
        with pytest.raises(getattr(errors, record["error"])) as e:
            run([[0]])
    assert str(e.value) == record["message"].replace("<path>", str(tmp_path / "vocab.txt"))


def test_sampling_missing_vocab_file_names_the_node(tmp_path: pathlib.Path) -> None:
    with gg.Graph().as_default():
        true = gg.constant(np.array([[0]], np.int64))
        node = _op("FixedUnigramCandidateSampler", true, num_true=1, num_sampled=1,
                   unique=False, range_max=2, vocab_file=str(tmp_path / "absent.txt"))
        with gg.Session() as sess, pytest.raises(errors.NotFoundError) as e:
            sess.run(node.outputs[0])
    assert str(e.value) == f"{tmp_path / 'absent.txt'}; No such file or directory"
    assert e.value.op is node


# --- ComputeAccidentalHits with a sampler, and placement ------------------------------------
def _reference_hits(true: np.ndarray, sampled: np.ndarray):
    position = {int(s): i for i, s in enumerate(sampled)}  # the last position wins
    hits = [(row, position[int(c)]) for row, classes in enumerate(true) for c in classes
            if int(c) in position]
    return (np.array([h[0] for h in hits], np.int32), np.array([h[1] for h in hits], np.int64))


def test_sampling_accidental_hits_of_sampled_candidates_on_a_virtual_gpu() -> None:
    """remove_accidental_hits' graph: sampler -> ComputeAccidentalHits, with device ops on
    both sides.  The samplers and ComputeAccidentalHits run on the CPU (host-only, as TF's),
    the numpy-backed virtual GPU catches any missing transfer."""
    rng = np.random.default_rng(9)
    with gg.Graph().as_default():
        true = gg.placeholder(gg.dtypes.int64, [None, 3], name="true")
        on_gpu = _op("Identity", true, T=gg.dtypes.int64).outputs[0]
        sampler = _op("LogUniformCandidateSampler", on_gpu, num_true=3, num_sampled=6,
                      unique=False, range_max=12, seed=4, seed2=8)
        hits = _op("ComputeAccidentalHits", on_gpu, sampler.outputs[0], num_true=3)
        doubled = _op("Mul", sampler.outputs[1], gg.constant(np.float32(2)),
                      T=gg.dtypes.float32).outputs[0]
        with gg.Session(config={"virtual_gpus": 1}) as sess:
            where = sess.placement_report().assignments
            assert where[sampler.name].device.endswith("CPU:0")
            assert where[hits.name].device.endswith("CPU:0")
            assert where["Identity"].device.endswith("GPU:0")
            for _ in range(20):
                classes = rng.integers(0, 12, size=(5, 3))
                sampled, counts, twice, indices, ids, weights = sess.run(
                    [*sampler.outputs[:2], doubled, *hits.outputs], {true: classes})
                want_indices, want_ids = _reference_hits(classes, sampled)
                np.testing.assert_array_equal(indices, want_indices)
                np.testing.assert_array_equal(ids, want_ids)
                assert indices.dtype == np.int32 and ids.dtype == np.int64
                np.testing.assert_array_equal(weights, np.full(len(ids), -3.4028235e38,
                                                               np.float32))
                np.testing.assert_array_equal(twice, counts * 2)


def test_sampling_all_candidate_sampler_ignores_its_seed() -> None:
    for seed in ((0, 0), (1, 2)):
        with gg.Graph().as_default():
            node = _op("AllCandidateSampler", gg.constant(np.array([[0, 3]], np.int64)),
                       num_true=2, num_sampled=4, unique=True, seed=seed[0], seed2=seed[1])
            with gg.Session() as sess:
                sampled, true_counts, sampled_counts = sess.run(list(node.outputs))
        np.testing.assert_array_equal(sampled, np.arange(4))
        np.testing.assert_array_equal(true_counts, np.ones((1, 2), np.float32))
        np.testing.assert_array_equal(sampled_counts, np.ones(4, np.float32))
