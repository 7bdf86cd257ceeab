"""Generate the per-op fixture family ``sampling`` (the candidate samplers of
sampled softmax / NCE and ``ComputeAccidentalHits``) and TF's sampler facts,
with real TensorFlow.

gpugraph never imports TensorFlow; this script (run in the TF virtualenv)
rewrites only ``tests/fixtures/ops/sampling.pb``, ``sampling.npz``,
``sampling.json`` and ``tests/fixtures/samplers/sampler_facts.json``::

    /work/tfenv/bin/python scripts/make_sampling_fixtures.py

The family (``sampling.pb/.npz/.json``)
=======================================

Exactly the format of ``make_op_fixtures.py`` (read its docstring; the same
``Family``/``build_case``/``run_case`` code makes it): case ``i`` is the op
``c<i>/op`` fed by placeholders ``c<i>/in<j>``, and
``tests/runtime/test_ops_against_tf.py`` runs every record.  The records are

* ``ComputeAccidentalHits``: ``"check": "values"``, exact (rtol = atol = 0;
  the weights are exactly ``-FLT_MAX``).
* ``AllCandidateSampler``: ``"values"``, exact (it is deterministic).
* the random samplers, ``"check": "shape_dtype"``: dtypes and shapes of the
  three outputs (TF's values, made with fixed op seeds, are in the npz but
  come from TF's Philox stream).  No ``"range"`` key: that check would apply
  to the expected counts too; tests/runtime/test_candidate_samplers.py checks
  the ranges.
* the random samplers with ``unique=False``, ``"check": "values"`` with
  ``"skip_outputs": [0, 2]``: ``true_expected_count`` (= num_sampled *
  P(class), deterministic) must equal TF's exactly (rtol = atol = 0); the
  sampled ids and their counts are random and not stored.
* ``"check": "error"``: TF's run-time errors (placeholders of unknown rank),
  including the kernel-construction errors of FixedUnigramCandidateSampler,
  which TF also reports at the first run.

TF's sampler facts (``tests/fixtures/samplers/sampler_facts.json``)
===================================================================

What the fixtures cannot hold, for test_candidate_samplers.py (outside
``tests/fixtures/ops/``, whose every ``*.json`` is a family's records).  Every
sampler is described by ``{"op": ..., "attrs": {...}}`` (the raw op's attrs
other than num_true, num_sampled, unique, seed, seed2; a ``"vocab"`` key
instead of ``vocab_file`` holds the vocabulary file's text, which the test
writes to a file of its own).

``probabilities``: per sampler, ``"p"``: TF's float32 P(k) for every class
    k in [0, range), read off ``true_expected_count`` of a run with
    ``num_sampled=1, unique=False`` (that count is P(k) * 1, exactly).
``expected_counts``: per sampler and ``num_sampled``, TF's
    ``true_expected_count`` of every class with ``unique=False``
    (float32 ``P(k) * num_sampled``).
``unique_runs``: TF runs with ``unique=True`` (fixed seeds): the true
    classes, TF's sampled ids and both expected counts, ``num_tries``: the
    one number of draws for which ExpectedCountHelper gives TF's counts,
    and ``ulps_from_rounded_formula``: how far (in float32 steps, at most
    2) TF's counts are from that formula computed with correctly rounded
    float functions, i.e. ``P * num_sampled`` (float32) when
    ``num_tries == num_sampled``, else ``-expm1f(num_tries * log1pf(-P))``
    with each function evaluated in double and rounded to float (gpugraph's
    way; numpy's float32 log1p/expm1 are further off).  The script asserts
    that exactly one ``num_tries`` fits every run (how TF's formula, shortcut
    included, was verified), that TF's counts equal bit for bit the formula
    evaluated with this machine's C library ``log1pf``/``expm1f`` (the
    functions TF calls; glibc 2.36's ``expm1f`` is an ulp off the correctly
    rounded value at times, which is why the test allows 2 ulps), and that
    the sampled ids are distinct and in range.
``learned_runs``: Learned/ThreadUnsafe unigram samplers run several times in
    one session on the same true classes: TF's ``true_expected_count`` per
    run (the counts learn the true classes after each run).
``vocab_errors``: vocabulary texts TF rejects, with TF's error class and
    message (``<path>`` stands for the file's path).
``tf_chi_square``: Pearson's statistic of TF's own draws (unique=False)
    against ``probabilities``, with its degrees of freedom: evidence that
    P(k) is the distribution TF samples from.

Facts this script asserts about TF 2.21 (CPU)
---------------------------------------------
* LogUniform P(k) == float32(log((k + 2) / (k + 1)) / log(range + 1)) and
  Uniform P(k) == float32(1 / range), for every class.
* FixedUnigram P(k) == w_k / total in float32, w_k = u ** distortion
  computed in double and rounded to float (glibc's correctly rounded
  ``powf``; numpy's float32 power differs by an ulp at times), the total
  summed one by one in float32; reserved ids and ids of
  other shards weigh nothing, and the unigrams are numbered from the count
  of *this shard's* reserved ids (TF's ``word_id = weights_.size()``), not
  from num_reserved_ids.
* unique=False expected counts == float32(P) * float32(num_sampled).
* Empty vocabulary lines are skipped (no id), ``\\r\\n`` endings and blanks
  around the number are accepted, a line whose last field is not a number
  is rejected.

Determinism: fixed numpy seed and op seeds, single-threaded sessions, no
graph optimizations; running twice gives byte-identical files.
"""

