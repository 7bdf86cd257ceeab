"""Generate TF's HistogramSummary bytes and StringFormat texts (tests/fixtures/summaries/).

Run with the TF virtualenv (scripts/fixtures_requirements.txt)::

    /work/tfenv/bin/python scripts/make_summary_fixtures.py

``histogram.npz``: ``in/<case>``: the values; ``out/<case>``: the bytes of TF's
``HistogramSummary(tag="h/<case>", values=in/<case>)`` as uint8.

``format.json`` + ``format.npz``: per case the template ("{}" placeholders), ``summarize``, the
input arrays (``<case>/<j>`` in the npz) and the text TF's ``tf.strings.format`` made of them
(the StringFormat op that ``tf.print`` also uses).

The test (tests/runtime/test_summaries.py) expects gpugraph's bytes and texts to be identical.
"""

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "summaries"


def cases():
    rng = np.random.default_rng(0)
    return {
        "normal": rng.standard_normal(50).astype(np.float32),
        "ints": np.array([0, 0, 1, 5, -3], np.int32),
        "empty": np.zeros(0, np.float32),
        "zeros": np.zeros(4, np.float64),
        "tiny_and_huge": np.array([1e-13, -1e-13, 2.5e10, -3e25], np.float64),
        "matrix": rng.uniform(-2, 2, (4, 6)).astype(np.float32),
    }


def format_cases():
    return [
        ("x = {}", [np.arange(5, dtype=np.int32)], 3),
        ("{} and {}", [np.arange(10, dtype=np.int64), np.float32(2.5)], 3),
        ("m: {}", [np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 3], 2),
        ("s={}", [np.array([b"ab", b'c"d', b"e\nf"], dtype=object)], 3),
        ("all {}", [np.arange(7, dtype=np.float64) * 1.5], -1),
        ("b {}", [np.array([[True, False], [False, True]])], 3),
        ("e {}", [np.zeros((0, 3), np.float32)], 3),
        ("big {} end", [np.arange(200, dtype=np.float32).reshape(10, 20) / 7], 2),
    ]


def write_format_cases():
    records, arrays = [], {}
    for i, (template, inputs, summarize) in enumerate(format_cases()):
        text = tf.strings.format(template, [tf.constant(v) for v in inputs],
                                 summarize=summarize)
        with tf.compat.v1.Session() as sess:
            records.append({"case": f"f{i}", "template": template, "summarize": summarize,
                            "inputs": len(inputs), "text": sess.run(text).decode()})
        for j, value in enumerate(inputs):
            arrays[f"f{i}/{j}"] = value.astype("S") if value.dtype == object else value
    (OUT / "format.json").write_text(json.dumps(records, indent=1) + "\n")
    np.savez(OUT / "format.npz", **arrays)


def main():
    tf.compat.v1.disable_eager_execution()
    values = cases()
    arrays = {}
    with tf.compat.v1.Session() as sess:
        for name, value in values.items():
            summary = tf.raw_ops.HistogramSummary(tag="h/" + name, values=tf.constant(value))
            arrays["in/" + name] = value
            arrays["out/" + name] = np.frombuffer(sess.run(summary), np.uint8)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(OUT / "histogram.npz", **arrays)
    write_format_cases()
    print("wrote", sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
