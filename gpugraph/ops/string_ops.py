"""String ops of input pipelines: StringToNumber and DecodeRaw (host memory, as TF's CPU-only
kernels).  Messages are TF's (string_to_number_op.cc, decode_raw_op.cc)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.registry import BuildContext, op


def _strings(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=object)


@op("StringToNumber", host_only=True)
def _string_to_number(ctx: BuildContext):
    # TF parses with strtof/strtod/strto(l)l semantics: leading/trailing spaces are an error for
    # integers, "inf"/"nan" parse as floats; anything unparsed is TF's error.
    out, node = np.dtype(ctx.attr("out_type")), ctx.op

    def parse(text: bytes) -> Any:
        s = text.decode("utf-8", "replace")
        try:
            if out.kind == "f":
                return float(s)
            if s.strip() != s:
                raise ValueError(s)
            value = int(s, 10)
            info = np.iinfo(out)
            if not info.min <= value <= info.max:
                raise ValueError(s)
            return value
        except ValueError:
            raise errors.InvalidArgumentError(
                None, node, f"StringToNumberOp could not correctly convert string: {s}") from None

    def kernel(strings: Any) -> Any:
        values = _strings(strings)
        flat = [parse(v if isinstance(v, bytes) else str(v).encode()) for v in values.reshape(-1)]
        return np.asarray(flat, dtype=out).reshape(values.shape)

    return kernel


@op("DecodeRaw", host_only=True)
def _decode_raw(ctx: BuildContext):
    out, node = np.dtype(ctx.attr("out_type")), ctx.op
    little = ctx.attr_or("little_endian", True)

    def kernel(raw: Any) -> Any:
        values = _strings(raw)
        items = [v if isinstance(v, bytes) else str(v).encode() for v in values.reshape(-1)]
        width = len(items[0]) if items else 0
        if any(len(v) != width for v in items):
            raise errors.InvalidArgumentError(
                None, node, "DecodeRaw requires input strings to all be the same size, but "
                f"element {next(i for i, v in enumerate(items) if len(v) != width)} has size "
                f"{len(next(v for v in items if len(v) != width))} != {width}")
        if width % out.itemsize:
            raise errors.InvalidArgumentError(
                None, node, f"Input to DecodeRaw has length {width} that is not a multiple of "
                f"{out.itemsize}, the size of {out.name}")
        kind = out.newbyteorder("<" if little else ">")
        rows = [np.frombuffer(v, dtype=kind).astype(out) for v in items]
        count = width // out.itemsize
        flat = np.stack(rows) if rows else np.zeros((0, count), out)
        return flat.reshape(*values.shape, count)

    return kernel