import ctypes
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_op_fixtures as mof  # noqa: E402  (sets env, enables v2 behavior)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from make_fixtures import save_npz  # noqa: E402

RAW = tf.raw_ops
OUT = mof.OUT
NAME = "sampling"
SEED = 1207
I64 = np.int64
i64 = mof.i64

SAMPLERS = ["UniformCandidateSampler", "LogUniformCandidateSampler",
            "LearnedUnigramCandidateSampler",
            "ThreadUnsafeUnigramCandidateSampler"]
EXACT = dict(_rtol=0.0, _atol=0.0)
COUNT_ONLY = dict(_skip=[0, 2], _omit=[0, 2], **EXACT)
FACTS = mof.ROOT / "tests" / "fixtures" / "samplers" / "sampler_facts.json"
MISSING_VOCAB = "/nonexistent/gpugraph_sampling_vocab.txt"
MAX_ULPS = 2


# ---------------------------------------------------------------------------
# the family
# ---------------------------------------------------------------------------

def build_sampling(F):
    seeds = iter(range(3, 10000, 11))

    def seeded():
        return dict(seed=next(seeds), seed2=next(seeds))

    build_accidental_hits(F)
    for op in SAMPLERS:
        for unique in (False, True):
            F.add(op, "", true_classes=F.ri([4, 1], 0, 10, I64), num_true=1,
                  num_sampled=6, unique=unique, range_max=10,
                  _check="shape_dtype", **seeded())
            F.add(op, "", true_classes=F.ri([2, 3], 0, 50, I64), num_true=3,
                  num_sampled=20, unique=unique, range_max=50,
                  _check="shape_dtype", **seeded())
        F.add(op, "num_sampled == range_max, unique",
              true_classes=F.ri([3, 2], 0, 8, I64), num_true=2,
              num_sampled=8, unique=True, range_max=8, _check="shape_dtype",
              **seeded())
        F.add(op, "empty batch", true_classes=np.zeros([0, 2], I64),
              num_true=2, num_sampled=4, unique=False, range_max=10,
              _check="shape_dtype", **seeded())
    build_fixed_unigram(F, seeded)
    build_true_counts(F, seeded)
    build_all_sampler(F)
    build_errors(F, seeded)


def build_accidental_hits(F):
    op = "ComputeAccidentalHits"
    F.add(op, "a candidate sampled twice maps to its last position",
          true_classes=i64([[0, 1], [5, 99]]),
          sampled_candidates=i64([1, 2, 1, 5]), num_true=2, **EXACT)
    F.add(op, "repeated true classes hit once each, row-major order",
          true_classes=i64([[3, 3, 4], [4, 0, 9], [1, 1, 1]]),
          sampled_candidates=i64([4, 3, 9, 3, 2]), num_true=3, **EXACT)
    F.add(op, "no hits: empty outputs", true_classes=i64([[7], [8]]),
          sampled_candidates=i64([1, 2, 3]), num_true=1, **EXACT)
    F.add(op, "negative ids", true_classes=i64([[-1], [5], [-1]]),
          sampled_candidates=i64([-1, 5]), num_true=1, seed=3, seed2=4,
          **EXACT)
    F.add(op, "empty batch", true_classes=np.zeros([0, 2], I64),
          sampled_candidates=i64([1, 2]), num_true=2, **EXACT)
    F.add(op, "no sampled candidates", true_classes=i64([[1, 2]]),
          sampled_candidates=np.zeros([0], I64), num_true=2, **EXACT)
    F.add(op, "larger", true_classes=F.ri([16, 4], 0, 30, I64),
          sampled_candidates=F.ri([12], 0, 30, I64), num_true=4, **EXACT)


