"""Direct convolutions on the CPU: one register-blocked "gather GEMM" kernel, written in LLVM IR.

im2col + BLAS (conv_ops' generic path) spends its time twice: copying every input value into
a patch matrix KH*KW times larger than the input, then in a GEMM whose output has as few as
32 or 64 columns, a shape OpenBLAS runs at ~80% of what it reaches on square matrices.  TF's
oneDNN convolves directly.  This module does too, with one kernel that serves all three ops:

    out[row, o] (+)= sum over k of  x[rowtab[row] + redtab[k]] * b[k, o]

``x`` is the flat padded input and the two tables hold element offsets into it.

* Conv2D: a row per output pixel (``rowtab``: where its window starts), ``k`` over the window's
  (kh, kw, c) taps (``redtab``: each tap's offset within a window), ``b`` the filter as
  [KH*KW*C, O].  Near the border a window hangs over the padding: the pixels are taken in
  classes that keep the same taps inside the image (:func:`gather_gemm_classes`, whose
  tables also carry each row's output offset and each tap's filter row), so no multiply by a
  padded zero is issued and the input needs no padded copy.
* Conv2DBackpropInput: a row per input pixel, ``k`` over the (kh, kw, o) taps whose output
  pixel exists, read from the output gradient, ``b`` the filter with its channel axes
  swapped; the pixels in classes by those taps (at a stride, also by their phase).  At stride
  1 that is the forward convolution of the output gradient padded for a full correlation,
  with the filter flipped.
* Conv2DBackpropFilter: a row per (kh, kw, c) tap, ``k`` over the output pixels, ``b`` the
  output gradient [pixels, O]; by classes too (a tap's channels, reduced over the pixels that
  see it inside the image), except with few channels, or for a gradient too large for a
  share of L3, which is reduced over the padded input in pixel tiles that accumulate into
  ``out``, so each tile stays in cache while every row uses it.
* A dense layer's products with a short side (the batch): ``a.T @ b`` reads ``a`` [K, M] in
  place, a row per column (:func:`cpu_threads.product_by_columns`); with Momentum the update
  runs in the kernel's epilogue (:func:`gather_gemm_momentum`) and the gradient is never
  stored.

The kernel keeps an R x V block of accumulators (R rows, V vectors of 16 float32 or 8 float64
columns) in registers for the whole reduction: per ``k`` it loads V vectors of ``b``,
broadcasts R values of ``x`` and issues R*V fused multiply-adds, the micro-kernel shape of a
hand-tuned GEMM.  numba cannot express that (its arrays live in memory, and every
accumulator update round-trips through L1: 40 GFLOP/s per core measured, against ~110 here),
so the kernel is generated as LLVM IR text and compiled by llvmlite, numba's own backend, for
the host CPU.  Measured on W3's second convolution (2 cores, AVX-512): the forward op went from
~8.5 ms (patch copies + OpenBLAS) to ~6 ms.

A Conv2D followed by BiasAdd and Relu (fused by the plan's remapper, :mod:`gpugraph.plan.remap`)
adds the bias and applies the Relu in the kernel's store, an epilogue, instead of two more
passes over the output: W3's first convolution writes 6.4 MB that each pass reads and writes.

Each output element is one sequence of fused multiply-adds in ``k`` order, whatever the
thread split (threads take whole rows), so results are deterministic; they differ from the
im2col + BLAS path in the last bits (a different, equally valid summation order), as TF's
oneDNN results differ from both.  Used on the real CPU only, for float32/float64 inputs;
``GPUGRAPH_CPU_CONV=0`` (or no llvmlite) falls back to im2col + BLAS.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from gpugraph import config
from gpugraph.devices.cpu import crew as cpu_crew
from gpugraph.devices.cpu import isa as cpu_isa
from gpugraph.devices.cpu import jit as cpu_jit
from gpugraph.devices.cpu import loops as cpu_loops

_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
# The block shapes (vectors per row, rows per block, lanes) come from the ISA variant the
# kernels are compiled for (cpu_isa: AVX-512's 7 x 4 vectors of 16 lanes, AVX2's 6 x 2 of 8).
_UNITS_PER_THREAD = 32  # work units per thread (see _schedule)
# With the reduction in tiles, each unit streams all of ``b`` through the cache once, and
# its rows are what reuse a tile: few large units.  W3's second filter gradient (2 cores,
# tiles of 512 pixels): 32 units a thread 11.6 ms (AVX2), 9.7 (AVX-512); 2 units, 7.6 and
# 5.7; 1 unit, 7.4 and 5.2, but a thread that starts late then holds up the op.
_TILED_UNITS_PER_THREAD = 2
_ARGS = [ctypes.c_void_p] * 7 + [ctypes.c_int64] * 5
_EPILOGUES = {(False, False): 0, (True, False): 1, (True, True): 2}  # (bias, relu) -> code
_MOMENTUM, _NESTEROV = 3, 4  # epilogue codes of gather_gemm_momentum
# The momentum epilogue prefetches the slots this many column blocks ahead (W3's first dense
# layer, cold caches: 1 or 2 blocks ran the fused op 13-16% faster than without; 4, slower).
_PREFETCH_BLOCKS = 2
_kernels: dict[tuple, Callable[..., None]] = {}
_lock = threading.RLock()
_checked: dict[str, bool] = {}  # variant -> whether the kernel's IR compiles for it here


def enabled() -> bool:
    """Whether the direct kernels run in this process: llvmlite importable and able to compile
    them, x86-64 (the IR assumes it), not turned off by ``GPUGRAPH_CPU_CONV=0`` (or by
    ``GPUGRAPH_CPU_LOOPS=0``, which turns off all compiled CPU code)."""
    if not (config.settings.cpu_conv and config.settings.cpu_loops):
        return False
    variant = cpu_isa.current()
    return variant is not None and _compiles(variant)


def available(xp: Any, *arrays: Any) -> bool:
    """Whether the direct kernels can run ``arrays``: :func:`enabled`, on the real CPU
    (numpy), all numpy arrays of one float32/float64 dtype."""
    dtype = arrays[0].dtype
    if xp is not np or dtype not in _TYPES or \
            any(type(a) is not np.ndarray or a.dtype != dtype for a in arrays):
        return False
    return enabled()


def gather_gemm(x: np.ndarray, rowtab: np.ndarray, redtab: np.ndarray, b: np.ndarray,
                out: np.ndarray, k_tile: int | None = None, bias: np.ndarray | None = None,
                relu: bool = False) -> None:
    """``out[r, :] = sum_k x.flat[rowtab[r] + redtab[k]] * b[k, :]`` (see the module doc).

    ``x`` C-contiguous, tables int64, ``b`` [K, O] and ``out`` [rows, O] C-contiguous, all
    offsets in range (unchecked: the callers build the tables from the shapes).  Units of
    rows are shared out over :func:`cpu_loops.threads` threads (:func:`_schedule`).
    ``k_tile``: run the reduction in tiles of that many steps, every row block of a unit
    finishing a tile before the next (for a ``b`` too large to stay in cache between row
    blocks); the order of the additions is the same.

    ``bias`` (C-contiguous, [O]): an epilogue adds it to each finished sum as it is stored,
    then, with ``relu``, takes ``max(v, 0)`` as the Relu kernel does (a NaN stays, -0 becomes
    +0): Conv2D -> BiasAdd -> Relu in one pass, with the bits of the three separate ops.
    """
    rows, k = len(rowtab), len(redtab)
    if rows == 0 or out.shape[1] == 0:
        return
    if k == 0:
        out[...] = _empty_sum(out, bias, relu)
        return
    threads = cpu_loops.threads()
    schedule = _schedule(cpu_isa.current(), x.dtype, rows, k, out.shape[1], k_tile or k,
                         threads, _EPILOGUES[bias is not None, bool(relu)])
    _run(schedule, threads, x, rowtab, redtab, b, out, bias)


def gather_gemm_momentum(x: np.ndarray, rowtab: np.ndarray, redtab: np.ndarray, b: np.ndarray,
                         var: np.ndarray, accum: np.ndarray, lr: Any, momentum: Any,
                         nesterov: bool) -> None:
    """ApplyMomentum with the gradient ``g`` = :func:`gather_gemm`'s ``out`` made in registers
    and never stored: per element, ``accum = accum * momentum + g``, then ``var -= accum * lr``
    (Nesterov: ``var -= g * lr + accum * momentum * lr``), each product and sum rounded
    separately, as the update loop (``cpu_loops``' momentum) computes them, so the bits are
    those of the two ops.  For a dense layer's weight gradient and its update (W3's first
    dense layer: 3.2M weights): the slots' reads and writes overlap the products' arithmetic
    instead of following it.

    ``var`` and ``accum`` are [rows, O] C-contiguous (the ``out`` of :func:`gather_gemm`),
    neither overlapping ``x`` or ``b``; ``lr`` and ``momentum`` are scalars of their dtype."""
    rows, k = len(rowtab), len(redtab)
    if rows == 0 or var.shape[1] == 0:
        return
    if k == 0:  # g = 0: the update loop does the rest
        grad = np.zeros_like(var)
        cpu_loops.get("momentum", np)(var.reshape(-1), accum.reshape(-1), grad.reshape(-1),
                                      lr, momentum, nesterov)
        return
    threads = cpu_loops.threads()
    records, starts = _schedule(cpu_isa.current(), x.dtype, rows, k, var.shape[1], k, threads,
                                _NESTEROV if nesterov else _MOMENTUM)
    params = np.array([lr, momentum], dtype=x.dtype)
    bases = [a.ctypes.data for a in (x, rowtab, redtab, b, var, params, accum)]
    cpu_crew.get().run_units(bases, records, starts, threads)


def gather_gemm_classes(x: np.ndarray, rows: np.ndarray, taps: np.ndarray, classes: tuple,
                        b: np.ndarray, out: np.ndarray, bias: np.ndarray | None = None,
                        relu: bool = False) -> None:
    """:func:`gather_gemm` over classes of rows, each reduced over its own taps: for each
    class ``(first row, rows, first tap, taps)`` and each of its rows ``r``,
    ``out.flat[rows[r, 1] + o] = sum over its taps t of x.flat[rows[r, 0] + taps[t, 0]] *
    b.flat[taps[t, 1] + o]``, then the epilogue (``bias``, ``relu``) as gather_gemm's.

    A convolution's output pixels near the border have windows that hang over the padding: a
    class is the pixels whose windows keep the same taps inside the image, so no multiply by a
    padded zero is ever issued (W3's second convolution, 5x5 SAME on 14x14: 16% of its taps
    are padding), and ``x`` needs no padded copy (row offsets may be negative; every offset
    that is read is in range).  ``rows`` [R, 2] and ``taps`` [T, 2] are C-contiguous int64
    (element offsets), ``out`` and ``b`` have ``out.shape[1]`` columns, C-contiguous."""
    cols = out.shape[1]
    if cols == 0 or not classes:
        return
    for first, count, _, k in classes:
        if k == 0 and count:  # rows whose windows lie wholly in the padding
            out[rows[first:first + count, 1] // cols] = _empty_sum(out, bias, relu)
    threads = cpu_loops.threads()
    schedule = _class_schedule(cpu_isa.current(), x.dtype, classes, cols, threads,
                               _EPILOGUES[bias is not None, bool(relu)])
    if len(schedule[0]):
        _run(schedule, threads, x, rows, taps, b, out, bias)


def _empty_sum(out: np.ndarray, bias: np.ndarray | None, relu: bool) -> np.ndarray:
    """The row a sum over no terms stores in ``out`` [rows, O]: zeros, through the epilogue."""
    value = np.zeros(out.shape[1], dtype=out.dtype)
    if bias is not None:
        value += bias
        if relu:
            np.maximum(value, 0, out=value)
    return value


def _run(schedule: tuple, threads: int, x: np.ndarray, rowtab: np.ndarray, redtab: np.ndarray,
         b: np.ndarray, out: np.ndarray, bias: np.ndarray | None) -> None:
    """Runs a schedule's kernel calls on the arrays of a product with an optional bias."""
    bases = [a.ctypes.data for a in (x, rowtab, redtab, b, out)] + [
        0 if bias is None else bias.ctypes.data, 0]
    cpu_crew.get().run_units(bases, *schedule, threads)


