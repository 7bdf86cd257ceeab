"""Dumps TensorFlow's op registry into gpugraph/framework/tf_op_defs.binpb.

Usage (in a virtualenv with tensorflow-cpu, see scripts/fixtures_requirements.txt):
    python scripts/dump_op_defs.py

gpugraph knows every op TF knows from this file: the number and dtypes of each op's outputs,
attr defaults (TF fills them in on import and writes them on export), and which op types exist
(an op type TF has never heard of is rejected at import, as TF does).  The OpDefs are stored
exactly as ``op_def_registry.get`` returns them, which is what TF writes into a ``.meta``'s
``stripped_op_list``, so exports match TF's byte for byte.
"""

from __future__ import annotations

import pathlib

OUT = pathlib.Path(__file__).resolve().parent.parent / "gpugraph" / "framework" / "tf_op_defs.binpb"


def main() -> None:
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.framework import op_def_registry
    from tensorflow.python.framework import ops  # noqa: F401  (registers python-side ops)
    from tensorflow.python.client import pywrap_tf_session as c_api

    all_ops = op_def_pb2.OpList()
    buf = c_api.TF_GetAllOpList()
    try:
        all_ops.ParseFromString(c_api.TF_GetBuffer(buf))
    finally:
        c_api.TF_DeleteBuffer(buf)
    out = op_def_pb2.OpList()
    for name in sorted(op.name for op in all_ops.op):
        op_def = op_def_registry.get(name)
        if op_def is not None:
            out.op.add().CopyFrom(op_def)
    OUT.write_bytes(out.SerializeToString(deterministic=True))
    print(f"wrote {len(out.op)} OpDefs ({OUT.stat().st_size} bytes) to {OUT}")


if __name__ == "__main__":
    main()