FIXED_ATTRS = [
    ("", dict(range_max=5, unigrams=[5.0, 1.0, 2.0, 0.5, 7.0])),
    ("distortion 0.75 (powf)",
     dict(range_max=6, unigrams=[3.0, 1.0, 4.0, 1.0, 5.0, 9.0],
          distortion=0.75)),
    ("distortion 0: uniform", dict(range_max=4, unigrams=[1.0, 2.0, 3.0, 4.0],
                                   distortion=0.0)),
    ("2 reserved ids weigh 0",
     dict(range_max=6, unigrams=[1.0, 2.0, 3.0, 4.0], num_reserved_ids=2)),
    ("shard 2 of 3: ids 2, 5, 8",
     dict(range_max=3, unigrams=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
          num_shards=3, shard=2)),
    ("3 reserved ids, shard 1 of 2: the unigrams are numbered from 1 (this "
     "shard's reserved count), not 3",
     dict(range_max=4, unigrams=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
          num_reserved_ids=3, num_shards=2, shard=1)),
]


def build_fixed_unigram(F, seeded):
    op = "FixedUnigramCandidateSampler"
    for desc, attrs in FIXED_ATTRS:
        r = attrs["range_max"]
        F.add(op, desc, true_classes=i64([[k] for k in range(r)]), num_true=1,
              num_sampled=3, unique=False, _check="shape_dtype", **attrs,
              **seeded())
        F.add(op, desc, true_classes=i64([[k] for k in range(r)]), num_true=1,
              num_sampled=7, unique=False, **attrs, **COUNT_ONLY, **seeded())
    F.add(op, "unique", true_classes=i64([[0, 4], [2, 1]]), num_true=2,
          num_sampled=3, unique=True, range_max=5,
          unigrams=[5.0, 1.0, 2.0, 0.5, 7.0], _check="shape_dtype",
          **seeded())


def build_true_counts(F, seeded):
    """unique=False: true_expected_count is deterministic (outputs 0, 2 skipped)."""
    F.add("UniformCandidateSampler", "true counts num_sampled / range",
          true_classes=i64([[0, 6], [3, 3]]), num_true=2, num_sampled=5,
          unique=False, range_max=7, **COUNT_ONLY, **seeded())
    F.add("LogUniformCandidateSampler", "true counts over the whole range",
          true_classes=i64([[0, 1, 2], [10, 100, 999], [500, 998, 7]]),
          num_true=3, num_sampled=64, unique=False, range_max=1000,
          **COUNT_ONLY, **seeded())
    F.add("LogUniformCandidateSampler", "range 1",
          true_classes=i64([[0]]), num_true=1, num_sampled=3, unique=False,
          range_max=1, **COUNT_ONLY, **seeded())
    for op in SAMPLERS[2:]:
        F.add(op, "first run: every count 1, P = 1 / range",
              true_classes=i64([[0, 1], [1, 3]]), num_true=2, num_sampled=3,
              unique=False, range_max=6, **COUNT_ONLY, **seeded())


def build_all_sampler(F):
    op = "AllCandidateSampler"
    for unique in (False, True):
        F.add(op, "ids 0..num_sampled-1, every count 1",
              true_classes=i64([[0, 4], [2, 2]]), num_true=2, num_sampled=5,
              unique=unique, **EXACT)
    F.add(op, "", true_classes=i64([[0]]), num_true=1, num_sampled=1,
          unique=False, seed=5, seed2=6, **EXACT)


