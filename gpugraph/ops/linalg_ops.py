"""Linear algebra: diagonals (Diag*, MatrixDiag*, MatrixSetDiag*), inverses, decompositions
and solves, batched over leading dimensions through the array module's ``linalg``.

MatrixDiagV3 and friends address a band of diagonals k = [lower, upper]: diagonal d holds the
elements (i, i + d); shorter diagonals are padded, aligned left or right by ``align`` (the first
word for d >= 0, the second for d < 0), as in TF's matrix_diag_op.cc.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import errors
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
        if x.ndim % 2 or x.shape[:half] != x.shape[half:]:
            raise errors.InvalidArgumentError(
                None, node, f"Invalid shape {dims_text(x.shape)}: dimensions must be [D1, ..., "
                "Dk, D1, ..., Dk]")
        n = int(np.prod(x.shape[:half]))
        return x.reshape(n, n)[xp.arange(n), xp.arange(n)].reshape(x.shape[:half])

    return kernel


# --- band diagonals --------------------------------------------------------------------------------
def _band(node: Any, k: Any) -> tuple[int, int]:
    values = [int(v) for v in np.asarray(k).reshape(-1)]
    if len(values) not in (1, 2) or values[0] > values[-1]:
        raise errors.InvalidArgumentError(
            None, node, f"k must be a scalar or a [lower, upper] pair with lower <= upper, got "
            f"{values}")
    return values[0], values[-1]


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


@op("MatrixDiagPartV3", "MatrixDiagPartV2", host_inputs=(1,))
def _matrix_diag_part_v3(ctx: BuildContext):
    node, xp, device = ctx.op, ctx.xp, ctx.device
    align = ctx.attr_or("align", b"RIGHT_LEFT")

    def kernel(x: Any, k: Any, padding: Any) -> Any:
        rows, cols = x.shape[-2:]
        lower, upper = _band(node, k)
        width = max(_diagonal_length(rows, cols, d) for d in range(lower, upper + 1))
        out = xp.full((*x.shape[:-2], upper - lower + 1, width), padding, dtype=x.dtype)
        for slot, r, c, at in _positions(rows, cols, lower, upper, width, align):
            out[..., slot, device.to_device(at)] = x[..., device.to_device(r), device.to_device(c)]
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
    node, xp, device = ctx.op, ctx.xp, ctx.device
    align = ctx.attr_or("align", b"RIGHT_LEFT")

    def kernel(diagonal: Any, k: Any, num_rows: Any, num_cols: Any, padding: Any) -> Any:
        lower, upper = _band(node, k)
        bands = diagonal if lower != upper else diagonal[..., None, :]
        width = bands.shape[-1]
        rows, cols = int(num_rows), int(num_cols)
        size = _square_size(width, lower, upper)
        rows = rows if rows >= 0 else (size if cols < 0 else _fit(width, cols, lower, upper))
        cols = cols if cols >= 0 else (size if rows < 0 else _fit_cols(width, rows, lower, upper))
        out = xp.full((*bands.shape[:-2], rows, cols), padding, dtype=diagonal.dtype)
        for slot, r, c, at in _positions(rows, cols, lower, upper, width, align):
            out[..., device.to_device(r), device.to_device(c)] = bands[..., slot,
                                                                       device.to_device(at)]
        return out

    return kernel


def _fit(width: int, cols: int, lower: int, upper: int) -> int:
    """num_rows when only num_cols is given: the smallest fitting the longest diagonal."""
    rows = 1
    while max(_diagonal_length(rows, cols, d) for d in range(lower, upper + 1)) < width:
        rows += 1
    return rows


def _fit_cols(width: int, rows: int, lower: int, upper: int) -> int:
    cols = 1
    while max(_diagonal_length(rows, cols, d) for d in range(lower, upper + 1)) < width:
        cols += 1
    return cols


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
    node, device = ctx.op, ctx.device
    align = ctx.attr_or("align", b"RIGHT_LEFT")

    def kernel(x: Any, diagonal: Any, k: Any) -> Any:
        rows, cols = x.shape[-2:]
        lower, upper = _band(node, k)
        bands = diagonal if lower != upper else diagonal[..., None, :]
        out = x.copy()
        for slot, r, c, at in _positions(rows, cols, lower, upper, bands.shape[-1], align):
            out[..., device.to_device(r), device.to_device(c)] = bands[..., slot,
                                                                       device.to_device(at)]
        return out

    return kernel


@op("MatrixSetDiag")
def _matrix_set_diag(ctx: BuildContext):
    xp = ctx.xp

    def kernel(x: Any, diagonal: Any) -> Any:
        n = min(x.shape[-2:])
        out = x.copy()
        out[..., xp.arange(n), xp.arange(n)] = diagonal
        return out

    return kernel


# --- inverses, decompositions, solves ------------------------------------------------------------
def _adjoint(xp: Any, m: Any) -> Any:
    m = xp.swapaxes(m, -1, -2)
    return xp.conj(m) if m.dtype.kind == "c" else m


def _square(node: Any, m: Any, what: str = "Input") -> None:
    if m.ndim < 2 or m.shape[-1] != m.shape[-2]:
        raise errors.InvalidArgumentError(
            None, node, f"{what} matrix must be square, got {dims_text(m.shape)}")


def _linalg_call(node: Any, message: str, fn: Any, *args: Any) -> Any:
    try:
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


@op("Cholesky", "BatchCholesky")
def _cholesky(ctx: BuildContext):
    node, xp = ctx.op, ctx.xp

    def kernel(m: Any) -> Any:
        _square(node, m)
        lower = xp.tril(m)  # TF reads the lower triangle only
        full = lower + _adjoint(xp, xp.tril(m, -1))
        out = _linalg_call(node, "Cholesky decomposition was not successful. The input might "
                           "not be valid.", xp.linalg.cholesky, full)
        if not bool(xp.isfinite(out).all()):
            raise errors.InvalidArgumentError(
                None, node, "Cholesky decomposition was not successful. The input might not be "
                "valid.")
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
        tri = xp.tril(m) if lower else xp.triu(m)  # the other triangle is ignored, as in TF
        tri = _adjoint(xp, tri) if adjoint else tri
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
