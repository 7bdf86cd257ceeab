"""Generate ``tests/fixtures/v1_checkpoints/`` with real TensorFlow: V1 (tensor-slice)
checkpoints, as TF 0.12-style Savers wrote them, and what TF's own restore ops read from them.

Run in the TF virtualenv (gpugraph never imports TensorFlow)::

    /work/tfenv/bin/python scripts/make_v1_checkpoint_fixtures.py

Written files:

* ``single/model.ckpt`` (+ ``.meta``, ``checkpoint``): one V1 file from
  ``Saver(write_version=V1)`` holding a variable of every dtype a Saver writes (float16/32/64,
  int8/16/32/64, uint8/16, bool, complex64/128, string: V1 files cannot hold bfloat16), a
  scalar, an empty tensor and a partitioned variable (two slices of one tensor).
* ``sharded/model.ckpt-7-0000{0,1}-of-00002`` (+ ``.meta``, ``checkpoint``): a sharded V1 save
  over two CPU devices; the state file records the ``-?????-of-00002`` pattern.
* ``expected.npz``: every variable's value as TF restored it (``<dir>/<name>``), and the values
  of the ``restores`` cases.
* ``cases.json``: ``{"variables": {dir: {name: [dtype, shape]}}, "restores": [...]}`` where each
  restore case runs one op TF 2.21 still has for V1 files (``RestoreSlice``, ``Restore``, and
  ``RestoreV2``, which reads V1 files when no ``.index`` exists) with its inputs and attrs, and
  records TF's output (``expected.npz`` key ``restore/<i>``, ``restore/<i>/<k>`` for
  RestoreV2's outputs) or TF's error class and message (the fixture directory as ``<dir>``).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1
v1.disable_eager_execution()
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "v1_checkpoints"
RNG = np.random.default_rng(12)

VALUES = {
    "f32": np.float32(RNG.standard_normal((3, 4))),
    "f64": RNG.standard_normal(5),
    "f16": RNG.standard_normal((2, 3)).astype(np.float16),
    "i8": np.int8([-128, 0, 127]),
    "i16": np.int16([[-300, 2], [3, 30000]]),
    "i32": np.int32([7, -8, 9]),
    "i64": np.int64([2**40, -5]),
    "u8": np.uint8([0, 200, 255]),
    "u16": np.uint16([1, 65535]),
    "flag": np.array([True, False, True]),
    "c64": (RNG.standard_normal(3) + 1j * RNG.standard_normal(3)).astype(np.complex64),
    "c128": RNG.standard_normal(2) + 1j * RNG.standard_normal(2),
    "step": np.int64(41),
    "empty": np.zeros((0, 3), np.float32),
    "words": np.array([b"alpha", b"", b"\xff\x00bytes"], dtype=object),
}


def session_config(cpus=1):
    return v1.ConfigProto(device_count={"CPU": cpus}, intra_op_parallelism_threads=1,
                          inter_op_parallelism_threads=1)


def build_single(directory):
    graph = tf.Graph()
    with graph.as_default():
        [v1.Variable(value, name=name) for name, value in VALUES.items()]
        part = v1.get_variable("part", shape=[6, 2], dtype=tf.float32,
                               partitioner=v1.fixed_size_partitioner(2),
                               initializer=v1.random_normal_initializer(seed=3))
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1)
        with v1.Session(graph=graph, config=session_config()) as sess:
            sess.run(v1.global_variables_initializer())
            os.chdir(directory)  # (the state file then records a relative path)
            path = str(directory / saver.save(sess, "model.ckpt"))
            values = sess.run({v.op.name: v for v in v1.global_variables()})
            values["part"] = sess.run(tf.concat(list(part), 0))
    return path, values


def build_sharded(directory):
    graph = tf.Graph()
    with graph.as_default():
        with tf.device("/cpu:0"):
            a = v1.Variable(np.float32(RNG.standard_normal((2, 2))), name="a")
        with tf.device("/cpu:1"):
            b = v1.Variable(np.int32([1, 2, 3]), name="b")
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1, sharded=True)
        with v1.Session(graph=graph, config=session_config(2)) as sess:
            sess.run(v1.global_variables_initializer())
            os.chdir(directory)
            path = str(directory / saver.save(sess, "model.ckpt", global_step=7))
            values = sess.run({"a": a, "b": b})
    return path, values


def restore_cases(single, sharded):
    """(op, inputs, attrs) for the restore ops: values and errors."""
    f32 = tf.float32
    return [
        ("RestoreSlice", {"file_pattern": single, "tensor_name": "f32", "shape_and_slice": ""},
         {"dt": f32}),
        ("RestoreSlice", {"file_pattern": single, "tensor_name": "f32",
                          "shape_and_slice": "3 4 1,2:-"}, {"dt": f32}),
        ("RestoreSlice", {"file_pattern": single, "tensor_name": "part",
                          "shape_and_slice": "6 2 2,3:0,1"}, {"dt": f32}),
        ("RestoreSlice", {"file_pattern": single, "tensor_name": "words", "shape_and_slice": ""},
         {"dt": tf.string}),
        ("Restore", {"file_pattern": single, "tensor_name": "i64"}, {"dt": tf.int64}),
        ("Restore", {"file_pattern": single, "tensor_name": "part"}, {"dt": f32}),
        ("Restore", {"file_pattern": sharded, "tensor_name": "b"}, {"dt": tf.int32}),
        ("RestoreV2", {"prefix": single, "tensor_names": ["f16", "step", "c128"],
                       "shape_and_slices": ["", "", ""]},
         {"dtypes": [tf.float16, tf.int64, tf.complex128]}),
        ("RestoreV2", {"prefix": sharded, "tensor_names": ["a"], "shape_and_slices": [""]},
         {"dtypes": [f32]}),
        # errors
        ("Restore", {"file_pattern": single, "tensor_name": "nope"}, {"dt": f32}),
        ("Restore", {"file_pattern": single, "tensor_name": "i32"}, {"dt": f32}),
        ("Restore", {"file_pattern": single + "-missing", "tensor_name": "f32"}, {"dt": f32}),
        ("RestoreSlice", {"file_pattern": single, "tensor_name": "f32",
                          "shape_and_slice": "4 4 0,2:-"}, {"dt": f32}),
    ]


def error_message(exc):
    """TF's message without the 'Graph execution error' trace and node tags (as in
    make_op_fixtures.py)."""
    lines = exc.message.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("Node: '"):
            lines = lines[i + 1:]
            break
    return "\n".join(lines).split("\n\t [[")[0].strip()


def run_restores(cases, arrays):
    records = []
    for i, (op, inputs, attrs) in enumerate(cases):
        graph = tf.Graph()
        with graph.as_default():
            out = getattr(tf.raw_ops, op)(**inputs, **attrs)
            with v1.Session(graph=graph, config=session_config()) as sess:
                record = {"op": op, "inputs": inputs,
                          "attrs": {k: ([t.name for t in v] if isinstance(v, list) else v.name)
                                    for k, v in attrs.items()}}
                try:
                    value = sess.run(out)
                    if op == "RestoreV2":
                        for k, part in enumerate(value):
                            arrays[f"restore/{i}/{k}"] = np.asarray(part)
                    else:
                        arrays[f"restore/{i}"] = np.asarray(value)
                    record["check"] = "values"
                except tf.errors.OpError as e:
                    record["check"] = "error"
                    record["error"] = type(e).__name__
                    record["message"] = error_message(e).replace(str(OUT), "<dir>")
        records.append(record)
    return records


def relative(records, root):
    # Paths in the JSON are relative to the fixture directory (the test joins them back).
    for record in records:
        for key in ("file_pattern", "prefix"):
            if key in record["inputs"]:
                record["inputs"][key] = os.path.relpath(record["inputs"][key], root)
    return records


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "single").mkdir(parents=True)
    (OUT / "sharded").mkdir(parents=True)
    single, single_values = build_single(OUT / "single")
    sharded, sharded_values = build_sharded(OUT / "sharded")
    assert not list(OUT.glob("**/*.index")), "a V2 file was written"
    arrays = {f"single/{k}": np.asarray(v) for k, v in single_values.items()}
    arrays.update({f"sharded/{k}": np.asarray(v) for k, v in sharded_values.items()})
    records = run_restores(restore_cases(single, sharded), arrays)
    manifest = {
        "single": os.path.relpath(single, OUT), "sharded": os.path.relpath(sharded, OUT),
        "variables": {d: {k: [str(np.asarray(v).dtype), list(np.asarray(v).shape)]
                          for k, v in vals.items()}
                      for d, vals in (("single", single_values), ("sharded", sharded_values))},
        "restores": relative(records, OUT),
    }
    np.savez(OUT / "expected.npz", **arrays)
    (OUT / "cases.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(OUT)}  {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