def build_errors(F, seeded):
    err = dict(_error=True)
    uni = "UniformCandidateSampler"
    F.add(uni, "true_classes of rank 1", true_classes=i64([1, 2]),
          num_true=2, num_sampled=2, unique=False, range_max=10, **err)
    F.add(uni, "true_classes of rank 3", true_classes=i64([[[1, 2]]]),
          num_true=2, num_sampled=2, unique=False, range_max=10, **err)
    F.add(uni, "num_true differs from the columns",
          true_classes=i64([[1, 2]]), num_true=3, num_sampled=2,
          unique=False, range_max=10, **err)
    F.add("LogUniformCandidateSampler", "num_sampled > range_max, unique",
          true_classes=i64([[1, 2]]), num_true=2, num_sampled=20,
          unique=True, range_max=10, **err)
    F.add(uni, "true class >= range_max", true_classes=i64([[0, 99]]),
          num_true=2, num_sampled=2, unique=False, range_max=10, **err)
    F.add("LogUniformCandidateSampler", "negative true class",
          true_classes=i64([[1, -1]]), num_true=2, num_sampled=2,
          unique=False, range_max=10, **err)
    F.add("LearnedUnigramCandidateSampler", "true class == range_max",
          true_classes=i64([[10]]), num_true=1, num_sampled=2,
          unique=False, range_max=10, **err)
    F.add("AllCandidateSampler", "its range is num_sampled",
          true_classes=i64([[0, 5]]), num_true=2, num_sampled=4,
          unique=True, **err)
    fixed = "FixedUnigramCandidateSampler"
    F.add(fixed, "neither vocab_file nor unigrams",
          true_classes=i64([[1]]), num_true=1, num_sampled=2, unique=False,
          range_max=3, **err)
    F.add(fixed, "both vocab_file and unigrams", true_classes=i64([[1]]),
          num_true=1, num_sampled=2, unique=False, range_max=3,
          unigrams=[1.0, 1.0, 1.0], vocab_file=MISSING_VOCAB, **err)
    F.add(fixed, "fewer unigrams than range_max", true_classes=i64([[1]]),
          num_true=1, num_sampled=2, unique=False, range_max=3,
          unigrams=[1.0, 1.0], **err)
    F.add(fixed, "range_max counts all shards' ids", true_classes=i64([[1]]),
          num_true=1, num_sampled=2, unique=False, range_max=6,
          unigrams=[1.0] * 6, num_shards=2, shard=0, **err)
    F.add(fixed, "missing vocab_file", true_classes=i64([[1]]), num_true=1,
          num_sampled=2, unique=False, range_max=3, vocab_file=MISSING_VOCAB,
          **err)
    F.add(fixed, "true class >= range_max", true_classes=i64([[3]]),
          num_true=1, num_sampled=2, unique=False, range_max=3,
          unigrams=[1.0, 2.0, 3.0], **err)
    op = "ComputeAccidentalHits"
    F.add(op, "true_classes of rank 1", true_classes=i64([1, 2]),
          sampled_candidates=i64([1]), num_true=2, **err)
    F.add(op, "num_true differs from the columns",
          true_classes=i64([[1, 2]]), sampled_candidates=i64([1]),
          num_true=3, **err)
    F.add(op, "sampled_candidates of rank 2", true_classes=i64([[1, 2]]),
          sampled_candidates=i64([[1]]), num_true=2, **err)


def generate_family():
    fam = mof.Family(NAME, SEED)
    build_sampling(fam)
    graph = tf.Graph()
    builts = [mof.build_case(graph, case, i) for i, case in enumerate(fam.cases)]
    arrays, records = {}, []
    with tf.compat.v1.Session(graph=graph, config=mof.session_config()) as sess:
        for built in builts:
            records.append(mof.run_case(sess, built, arrays))
    graph_def = graph.as_graph_def()
    for node in graph_def.node:  # nothing but placeholders and the ops
        leaf = node.name.split("/", 1)[1]
        assert (node.op == "Placeholder" and leaf.startswith("in")
                or leaf == "op"), node.name
    (OUT / (NAME + ".pb")).write_bytes(
        graph_def.SerializeToString(deterministic=True))
    save_npz(OUT / (NAME + ".npz"), arrays)
    (OUT / (NAME + ".json")).write_text(mof.json_dump(records))
    ops = sorted({r["op"] for r in records})
    errors = sum(r["check"] == "error" for r in records)
    print("%-8s %4d cases (%d error), %d ops: %s" %
          (NAME, len(records), errors, len(ops), " ".join(ops)))