@functools.lru_cache(maxsize=256)
def _class_schedule(isa: cpu_isa.Variant, dtype: np.dtype, classes: tuple, cols: int,
                    threads: int, epilogue: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernel calls of a :func:`gather_gemm_classes`, as :func:`_schedule`'s, in units of
    about equal work (rows times taps) taken class by class."""
    blocks = _column_blocks(isa, dtype, cols)
    block = isa.rows[blocks[0][1]]
    work = sum(count * taps for _, count, _, taps in classes)
    share = work / (threads * _UNITS_PER_THREAD) if threads > 1 else work
    size = dtype.itemsize
    records, starts = [], [0]
    for first, count, tap, taps in classes:
        if taps == 0 or count == 0:
            continue
        unit = max(block, round(share / taps / block) * block)
        for lo in range(first, first + count, unit):
            hi = min(first + count, lo + unit)
            for (col, vectors, tail), (row, blocks_, height) in (
                    (c, p) for c in blocks for p in _pieces(lo, hi, isa.rows[c[1]])):
                fn = _kernel(isa, dtype, height, vectors, tail, epilogue, indexed=True)
                records.append((ctypes.cast(fn, ctypes.c_void_p).value, 0, 16 * row, 16 * tap,
                                size * col, size * col, size * col if epilogue else 0, 0,
                                blocks_, taps, 0, 0, 0))
            starts.append(len(records))
    tables = (np.array(records, dtype=np.int64).reshape(-1, cpu_crew.RECORD),
              np.array(starts, dtype=np.int64))
    for table in tables:
        table.flags.writeable = False
    return tables


@functools.lru_cache(maxsize=256)
def _schedule(isa: cpu_isa.Variant, dtype: np.dtype, rows: int, k: int, cols: int, k_tile: int,
              threads: int, epilogue: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The kernel calls of a :func:`gather_gemm` of this shape, as :meth:`cpu_crew.Crew.
    run_units` records (byte offsets from x, rowtab, redtab, b, out, bias, aux), in units of rows
    that threads take as they become free: ~_UNITS_PER_THREAD per thread, so a thread that
    starts late does less (reduced in tiles, _TILED_UNITS_PER_THREAD).  Within a unit: per
    reduction tile, per column block, the row blocks; the ``epilogue`` (see :func:`ir`) runs
    in the last tile's calls only.  A momentum epilogue goes the other way round, per row
    block, the column blocks: it reads and writes two slots in memory, and this way each row's
    elements are visited in address order, which the hardware prefetcher follows
    (column-block order walked the rows 4 KB apart, and the fused op ran slower than the
    product and update apart)."""
    blocks = _column_blocks(isa, dtype, cols)
    block = isa.rows[blocks[0][1]]  # the first (widest) column block's rows per block
    per = _TILED_UNITS_PER_THREAD if k_tile < k else _UNITS_PER_THREAD
    unit = -(-rows // (threads * per if threads > 1 else 1))
    unit = -(-unit // block) * block  # whole row blocks (a filter gradient may have only 3)
    size = dtype.itemsize
    records, starts = [], [0]
    for first in range(0, rows, unit):
        last = min(rows, first + unit)
        for start in range(0, k, k_tile):
            stop = min(k, start + k_tile)
            finish = epilogue if stop == k else 0
            updates = finish >= _MOMENTUM  # bias: the two scalars; aux: accum, as out
            for lo, hi in _row_groups(first, last, block if updates else unit):
                for (col, vectors, tail), (row, count, height) in (
                        (c, p) for c in blocks for p in _pieces(lo, hi, isa.rows[c[1]])):
                    fn = _kernel(isa, dtype, height, vectors, tail, finish)
                    at = size * (row * cols + col)
                    records.append((ctypes.cast(fn, ctypes.c_void_p).value, 0, 8 * row,
                                    8 * start, size * (start * cols + col), at,
                                    size * col if finish and not updates else 0,
                                    at if updates else 0,
                                    count, stop - start, cols, cols, int(start > 0)))
        starts.append(len(records))
    tables = (np.array(records, dtype=np.int64).reshape(-1, cpu_crew.RECORD),
              np.array(starts, dtype=np.int64))
    for table in tables:
        table.flags.writeable = False  # shared by every call of this shape
    return tables


def _row_groups(first: int, last: int, size: int) -> list[tuple[int, int]]:
    """Rows [first, last) in groups of ``size`` rows, as (first, last) pairs."""
    return [(lo, min(last, lo + size)) for lo in range(first, last, size)]


def _pieces(first: int, last: int, height: int) -> list[tuple[int, int, int]]:
    """Rows [first, last) as (first row, blocks, rows per block): full blocks of ``height``
    rows, then one shorter block for the rest."""
    full = (last - first) // height
    pieces = [(first, full, height)] if full else []
    if (last - first) % height:
        pieces.append((first + full * height, 1, (last - first) % height))
    return pieces


def _column_blocks(isa: cpu_isa.Variant, dtype: np.dtype, cols: int
                   ) -> list[tuple[int, int, int]]:
    """(first column, full vectors, tail lanes) per block: blocks of the ISA's widest vectors
    per row, then whatever is left as one block of full vectors and one masked partial
    vector."""
    lanes, widest = isa.lanes(dtype), isa.max_vectors
    step = lanes * widest
    blocks = [(c, widest, 0) for c in range(0, cols - cols % step, step)]
    col = cols - cols % step
    if (cols - col) // lanes:
        blocks.append((col, (cols - col) // lanes, 0))
        col += (cols - col) // lanes * lanes
    if cols - col:
        blocks.append((col, 1, cols - col))
    return blocks


# --- code generation ---------------------------------------------------------------------------
def _kernel(isa: cpu_isa.Variant, dtype: np.dtype, rows: int, vectors: int, tail: int,
            epilogue: int = 0, indexed: bool = False) -> Callable[..., None]:
    key = (isa.name, dtype, rows, vectors, tail, epilogue, indexed)
    fn = _kernels.get(key)
    if fn is None:
        with _lock:
            fn = _kernels.get(key)
            if fn is None and cpu_jit.machine() is not None:
                fn = _kernels[key] = cpu_jit.compile_ir(
                    ir(dtype, rows, vectors, tail, epilogue, indexed, isa.lanes(dtype)),
                    "gather_gemm", None, _ARGS, cpu_isa.features_for(isa))
    return fn


def _compiles(isa: cpu_isa.Variant) -> bool:
    """Whether this llvmlite compiles the kernel's IR for ``isa`` (once per process)."""
    if isa.name not in _checked:
        try:
            _checked[isa.name] = _kernel(isa, np.dtype(np.float32), 1, 1, 1) is not None
        except Exception:  # noqa: BLE001 - any failure means: use im2col + BLAS
            _checked[isa.name] = False
    return _checked[isa.name]


def ir(dtype: np.dtype, rows: int, vectors: int, tail: int = 0, epilogue: int = 0,
       indexed: bool = False, lanes: int | None = None) -> str:
    """LLVM IR of the ``rows`` x ``vectors`` kernel ``@gather_gemm`` (``tail`` > 0: one
    vector whose first ``tail`` lanes are real columns, loaded and stored under a mask).

    Arguments: x, rowtab, redtab, b, out, bias, aux (pointers, each already offset to the
    first row, k and column of this call), blocks (of ``rows`` rows), k (reduction length), ldb,
    ldo (row pitches in elements), accumulate (0: start from zero, else from ``out``).
    ``epilogue``: 0 stores the sums; 1 adds ``bias`` to them first (a separate rounding, as
    BiasAdd's); 2 then keeps ``v`` where ``v > 0`` or ``v`` is NaN, else +0 (Relu's rule);
    3 and 4 apply momentum (:func:`gather_gemm_momentum`; 4: Nesterov's) with the sums as
    the gradient, ``out`` the variable, ``aux`` its accumulator (same pitch) and ``bias`` the
    two scalars (lr, momentum).
    """
    elem = _TYPES[np.dtype(dtype)]
    lanes = lanes or (cpu_isa.current() or cpu_isa.AVX512).lanes(dtype)
    vec = f"<{lanes} x {elem}>"
    mask = _mask(lanes, tail) if tail else None
    suffix = f"v{lanes}f{32 if elem == 'float' else 64}"
    rv = [(r, v) for r in range(rows) for v in range(vectors)]

    def load(ptr: str, name: str) -> str:
        if mask is None:
            return f"  {name} = load {vec}, ptr {ptr}, align 4"
        return (f"  {name} = call {vec} @llvm.masked.load.{suffix}.p0(ptr align 4 {ptr}, "
                f"<{lanes} x i1> {mask}, {vec} zeroinitializer)")

    def store(value: str, ptr: str) -> str:
        if mask is None:
            return f"  store {vec} {value}, ptr {ptr}, align 4"
        return (f"  call void @llvm.masked.store.{suffix}.p0({vec} {value}, ptr align 4 {ptr}, "
                f"<{lanes} x i1> {mask})")

    lines = [
        "define void @gather_gemm(ptr noalias %x, ptr noalias %rowtab, ptr noalias %redtab, "
        "ptr noalias %b, ptr noalias %out, ptr noalias %bias, ptr noalias %aux, i64 %blocks, "
        "i64 %k, i64 %ldb, i64 %ldo, i64 %accumulate) nounwind {",
        "entry:",
        "  %acc = icmp ne i64 %accumulate, 0"]
    if epilogue >= _MOMENTUM:
        lines += _broadcast_scalars(elem, vec, lanes)
    for v in range(vectors if 0 < epilogue < _MOMENTUM else 0):
        lines += [f"  %biasp{v} = getelementptr {elem}, ptr %bias, i64 {v * lanes}",
                  load(f"%biasp{v}", f"%biasv{v}")]
    lines += [
        "  br label %block",
        "block:",
        "  %blk = phi i64 [0, %entry], [%blk.next, %done]",
        f"  %first = mul i64 %blk, {rows}",
    ]
    for r in range(rows):
        lines += [f"  %row{r} = add i64 %first, {r}"]
        if indexed:  # (input offset, output offset) pairs
            lines += [f"  %ri{r} = shl i64 %row{r}, 1",
                      f"  %rowp{r} = getelementptr i64, ptr %rowtab, i64 %ri{r}",
                      f"  %base{r} = load i64, ptr %rowp{r}",
                      f"  %orowp{r} = getelementptr i64, ptr %rowp{r}, i64 1",
                      f"  %orow{r} = load i64, ptr %orowp{r}"]
        else:
            lines += [f"  %rowp{r} = getelementptr i64, ptr %rowtab, i64 %row{r}",
                      f"  %base{r} = load i64, ptr %rowp{r}",
                      f"  %orow{r} = mul i64 %row{r}, %ldo"]
    for r, v in rv:
        lines += [f"  %oi{r}_{v} = add i64 %orow{r}, {v * lanes}",
                  f"  %op{r}_{v} = getelementptr {elem}, ptr %out, i64 %oi{r}_{v}",
                  load(f"%op{r}_{v}", f"%old{r}_{v}"),
                  f"  %init{r}_{v} = select i1 %acc, {vec} %old{r}_{v}, {vec} zeroinitializer"]
    if epilogue >= _MOMENTUM:
        lines += _prefetch_next(elem, rows, vectors * lanes, _PREFETCH_BLOCKS)
    lines += ["  br label %loop", "loop:",
              "  %i = phi i64 [0, %block], [%i.next, %loop]"]
    lines += [f"  %a{r}_{v} = phi {vec} [%init{r}_{v}, %block], [%s{r}_{v}, %loop]"
              for r, v in rv]
    if indexed:  # (input offset, b offset) pairs
        lines += ["  %i2 = shl i64 %i, 1",
                  "  %redp = getelementptr i64, ptr %redtab, i64 %i2",
                  "  %red = load i64, ptr %redp",
                  "  %browp = getelementptr i64, ptr %redp, i64 1",
                  "  %brow = load i64, ptr %browp"]
    else:
        lines += ["  %redp = getelementptr i64, ptr %redtab, i64 %i",
                  "  %red = load i64, ptr %redp",
                  "  %brow = mul i64 %i, %ldb"]
    for v in range(vectors):
        lines += [f"  %bi{v} = add i64 %brow, {v * lanes}",
                  f"  %bp{v} = getelementptr {elem}, ptr %b, i64 %bi{v}",
                  load(f"%bp{v}", f"%bv{v}")]
    for r in range(rows):
        lines += [f"  %xi{r} = add i64 %base{r}, %red",
                  f"  %xp{r} = getelementptr {elem}, ptr %x, i64 %xi{r}",
                  f"  %xs{r} = load {elem}, ptr %xp{r}, align 4",
                  f"  %xe{r} = insertelement {vec} poison, {elem} %xs{r}, i64 0",
                  f"  %xv{r} = shufflevector {vec} %xe{r}, {vec} poison, "
                  f"<{lanes} x i32> zeroinitializer"]
        lines += [f"  %s{r}_{v} = call {vec} @llvm.fma.{suffix}({vec} %xv{r}, {vec} %bv{v}, "
                  f"{vec} %a{r}_{v})" for v in range(vectors)]
    lines += ["  %i.next = add i64 %i, 1",
              "  %more = icmp ult i64 %i.next, %k",
              "  br i1 %more, label %loop, label %done, !llvm.loop !0",
              "done:"]
    for r, v in rv:
        if epilogue >= _MOMENTUM:
            lines += [f"  %ap{r}_{v} = getelementptr {elem}, ptr %aux, i64 %oi{r}_{v}",
                      load(f"%ap{r}_{v}", f"%acc{r}_{v}")]
            lines += _momentum(f"%s{r}_{v}", f"%old{r}_{v}", f"%acc{r}_{v}", f"{r}_{v}", vec,
                               epilogue == _NESTEROV)
            lines.append(store(f"%accn{r}_{v}", f"%ap{r}_{v}"))
        else:
            lines += _finish(f"%s{r}_{v}", f"%f{r}_{v}", f"%biasv{v}", vec, lanes, epilogue)
        lines.append(store(f"%f{r}_{v}", f"%op{r}_{v}"))
    lines += ["  %blk.next = add i64 %blk, 1",
              "  %again = icmp ult i64 %blk.next, %blocks",
              "  br i1 %again, label %block, label %exit",
              "exit:", "  ret void", "}",
              f"declare {vec} @llvm.fma.{suffix}({vec}, {vec}, {vec})",
              "declare void @llvm.prefetch.p0(ptr, i32, i32, i32)",
              # Unrolled, the loop's accumulators rotate through copies (and the stack):
              # 40% slower than the plain loop, whose FMAs already hide the loop overhead.
              "!0 = distinct !{!0, !1}", '!1 = !{!"llvm.loop.unroll.disable"}']
    if mask is not None:
        lines += [f"declare {vec} @llvm.masked.load.{suffix}.p0(ptr, <{lanes} x i1>, {vec})",
                  f"declare void @llvm.masked.store.{suffix}.p0({vec}, ptr, <{lanes} x i1>)"]
    return "\n".join(lines) + "\n"


def _finish(total: str, name: str, bias: str, vec: str, lanes: int, epilogue: int) -> list[str]:
    """IR that sets ``name`` to the value stored for ``total`` under ``epilogue``."""
    if not epilogue:
        return [f"  {name} = bitcast {vec} {total} to {vec}"]
    lines = [f"  {name}.b = fadd {vec} {total}, {bias}"]
    if epilogue == 1:
        return [*lines, f"  {name} = bitcast {vec} {name}.b to {vec}"]
    flags = f"<{lanes} x i1>"
    return [*lines, f"  {name}.gt = fcmp ogt {vec} {name}.b, zeroinitializer",
            f"  {name}.nan = fcmp uno {vec} {name}.b, {name}.b",
            f"  {name}.keep = or {flags} {name}.gt, {name}.nan",
            f"  {name} = select {flags} {name}.keep, {vec} {name}.b, {vec} zeroinitializer"]


def _broadcast_scalars(elem: str, vec: str, lanes: int) -> list[str]:
    """IR setting ``%lrv`` and ``%momv`` to vectors of the scalars at ``bias`` [0] and [1]."""
    lines = []
    for i, name in enumerate(("lr", "mom")):
        lines += [f"  %{name}p = getelementptr {elem}, ptr %bias, i64 {i}",
                  f"  %{name}s = load {elem}, ptr %{name}p",
                  f"  %{name}e = insertelement {vec} poison, {elem} %{name}s, i64 0",
                  f"  %{name}v = shufflevector {vec} %{name}e, {vec} poison, "
                  f"<{lanes} x i32> zeroinitializer"]
    return lines


def _prefetch_next(elem: str, rows: int, width: int, ahead: int) -> list[str]:
    """IR prefetching, for writing, the ``out`` and ``aux`` elements ``ahead`` column blocks
    (of ``width`` elements) to the right of this block's rows: the momentum epilogue's next
    calls read and write them."""
    per_line = 16 if elem == "float" else 8  # elements per 64-byte cache line
    lines = []
    for r in range(rows):
        for name in ("out", "aux"):
            for step in range(0, width, per_line):
                tag = f"{name}{r}_{step}"
                lines += [f"  %pfi{tag} = add i64 %orow{r}, {ahead * width + step}",
                          f"  %pfp{tag} = getelementptr {elem}, ptr %{name}, i64 %pfi{tag}",
                          f"  call void @llvm.prefetch.p0(ptr %pfp{tag}, i32 1, i32 3, i32 1)"]
    return lines


def _momentum(grad: str, var: str, accum: str, tag: str, vec: str, nesterov: bool) -> list[str]:
    """IR of the momentum loop's formulas, each operation rounded (no fused multiply-adds):
    ``%accn{tag}`` = accum * momentum + grad, ``%f{tag}`` = var - accn * lr (Nesterov:
    var - (grad * lr + accn * momentum * lr))."""
    lines = [f"  %am{tag} = fmul {vec} {accum}, %momv",
             f"  %accn{tag} = fadd {vec} %am{tag}, {grad}"]
    if nesterov:
        lines += [f"  %gl{tag} = fmul {vec} {grad}, %lrv",
                  f"  %anm{tag} = fmul {vec} %accn{tag}, %momv",
                  f"  %anl{tag} = fmul {vec} %anm{tag}, %lrv",
                  f"  %step{tag} = fadd {vec} %gl{tag}, %anl{tag}"]
    else:
        lines.append(f"  %step{tag} = fmul {vec} %accn{tag}, %lrv")
    return [*lines, f"  %f{tag} = fsub {vec} {var}, %step{tag}"]


def _mask(lanes: int, tail: int) -> str:
    return "<" + ", ".join(f"i1 {int(i < tail)}" for i in range(lanes)) + ">"
