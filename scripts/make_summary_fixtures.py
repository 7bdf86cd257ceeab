"""Generate TF's HistogramSummary bytes and StringFormat texts (tests/fixtures/summaries/).

Run with the TF virtualenv (scripts/fixtures_requirements.txt)::

    /work/tfenv/bin/python scripts/make_summary_fixtures.py

``histogram.npz``: ``in/<case>``: the values; ``out/<case>``: the bytes of TF's
``HistogramSummary(tag="h/<case>", values=in/<case>)`` as uint8.

``format.json`` + ``format.npz``: per case the template ("{}" placeholders), ``summarize``, the
input arrays (``<case>/<j>`` in the npz) and the text TF's ``tf.strings.format`` made of them
(the StringFormat op that ``tf.print`` also uses).

``tensor.npz``: TensorSummary and TensorSummaryV2 bytes (see write_tensor_cases).

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


def tensor_cases():
    meta = tf.compat.v1.SummaryMetadata(display_name="shown", summary_description="about")
    meta.plugin_data.plugin_name = "text"
    return {
        "floats": (np.arange(6, dtype=np.float32).reshape(2, 3) / 7, b""),
        "scalar_int": (np.array(-3, np.int64), b""),
        "strings": (np.array([b"a", b"", b"long\x00text"], dtype=object),
                    meta.SerializeToString()),
        "empty": (np.zeros((0, 2), np.float64), meta.SerializeToString()),
        "bools": (np.array([True, False]), b""),
    }


def write_tensor_cases():
    """``tensor.npz``: ``in/<case>`` (strings as bytes ``S``), ``meta/<case>`` (serialized
    SummaryMetadata, uint8), and the bytes TF's TensorSummary (node ``t1/<case>``) and
    TensorSummaryV2 (tag ``t2/<case>``) made of them (``v1/<case>``, ``v2/<case>``, uint8)."""
    arrays = {}
    with tf.compat.v1.Session() as sess:
        for name, (value, meta) in tensor_cases().items():
            tensor = tf.constant(value)
            v1 = tf.raw_ops.TensorSummary(tensor=tensor, name="t1/" + name)
            v2 = tf.raw_ops.TensorSummaryV2(tag="t2/" + name, tensor=tensor,
                                            serialized_summary_metadata=meta)
            one, two = sess.run([v1, v2])
            arrays["in/" + name] = value.astype("S") if value.dtype == object else value
            arrays["meta/" + name] = np.frombuffer(meta, np.uint8)
            arrays["v1/" + name] = np.frombuffer(one, np.uint8)
            arrays["v2/" + name] = np.frombuffer(two, np.uint8)
    np.savez(OUT / "tensor.npz", **arrays)


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
    write_tensor_cases()
    print("wrote", sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