# ---------------------------------------------------------------------------
# TF's sampler facts
# ---------------------------------------------------------------------------

VOCAB = "w0,4\nw1,1\n\nw2,x,2.5\r\nw3, 8 \nw4,0.5\n"  # an empty line, CRLF, blanks
VOCAB_WEIGHTS = [4.0, 1.0, 2.5, 8.0, 0.5]  # what TF must read from it
SPECS = [
    {"op": "UniformCandidateSampler", "attrs": {"range_max": 10}},
    {"op": "UniformCandidateSampler", "attrs": {"range_max": 1000}},
    {"op": "LogUniformCandidateSampler", "attrs": {"range_max": 20}},
    {"op": "LogUniformCandidateSampler", "attrs": {"range_max": 1000}},
    {"op": "LearnedUnigramCandidateSampler", "attrs": {"range_max": 10}},
    {"op": "ThreadUnsafeUnigramCandidateSampler", "attrs": {"range_max": 10}},
] + [{"op": "FixedUnigramCandidateSampler", "attrs": attrs}
     for _, attrs in FIXED_ATTRS] + [
    {"op": "FixedUnigramCandidateSampler",
     "attrs": {"range_max": 8, "distortion": 0.5, "num_reserved_ids": 1,
               "unigrams": [float(u) for u in range(1, 8)]}},
    {"op": "FixedUnigramCandidateSampler",
     "attrs": {"range_max": 5, "vocab": VOCAB}},
    {"op": "FixedUnigramCandidateSampler",
     "attrs": {"range_max": 2, "vocab": VOCAB, "num_reserved_ids": 1,
               "num_shards": 3, "shard": 1, "distortion": 0.75}},
]


class Runner:
    """Runs one sampler op, built once, in its own session (fresh state)."""

    def __init__(self, spec, num_true, num_sampled, unique, seed=(0, 0),
                 vocab_dir=None):
        attrs = dict(spec["attrs"])
        if "vocab" in attrs:
            path = Path(vocab_dir) / "vocab.txt"
            path.write_text(attrs.pop("vocab"), newline="")
            attrs["vocab_file"] = str(path)
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.true = tf.compat.v1.placeholder(tf.int64, [None, num_true])
            self.outs = getattr(RAW, spec["op"])(
                true_classes=self.true, num_true=num_true,
                num_sampled=num_sampled, unique=unique, seed=seed[0],
                seed2=seed[1], **attrs)
        self.sess = tf.compat.v1.Session(graph=self.graph,
                                         config=mof.session_config())

    def __call__(self, true):
        return [np.asarray(v) for v in
                self.sess.run(list(self.outs), {self.true: true})]


def probabilities(spec, vocab_dir):
    r = spec["attrs"]["range_max"]
    every = np.arange(r, dtype=I64).reshape(-1, 1)
    _, p, _ = Runner(spec, 1, 1, False, vocab_dir=vocab_dir)(every)
    return p.reshape(-1)


def helper(p, num_sampled, num_tries):
    """ExpectedCountHelper (range_sampler.cc) in float32: float p times int,
    or -expm1f(num_tries * log1pf(-p)), with the correctly rounded float
    functions (glibc's) as the double function rounded to float."""
    p = np.asarray(p, np.float32)
    if num_tries == num_sampled:
        return p * np.float32(num_sampled)
    log = np.log1p(-p.astype(np.float64)).astype(np.float32)
    x = (np.float32(num_tries) * log).astype(np.float64)
    return (-np.expm1(x)).astype(np.float32)


