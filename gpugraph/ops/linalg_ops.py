"""Linear algebra: diagonals (Diag*, MatrixDiag*, MatrixSetDiag*), inverses, decompositions
and solves, batched over leading dimensions through the array module's ``linalg``.

MatrixDiagV3 and friends address a band of diagonals k = [lower, upper]: diagonal d holds the
elements (i, i + d); shorter diagonals are padded, aligned left or right by ``align`` (the first
word for d >= 0, the second for d < 0), as in TF's matrix_diag_op.cc.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops._indexing import Tables
from gpugraph.ops.registry import BuildContext, dims_text, op


# --- Diag / DiagPart (any rank) ------------------------------------------------------------------
@op("Diag")
def _diag(ctx: BuildContext):
    xp = ctx.xp

    def kernel(x: Any) -> Any:
        n = x.size
        out = xp.zeros((n, n), dtype=x.dtype)
        out[xp.arange(n), xp.arange(n)] = x.reshape(-1)
        return out.reshape(*x.shape, *x.shape)

    return kernel


@op("DiagPart")
def _diag_part(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op

    def kernel(x: Any) -> Any:
        half = x.ndim // 2
        if x.ndim % 2 or not x.ndim:
            raise errors.InvalidArgumentError(
                None, node, "The rank of the tensor should be" + " " * 42 + "even and "
                f"positive, got shape {_shape(x.shape)}")  # (TF's message has those spaces)
        for i in range(half):
            if x.shape[i] != x.shape[i + half]:
                raise errors.InvalidArgumentError(
                    None, node, f"Invalid shape {_shape(x.shape)}: dimensions {i} and "
                    f"{i + half} do not match.")
        n = int(np.prod(x.shape[:half]))
        return x.reshape(n, n)[xp.arange(n), xp.arange(n)].reshape(x.shape[:half])

    return kernel


def _shape(shape: tuple) -> str:
    return "[" + ",".join(str(int(d)) for d in shape) + "]"


# --- band diagonals ---------------------------------------------------------------------------
def _band(node: Any, k: Any) -> tuple[int, int]:
    values = [int(v) for v in np.asarray(k).reshape(-1)]
    if len(values) not in (1, 2):
        raise errors.InvalidArgumentError(
            None, node, f"diag_index must be a scalar or a vector with 1 or 2 elements, got "
            f"{values}")
    if values[0] > values[-1]:
        raise errors.InvalidArgumentError(
            None, node, f"lower_diag_index must not be larger than upper_diag_index: "
            f"{values[0]} > {values[-1]}")
    return values[0], values[-1]


def _check_band_fits(node: Any, rows: int, cols: int, lower: int, upper: int) -> None:
    for name, d in (("lower_diag_index", lower), ("upper_diag_index", upper)):
        if not -rows < d < cols and not (rows == 0 or cols == 0):
            raise errors.InvalidArgumentError(
                None, node, f"{name} is out of bound: {d}. It must be between {-rows} and "
                f"{cols}")


def _check_diagonal_shape(node: Any, x: Any, diagonal: Any, expected: tuple) -> None:
    if tuple(diagonal.shape) != expected:
        raise errors.InvalidArgumentError(
            None, node, "Either first dimensions of diagonal don't match input.shape[:-2], or "
            "diagonal.shape[:-1] is not equal to the longests diagonal in range "
            f"[lower_diag_index:upper_diag_index].\nInput shape: {_shape(x.shape)}\n"
            f"Diagonal shape: {_shape(diagonal.shape)}\nExpected diagonal shape: "
            f"{_shape(expected)}")


def _diagonal_length(rows: int, cols: int, d: int) -> int:
    return max(0, min(rows + min(0, d), cols - max(0, d)))


def _right_aligned(align: bytes, d: int) -> bool:
    first, _, second = align.decode().partition("_")
    return (first if d >= 0 else second) == "RIGHT"


def _positions(rows: int, cols: int, lower: int, upper: int, width: int, align: bytes):
    """For each diagonal d from upper down to lower: (its slot in the band, the rows and
    columns of its elements, where they sit along the padded diagonal)."""
    for slot, d in enumerate(range(upper, lower - 1, -1)):
        length = _diagonal_length(rows, cols, d)
        j = np.arange(length)
        r, c = j + max(0, -d), j + max(0, d)
        offset = width - length if _right_aligned(align, d) else 0
        yield slot, r, c, j + offset


def _device_positions(tables: Tables, rows: int, cols: int, lower: int, upper: int, width: int,
                      align: bytes) -> list:
    """:func:`_positions` with its index arrays on the kernel's device (uploaded once per
    shape, so that a captured step does not copy them from the host)."""
    parts = tables.get((rows, cols, lower, upper, width), lambda: tuple(
        a for _, r, c, at in _positions(rows, cols, lower, upper, width, align)
        for a in (r, c, at)))
    return [(k // 3, *parts[k:k + 3]) for k in range(0, len(parts), 3)]


@op("MatrixDiagPartV3", "MatrixDiagPartV2", host_inputs=(1,))
def _matrix_diag_part_v3(ctx: BuildContext):
    node, xp, tables = ctx.op, ctx.xp, Tables(ctx.device)
    align = ctx.attr_or("align", b"RIGHT_LEFT")

    def kernel(x: Any, k: Any, padding: Any) -> Any:
        rows, cols = x.shape[-2:]
        lower, upper = _band(node, k)
        _check_band_fits(node, rows, cols, lower, upper)
        width = max(_diagonal_length(rows, cols, d) for d in range(lower, upper + 1))
        out = xp.full((*x.shape[:-2], upper - lower + 1, width), padding, dtype=x.dtype)
        for slot, r, c, at in _device_positions(tables, rows, cols, lower, upper, width, align):
            out[..., slot, at] = x[..., r, c]
        return out[..., 0, :] if lower == upper else out

    return kernel


@op("MatrixDiagPart")
def _matrix_diag_part(ctx: BuildContext):
    xp = ctx.xp

    def kernel(x: Any) -> Any:
        n = min(x.shape[-2:])
        return x[..., xp.arange(n), xp.arange(n)]

    return kernel


def _square_size(width: int, lower: int, upper: int) -> int:
    # the smallest square whose band [lower, upper] has a diagonal of length ``width``
    nearest = lower if lower > 0 else (-upper if upper < 0 else 0)
    return width + nearest


@op("MatrixDiagV3", "MatrixDiagV2", host_inputs=(1, 2, 3))
def _matrix_diag_v3(ctx: BuildContext):
    node, xp, tables = ctx.op, ctx.xp, Tables(ctx.device)
    align = ctx.attr_or("align", b"RIGHT_LEFT")

    def kernel(diagonal: Any, k: Any, num_rows: Any, num_cols: Any, padding: Any) -> Any:
        lower, upper = _band(node, k)
        bands = diagonal if lower != upper else diagonal[..., None, :]
        if lower != upper and (diagonal.ndim < 2 or diagonal.shape[-2] != upper - lower + 1):
            raise errors.InvalidArgumentError(
                None, node, "The number of diagonals provided in the input does not match the "
                "lower_diag_index and upper_diag_index range.")
        width = bands.shape[-1]
        given_rows, given_cols = int(num_rows), int(num_cols)
        size = _square_size(width, lower, upper)
        if given_rows < 0 and given_cols < 0:
            rows = cols = size
        else:
            rows, cols = (given_rows, given_cols) if min(given_rows, given_cols) >= 0 else \
                _fit(node, width, lower, upper, given_rows, given_cols)
        out = xp.full((*bands.shape[:-2], rows, cols), padding, dtype=diagonal.dtype)
        for slot, r, c, at in _device_positions(tables, rows, cols, lower, upper, width, align):
            out[..., r, c] = bands[..., slot, at]
        return out

    return kernel


def _fit(node: Any, width: int, lower: int, upper: int, rows: int, cols: int) -> tuple[int, int]:
    """(rows, cols) with the one given as -1 grown from 1 until the band's longest diagonal
    has length ``width`` (the given size may make that impossible: an error, not a search)."""
    grow_rows = rows < 0
    for size in range(1, width + abs(lower) + abs(upper) + 2):
        shape = (size, cols) if grow_rows else (rows, size)
        if max(_diagonal_length(*shape, d) for d in range(lower, upper + 1)) >= width:
            return shape
    raise errors.InvalidArgumentError(
        None, node, f"The diagonals of length {width} in k = [{lower}, {upper}] do not fit in a "
        f"matrix with {'num_cols' if grow_rows else 'num_rows'} = {cols if grow_rows else rows}")


@op("MatrixDiag")
def _matrix_diag(ctx: BuildContext):
    xp = ctx.xp

    def kernel(diagonal: Any) -> Any:
        n = diagonal.shape[-1]
        out = xp.zeros((*diagonal.shape, n), dtype=diagonal.dtype)
        out[..., xp.arange(n), xp.arange(n)] = diagonal
        return out

    return kernel


@op("MatrixSetDiagV3", "MatrixSetDiagV2", host_inputs=(2,))
def _matrix_set_diag_v3(ctx: BuildContext):
    node, tables = ctx.op, Tables(ctx.device)
    align = ctx.attr_or("align", b"RIGHT_LEFT")

    def kernel(x: Any, diagonal: Any, k: Any) -> Any:
        rows, cols = x.shape[-2:]
        lower, upper = _band(node, k)
        _check_band_fits(node, rows, cols, lower, upper)
        width = max(_diagonal_length(rows, cols, d) for d in range(lower, upper + 1))
        band = (upper - lower + 1,) if lower != upper else ()
        _check_diagonal_shape(node, x, diagonal, (*x.shape[:-2], *band, width))
        bands = diagonal if lower != upper else diagonal[..., None, :]
        out = x.copy()
        for slot, r, c, at in _device_positions(tables, rows, cols, lower, upper, width, align):
            out[..., r, c] = bands[..., slot, at]
        return out

    return kernel


@op("MatrixSetDiag")
def _matrix_set_diag(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op

    def kernel(x: Any, diagonal: Any) -> Any:
        n = min(x.shape[-2:])
        _check_diagonal_shape(node, x, diagonal, (*x.shape[:-2], n))
        out = x.copy()
        out[..., xp.arange(n), xp.arange(n)] = diagonal
        return out

    return kernel


# --- inverses, decompositions, solves -----------------------------------------------------------
def _adjoint(xp: Any, m: Any) -> Any:
    m = xp.swapaxes(m, -1, -2)
    return xp.conj(m) if m.dtype.kind == "c" else m


def _raising(value: Any) -> Any:
    """CuPy reports a singular matrix only inside ``cupyx.errstate(linalg="raise")``; without
    it the result is silently inf/NaN where TF raises."""
    if not type(value).__module__.startswith("cupy"):
        return contextlib.nullcontext()
    import cupyx  # noqa: PLC0415  (only where CuPy arrays exist)

    return cupyx.errstate(linalg="raise")


def _square(node: Any, m: Any) -> None:
    if m.ndim < 2 or m.shape[-1] != m.shape[-2]:
        raise errors.InvalidArgumentError(
            None, node, f"Input matrix must be square. Shape: {dims_text(m.shape)}")


def _linalg_call(node: Any, message: str, fn: Any, *args: Any) -> Any:
    try:
        with _raising(args[0]):
            return fn(*args)
    except (np.linalg.LinAlgError, ValueError) as e:
        raise errors.InvalidArgumentError(None, node, f"{message} ({e})") from None


@op("MatrixInverse", "BatchMatrixInverse")
def _matrix_inverse(ctx: BuildContext):
    node, xp, adjoint = ctx.op, ctx.xp, ctx.attr_or("adjoint", False)

    def kernel(m: Any) -> Any:
        _square(node, m)
        m = _adjoint(xp, m) if adjoint else m
        return _linalg_call(node, "Input is not invertible.", xp.linalg.inv, m).astype(m.dtype)

    return kernel


_CHOLESKY_FAILED = ("Cholesky decomposition was not successful. The input might not be "
                    "valid.")


@op("Cholesky", "BatchCholesky")
def _cholesky(ctx: BuildContext):
    node, xp = ctx.op, ctx.xp

    def kernel(m: Any) -> Any:
        _square(node, m)
        lower = xp.tril(m)  # TF reads the lower triangle only
        full = lower + _adjoint(xp, xp.tril(m, -1))
        out = _linalg_call(node, _CHOLESKY_FAILED, xp.linalg.cholesky, full)
        if not bool(xp.isfinite(out).all()):  # (CuPy returns NaNs instead of raising)
            raise errors.InvalidArgumentError(None, node, _CHOLESKY_FAILED)
        return out.astype(m.dtype)

    return kernel


@op("MatrixDeterminant")
def _matrix_determinant(ctx: BuildContext):
    node, xp = ctx.op, ctx.xp

    def kernel(m: Any) -> Any:
        _square(node, m)
        return xp.linalg.det(m).astype(m.dtype)

    return kernel


@op("LogMatrixDeterminant")
def _log_matrix_determinant(ctx: BuildContext):
    node, xp = ctx.op, ctx.xp

    def kernel(m: Any) -> tuple:
        _square(node, m)
        sign, log_abs = xp.linalg.slogdet(m)
        return sign.astype(m.dtype), log_abs.astype(m.dtype)

    return kernel


@op("MatrixSolve")
def _matrix_solve(ctx: BuildContext):
    node, xp, adjoint = ctx.op, ctx.xp, ctx.attr_or("adjoint", False)

    def kernel(m: Any, rhs: Any) -> Any:
        _square(node, m)
        if m.ndim != rhs.ndim:
            raise errors.InvalidArgumentError(None, node, "All input tensors must have the same "
                                              "rank.")
        m = _adjoint(xp, m) if adjoint else m
        return _linalg_call(node, "Input matrix is not invertible.", xp.linalg.solve, m,
                            rhs).astype(rhs.dtype)

    return kernel


@op("MatrixTriangularSolve")
def _matrix_triangular_solve(ctx: BuildContext):
    node, xp = ctx.op, ctx.xp
    lower, adjoint = ctx.attr_or("lower", True), ctx.attr_or("adjoint", False)

    def kernel(m: Any, rhs: Any) -> Any:
        _square(node, m)
        if rhs.ndim < 2 or rhs.shape[-2] != m.shape[-1]:
            raise errors.InvalidArgumentError(
                None, node, f"In[0] mismatch In[1] shape: {m.shape[-1]} vs. "
                f"{rhs.shape[-2] if rhs.ndim >= 2 else 0}: {_shape(m.shape)} {_shape(rhs.shape)} "
                f"{int(lower)} {int(adjoint)}")
        tri = xp.tril(m) if lower else xp.triu(m)  # the other triangle is ignored, as in TF
        tri = _adjoint(xp, tri) if adjoint else tri
        batch = np.broadcast_shapes(tri.shape[:-2], rhs.shape[:-2])  # (CuPy's solve does not)
        tri = xp.broadcast_to(tri, batch + tri.shape[-2:])
        rhs = xp.broadcast_to(rhs, batch + rhs.shape[-2:])
        return _linalg_call(node, "Input matrix is not invertible.", xp.linalg.solve, tri,
                            rhs).astype(rhs.dtype)

    return kernel


@op("Qr")
def _qr(ctx: BuildContext):
    xp, full = ctx.xp, ctx.attr_or("full_matrices", False)

    def kernel(m: Any) -> tuple:
        q, r = xp.linalg.qr(m, mode="complete" if full else "reduced")
        return q.astype(m.dtype), r.astype(m.dtype)

    return kernel


@op("Svd")
def _svd(ctx: BuildContext):
    xp, device = ctx.xp, ctx.device
    compute_uv, full = ctx.attr_or("compute_uv", True), ctx.attr_or("full_matrices", False)

    def kernel(m: Any) -> tuple:
        if not compute_uv:  # u and v are empty then, as in TF
            empty = device.to_device(np.zeros((0,), m.dtype))
            return xp.linalg.svd(m, compute_uv=False).astype(m.dtype), empty, empty
        u, s, vh = xp.linalg.svd(m, full_matrices=full)
        return s.astype(m.dtype), u.astype(m.dtype), _adjoint(xp, vh).astype(m.dtype)

    return kernel


@op("SelfAdjointEigV2")
def _self_adjoint_eig(ctx: BuildContext):
    node, xp, device = ctx.op, ctx.xp, ctx.device
    compute_v = ctx.attr_or("compute_v", True)

    def kernel(m: Any) -> tuple:
        _square(node, m)
        if not compute_v:
            return xp.linalg.eigvalsh(m).astype(m.dtype), device.to_device(
                np.zeros((0,), m.dtype))
        values, vectors = xp.linalg.eigh(m)
        return values.astype(m.dtype), vectors.astype(m.dtype)

    return kernel
