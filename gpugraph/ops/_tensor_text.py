"""Tensors as text, as TF's Tensor::SummarizeValue writes them (tensor.cc): the v1 form that
Assert prints and the numpy-like v2 form of StringFormat (tf.print).  One element formatter
serves both; floats use TF's FloatToBuffer (the shortest %g that reads back)."""

from __future__ import annotations

from typing import Any

import numpy as np


def summarize_v1(value: Any, summarize: int) -> str:
    """At most ``summarize`` values, each row in brackets (PrintOneDim)."""
    array = np.asarray(value)
    flat = [element_text(v, array.dtype, v2=False) for v in array.reshape(-1).tolist()]
    limit = len(flat) if summarize < 0 else min(summarize, len(flat))
    if array.ndim == 0:
        text = " ".join(flat[:limit])
    else:
        parts: list[str] = []
        _print_dim(0, array.shape, limit, flat, [0], parts)
        text = "".join(parts)
    return text + ("..." if len(flat) > limit else "")


def _print_dim(dim: int, shape: tuple, limit: int, flat: list, index: list, out: list) -> None:
    # tensor.cc PrintOneDim, which this follows step for step (index[0]: values printed).
    if index[0] >= limit:
        return
    if dim == len(shape) - 1:
        for i in range(shape[dim]):
            if index[0] >= limit:
                if dim != 0:
                    out.append("...")
                return
            if i > 0:
                out.append(" ")
            out.append(flat[index[0]])
            index[0] += 1
        return
    for _ in range(shape[dim]):
        opened = index[0] < limit
        if opened:
            out.append("[")
        _print_dim(dim + 1, shape, limit, flat, index, out)
        if index[0] < limit or opened:
            out.append("]")


def summarize_v2(array: np.ndarray, summarize: int) -> str:
    """Numpy-like nested brackets, the first and last ``summarize`` entries of each dimension
    around "..." (PrintOneDimV2)."""
    if array.ndim == 0:
        return element_text(array.item(), array.dtype, v2=True)
    ends = max(array.shape) if summarize < 0 else summarize
    return _dim_v2(array, 0, array.ndim, ends, array.dtype)


def _dim_v2(array: Any, dim: int, ndim: int, ends: int, dtype: np.dtype) -> str:
    if dim == ndim:  # an element (object arrays index to the Python object itself)
        value = array.item() if isinstance(array, np.ndarray | np.generic) else array
        return element_text(value, dtype, v2=True)
    spacing = " " if dim == ndim - 1 else "\n" * (ndim - dim - 1) + " " * (dim + 1)
    count = array.shape[0]
    parts = [_dim_v2(array[i], dim + 1, ndim, ends, dtype) for i in range(min(ends, count))]
    if count > 2 * ends:
        parts.append("...")
    parts += [_dim_v2(array[i], dim + 1, ndim, ends, dtype)
              for i in range(max(ends, count - ends), count)]
    return "[" + spacing.join(parts) + "]"


def element_text(value: Any, dtype: np.dtype, v2: bool) -> str:
    """One element (PrintOneElement): strings raw (v1) or quoted and C-escaped (v2), bools as
    1/0, complex as "?" (v1), floats as FloatToBuffer writes them."""
    if isinstance(value, bytes):
        return '"' + _c_escape(value) + '"' if v2 else value.decode(errors="replace")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, complex) and not v2:
        return "?"
    if isinstance(value, float):
        single = dtype.itemsize <= 4
        digits = 6 if single else 15
        text = "%.*g" % (digits, value)
        cast = np.float32 if single else np.float64
        if cast(float(text)) != cast(value):
            text = "%.*g" % (digits + (3 if single else 2), value)
        return text
    return str(value)


_ESCAPES = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"',
            ord("'"): "\\'", ord("\\"): "\\\\"}


def _c_escape(value: bytes) -> str:
    # absl::Utf8SafeCEscape: C escapes, octal for other control bytes, bytes >= 0x80 as they
    # are (kept through surrogateescape until the text is encoded).
    out = []
    for ch in value.decode("utf-8", errors="surrogateescape"):
        code = ord(ch)
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\{code:03o}")
        else:
            out.append(ch)
    return "".join(out)