def ulps(a, b):
    """How many float32 steps apart a and b are (both finite, same sign)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return int(np.abs(a.view(np.int32).astype(np.int64)
                      - b.view(np.int32).astype(np.int64)).max(initial=0))


def tries_matching(p_true, p_sampled, want_true, want_sampled, n, limit):
    """Every num_tries in [n, limit) for which the helper gives TF's counts
    within MAX_ULPS (TF's log1pf/expm1f are the C library's, glibc 2.36's
    expm1f is not correctly rounded everywhere), with the largest distance."""
    found = []
    for t in range(n, limit):
        far = max(ulps(helper(p_true, n, t), want_true),
                  ulps(helper(p_sampled, n, t), want_sampled))
        if far <= MAX_ULPS:
            found.append((t, far))
    return found


def libm_helper(p, num_sampled, num_tries):
    """ExpectedCountHelper with this machine's C library log1pf/expm1f (the
    functions TF calls), or None where there is no libm.so.6."""
    try:
        libm = ctypes.CDLL("libm.so.6")
    except OSError:
        return None
    for name in ("log1pf", "expm1f"):
        getattr(libm, name).restype = ctypes.c_float
        getattr(libm, name).argtypes = [ctypes.c_float]
    p = np.asarray(p, np.float32)
    if num_tries == num_sampled:
        return p * np.float32(num_sampled)
    out = [-libm.expm1f(float(np.float32(num_tries)
                              * np.float32(libm.log1pf(float(-v)))))
           for v in p.reshape(-1)]
    return np.asarray(out, np.float32).reshape(p.shape)


def check_formulas(spec, p):
    """Assert the documented closed forms of P(k) against TF's."""
    attrs, r = spec["attrs"], spec["attrs"]["range_max"]
    k = np.arange(r, dtype=np.float64)
    if spec["op"] == "LogUniformCandidateSampler":
        want = (np.log((k + 2.0) / (k + 1.0)) / np.log1p(r)).astype(np.float32)
    elif spec["op"] == "UniformCandidateSampler" or "Unigram" in spec["op"] \
            and "Fixed" not in spec["op"]:
        want = np.full(r, np.float32(1.0 / r))
    elif "unigrams" in attrs:
        want = fixed_probabilities(attrs)
    else:
        want = fixed_probabilities(dict(attrs, unigrams=VOCAB_WEIGHTS))
    assert np.array_equal(p, want), (spec, p, want)


def fixed_probabilities(attrs):
    shards, shard = attrs.get("num_shards", 1), attrs.get("shard", 0)
    d = float(np.float32(attrs.get("distortion", 1.0)))
    w = [np.float32(0)] * sum(i % shards == shard
                              for i in range(attrs.get("num_reserved_ids", 0)))
    for word_id, u in enumerate(attrs["unigrams"], start=len(w)):
        if word_id % shards == shard:
            w.append(np.float32(float(np.float32(u)) ** d))
    w = np.asarray(w, np.float32)
    total = np.cumsum(w, dtype=np.float32)[-1]
    return (w / total).astype(np.float32)


def chi_square(ids, p):
    counts = np.bincount(ids, minlength=len(p)).astype(np.float64)
    keep = p > 0
    assert counts[~keep].sum() == 0  # nothing drawn where P is 0
    expected = p[keep].astype(np.float64) / p[keep].sum() * len(ids)
    return float(((counts[keep] - expected) ** 2 / expected).sum()), \
        int(keep.sum()) - 1


def facts():
    rng = np.random.RandomState(SEED + 1)
    out = {"probabilities": [], "expected_counts": [], "unique_runs": [],
           "learned_runs": [], "vocab_errors": [], "tf_chi_square": []}
    with tempfile.TemporaryDirectory() as vocab_dir:
        tables = []
        for spec in SPECS:
            p = probabilities(spec, vocab_dir)
            check_formulas(spec, p)
            tables.append(p)
            out["probabilities"].append(dict(spec, p=floats(p)))
        for spec, p in zip(SPECS, tables, strict=True):
            r = spec["attrs"]["range_max"]
            every = np.arange(r, dtype=I64).reshape(-1, 1)
            for n in (3, 64):
                _, counts, _ = Runner(spec, 1, n, False, (7, n),
                                      vocab_dir)(every)
                counts = counts.reshape(-1)
                assert np.array_equal(counts, p * np.float32(n)), spec
                out["expected_counts"].append(
                    dict(spec, num_sampled=n, counts=floats(counts)))
            sample = Runner(spec, 1, 20000, False, (11, 13), vocab_dir)
            stat, dof = chi_square(sample(every[:1])[0], p)
            assert dof == 0 or stat < dof + 8 * np.sqrt(2 * dof) + 10, \
                (spec, stat)
            out["tf_chi_square"].append(dict(spec, statistic=round(stat, 3),
                                             dof=dof))
        out["unique_runs"] = unique_runs(rng, tables, vocab_dir)
        out["learned_runs"] = learned_runs()
        out["vocab_errors"] = vocab_errors(vocab_dir)
    return out


# (index in SPECS, num_sampled, num_true) of TF's unique=True runs; the last
# is the distortion 0.5 sampler with a reserved id (P = 0 there).
UNIQUE = [(0, 8, 2), (1, 2, 2), (2, 12, 3), (3, 40, 2), (4, 6, 2),
          (len(SPECS) - 3, 4, 2)]


def unique_runs(rng, tables, vocab_dir):
    """TF's unique=True runs, with the num_tries that fits each."""
    runs = []
    for index, n, num_true in UNIQUE:
        spec, p = SPECS[index], tables[index]
        r = spec["attrs"]["range_max"]
        runner = Runner(spec, num_true, n, True, (17, index), vocab_dir)
        for _ in range(4):
            true = rng.randint(0, r, size=[3, num_true]).astype(I64)
            if "Fixed" in spec["op"]:  # classes TF could sample
                true = rng.choice(np.flatnonzero(p > 0), [3, num_true])
            sampled, t_count, s_count = runner(true)
            assert len(set(sampled.tolist())) == n
            assert sampled.min() >= 0 and sampled.max() < r
            tries = tries_matching(p[true], p[sampled], t_count, s_count, n,
                                   200 * n)
            assert len(tries) == 1, (spec, n, sampled, t_count, s_count)
            (t, far), = tries
            libm = [libm_helper(p[ids], n, t) for ids in (true, sampled)]
            if libm[0] is not None:  # TF's bits are the C library's
                assert np.array_equal(libm[0], t_count), (spec, t)
                assert np.array_equal(libm[1], s_count), (spec, t)
            runs.append(dict(spec, num_sampled=n, true_classes=true.tolist(),
                             sampled=sampled.tolist(),
                             true_expected_count=floats(t_count),
                             sampled_expected_count=floats(s_count),
                             num_tries=t, ulps_from_rounded_formula=far))
            if "Unigram" in spec["op"] and "Fixed" not in spec["op"]:
                break  # its distribution learns; later runs need its counts
    return runs


def learned_runs():
    runs = []
    true = i64([[0, 1], [1, 3], [3, 3]])
    for op in SAMPLERS[2:]:
        spec = {"op": op, "attrs": {"range_max": 5}}
        runner = Runner(spec, 2, 3, False, (23, 29))
        counts = [floats(runner(true)[1]) for _ in range(4)]
        runs.append(dict(spec, num_sampled=3, true_classes=true.tolist(),
                         counts_per_run=counts))
    return runs


def vocab_errors(vocab_dir):
    cases = [("w0,1\nw1,zz\nw2,3\n", 3), ("w0,1\n,\n", 2),
             ("1\n2\n3\n", 2), ("1\n2\n\n\n", 4)]
    found = []
    for text, r in cases:
        spec = {"op": "FixedUnigramCandidateSampler",
                "attrs": {"range_max": r, "vocab": text}}
        runner = Runner(spec, 1, 1, False, vocab_dir=vocab_dir)
        try:
            runner(i64([[0]]))
        except tf.errors.OpError as exc:
            message = mof.error_message(exc).replace(
                str(Path(vocab_dir) / "vocab.txt"), "<path>")
            found.append(dict(spec, error=type(exc).__name__,
                              message=message))
            continue
        raise AssertionError("TF accepted vocabulary %r" % text)
    return found


def facts_dump(found):
    """One record a line, keys sorted (diffable, byte-reproducible)."""
    parts = []
    for key in sorted(found):
        lines = [json.dumps(r, sort_keys=True) for r in found[key]]
        parts.append("%s: [\n%s\n]" % (json.dumps(key), ",\n".join(lines)))
    return "{\n" + ",\n".join(parts) + "\n}\n"


def floats(values):
    return [float(v) for v in np.asarray(values, np.float32).reshape(-1)]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    generate_family()
    FACTS.parent.mkdir(parents=True, exist_ok=True)
    FACTS.write_text(facts_dump(facts()))
    print("%s written" % FACTS.relative_to(mof.ROOT))


if __name__ == "__main__":
    main()
