"""Generate per-op golden fixtures with real TensorFlow (tests/fixtures/ops/).

gpugraph never imports TensorFlow; this script is (with make_fixtures.py) the
only place that does.  It deletes and rewrites ``tests/fixtures/ops/``.  Run
it from anywhere with the pinned TF environment::

    /work/tfenv/bin/python scripts/make_op_fixtures.py            # all families
    /work/tfenv/bin/python scripts/make_op_fixtures.py math nn    # only these

Format
======

For every op family ``<family>`` (``math``, ``nn``, ``array``, ``reduce``,
``optim``, ``random``, ``segment``, ``models``, ``layout``,
``sparse_segment``, ``conv3d``, ``linalg``) there are three files:

``<family>.pb``
    One serialized ``GraphDef`` (``SerializeToString(deterministic=True)``)
    holding all of the family's cases.  Case ``i`` lives in the name scope
    ``c<i>/`` (c0, c1, ...):

    * inputs are ``Placeholder`` nodes ``c<i>/in<j>`` (j = 0, 1, ... in the
      order of the op's input arguments; a list input such as AddN's
      ``inputs`` contributes one placeholder per element).  EVERY tensor
      input is a placeholder, including shape/axis/perm/paddings inputs, so
      nothing is constant-folded.  The placeholder's ``shape`` attr is the
      exact shape of the fed array, except in ``"check": "error"`` cases,
      where placeholders have unknown rank so that graph construction does
      not reject what only fails at run time.
    * the op under test is the single node ``c<i>/op``, built with
      ``tf.raw_ops.<Op>(...)`` (so its attrs are exactly the raw op's,
      defaults included); its outputs are ``c<i>/op:<k>``.
    * stateful cases (family ``optim``: optimizer, scatter and
      strided-slice-assign ops) additionally have variable nodes
      ``c<i>/var<j>``: ``VariableV2`` for the ``Apply*``, ``SparseApply*``,
      ``Scatter*``/``ScatterNd*`` ops and ``StridedSliceAssign``, and
      ``VarHandleOp`` for the ``Resource*`` ops, each with TF's usual
      initializer sub-graph (``c<i>/var<j>/Assign`` from a ``Const``; the
      ``Const`` holds the same initial value as the npz).

``<family>.npz``
    ``c<i>/in<j>``: the arrays fed to the placeholders.
    ``c<i>/out<k>``: TF's value of ``c<i>/op:<k>`` (run in a
    ``tf.compat.v1.Session`` with one intra/inter-op thread, oneDNN off and
    Grappler/graph optimizations off, feeding exactly the ``in`` arrays).
    For ``optim`` cases: ``c<i>/var<j>`` is the initial value of variable j
    and ``c<i>/out<j>`` its value after running ``c<i>/op`` once.
    Outputs named in ``skip_outputs`` may be absent (see below); error cases
    have no ``out`` arrays.

``<family>.json``
    A list with one record per case, in case order::

        {"case": "c3", "op": "Conv2DBackpropFilter", "desc": "...",
         "inputs": 3, "outputs": 1, "rtol": 1e-05, "atol": 1e-06,
         "check": "values"}

    * ``desc``: free text; after ``;`` it lists the op's arguments: arrays
      as dtype and shape (``x=f32[2,3]``), small int/bool vectors and
      scalars as dtype and value (``axis=i32:[0,-1]``, ``axis=i32:1``),
      optimizer variables as ``var=var:f32[2,3]``, then the attrs passed.
    * ``inputs``: number of placeholders ``c<i>/in<j>``.
    * ``outputs``: number of outputs of ``c<i>/op`` (for optim: number of
      state variables, see ``state_out``).
    * ``rtol``/``atol``: for ``np.testing.assert_allclose``-style checks,
      ``|got - want| <= atol + rtol * |want|``.  Defaults by the loosest
      floating output dtype: float16 1e-3/1e-3, float32 1e-5/1e-6, float64
      1e-12/1e-12 (complex64/complex128 as float32/float64, applied to
      the real and imaginary parts), integer/bool outputs 0/0 (exact);
      also 0/0 for ops whose
      result is exactly determined (selection/data movement such as
      Maximum, Relu, MaxPool, Max, Cast, Round, Reshape, GatherV2, Pad; see
      EXACT_OPS below).  A case that needs more says why in ``desc``.  NaN
      must match NaN, +-inf must match exactly.
    * ``check``:
        - ``"values"``: compare every recorded output's dtype, shape and
          values.
        - ``"shape_dtype"``: random ops; compare dtype and shape only.  The
          recorded values are TF's for the given seeds (gpugraph's generator
          need not reproduce them).  Extra keys: ``"range": [lo, hi]``
          (RandomUniform: lo <= x < hi; RandomUniformInt: lo <= x < hi;
          TruncatedNormal: lo <= x <= hi, [-2, 2]; RandomStandardNormal has
          none).  Cases with a large sample (shape [10000]) also carry
          ``"mean"``/``"std"`` (TF's sample statistics) and
          ``"expected_mean"``/``"expected_std"`` (the distribution's), for a
          statistical test with a loose tolerance.
        - ``"error"``: TF raised while running; extra keys ``"error"`` (the
          exception class name, e.g. ``"InvalidArgumentError"``) and
          ``"message"`` (TF's message without the node/trace decoration).
          ``rtol``/``atol`` are present but meaningless there.
    * ``skip_outputs`` (optional): output indices whose values are
      implementation-specific (FusedBatchNorm reserve spaces); don't compare
      them.  They are in the npz only when TF's values are deterministic.
    * optim only: ``"state"``: the variable node names (also the npz keys of
      their initial values), ``"state_out"``: npz keys of their values after
      one application (same order), ``"scalars"``: the placeholder names
      (hyper-parameters, gradient, indices, scatter updates, slice
      begin/end/strides/value: every placeholder), ``"resource"``: true for
      ``Resource*`` cases.  Stateful cases are never ``"check": "error"``
      (no out-of-range scatter cases).

The ``Apply*``/``SparseApply*``/``Scatter*``/``StridedSliceAssign`` op's own
ref output (== the updated ``var``/``ref``) is not recorded separately;
``Resource*`` ops have no outputs.

Notes on TF 2.21 CPU behaviour the cases rely on or avoid
---------------------------------------------------------
* FusedBatchNormV3, training: reserve_space_1 == batch mean,
  reserve_space_2 == biased (1/N) batch variance (not an inverse std, unlike
  cuDNN), reserve_space_3 == a float32 scalar 0.0; batch_variance (output
  2) is the Bessel-corrected N/(N-1) variance.  Inference: outputs 1/2 pass
  the mean/variance inputs through and reserve_space_1/2 are left
  uninitialized (so they are not stored).  FusedBatchNormGradV3 outputs 3/4
  are empty [0] tensors.  The script asserts the FusedBatchNormV3 claims.
* NCHW is rejected on CPU by Conv2D (UnimplementedError), the Conv2D
  backprops, MaxPool and AvgPool, and the Conv2D backprops reject
  dilations > 1; none of those are covered.  BiasAdd/BiasAddGrad and
  FusedBatchNorm*V3 do support NCHW (BiasAdd NCHW needs rank >= 3).
* tf.raw_ops.Round on int32/int64 returns zeros, so only float Round is
  covered.  RealDiv and Reciprocal have no integer CPU kernels.
* Empty reductions: Sum 0, Prod 1, Max -inf/INT_MIN, Min +inf/INT_MAX,
  float Mean NaN, int Mean 0.
* Equal/NotEqual with incompatible_shape_error=False and non-broadcastable
  shapes return a scalar False/True.
* Out-of-range GatherV2 indices / sparse labels raise on CPU (GPU kernels
  return zeros / NaN instead).
* SparseApply* cases use unique indices (TF applies duplicates one after
  the other; TF's optimizers deduplicate first).  Scatter* with duplicate
  indices applies every update.  Integer ScatterDiv truncates toward zero.
* UnsortedSegmentMax/Min fill empty segments with the dtype's lowest/highest
  finite value (float: -+FLT_MAX, not -+inf), UnsortedSegmentProd with 1,
  Sum with 0; negative segment ids are dropped.  Unique returns values in
  first-occurrence order.  TopKV2 breaks ties by the lower index.  InTopKV2
  counts strictly greater predictions (ties at the boundary are in the top
  k) and is false for a whole row if ANY of its predictions is non-finite
  or the target is out of range.
* DepthwiseConv2dNative and its backprops reject NCHW on CPU
  (UnimplementedError), the forward op rejects dilations > 1
  (UnimplementedError) and unequal row/column strides
  (InvalidArgumentError); the backprops accept dilations but silently
  ignore them (result == undilated), so no dilation case is recorded.
* LRN: sqr_sum = sum of x^2 over channels |c' - c| <= depth_radius,
  out = x / (bias + alpha * sqr_sum)^beta (alpha not divided by the window
  size).  LRN/LRNGrad have no float64 kernels.
* ResizeBilinear always outputs float32 (any input dtype);
  ResizeBilinearGrad outputs original_image's dtype from float32 grads.
  align_corners=True with half_pixel_centers=True is rejected
  (InvalidArgumentError) by every resize op except
  ResizeNearestNeighborGrad (not covered).  ResizeNearestNeighbor's source
  index: floor(i * scale) (scale = in/out), align_corners: roundf(i *
  scale) (half away from zero, scale = (in-1)/(out-1)), half_pixel_centers:
  floor((i + 0.5) * scale), clamped to [0, in-1]; scales are float32.
* Out-of-range GatherNd indices raise on CPU (GPU returns zeros).  Erfc is
  computed directly (accurate in the positive tail), half Erf/Erfc are the
  correctly rounded values.
* DepthToSpace/SpaceToDepth have no CPU kernel for NCHW (nor NCHW_VECT_C):
  the node cannot be placed (NotFoundError), so only NHWC is covered.
  SpaceToBatchND/BatchToSpaceND's shape functions reject a block_shape of
  unknown rank at graph construction, so they have no error case.
* SparseToDense with validate_indices=False still raises on out-of-range
  indices (a different message) and lets the last of repeated indices win
  (not covered).  SparseTensorDenseMatMul takes unsorted indices, adds up
  duplicates and raises on out-of-range ones.  Bincount drops values >=
  size and raises on negative ones.  MirrorPadGrad REFLECT needs paddings
  < the output dim, SYMMETRIC paddings <= it.
* SparseSegment{Sum,Mean,SqrtN}[WithNumSegments]: segment ids must be
  sorted (not necessarily contiguous or starting at 0; empty segments are
  0), out-of-range indices (negative too) and ids >= num_segments raise;
  without num_segments the output has segment_ids[-1] + 1 rows.  The *Grad
  ops scatter-add grad[segment_ids[k]] (/ count or sqrt(count)) into row
  indices[k] of an [output_dim0, ...] zero tensor and raise on indices >=
  output_dim0.  SparseSegment*GradV2 (TF 2.21; embedding_lookup_sparse's
  fast path on a ref table) return only the rows of the sorted unique
  indices plus those indices.  SparseFillEmptyRows accepts rows out of
  order: the output is stably sorted by row (entries of a row keep their
  input order) and reverse_index_map follows; a row index >=
  dense_shape[0] raises.
* Conv3D, Conv3DBackpropInputV2 and Conv3DBackpropFilterV2 support only
  NDHWC on CPU and only dilations 1 (both InvalidArgumentError, the forward
  op included), and no EXPLICIT padding; grouped Conv3D (input depth a
  multiple of the filter's in_channels) is rejected on CPU.
  Conv3DBackpropInputV2 takes int32 or int64 input_sizes,
  Conv3DBackpropFilterV2 int32 filter_sizes only.  A VALID filter or window
  deeper than the input is rejected by the shape functions at graph
  construction (eager mode gives an empty output).
* MaxPool3D/AvgPool3D and their grads have no float16/float64 CPU kernels
  (float32 only is covered), and support NDHWC only; AvgPool3DGrad takes int32 orig_input_shape only
  and does not check grad's shape.  MaxPool3DGrad gives a window's gradient
  to EVERY input equal to orig_output (all tied maxima, summed over
  windows; MaxPoolGrad picks one).  AvgPool3D SAME divides edge windows by
  their number of valid elements (AvgPool3DGrad spreads likewise).
* linalg: Cholesky, SelfAdjointEigV2 and MatrixTriangularSolve read only
  one triangle (Cholesky/eig: the lower; the solve: the ``lower`` one), the
  rest may hold anything.  TF 2.21 CPU's Cholesky does NOT raise for a
  matrix that is not positive definite: it returns NaN in the lower
  triangle and leaves the upper one uninitialized (not covered).
  MatrixInverse/MatrixSolve of a singular matrix raise.  Qr follows
  LAPACK's Householder convention (geqrf/orgqr, as numpy.linalg.qr: the
  same Q and R, also Q's extra full_matrices columns): R's diagonal may
  be negative.  Svd with
  compute_uv=False and SelfAdjointEigV2 with compute_v=False leave u/v
  (v) uninitialized (scalars); only singular values/eigenvalues are
  stored.  An exactly singular matrix has determinant -0.0 and
  LogMatrixDeterminant sign -0.0, log -inf; 0x0 matrices have
  determinant 1.  MatrixTriangularSolve broadcasts batch dims,
  MatrixSolve does not.  MatrixDiagPartV3 with a band k = [d, d] drops
  the diagonal axis (as scalar k = d).  ApproximateEqual is
  |x - y| <= tolerance (the op doc says <) and needs equal shapes.
  EuclideanNorm of ints truncates the square root.  RFFT/RFFT2D raise
  when fft_length exceeds the input (tf.signal pads in Python); IRFFT
  reads fft_length//2 + 1 entries and, like numpy, ignores the imaginary
  parts of the DC/Nyquist terms.  Xlogy/Xdivy/Xlog1py are 0 wherever
  x == 0, even for y = 0, +-inf or NaN.
* ScatterNd*: the shape function reads rank-1 indices [d] as ONE index of
  depth d, the kernel as d row indices ([d, 1]), so no fully shaped graph
  with rank-1 indices runs; indices always have rank >= 2 here.
  StridedSliceAssign (ref and resource) broadcasts value to the slice.

Determinism: fixed numpy seeds (one per family), fixed op seeds for random
ops, single-threaded sessions, no graph optimizations, npz written by
``make_fixtures.save_npz`` (fixed zip timestamps).  Running twice gives
byte-identical files.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import save_npz  # noqa: E402

# make_fixtures disables v2 behavior on import; this script builds its graphs
# explicitly and computes derived inputs eagerly, so turn v2 behavior back on.
tf.compat.v1.enable_v2_behavior()
tf.get_logger().setLevel("ERROR")
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "ops"
RAW = tf.raw_ops

F16, F32, F64 = np.float16, np.float32, np.float64
I32, I64, BOOL = np.int32, np.int64, np.bool_

TOL = {F16: (1e-3, 1e-3), F32: (1e-5, 1e-6), F64: (1e-12, 1e-12)}

# Ops whose results are exactly determined (selection, data movement, exact
# IEEE conversions): checked with rtol = atol = 0 whatever the dtype.
EXACT_OPS = {
    "Cast", "Floor", "Ceil", "Round", "Abs", "Neg", "Sign", "Maximum",
    "Minimum", "Select", "SelectV2", "Relu", "Relu6", "ReluGrad",
    "Relu6Grad", "MaxPool", "Max", "Min",
    "Reshape", "Squeeze", "ExpandDims", "Transpose", "ConcatV2", "Split",
    "SplitV", "Slice", "StridedSlice", "StridedSliceGrad", "Pack", "Unpack",
    "Tile", "Fill", "BroadcastTo", "GatherV2", "OneHot", "Pad", "PadV2",
    "ZerosLike", "OnesLike", "StopGradient", "PreventGradient", "Identity",
    "IdentityN", "Snapshot", "DynamicStitch",
    "ScatterUpdate", "ScatterMax", "ScatterMin", "ResourceScatterUpdate",
    "Unique", "UniqueWithCounts", "UnsortedSegmentMax", "UnsortedSegmentMin",
    "TopKV2",
    "GatherNd", "TensorScatterUpdate", "MatrixBandPart", "MaxPoolV2",
    "ResizeNearestNeighbor",
    "DynamicPartition", "SparseToDense", "ListDiff", "DepthToSpace",
    "SpaceToDepth", "SpaceToBatchND", "BatchToSpaceND",
    "SparseFillEmptyRows", "SparseReshape", "MaxPool3D",
    "ReverseSequence", "Diag", "DiagPart", "MatrixDiag", "MatrixDiagPart",
    "MatrixSetDiag", "MatrixDiagV3", "MatrixDiagPartV3", "MatrixSetDiagV3",
    "Roll", "Reverse", "Complex",
    "ScatterNdUpdate", "ResourceScatterNdUpdate", "StridedSliceAssign",
    "ResourceStridedSliceAssign",
}
SHORT = {"float16": "f16", "float32": "f32", "float64": "f64", "int32": "i32",
         "int64": "i64", "bool": "bool", "complex64": "c64",
         "complex128": "c128"}
# complex outputs take the default tolerances of their parts' dtype
REAL_PART = {np.dtype(np.complex64): F32, np.dtype(np.complex128): F64}


def i32(x):
    return np.array(x, I32)


def i64(x):
    return np.array(x, I64)


def f32(x):
    return np.array(x, F32)


def f64(x):
    return np.array(x, F64)


def f16(x):
    return np.array(x, F16)


def bools(x):
    return np.array(x, BOOL)


def ev(op, **kwargs):
    """Run a raw op eagerly (for derived inputs) and return numpy value(s).

    Arrays are converted with their own dtype first: raw ops fed numpy
    arrays directly may reuse the dtype of an earlier call (seen with
    MaxPool: float32, then float64 input -> float32 output).
    """
    kwargs = {k: tf.constant(v, dtype=tf.as_dtype(v.dtype))
              if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    out = getattr(RAW, op)(**kwargs)
    if isinstance(out, (list, tuple)):
        return [np.asarray(t.numpy()) for t in out]
    return np.asarray(out.numpy())


class State:
    """Marks an optimizer input that is a variable (initial value)."""

    def __init__(self, value):
        self.value = np.asarray(value)


class Case:
    def __init__(self, op, desc, args, opts):
        self.op, self.desc, self.args, self.opts = op, desc, args, opts


def is_input(v):
    if isinstance(v, (np.ndarray, State)):
        return True
    return (isinstance(v, list) and len(v) > 0
            and all(isinstance(e, np.ndarray) for e in v))


class Family:
    def __init__(self, name, seed):
        self.name = name
        self.rng = np.random.RandomState(seed)
        self.cases = []

    # ---- random inputs ------------------------------------------------
    def u(self, shape, dt=F32, lo=-1.0, hi=1.0):
        return np.asarray(self.rng.uniform(lo, hi, shape), dt)

    def n(self, shape, dt=F32, scale=1.0):
        return np.asarray(self.rng.standard_normal(shape) * scale, dt)

    def pos(self, shape, dt=F32, lo=0.5, hi=2.0):
        return np.asarray(self.rng.uniform(lo, hi, shape), dt)

    def nz(self, shape, dt=F32):
        """Nonzero values with magnitude in [0.5, 2) and random sign."""
        sign = self.rng.choice([-1.0, 1.0], size=shape)
        return np.asarray(sign * self.rng.uniform(0.5, 2.0, shape), dt)

    def ri(self, shape, lo, hi, dt=I32):
        return np.asarray(self.rng.randint(lo, hi, size=shape), dt)

    def b(self, shape):
        return np.asarray(self.rng.uniform(size=shape) < 0.5)

    # ---- case table -----------------------------------------------------
    def add(self, op, desc="", **kwargs):
        """Inputs are numpy arrays (or lists of them, or State); other kwargs
        not starting with '_' are attrs; '_x' kwargs are options."""
        opts = {k[1:]: kwargs.pop(k) for k in list(kwargs) if k.startswith("_")}
        for k, v in kwargs.items():  # attrs must not become Const inputs
            assert is_input(v) or isinstance(
                v, (bool, int, float, str, list, tf.dtypes.DType)), (op, k, v)
        self.cases.append(Case(op, desc, kwargs, opts))


def fmt_arr(a):
    """'f32[2,3]': dtype and shape."""
    return "%s[%s]" % (SHORT.get(a.dtype.name, a.dtype.name),
                       ",".join(str(d) for d in a.shape))


def fmt_value(a):
    """'i32:[4,-1]' or 'i32:0': dtype and (small) value."""
    text = json.dumps(a.tolist(), separators=(",", ":"))
    return "%s:%s" % (SHORT.get(a.dtype.name, a.dtype.name), text)


def auto_desc(case):
    parts = []
    for k, v in case.args.items():
        if isinstance(v, State):
            parts.append("%s=var:%s" % (k, fmt_arr(v.value)))
        elif isinstance(v, np.ndarray):
            if v.size <= 4 and v.dtype.kind in "iub" and v.ndim <= 1:
                parts.append("%s=%s" % (k, fmt_value(v)))
            else:
                parts.append("%s=%s" % (k, fmt_arr(v)))
        elif is_input(v):
            parts.append("%s=[%s]" % (k, ",".join(fmt_arr(e) for e in v)))
        else:
            if isinstance(v, tf.dtypes.DType):
                v = v.name
            parts.append("%s=%s" % (k, v))
    text = " ".join(parts)
    return "%s; %s" % (case.desc, text) if case.desc else text


# ---------------------------------------------------------------------------
# math
# ---------------------------------------------------------------------------

BROADCAST_SHAPES = [([2, 3], [2, 3]), ([2, 3], [3]), ([2, 1, 4], [3, 1]),
                    ([], [2, 3]), ([2, 3], []), ([0, 3], [3]),
                    ([3, 0], [3, 1])]


def build_math(F):
    for op in ["AddV2", "Add", "Sub", "Mul"]:
        for sa, sb in BROADCAST_SHAPES:
            F.add(op, x=F.u(sa), y=F.u(sb))
        F.add(op, x=F.ri([2, 3], -9, 9), y=F.ri([3], -9, 9))
        F.add(op, x=F.ri([2, 1], -9, 9, I64), y=F.ri([1, 3], -9, 9, I64))
        F.add(op, x=F.u([2, 3], F64), y=F.u([2, 1], F64))
        F.add(op, x=F.u([2, 3], F16), y=F.u([3], F16))
    for sa, sb in BROADCAST_SHAPES[:5]:
        F.add("RealDiv", x=F.u(sa), y=F.nz(sb))
    F.add("RealDiv", x=F.u([2, 3], F64), y=F.nz([3], F64))
    F.add("RealDiv", x=F.u([2, 3], F16), y=F.nz([3], F16))
    F.add("Div", x=F.u([2, 3]), y=F.nz([3]))
    F.add("Div", x=F.u([2, 3], F64), y=F.nz([2, 1], F64))
    F.add("Div", "int division truncates toward zero",
          x=i32([7, -7, 7, -7, 0, 9]), y=i32([2, 2, -2, -2, 3, 3]))
    F.add("Div", "int64 truncation, broadcast",
          x=i64([[7, -7, 5], [-9, 9, 1]]), y=i64([-4]))
    ints_x = [7, -7, 7, -7, 0, 6, -6, 1]
    ints_y = [2, 2, -2, -2, 3, 3, 4, -4]
    for op in ["FloorDiv", "FloorMod"]:
        F.add(op, "negative operands", x=i32(ints_x), y=i32(ints_y))
        F.add(op, "negative operands", x=i64(ints_x), y=i64(ints_y))
        F.add(op, "negative float operands",
              x=f32([7.5, -7.5, 7.5, -7.5, 0.0, 6.0, -6.0, 1.25]),
              y=f32([2.0, 2.0, -2.0, -2.0, 3.0, 3.0, 4.0, -0.5]))
        F.add(op, x=F.u([2, 3], F32, -5, 5), y=F.nz([3]))
        F.add(op, x=F.u([2, 3], F64, -5, 5), y=F.nz([2, 1], F64))
        F.add(op, x=F.ri([2, 3], -20, 20), y=i32([3]))
    F.add("Pow", "positive base", x=F.pos([2, 3]), y=F.u([2, 3], F32, -2, 2))
    F.add("Pow", "negative base, integral exponents",
          x=f32([-2.0, -1.5, -3.0, 2.0]), y=f32([3.0, 2.0, 0.0, -1.0]))
    F.add("Pow", x=F.pos([2, 3], F64), y=F.u([3], F64, -2, 2))
    F.add("Pow", x=F.pos([3], F16), y=F.u([3], F16, -2, 2))
    F.add("Pow", "non-negative int exponents",
          x=i32([[2, -3, 0], [1, 5, -1]]), y=i32([3, 2, 0]))
    F.add("Pow", x=i64([2, -3, 4]), y=i64([[0], [3]]))
    for op in ["Maximum", "Minimum"]:
        F.add(op, x=F.u([2, 3]), y=F.u([2, 3]))
        F.add(op, x=F.u([2, 1, 4]), y=F.u([3, 1]))
        F.add(op, x=F.u([2, 3]), y=f32(0.0))
        F.add(op, x=F.ri([2, 3], -5, 5), y=F.ri([3], -5, 5))
        F.add(op, x=F.ri([4], -5, 5, I64), y=F.ri([4], -5, 5, I64))
        F.add(op, x=F.u([2, 3], F64), y=F.u([3], F64))
        F.add(op, x=F.u([2, 3], F16), y=F.u([3], F16))
        F.add(op, x=F.u([0, 3]), y=F.u([3]))
    F.add("SquaredDifference", x=F.u([2, 3]), y=F.u([2, 3]))
    F.add("SquaredDifference", x=F.u([2, 1, 4]), y=F.u([3, 1]))
    F.add("SquaredDifference", x=F.u([2, 3], F64), y=F.u([], F64))
    F.add("SquaredDifference", x=F.ri([2, 3], -9, 9), y=F.ri([3], -9, 9))
    F.add("SquaredDifference", x=F.ri([3], -9, 9, I64),
          y=F.ri([3], -9, 9, I64))

    # unary
    for dt in (F32, F64, F16):
        F.add("Square", x=F.u([2, 3], dt, -3, 3))
    F.add("Square", x=F.ri([2, 3], -9, 9))
    F.add("Square", x=F.ri([4], -9, 9, I64))
    F.add("Square", x=F.u([0, 2]))
    for op in ["Sqrt", "Rsqrt", "Log"]:
        for dt in (F32, F64, F16):
            F.add(op, x=F.pos([2, 3], dt, 0.1, 5.0))
        F.add(op, x=F.pos([0, 3]))
    F.add("Sqrt", "zero", x=f32([0.0, 1.0, 4.0]))
    F.add("Log", "zero -> -inf", x=f32([0.0, 1.0, 2.0]))
    F.add("Rsqrt", "zero -> inf", x=f32([0.0, 1.0, 4.0]))
    for op in ["Exp", "Tanh", "Sigmoid", "Expm1"]:
        for dt in (F32, F64, F16):
            F.add(op, x=F.u([2, 3], dt, -3, 3))
        F.add(op, "large magnitudes",
              x=f32([-30.0, -10.0, -1e-3, 0.0, 1e-3, 10.0, 30.0]))
        F.add(op, x=F.u([0]))
    F.add("Log1p", x=F.u([2, 3], F32, -0.9, 3))
    F.add("Log1p", x=F.u([2, 3], F64, -0.9, 3))
    F.add("Log1p", "tiny values", x=f32([-1e-6, 0.0, 1e-7, 1e-3]))
    for op in ["Abs", "Neg", "Sign"]:
        for dt in (F32, F64, F16):
            F.add(op, x=F.u([2, 3], dt, -3, 3))
        F.add(op, x=F.ri([2, 3], -5, 5))
        F.add(op, x=F.ri([5], -5, 5, I64))
    F.add("Sign", "zeros", x=f32([-2.0, -0.0, 0.0, 3.0]))
    F.add("Abs", x=F.u([0, 2]))
    for op in ["Reciprocal", "Inv"]:
        for dt in (F32, F64, F16):
            F.add(op, x=F.nz([2, 3], dt))
    F.add("Reciprocal", "zero -> inf", x=f32([0.0, 2.0, -4.0]))
    for op in ["Floor", "Ceil", "Round"]:
        F.add(op, "half-integers and negatives",
              x=f32([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -1.7, 1.2, 3.0]))
        F.add(op, x=F.u([2, 3], F64, -5, 5))
        F.add(op, x=f16([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.3]))
    # No int Round cases: tf.raw_ops.Round on int32/int64 returns zeros on
    # TF 2.21 CPU (tf.math.round skips the op for ints).

    # unary grads: (y, dy)
    for dt in (F32, F64, F16):
        y = F.pos([2, 3], dt, 0.5, 2.0)
        F.add("SqrtGrad", "dy*0.5/y", y=y, dy=F.u([2, 3], dt))
        F.add("RsqrtGrad", "dy*-0.5*y^3", y=y, dy=F.u([2, 3], dt))
        F.add("ReciprocalGrad", "-dy*y^2", y=F.nz([2, 3], dt),
              dy=F.u([2, 3], dt))
        F.add("InvGrad", "-dy*y^2", y=F.nz([2, 3], dt), dy=F.u([2, 3], dt))
        F.add("TanhGrad", "dy*(1-y^2)", y=F.u([2, 3], dt),
              dy=F.u([2, 3], dt))
        F.add("SigmoidGrad", "dy*y*(1-y)", y=F.u([2, 3], dt, 0, 1),
              dy=F.u([2, 3], dt))

    # comparisons (small ints cast to float so that ties occur)
    def ties(shape, dt):
        return F.ri(shape, -2, 3, I64).astype(dt)

    for op in ["Equal", "NotEqual", "Less", "LessEqual", "Greater",
               "GreaterEqual"]:
        F.add(op, x=ties([2, 3], F32), y=ties([2, 3], F32))
        F.add(op, x=ties([2, 1, 4], F32), y=ties([3, 1], F32))
        F.add(op, x=ties([2, 3], F32), y=f32(0.0))
        F.add(op, x=ties([2, 3], I32), y=ties([3], I32))
        F.add(op, x=ties([4], I64), y=ties([4], I64))
        F.add(op, x=ties([2, 3], F64), y=ties([3], F64))
        F.add(op, x=ties([2, 3], F16), y=ties([3], F16))
        F.add(op, x=ties([0, 3], F32), y=ties([3], F32))
    for op in ["Equal", "NotEqual"]:
        F.add(op, x=F.b([2, 3]), y=F.b([3]))
        F.add(op, "incompatible shapes -> scalar result",
              x=ties([2, 3], F32), y=ties([4], F32),
              incompatible_shape_error=False)
        F.add(op, "compatible shapes with incompatible_shape_error=False",
              x=ties([2, 3], F32), y=ties([3], F32),
              incompatible_shape_error=False)
        F.add(op, "NaN != NaN", x=f32([np.nan, 1.0, np.nan]),
              y=f32([np.nan, 1.0, 0.0]))
    for op in ["LogicalAnd", "LogicalOr"]:
        F.add(op, x=F.b([2, 3]), y=F.b([2, 3]))
        F.add(op, x=F.b([2, 1, 4]), y=F.b([3, 1]))
        F.add(op, x=F.b([2, 3]), y=bools(True))
        F.add(op, x=F.b([0, 3]), y=F.b([3]))
    F.add("LogicalNot", x=F.b([2, 3]))
    F.add("LogicalNot", x=bools(False))

    # Select / SelectV2
    F.add("Select", "rank-equal", condition=F.b([2, 3]), x=F.u([2, 3]),
          y=F.u([2, 3]))
    F.add("Select", "vector condition picks rows", condition=F.b([3]),
          x=F.u([3, 2]), y=F.u([3, 2]))
    F.add("Select", "vector condition picks rows, rank 3",
          condition=F.b([2]), x=F.ri([2, 2, 2], -5, 5),
          y=F.ri([2, 2, 2], -5, 5))
    F.add("Select", "scalar condition", condition=bools(True),
          x=F.u([2, 3], F64), y=F.u([2, 3], F64))
    F.add("Select", "scalar operands", condition=bools(False),
          x=f32(1.0), y=f32(2.0))
    F.add("SelectV2", "rank-equal", condition=F.b([2, 3]), t=F.u([2, 3]),
          e=F.u([2, 3]))
    F.add("SelectV2", "broadcast condition [3]", condition=F.b([3]),
          t=F.u([2, 3]), e=F.u([2, 3]))
    F.add("SelectV2", "broadcast all three", condition=F.b([2, 1, 1]),
          t=F.u([3, 1]), e=F.u([4]))
    F.add("SelectV2", "scalar else", condition=F.b([2, 3]),
          t=F.ri([2, 3], -5, 5, I64), e=i64(0))
    F.add("SelectV2", "float16", condition=F.b([3]), t=F.u([2, 3], F16),
          e=F.u([1, 3], F16))
    F.add("SelectV2", "empty", condition=F.b([0, 3]), t=F.u([3]),
          e=F.u([0, 1]))

    # Cast
    vals = f32([-2.7, -1.5, -0.5, -0.0, 0.0, 0.4, 1.5, 2.9, 100.25])
    F.add("Cast", "float->int truncates toward zero", x=vals, DstT=tf.int32)
    F.add("Cast", "float->int64", x=vals, DstT=tf.int64)
    F.add("Cast", "double->int", x=vals.astype(F64), DstT=tf.int32)
    F.add("Cast", "float->bool (nonzero)", x=vals, DstT=tf.bool)
    F.add("Cast", x=vals, DstT=tf.float64)
    F.add("Cast", x=F.u([2, 3], F64, -5, 5), DstT=tf.float32)
    F.add("Cast", x=F.u([2, 3], F32, -5, 5), DstT=tf.float16)
    F.add("Cast", x=F.u([2, 3], F16, -5, 5), DstT=tf.float32)
    F.add("Cast", x=F.ri([2, 3], -100, 100), DstT=tf.float32)
    F.add("Cast", x=F.ri([2, 3], -100, 100), DstT=tf.int64)
    F.add("Cast", "small values", x=F.ri([2, 3], -100, 100, I64),
          DstT=tf.int32)
    F.add("Cast", x=F.ri([2, 3], -100, 100, I64), DstT=tf.float64)
    F.add("Cast", x=i32([-2, 0, 1, 5]), DstT=tf.bool)
    F.add("Cast", x=bools([True, False, True]), DstT=tf.float32)
    F.add("Cast", x=bools([True, False, True]), DstT=tf.int32)
    F.add("Cast", x=i32([-2, 0, 1, 5]), DstT=tf.float16)
    trunc = f32([1.0009766, 1.0014648, 1.0019531, -1.0014648, 0.33333334,
                 2049.0])
    F.add("Cast", "f32->f16 rounds to nearest even", x=trunc,
          DstT=tf.float16, Truncate=False)
    F.add("Cast", "f32->f16 Truncate=True drops mantissa bits", x=trunc,
          DstT=tf.float16, Truncate=True)
    F.add("Cast", "same type", x=F.u([3]), DstT=tf.float32)
    F.add("Cast", "empty", x=F.u([0, 2]), DstT=tf.int32)

    # AddN
    F.add("AddN", inputs=[F.u([2, 3])])
    F.add("AddN", inputs=[F.u([2, 3]), F.u([2, 3])])
    F.add("AddN", inputs=[F.u([2, 3]), F.u([2, 3]), F.u([2, 3])])
    F.add("AddN", inputs=[F.ri([4], -9, 9), F.ri([4], -9, 9)])
    F.add("AddN", inputs=[F.ri([4], -9, 9, I64), F.ri([4], -9, 9, I64)])
    F.add("AddN", inputs=[F.u([3], F64), F.u([3], F64), F.u([3], F64),
                          F.u([3], F64)])
    F.add("AddN", inputs=[F.u([3], F16), F.u([3], F16)])
    F.add("AddN", inputs=[F.u([]), F.u([])])

    # MatMul
    mm_tol = dict(_atol=1e-5)
    F.add("MatMul", "(atol 1e-5: dot-product summation order)",
          a=F.u([2, 3]), b=F.u([3, 4]), **mm_tol)
    F.add("MatMul", "(atol 1e-5: summation order)", a=F.u([3, 2]),
          b=F.u([3, 4]), transpose_a=True, **mm_tol)
    F.add("MatMul", "(atol 1e-5: summation order)", a=F.u([2, 3]),
          b=F.u([4, 3]), transpose_b=True, **mm_tol)
    F.add("MatMul", "(atol 1e-5: summation order)", a=F.u([3, 2]),
          b=F.u([4, 3]), transpose_a=True, transpose_b=True, **mm_tol)
    F.add("MatMul", "(atol 1e-5: summation order)", a=F.u([5, 7]),
          b=F.u([7, 6]), **mm_tol)
    F.add("MatMul", a=F.u([2, 3], F64), b=F.u([3, 4], F64))
    F.add("MatMul", a=F.u([3, 2], F64), b=F.u([4, 3], F64),
          transpose_a=True, transpose_b=True)
    F.add("MatMul", a=F.ri([2, 3], -5, 5), b=F.ri([3, 2], -5, 5))
    F.add("MatMul", "(f16 rtol/atol 1e-2: accumulation in half)",
          a=F.u([2, 3], F16), b=F.u([3, 4], F16), _rtol=1e-2, _atol=1e-2)
    F.add("MatMul", "empty inner dimension -> zeros", a=F.u([2, 0]),
          b=F.u([0, 3]))
    F.add("MatMul", "empty outer dimension", a=F.u([0, 3]), b=F.u([3, 2]))

    # BatchMatMulV2
    F.add("BatchMatMulV2", "(atol 1e-5: summation order)",
          x=F.u([2, 3, 4]), y=F.u([2, 4, 5]), **mm_tol)
    F.add("BatchMatMulV2", "broadcast batch dims (atol 1e-5)",
          x=F.u([2, 1, 3, 4]), y=F.u([3, 4, 5]), **mm_tol)
    F.add("BatchMatMulV2", "broadcast batch dims (atol 1e-5)",
          x=F.u([1, 3, 4]), y=F.u([2, 4, 2]), **mm_tol)
    F.add("BatchMatMulV2", "rank-2 x rank-3 (atol 1e-5)",
          x=F.u([3, 4]), y=F.u([2, 4, 2]), **mm_tol)
    F.add("BatchMatMulV2", "(atol 1e-5)", x=F.u([2, 4, 3]),
          y=F.u([2, 4, 5]), adj_x=True, **mm_tol)
    F.add("BatchMatMulV2", "(atol 1e-5)", x=F.u([2, 3, 4]),
          y=F.u([2, 5, 4]), adj_y=True, **mm_tol)
    F.add("BatchMatMulV2", "broadcast, both adjoint (atol 1e-5)",
          x=F.u([2, 1, 4, 3]), y=F.u([1, 3, 5, 4]), adj_x=True,
          adj_y=True, **mm_tol)
    F.add("BatchMatMulV2", x=F.u([2, 2, 3], F64), y=F.u([3, 4], F64))
    F.add("BatchMatMulV2", x=F.ri([2, 2, 3], -5, 5),
          y=F.ri([2, 3, 2], -5, 5))
    F.add("BatchMatMulV2", "empty batch", x=F.u([0, 2, 3]),
          y=F.u([3, 4]))

    # run-time errors (placeholders of unknown rank)
    F.add("MatMul", "inner dimension mismatch fed at run time",
          a=F.u([2, 3]), b=F.u([4, 5]), _error=True)
    F.add("AddV2", "incompatible broadcast fed at run time",
          x=F.u([2, 3]), y=F.u([4]), _error=True)
    F.add("BatchMatMulV2", "batch dims not broadcastable",
          x=F.u([2, 3, 4]), y=F.u([3, 4, 5]), _error=True)


# ---------------------------------------------------------------------------
# nn
# ---------------------------------------------------------------------------

def conv_out(x, w, **attrs):
    return ev("Conv2D", input=x, filter=w, **attrs)


def build_nn(F):
    special = f32([-3.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 5.9, 6.0, 6.5, 25.0])
    for op in ["Relu", "Relu6", "Elu", "Selu", "Softplus"]:
        F.add(op, "edge values (0, 6, large)", features=special)
        for dt in (F32, F64, F16):
            F.add(op, features=F.u([2, 3], dt, -8, 8))
        F.add(op, features=F.u([0, 3]))
    F.add("Relu", features=F.ri([2, 3], -5, 5))
    F.add("Relu6", features=F.ri([2, 3], -9, 9))
    F.add("Softplus", "very large/small magnitudes",
          features=f32([-100.0, -20.0, -16.0, 16.0, 20.0, 100.0]))
    F.add("Softplus", "very large/small magnitudes",
          features=f64([-100.0, -40.0, -30.0, 30.0, 40.0, 100.0]))
    # grads
    for dt in (F32, F64, F16):
        g = F.u([10], dt)
        F.add("ReluGrad", "features include 0 and 6",
              gradients=g, features=special.astype(dt))
        F.add("Relu6Grad", "features include 0 and 6",
              gradients=g, features=special.astype(dt))
        F.add("SoftplusGrad", "grad*sigmoid(features)",
              gradients=g, features=special.astype(dt))
        feats = F.u([10], dt, -3, 3)
        F.add("EluGrad", "outputs = Elu(features)", gradients=g,
              outputs=ev("Elu", features=feats))
        F.add("SeluGrad", "outputs = Selu(features)", gradients=g,
              outputs=ev("Selu", features=feats))
    F.add("ReluGrad", gradients=F.u([2, 3]), features=F.u([2, 3]))
    F.add("EluGrad", "outputs with exact 0", gradients=F.u([4]),
          outputs=f32([-0.5, 0.0, 0.5, -1e-3]))

    # softmax family
    for op in ["Softmax", "LogSoftmax"]:
        F.add(op, logits=F.u([2, 5], F32, -3, 3))
        F.add(op, "rank 1", logits=F.u([4], F32, -3, 3))
        F.add(op, "rank 3, last axis", logits=F.u([2, 3, 4], F32, -3, 3))
        F.add(op, "large logits (stability)",
              logits=f32([[1000.0, 1001.0, 999.0], [-1000.0, 0.0, 1000.0]]))
        F.add(op, logits=F.u([3, 4], F64, -3, 3))
        F.add(op, logits=F.u([2, 3], F16, -3, 3))
        F.add(op, "single class", logits=F.u([3, 1]))
    def probs(shape, dt=F32):
        p = F.rng.uniform(0.1, 1.0, shape)
        return (p / p.sum(-1, keepdims=True)).astype(dt)

    xent = "SoftmaxCrossEntropyWithLogits"
    F.add(xent, "outputs: loss [B], backprop [B,C]",
          features=F.u([3, 5], F32, -3, 3), labels=probs([3, 5]))
    F.add(xent, "one-hot labels",
          features=F.u([4, 3], F32, -3, 3),
          labels=np.eye(3, dtype=F32)[[0, 2, 1, 2]])
    F.add(xent, "labels [1,C] broadcast over batch",
          features=F.u([3, 4], F32, -3, 3), labels=probs([1, 4]))
    F.add(xent, "features [1,C] broadcast over batch",
          features=F.u([1, 4], F32, -3, 3), labels=probs([3, 4]))
    F.add(xent, "large logits",
          features=f32([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0]]),
          labels=probs([2, 3]))
    F.add(xent, features=F.u([3, 4], F64, -3, 3), labels=probs([3, 4], F64))
    F.add(xent, features=F.u([2, 3], F16, -3, 3), labels=probs([2, 3], F16))
    sxent = "SparseSoftmaxCrossEntropyWithLogits"
    F.add(sxent, "outputs: loss [B], backprop [B,C]",
          features=F.u([4, 5], F32, -3, 3), labels=i32([0, 4, 2, 2]))
    F.add(sxent, "int64 labels", features=F.u([3, 4], F32, -3, 3),
          labels=i64([3, 0, 1]))
    F.add(sxent, features=F.u([3, 4], F64, -3, 3), labels=i32([1, 1, 3]))
    F.add(sxent, "large logits",
          features=f32([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0]]),
          labels=i64([2, 1]))
    F.add(sxent, features=F.u([2, 3], F16, -3, 3), labels=i32([0, 2]))
    F.add(sxent, "label out of range (CPU raises; TF GPU gives NaN)",
          features=F.u([2, 3]), labels=i32([0, 7]), _error=True)

    for dt in (F32, F64, F16):
        F.add("L2Loss", "sum(t^2)/2", t=F.u([3, 4], dt))
    F.add("L2Loss", "scalar", t=f32(3.0))
    F.add("L2Loss", "empty", t=F.u([0, 3]))
    F.add("L2Loss", "rank 4 (atol 1e-5: summation order)",
          t=F.u([2, 3, 3, 4]), _atol=1e-5)

    # BiasAdd / BiasAddGrad
    F.add("BiasAdd", "2-D", value=F.u([3, 4]), bias=F.u([4]))
    F.add("BiasAdd", "4-D NHWC", value=F.u([2, 3, 3, 4]), bias=F.u([4]))
    F.add("BiasAdd", "4-D NCHW", value=F.u([2, 4, 3, 3]), bias=F.u([4]),
          data_format="NCHW")
    F.add("BiasAdd", "3-D NCHW (channels = dim 1)", value=F.u([2, 3, 5]),
          bias=F.u([3]), data_format="NCHW")
    F.add("BiasAdd", value=F.u([2, 3], F64), bias=F.u([3], F64))
    F.add("BiasAdd", value=F.u([2, 3], F16), bias=F.u([3], F16))
    F.add("BiasAdd", value=F.ri([2, 3], -5, 5), bias=F.ri([3], -5, 5))
    F.add("BiasAdd", "empty batch", value=F.u([0, 3]), bias=F.u([3]))
    F.add("BiasAddGrad", "2-D", out_backprop=F.u([3, 4]))
    F.add("BiasAddGrad", "4-D NHWC (atol 1e-5: summation order)",
          out_backprop=F.u([2, 3, 3, 4]), _atol=1e-5)
    F.add("BiasAddGrad", "4-D NCHW (atol 1e-5: summation order)",
          out_backprop=F.u([2, 4, 3, 3]), data_format="NCHW", _atol=1e-5)
    F.add("BiasAddGrad", "3-D NCHW", out_backprop=F.u([2, 3, 5]),
          data_format="NCHW")
    F.add("BiasAddGrad", out_backprop=F.u([2, 3, 3], F64))
    F.add("BiasAddGrad", "(f16 tol 1e-2: accumulation)",
          out_backprop=F.u([4, 3], F16), _rtol=1e-2, _atol=1e-2)
    F.add("BiasAddGrad", "empty batch -> zeros", out_backprop=F.u([0, 3]))

    # Conv2D and backprops.  TF CPU rejects NCHW for all three (Conv2D:
    # UnimplementedError) and dilations > 1 in the backprops, so those are
    # not covered.
    conv_cfgs = [
        ("VALID 3x3", [2, 5, 5, 3], [3, 3, 3, 4],
         dict(strides=[1, 1, 1, 1], padding="VALID")),
        ("SAME 3x3", [2, 5, 5, 3], [3, 3, 3, 2],
         dict(strides=[1, 1, 1, 1], padding="SAME")),
        ("SAME stride 2, odd size", [1, 7, 6, 2], [3, 3, 2, 3],
         dict(strides=[1, 2, 2, 1], padding="SAME")),
        ("VALID stride 2", [2, 7, 7, 2], [3, 3, 2, 2],
         dict(strides=[1, 2, 2, 1], padding="VALID")),
        ("SAME strides (1,3), 2x4 kernel", [1, 5, 8, 2], [2, 4, 2, 3],
         dict(strides=[1, 1, 3, 1], padding="SAME")),
        ("EXPLICIT padding", [1, 5, 5, 2], [3, 3, 2, 3],
         dict(strides=[1, 1, 1, 1], padding="EXPLICIT",
              explicit_paddings=[0, 0, 1, 2, 0, 1, 0, 0])),
        ("EXPLICIT padding, stride 2", [2, 6, 5, 2], [3, 2, 2, 2],
         dict(strides=[1, 2, 2, 1], padding="EXPLICIT",
              explicit_paddings=[0, 0, 2, 1, 1, 0, 0, 0])),
        ("1x1 kernel", [2, 3, 4, 5], [1, 1, 5, 3],
         dict(strides=[1, 1, 1, 1], padding="VALID")),
        ("1x1 kernel stride 2", [1, 5, 5, 3], [1, 1, 3, 2],
         dict(strides=[1, 2, 2, 1], padding="SAME")),
        ("kernel as large as input", [2, 3, 3, 2], [3, 3, 2, 4],
         dict(strides=[1, 1, 1, 1], padding="VALID")),
    ]
    dil_cfgs = [
        ("VALID dilation 2", [1, 7, 7, 2], [3, 3, 2, 3],
         dict(strides=[1, 1, 1, 1], padding="VALID", dilations=[1, 2, 2, 1])),
        ("SAME dilation (2,3)", [1, 7, 8, 2], [3, 2, 2, 2],
         dict(strides=[1, 1, 1, 1], padding="SAME", dilations=[1, 2, 3, 1])),
        ("SAME dilation 2 stride 2", [1, 8, 8, 2], [3, 3, 2, 2],
         dict(strides=[1, 2, 2, 1], padding="SAME", dilations=[1, 2, 2, 1])),
    ]
    ctol = dict(_atol=1e-5)
    cdesc = " (atol 1e-5: summation order)"
    for desc, xs, ws, attrs in conv_cfgs + dil_cfgs:
        F.add("Conv2D", desc + cdesc, input=F.u(xs), filter=F.u(ws),
              **attrs, **ctol)
    for desc, xs, ws, attrs in conv_cfgs[:3] + conv_cfgs[5:6] + dil_cfgs[:1]:
        F.add("Conv2D", desc, input=F.u(xs, F64), filter=F.u(ws, F64),
              **attrs)
    F.add("Conv2D", "empty batch", input=F.u([0, 4, 4, 2]),
          filter=F.u([3, 3, 2, 2]), strides=[1, 1, 1, 1], padding="SAME")
    for dt in (F32, F64):
        for desc, xs, ws, attrs in conv_cfgs:
            x, w = F.u(xs, dt), F.u(ws, dt)
            dy = F.u(conv_out(x, w, **attrs).shape, dt)
            extra = ctol if dt == F32 else {}
            d = desc + (cdesc if dt == F32 else "")
            F.add("Conv2DBackpropInput", d, input_sizes=i32(xs), filter=w,
                  out_backprop=dy, **attrs, **extra)
            F.add("Conv2DBackpropFilter", d, input=x, filter_sizes=i32(ws),
                  out_backprop=dy, **attrs, **extra)

    # pooling (NHWC only: TF CPU rejects NCHW for MaxPool/AvgPool and their
    # grads)
    pool_cfgs = [
        ("2x2 stride 2 VALID", [2, 4, 4, 3], [1, 2, 2, 1], [1, 2, 2, 1],
         "VALID"),
        ("2x2 stride 2 SAME, odd size", [1, 5, 5, 2], [1, 2, 2, 1],
         [1, 2, 2, 1], "SAME"),
        ("3x3 stride 2 overlapping VALID", [1, 7, 7, 2], [1, 3, 3, 1],
         [1, 2, 2, 1], "VALID"),
        ("3x3 stride 1 overlapping SAME", [2, 4, 5, 2], [1, 3, 3, 1],
         [1, 1, 1, 1], "SAME"),
        ("2x3 window, strides (1,2)", [1, 5, 6, 3], [1, 2, 3, 1],
         [1, 1, 2, 1], "VALID"),
        ("3x3 stride 3 SAME, ragged", [1, 7, 8, 1], [1, 3, 3, 1],
         [1, 3, 3, 1], "SAME"),
    ]
    for desc, xs, k, s, p in pool_cfgs:
        F.add("MaxPool", desc, input=F.u(xs), ksize=k, strides=s, padding=p)
        F.add("AvgPool", desc, value=F.u(xs), ksize=k, strides=s, padding=p)
    F.add("MaxPool", "EXPLICIT padding", input=F.u([1, 4, 5, 2]),
          ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="EXPLICIT",
          explicit_paddings=[0, 0, 1, 1, 0, 1, 0, 0])
    for dt in (F64, F16):
        F.add("MaxPool", input=F.u([1, 4, 4, 2], dt), ksize=[1, 2, 2, 1],
              strides=[1, 2, 2, 1], padding="SAME")
        F.add("AvgPool", value=F.u([1, 4, 4, 2], dt), ksize=[1, 3, 3, 1],
              strides=[1, 1, 1, 1], padding="SAME")
    F.add("MaxPool", input=F.ri([1, 4, 4, 2], -9, 9), ksize=[1, 2, 2, 1],
          strides=[1, 2, 2, 1], padding="VALID")
    for desc, xs, k, s, p in pool_cfgs:
        for dt in (F32, F64):
            x = F.u(xs, dt)  # random floats: no ties
            y = ev("MaxPool", input=x, ksize=k, strides=s, padding=p)
            F.add("MaxPoolGrad", desc, orig_input=x, orig_output=y,
                  grad=F.u(y.shape, dt), ksize=k, strides=s, padding=p)
            F.add("AvgPoolGrad", desc, orig_input_shape=i32(xs),
                  grad=F.u(y.shape, dt), ksize=k, strides=s, padding=p)
    x = F.u([1, 4, 5, 2])
    attrs = dict(ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="EXPLICIT",
                 explicit_paddings=[0, 0, 1, 1, 0, 1, 0, 0])
    y = ev("MaxPool", input=x, **attrs)
    F.add("MaxPoolGrad", "EXPLICIT padding", orig_input=x, orig_output=y,
          grad=F.u(y.shape), **attrs)

    # FusedBatchNormV3 / FusedBatchNormGradV3
    fbn_train = ("training; TF CPU: reserve_space_1 == batch mean, "
                 "reserve_space_2 == biased (1/N) batch variance (not its "
                 "inverse), reserve_space_3 == scalar 0.0; batch_variance "
                 "(out2) is Bessel-corrected N/(N-1) (atol 1e-5)")
    fbn_infer = ("inference; out1/out2 = the mean/variance inputs passed "
                 "through; TF CPU leaves reserve_space_1/2 uninitialized "
                 "(garbage, so omitted from the npz) (atol 1e-5)")
    empty = np.zeros([0], F32)
    for xs, eps in (([2, 3, 3, 4], 0.001), ([4, 2, 1, 3], 1e-5)):
        c = xs[-1]
        x, sc, of = F.n(xs), F.pos([c]), F.n([c])
        rm, rv = F.n([c]), F.pos([c])
        F.add("FusedBatchNormV3", fbn_train + ", factor 1.0: empty mean/var",
              x=x, scale=sc, offset=of, mean=empty, variance=empty,
              epsilon=eps, exponential_avg_factor=1.0, is_training=True,
              _atol=1e-5, _skip=[3, 4, 5])
        F.add("FusedBatchNormV3", fbn_train + ", factor 0.5: running "
              "stats = 0.5*old + 0.5*batch", x=x, scale=sc, offset=of,
              mean=rm, variance=rv, epsilon=eps, exponential_avg_factor=0.5,
              is_training=True, _atol=1e-5, _skip=[3, 4, 5])
        F.add("FusedBatchNormV3", fbn_infer, x=x, scale=sc, offset=of,
              mean=rm, variance=rv, epsilon=eps, is_training=False,
              _atol=1e-5, _skip=[3, 4, 5], _omit=[3, 4])
    x, sc, of = F.n([2, 4, 3, 3]), F.pos([4]), F.n([4])
    F.add("FusedBatchNormV3", "NCHW " + fbn_train, x=x, scale=sc, offset=of,
          mean=empty, variance=empty, epsilon=0.001, data_format="NCHW",
          is_training=True, _atol=1e-5, _skip=[3, 4, 5])
    F.add("FusedBatchNormV3", "float16 x, float32 scale/stats; " + fbn_train,
          x=F.n([2, 2, 2, 3], F16), scale=F.pos([3]), offset=F.n([3]),
          mean=empty, variance=empty, epsilon=0.001, is_training=True,
          _skip=[3, 4, 5])
    grad_desc = ("outputs 3,4 (reserve_space_4/5) are empty placeholders; "
                 "(atol 1e-5: reductions)")
    for xs, eps in (([2, 3, 3, 4], 0.001), ([4, 2, 1, 3], 1e-5)):
        c = xs[-1]
        x, sc, of = F.n(xs), F.pos([c]), F.n([c])
        fwd = ev("FusedBatchNormV3", x=x, scale=sc, offset=of, mean=empty,
                 variance=empty, epsilon=eps, is_training=True)
        F.add("FusedBatchNormGradV3", "training: reserve spaces from the "
              "forward op (batch mean, biased batch var); " + grad_desc,
              y_backprop=F.n(xs), x=x, scale=sc, reserve_space_1=fwd[3],
              reserve_space_2=fwd[4], reserve_space_3=fwd[5], epsilon=eps,
              is_training=True, _atol=1e-5, _skip=[3, 4])
        F.add("FusedBatchNormGradV3", "inference: reserve_space_1/2 = "
              "population mean/variance; " + grad_desc,
              y_backprop=F.n(xs), x=x, scale=sc, reserve_space_1=F.n([c]),
              reserve_space_2=F.pos([c]), reserve_space_3=f32(0.0),
              epsilon=eps, is_training=False, _atol=1e-5, _skip=[3, 4])
    x, sc = F.n([2, 4, 3, 3]), F.pos([4])
    fwd = ev("FusedBatchNormV3", x=x, scale=sc, offset=F.n([4]), mean=empty,
             variance=empty, epsilon=0.001, data_format="NCHW",
             is_training=True)
    F.add("FusedBatchNormGradV3", "NCHW training; " + grad_desc,
          y_backprop=F.n([2, 4, 3, 3]), x=x, scale=sc,
          reserve_space_1=fwd[3], reserve_space_2=fwd[4],
          reserve_space_3=fwd[5], epsilon=0.001, data_format="NCHW",
          is_training=True, _atol=1e-5, _skip=[3, 4])


# ---------------------------------------------------------------------------
# array
# ---------------------------------------------------------------------------

def build_array(F):
    F.add("Reshape", tensor=F.u([2, 3, 4]), shape=i32([6, 4]))
    F.add("Reshape", "-1", tensor=F.u([2, 3, 4]), shape=i32([-1, 2]))
    F.add("Reshape", "-1 in the middle", tensor=F.ri([2, 3, 4], 0, 9),
          shape=i32([2, -1, 3]))
    F.add("Reshape", "to rank 1", tensor=F.u([2, 3]), shape=i32([-1]))
    F.add("Reshape", "to scalar", tensor=F.u([1, 1]), shape=i32([]))
    F.add("Reshape", "int64 shape", tensor=F.u([4, 3], F64),
          shape=i64([3, 4]))
    F.add("Reshape", "empty", tensor=F.u([0, 3]), shape=i32([3, 0]))
    F.add("Reshape", "empty with -1", tensor=F.u([0, 3]), shape=i32([-1, 3]))
    F.add("Reshape", "bool", tensor=F.b([2, 2]), shape=i32([4]))
    F.add("Reshape", "incompatible size", tensor=F.u([2, 3]),
          shape=i32([4, 2]), _error=True)

    F.add("Squeeze", "all size-1 dims", input=F.u([1, 3, 1, 2]))
    F.add("Squeeze", input=F.u([1, 3, 1, 2]), axis=[0])
    F.add("Squeeze", "negative axis", input=F.u([1, 3, 1, 2]), axis=[-2])
    F.add("Squeeze", input=F.ri([1, 3, 1, 2], 0, 9), axis=[0, 2])
    F.add("Squeeze", "to scalar", input=F.u([1, 1]))
    F.add("Squeeze", "nothing to squeeze", input=F.u([2, 3]))

    F.add("ExpandDims", input=F.u([2, 3]), axis=i32(0))
    F.add("ExpandDims", input=F.u([2, 3]), axis=i32(1))
    F.add("ExpandDims", "negative axis", input=F.u([2, 3]), axis=i32(-1))
    F.add("ExpandDims", "negative axis", input=F.u([2, 3]), axis=i32(-3))
    F.add("ExpandDims", "int64 axis", input=F.ri([2, 3], 0, 9),
          axis=i64(2))
    F.add("ExpandDims", "scalar", input=f32(1.5), axis=i32(0))
    F.add("ExpandDims", "axis as [1]-vector", input=F.u([3]), axis=i32([0]))

    F.add("Transpose", x=F.u([2, 3]), perm=i32([1, 0]))
    F.add("Transpose", x=F.u([2, 3, 4]), perm=i32([2, 0, 1]))
    F.add("Transpose", x=F.u([2, 3, 4]), perm=i64([1, 2, 0]))
    F.add("Transpose", "identity perm", x=F.ri([2, 3], 0, 9),
          perm=i32([0, 1]))
    F.add("Transpose", x=F.u([2, 1, 3, 2], F64), perm=i32([0, 3, 1, 2]))
    F.add("Transpose", "empty", x=F.u([0, 2, 3]), perm=i32([2, 0, 1]))
    F.add("Transpose", "invalid perm", x=F.u([2, 3]), perm=i32([0, 0]),
          _error=True)

    F.add("ConcatV2", values=[F.u([2, 3]), F.u([1, 3])], axis=i32(0))
    F.add("ConcatV2", values=[F.u([2, 1]), F.u([2, 3]), F.u([2, 2])],
          axis=i32(1))
    F.add("ConcatV2", "negative axis",
          values=[F.u([2, 2, 1]), F.u([2, 2, 2])], axis=i32(-1))
    F.add("ConcatV2", "int64 axis", values=[F.ri([2], 0, 9),
                                            F.ri([3], 0, 9)], axis=i64(0))
    F.add("ConcatV2", "empty piece", values=[F.u([2, 0]), F.u([2, 3])],
          axis=i32(1))
    F.add("ConcatV2", values=[F.u([2, 3], F64), F.u([2, 1], F64)],
          axis=i32(1))
    F.add("ConcatV2", values=[F.b([2]), F.b([1])], axis=i32(0))
    F.add("ConcatV2", "mismatched ranks", values=[F.u([2, 3]), F.u([3])],
          axis=i32(0), _error=True)

    F.add("ConcatOffset", concat_dim=i32(1),
          shape=[i32([2, 3, 4]), i32([2, 5, 4]), i32([2, 1, 4])])
    F.add("ConcatOffset", concat_dim=i32(0), shape=[i32([2, 3]),
                                                    i32([4, 3])])
    F.add("ConcatOffset", "negative concat_dim", concat_dim=i32(-1),
          shape=[i32([2, 3]), i32([2, 5])])
    F.add("ConcatOffset", "int64 shapes", concat_dim=i32(1),
          shape=[i64([2, 3]), i64([2, 5])])

    F.add("Split", axis=i32(0), value=F.u([4, 3]), num_split=2)
    F.add("Split", axis=i32(1), value=F.u([2, 6]), num_split=3)
    F.add("Split", "negative axis", axis=i32(-1), value=F.u([2, 2, 4]),
          num_split=2)
    F.add("Split", axis=i32(0), value=F.ri([3], 0, 9), num_split=1)
    F.add("Split", "empty pieces", axis=i32(1), value=F.u([0, 4]),
          num_split=2)
    F.add("SplitV", value=F.u([2, 6]), size_splits=i32([1, 2, 3]),
          axis=i32(1), num_split=3)
    F.add("SplitV", "-1 size", value=F.u([5, 2]), size_splits=i32([2, -1]),
          axis=i32(0), num_split=2)
    F.add("SplitV", "int64 sizes, negative axis", value=F.u([2, 5], F64),
          size_splits=i64([4, 0, 1]), axis=i32(-1), num_split=3)

    F.add("Slice", input=F.u([3, 4]), begin=i32([0, 1]), size=i32([2, 2]))
    F.add("Slice", "size -1", input=F.u([3, 4]), begin=i32([1, 2]),
          size=i32([-1, -1]))
    F.add("Slice", input=F.ri([2, 3, 4], 0, 9), begin=i32([1, 0, 1]),
          size=i32([1, -1, 2]))
    F.add("Slice", "int64", input=F.u([4], F64), begin=i64([1]),
          size=i64([2]))
    F.add("Slice", "empty", input=F.u([3, 4]), begin=i32([1, 1]),
          size=i32([0, 2]))

    x2, x3 = F.u([4, 5]), F.ri([3, 4, 5], -9, 9)
    ss = [  # (desc, x, begin, end, strides, masks)
        ("x[1:3, 0:5]", x2, [1, 0], [3, 5], [1, 1], {}),
        ("x[::2, 1::2]", x2, [0, 1], [0, 0], [2, 2],
         dict(begin_mask=1, end_mask=3)),
        ("x[::-1, ::-2] negative strides", x2, [0, 0], [0, 0], [-1, -2],
         dict(begin_mask=3, end_mask=3)),
        ("x[3:0:-2] negative stride, explicit bounds", x2, [3], [0], [-2],
         {}),
        ("x[1] shrink_axis", x2, [1], [2], [1], dict(shrink_axis_mask=1)),
        ("x[:, 2] shrink_axis", x2, [0, 2], [0, 3], [1, 1],
         dict(begin_mask=1, end_mask=1, shrink_axis_mask=2)),
        ("x[-1] shrink negative index", x2, [-1], [0], [1],
         dict(shrink_axis_mask=1)),
        ("x[newaxis, 1:3] new_axis", x2, [0, 1], [0, 3], [1, 1],
         dict(new_axis_mask=1)),
        ("x[1:3, newaxis, :] new_axis in middle", x2, [1, 0, 0], [3, 0, 0],
         [1, 1, 1], dict(new_axis_mask=2, begin_mask=4, end_mask=4)),
        ("x[..., 1] ellipsis + shrink", x3, [0, 1], [0, 2], [1, 1],
         dict(ellipsis_mask=1, shrink_axis_mask=2)),
        ("x[1, ..., newaxis] ellipsis + new_axis + shrink", x3, [1, 0, 0],
         [2, 0, 0], [1, 1, 1],
         dict(shrink_axis_mask=1, ellipsis_mask=2, new_axis_mask=4)),
        ("x[..., ::-1] ellipsis, negative stride", x3, [0, 0], [0, 0],
         [1, -1], dict(ellipsis_mask=1, begin_mask=2, end_mask=2)),
        ("x[-10:10] clamped out-of-range bounds", x2, [-10], [10], [1], {}),
        ("x[-3:-1] negative bounds", x2, [-3], [-1], [1], {}),
        ("x[3:1] empty result", x2, [3], [1], [1], {}),
        ("x[1:, :-1:2] fewer spec dims than rank", x3, [1, 0], [0, -1],
         [1, 2], dict(end_mask=1)),
    ]
    for desc, x, b, e, s, masks in ss:
        F.add("StridedSlice", desc, input=x, begin=i32(b), end=i32(e),
              strides=i32(s), **masks)
    F.add("StridedSlice", "int64 begin/end/strides", input=x3,
          begin=i64([0, 1, 4]), end=i64([2, 4, 0]), strides=i64([1, 2, -2]))
    F.add("StridedSlice", "float64 x[::-1]", input=F.u([4], F64),
          begin=i32([0]), end=i32([0]), strides=i32([-1]), begin_mask=1,
          end_mask=1)
    for k in (1, 2, 4, 5, 7, 9, 10, 11, 15):
        desc, x, b, e, s, masks = ss[k]
        dy_shape = ev("StridedSlice", input=x, begin=b, end=e, strides=s,
                      **masks).shape
        dt = F32 if x.dtype == F32 else F64
        F.add("StridedSliceGrad", desc, shape=i32(x.shape), begin=i32(b),
              end=i32(e), strides=i32(s), dy=F.u(dy_shape, dt), **masks)
    F.add("StridedSliceGrad", "int64 index tensors", shape=i64([4, 5]),
          begin=i64([1, 0]), end=i64([3, 5]), strides=i64([1, 2]),
          dy=F.u([2, 3]))

    F.add("Pack", values=[F.u([3]), F.u([3]), F.u([3])], axis=0)
    F.add("Pack", values=[F.u([2, 3]), F.u([2, 3])], axis=1)
    F.add("Pack", "negative axis", values=[F.u([2]), F.u([2])], axis=-1)
    F.add("Pack", "scalars", values=[i32(1), i32(2), i32(3)])
    F.add("Pack", values=[F.ri([2], 0, 9, I64)], axis=0)
    F.add("Unpack", value=F.u([3, 2]), num=3, axis=0)
    F.add("Unpack", value=F.u([3, 2]), num=2, axis=1)
    F.add("Unpack", "negative axis", value=F.ri([2, 2, 3], 0, 9), num=3,
          axis=-1)

    F.add("Tile", input=F.u([2, 3]), multiples=i32([2, 1]))
    F.add("Tile", input=F.u([2, 3]), multiples=i32([1, 3]))
    F.add("Tile", input=F.ri([1, 2, 2], 0, 9), multiples=i32([2, 2, 1]))
    F.add("Tile", "int64 multiples", input=F.u([3], F64),
          multiples=i64([2]))
    F.add("Tile", "zero multiple", input=F.u([2, 3]), multiples=i32([0, 2]))

    F.add("Fill", dims=i32([2, 3]), value=f32(1.5))
    F.add("Fill", dims=i32([4]), value=i32(-7))
    F.add("Fill", "int64 dims", dims=i64([2, 2]), value=f64(2.25))
    F.add("Fill", "empty", dims=i32([0, 2]), value=f32(3.0))
    F.add("Fill", "scalar", dims=i32([]), value=f32(4.0))
    F.add("Fill", dims=i32([2]), value=bools(True))

    F.add("Range", start=i32(0), limit=i32(5), delta=i32(1))
    F.add("Range", start=i32(2), limit=i32(11), delta=i32(3))
    F.add("Range", "negative delta", start=i32(10), limit=i32(0),
          delta=i32(-3))
    F.add("Range", "float", start=f32(1.0), limit=f32(2.0), delta=f32(0.25))
    F.add("Range", "float, negative delta", start=f32(2.0), limit=f32(-1.0),
          delta=f32(-0.5))
    F.add("Range", "float, non-integral count", start=f32(0.0),
          limit=f32(1.0), delta=f32(0.3))
    F.add("Range", start=i64(-3), limit=i64(3), delta=i64(2))
    F.add("Range", start=f64(0.5), limit=f64(2.0), delta=f64(0.5))
    F.add("Range", "empty", start=i32(5), limit=i32(5), delta=i32(1))

    F.add("BroadcastTo", input=F.u([3]), shape=i32([2, 3]))
    F.add("BroadcastTo", input=F.u([2, 1]), shape=i32([2, 4]))
    F.add("BroadcastTo", "scalar", input=f32(2.0), shape=i32([2, 2]))
    F.add("BroadcastTo", "int64 shape, rank increase", input=F.ri([1, 3], 0,
                                                                   9),
          shape=i64([2, 2, 3]))
    F.add("BroadcastTo", "same shape", input=F.u([2, 3], F64),
          shape=i32([2, 3]))
    F.add("BroadcastTo", "to empty", input=F.u([1, 3]), shape=i32([0, 3]))

    for sa, sb in [([2, 3], [3]), ([2, 1, 4], [3, 1]), ([], [2, 3]),
                   ([2, 3], [2, 3]), ([1], [1]), ([5, 1, 1], [1, 3, 1]),
                   ([1, 1], [4]), ([0, 3], [1, 3]), ([2, 3], [1, 1])]:
        F.add("BroadcastGradientArgs", s0=i32(sa), s1=i32(sb))
    F.add("BroadcastGradientArgs", "int64", s0=i64([4, 1, 3]), s1=i64([2, 1]))
    F.add("BroadcastGradientArgs", "incompatible", s0=i32([2, 3]),
          s1=i32([4]), _error=True)

    F.add("Shape", input=F.u([2, 3]))
    F.add("Shape", input=F.u([2, 3]), out_type=tf.int64)
    F.add("Shape", "scalar", input=i32(3))
    F.add("Shape", "empty", input=F.u([0, 2]))
    F.add("ShapeN", input=[F.ri([2, 3], 0, 9), F.ri([4], 0, 9)])
    F.add("ShapeN", input=[F.u([1]), F.u([2, 2]), F.u([])],
          out_type=tf.int64)
    F.add("Size", input=F.u([2, 3]))
    F.add("Size", input=F.u([2, 3, 2]), out_type=tf.int64)
    F.add("Size", "empty", input=F.u([0, 3]))
    F.add("Size", "scalar", input=f32(1.0))
    F.add("Rank", input=F.u([2, 3, 4]))
    F.add("Rank", "scalar", input=i32(1))

    F.add("GatherV2", params=F.u([5, 3]), indices=i32([2, 0, 4]),
          axis=i32(0))
    F.add("GatherV2", params=F.u([5, 3]), indices=i32([2, 0, 2, 1]),
          axis=i32(1))
    F.add("GatherV2", "negative axis", params=F.u([2, 3, 4]),
          indices=i32([3, 0]), axis=i32(-1))
    F.add("GatherV2", "2-D indices", params=F.ri([5, 2], 0, 9),
          indices=i32([[0, 1], [4, 4]]), axis=i32(0))
    F.add("GatherV2", "int64 indices and axis", params=F.u([4, 3], F64),
          indices=i64([3, 1]), axis=i64(0))
    F.add("GatherV2", "scalar index", params=F.u([4, 3]), indices=i32(2),
          axis=i32(0))
    F.add("GatherV2", "batch_dims 1", params=F.u([2, 4, 3]),
          indices=i32([[0, 3], [2, 2]]), axis=i32(1), batch_dims=1)
    F.add("GatherV2", "batch_dims 1, axis 2", params=F.u([2, 3, 4]),
          indices=i64([[1, 0, 3], [2, 2, 0]]), axis=i32(2), batch_dims=1)
    F.add("GatherV2", "batch_dims -1", params=F.u([2, 4]),
          indices=i32([[1, 0, 3], [2, 2, 0]]), axis=i32(1), batch_dims=-1)
    F.add("GatherV2", "empty indices", params=F.u([4, 3]),
          indices=np.zeros([0], I32), axis=i32(0))
    F.add("GatherV2", "index out of range (CPU raises; TF GPU gives zeros)",
          params=F.u([4, 3]), indices=i32([1, 4]), axis=i32(0), _error=True)

    F.add("OneHot", "-1 index -> all off", indices=i32([0, 2, 1, -1]),
          depth=i32(3), on_value=f32(1.0), off_value=f32(0.0))
    F.add("OneHot", "axis 0", indices=i32([0, 2, 1]), depth=i32(4),
          on_value=f32(1.0), off_value=f32(0.0), axis=0)
    F.add("OneHot", "on 5, off -1, int32", indices=i64([1, 0, 3]),
          depth=i32(3), on_value=i32(5), off_value=i32(-1))
    F.add("OneHot", "2-D indices, axis 1", indices=i32([[0, 1], [2, 0]]),
          depth=i32(3), on_value=f64(2.5), off_value=f64(0.5), axis=1)
    F.add("OneHot", "2-D indices, axis -1", indices=i64([[0, 1], [2, 0]]),
          depth=i32(3), on_value=f32(1.0), off_value=f32(0.0), axis=-1)
    F.add("OneHot", "bool values", indices=i32([1, 0]), depth=i32(2),
          on_value=bools(True), off_value=bools(False))

    F.add("Pad", input=F.u([2, 3]), paddings=i32([[1, 0], [2, 1]]))
    F.add("Pad", "int64 paddings", input=F.ri([2, 2], 0, 9),
          paddings=i64([[0, 1], [1, 1]]))
    F.add("Pad", input=F.u([1, 2, 2], F64),
          paddings=i32([[1, 1], [0, 0], [2, 0]]))
    F.add("Pad", "zero paddings", input=F.u([2, 3]),
          paddings=i32([[0, 0], [0, 0]]))
    F.add("Pad", "empty input", input=F.u([0, 2]),
          paddings=i32([[1, 1], [0, 1]]))
    F.add("PadV2", input=F.u([2, 3]), paddings=i32([[1, 0], [2, 1]]),
          constant_values=f32(9.5))
    F.add("PadV2", input=F.ri([3], 0, 9), paddings=i64([[2, 1]]),
          constant_values=i32(-1))

    for op in ["ZerosLike", "OnesLike"]:
        F.add(op, x=F.u([2, 3]))
        F.add(op, x=F.ri([3], 0, 9))
        F.add(op, x=F.u([2], F64))
        F.add(op, x=F.b([2, 2]))
        F.add(op, x=F.u([0, 3]))
    for op in ["StopGradient", "Identity", "Snapshot"]:
        F.add(op, input=F.u([2, 3]))
        F.add(op, input=F.ri([3], 0, 9, I64))
    F.add("PreventGradient", input=F.u([2, 3]), message="no grad here")
    F.add("PreventGradient", input=F.ri([2], 0, 9))
    F.add("IdentityN", input=[F.u([2, 3]), F.ri([3], 0, 9)])
    F.add("IdentityN", input=[F.u([2], F64)])
    F.add("InvertPermutation", x=i32([2, 0, 1, 3]))
    F.add("InvertPermutation", x=i64([1, 2, 0]))
    F.add("InvertPermutation", "empty", x=np.zeros([0], I32))

    F.add("DynamicStitch", indices=[i32([0, 2]), i32([1, 3])],
          data=[F.u([2]), F.u([2])])
    F.add("DynamicStitch", "2-D data slices",
          indices=[i32([[0], [3]]), i32([1, 2])],
          data=[F.u([2, 1, 2]), F.u([2, 2])])
    F.add("DynamicStitch", "duplicate indices: last one wins",
          indices=[i32([0, 1]), i32([1, 2])],
          data=[F.ri([2], 0, 9), F.ri([2], 0, 9)])
    F.add("DynamicStitch", "scalar index",
          indices=[i32(1), i32([0, 2])], data=[F.u([3]), F.u([2, 3])])
    F.add("DynamicStitch", "as in reduce grads",
          indices=[i32([0, 1, 2]), i32([3, 1])],
          data=[i32([2, 3, 4]), i32([1, 1])])
    # Reshape's -1 beside a 0: zero-sized dimensions count on neither side (an object
    # detection graph's empty mask field, [1917, 1, 0, 0] -> [-1, 1, 0, 0])
    F.add("Reshape", "-1 beside a 0 keeps the non-zero dims", tensor=F.u([6, 1, 0, 0]),
          shape=i32([-1, 1, 0, 0]))
    F.add("Reshape", "-1 beside a 0, input 2-D", tensor=F.u([3, 0]), shape=i32([-1, 0]))
    F.add("Reshape", "-1 beside a 0, from an empty dim", tensor=F.u([0, 3]),
          shape=i32([-1, 0, 2]))


# ---------------------------------------------------------------------------
# reduce
# ---------------------------------------------------------------------------

def build_reduce(F):
    rtol = dict(_atol=1e-5)
    for op in ["Sum", "Mean", "Max", "Min", "Prod"]:
        x = F.u([3, 4], F32, -2, 2)
        extra = rtol if op in ("Sum", "Mean", "Prod") else {}
        why = " (atol 1e-5: summation order)" if extra else ""
        F.add(op, why, input=x, axis=i32([1]), **extra)
        F.add(op, why, input=x, axis=i64([0]), **extra)
        F.add(op, "negative axis" + why, input=x, axis=i32([-1]),
              keep_dims=True, **extra)
        F.add(op, "empty axis list: identity", input=x, axis=np.zeros([0],
                                                                       I32))
        F.add(op, "all axes" + why, input=x, axis=i32([0, 1]),
              keep_dims=True, **extra)
        F.add(op, "all axes" + why, input=x, axis=i32([1, 0]), **extra)
        F.add(op, "scalar axis" + why, input=x, axis=i32(0), **extra)
        x3 = F.u([2, 3, 4], F32, -2, 2)
        F.add(op, why, input=x3, axis=i32([0, 2]), **extra)
        F.add(op, "negative axes" + why, input=x3, axis=i64([-1, 0]),
              keep_dims=True, **extra)
        F.add(op, input=F.ri([3, 4], -5, 5), axis=i32([0]))
        F.add(op, input=F.ri([2, 3], -5, 5, I64), axis=i32([1]),
              keep_dims=True)
        F.add(op, input=F.u([3, 4], F64, -2, 2), axis=i32([1]))
        F.add(op, "(f16 tol 1e-2: accumulation)", input=F.u([2, 3], F16),
              axis=i32([1]), _rtol=1e-2, _atol=1e-2)
        F.add(op, "reduce over an empty dim", input=F.u([0, 3]),
              axis=i32([0]))
        F.add(op, "reduce over an empty dim, keep_dims", input=F.u([2, 0]),
              axis=i32([1]), keep_dims=True)
        F.add(op, "empty dim kept", input=F.u([0, 3]), axis=i32([1]))
        F.add(op, "int reduce over an empty dim", input=F.ri([0, 2], 0, 5),
              axis=i32([0]))
        F.add(op, "scalar input, empty axes", input=f32(2.5),
              axis=np.zeros([0], I32))
    F.add("Mean", "int mean truncates", input=i32([[1, 2, 2], [-1, -2, -2]]),
          axis=i32([1]))
    F.add("Sum", "axis out of range", input=F.u([2, 3]), axis=i32([2]),
          _error=True)
    for op in ["All", "Any"]:
        b = F.b([3, 4])
        F.add(op, input=b, axis=i32([1]))
        F.add(op, input=b, axis=i64([0]), keep_dims=True)
        F.add(op, input=b, axis=i32([-1, 0]))
        F.add(op, "empty axis list", input=b, axis=np.zeros([0], I32))
        F.add(op, input=bools([[True, True], [False, False]]), axis=i32(1))
        F.add(op, "over an empty dim", input=np.zeros([0, 2], BOOL),
              axis=i32([0]))
    for op in ["ArgMax", "ArgMin"]:
        x = F.u([3, 4])
        F.add(op, input=x, dimension=i32(0))
        F.add(op, input=x, dimension=i32(1), output_type=tf.int32)
        F.add(op, "negative dimension", input=x, dimension=i32(-1),
              output_type=tf.int64)
        F.add(op, "int64 dimension", input=F.u([2, 3, 4]),
              dimension=i64(1))
        F.add(op, "ties -> first index",
              input=f32([[1.0, 3.0, 3.0, 1.0], [2.0, 2.0, 0.0, 0.0]]),
              dimension=i32(1))
        F.add(op, input=F.ri([4, 3], -3, 3), dimension=i32(0),
              output_type=tf.int32)
        F.add(op, input=F.u([5], F64), dimension=i32(0))
        F.add(op, input=F.u([2, 3], F16), dimension=i32(1))


# ---------------------------------------------------------------------------
# optim
# ---------------------------------------------------------------------------

def build_optim(F):
    for dt in (F32, F64):
        sc = lambda v: np.array(v, dt)  # noqa: E731
        shape = [2, 3]
        for prefix in ("", "Resource"):
            F.add(prefix + "ApplyGradientDescent", "var -= alpha*delta",
                  var=State(F.u(shape, dt)), alpha=sc(0.1),
                  delta=F.u(shape, dt))
            for nest in (False, True):
                F.add(prefix + "ApplyMomentum",
                      "accum = accum*momentum + grad; " + (
                          "var -= grad*lr + accum*momentum*lr" if nest else
                          "var -= lr*accum"),
                      var=State(F.u(shape, dt)), accum=State(F.u(shape, dt)),
                      lr=sc(0.1), grad=F.u(shape, dt), momentum=sc(0.9),
                      use_nesterov=nest)
            F.add(prefix + "ApplyAdam", "lr_t = lr*sqrt(1-beta2_power)/"
                  "(1-beta1_power); var -= lr_t*m/(sqrt(v)+epsilon)",
                  var=State(F.u(shape, dt)), m=State(F.u(shape, dt)),
                  v=State(F.pos(shape, dt, 0.01, 1.0)),
                  beta1_power=sc(0.9 ** 3), beta2_power=sc(0.999 ** 3),
                  lr=sc(0.01), beta1=sc(0.9), beta2=sc(0.999),
                  epsilon=sc(1e-7), grad=F.u(shape, dt), use_nesterov=False)
            F.add(prefix + "ApplyRMSProp",
                  "ms = rho*ms + (1-rho)*grad^2; mom = momentum*mom + "
                  "lr*grad/sqrt(ms+epsilon); var -= mom",
                  var=State(F.u(shape, dt)), ms=State(F.pos(shape, dt)),
                  mom=State(F.u(shape, dt)), lr=sc(0.01), rho=sc(0.9),
                  momentum=sc(0.5), epsilon=sc(1e-7), grad=F.u(shape, dt))
            F.add(prefix + "ApplyCenteredRMSProp",
                  "mg = rho*mg + (1-rho)*grad; ms = rho*ms + (1-rho)*grad^2;"
                  " mom = momentum*mom + lr*grad/sqrt(ms - mg^2 + epsilon); "
                  "var -= mom",
                  var=State(F.u(shape, dt)), mg=State(F.u(shape, dt, -.2, .2)),
                  ms=State(F.pos(shape, dt)), mom=State(F.u(shape, dt)),
                  lr=sc(0.01), rho=sc(0.9), momentum=sc(0.5),
                  epsilon=sc(1e-7), grad=F.u(shape, dt))
            for upd in (True, False):
                F.add(prefix + "ApplyAdagrad",
                      ("accum += grad^2; " if upd else "accum unchanged; ")
                      + "var -= lr*grad/sqrt(accum)",
                      var=State(F.u(shape, dt)),
                      accum=State(F.pos(shape, dt)), lr=sc(0.1),
                      grad=F.u(shape, dt), update_slots=upd)
    F.add("ApplyAdam", "zero momentum (m=0, v=0, epsilon=1e-8)",
          var=State(F.u([4])), m=State(np.zeros([4], F32)),
          v=State(np.zeros([4], F32)), beta1_power=f32(0.9),
          beta2_power=f32(0.999), lr=f32(0.001), beta1=f32(0.9),
          beta2=f32(0.999), epsilon=f32(1e-8), grad=F.u([4]))
    F.add("ApplyGradientDescent", "scalar variable", var=State(f32(1.5)),
          alpha=f32(0.5), delta=f32(-2.0))
    # ---- appended cases: keep them after the ones above so that the case
    # ids and random inputs of the older cases stay the same ----------------
    build_optim_ftrl_proximal(F)
    build_optim_sparse(F)
    build_optim_scatter(F)
    build_optim_scatter_nd(F)
    build_optim_strided_slice_assign(F)


FTRL_DESC = ("accum_new = accum + grad^2; linear += g - (accum_new^-lr_power"
             " - accum^-lr_power)/lr*var; quadratic = accum_new^-lr_power/lr"
             " + 2*l2; var = |linear| > l1 ? (sign(linear)*l1 - linear)/"
             "quadratic : 0; accum = accum_new")
FTRL_V1 = "g = grad; " + FTRL_DESC
FTRL_V2 = "g = grad + 2*l2_shrinkage*var; " + FTRL_DESC
FTRL_MUL = (" (multiply_linear_by_lr: linear += g*lr - (accum_new^-lr_power -"
            " accum^-lr_power)*var; var = |linear| > l1*lr ? (sign(linear)"
            "*l1*lr - linear)/(accum_new^-lr_power + 2*l2*lr) : 0)")
PROX_ADAGRAD = ("accum += grad^2; lr_t = lr/sqrt(accum); prox = var - "
                "lr_t*grad; var = sign(prox)*max(|prox| - lr_t*l1, 0)/"
                "(1 + lr_t*l2)")
PROX_GD = ("prox = var - alpha*delta; var = sign(prox)*max(|prox| - alpha*l1,"
           " 0)/(1 + alpha*l2)")


def build_optim_ftrl_proximal(F):
    """Dense ApplyFtrl/FtrlV2/ProximalAdagrad/ProximalGradientDescent."""
    shape = [2, 3]
    for prefix in ("", "Resource"):
        F.add(prefix + "ApplyFtrl", FTRL_V1,
              var=State(F.u(shape)), accum=State(F.pos(shape, F32, 0.1, 1.0)),
              linear=State(F.u(shape)), grad=F.u(shape), lr=f32(0.1),
              l1=f32(0.3), l2=f32(0.1), lr_power=f32(-0.5))
        F.add(prefix + "ApplyFtrlV2", FTRL_V2,
              var=State(F.u(shape)), accum=State(F.pos(shape, F32, 0.1, 1.0)),
              linear=State(F.u(shape)), grad=F.u(shape), lr=f32(0.1),
              l1=f32(0.3), l2=f32(0.1), l2_shrinkage=f32(0.05),
              lr_power=f32(-0.5))
        F.add(prefix + "ApplyProximalAdagrad", PROX_ADAGRAD,
              var=State(F.u(shape)), accum=State(F.pos(shape)), lr=f32(0.1),
              l1=f32(0.05), l2=f32(0.1), grad=F.u(shape))
        F.add(prefix + "ApplyProximalGradientDescent", PROX_GD,
              var=State(F.u(shape)), alpha=f32(0.1), l1=f32(0.5),
              l2=f32(0.1), delta=F.u(shape))
    F.add("ApplyFtrl", FTRL_V1 + FTRL_MUL + "; lr_power != -0.5",
          var=State(F.u(shape, F64)),
          accum=State(F.pos(shape, F64, 0.1, 1.0)),
          linear=State(F.u(shape, F64)), grad=F.u(shape, F64), lr=f64(0.1),
          l1=f64(0.02), l2=f64(0.1), lr_power=f64(-0.3),
          multiply_linear_by_lr=True)
    F.add("ResourceApplyFtrlV2", FTRL_V2 + FTRL_MUL,
          var=State(F.u(shape)), accum=State(F.pos(shape, F32, 0.1, 1.0)),
          linear=State(F.u(shape)), grad=F.u(shape), lr=f32(0.1),
          l1=f32(0.02), l2=f32(0.1), l2_shrinkage=f32(0.05),
          lr_power=f32(-0.5), multiply_linear_by_lr=True)
    F.add("ApplyProximalAdagrad", "l1 = 0: " + PROX_ADAGRAD,
          var=State(F.u(shape, F64)), accum=State(F.pos(shape, F64)),
          lr=f64(0.1), l1=f64(0.0), l2=f64(0.2), grad=F.u(shape, F64))
    F.add("ResourceApplyProximalGradientDescent",
          "l1 = l2 = 0 (plain gradient descent): " + PROX_GD,
          var=State(F.u(shape, F64)), alpha=f64(0.1), l1=f64(0.0),
          l2=f64(0.0), delta=F.u(shape, F64))


def build_optim_sparse(F):
    """SparseApply* / ResourceSparseApply*: only the rows var[indices[i]] are
    updated, with grad[i] (unique indices, as TF's optimizers dedup first)."""
    shape, gshape = [6, 3], [3, 3]

    def cases(prefix, dt):
        sc = lambda v: np.array(v, dt)  # noqa: E731
        rows = "rows var[indices] only; "
        st = lambda lo=None, hi=None: State(  # noqa: E731
            F.u(shape, dt) if lo is None else F.pos(shape, dt, lo, hi))
        g = lambda: F.u(gshape, dt)  # noqa: E731
        return [
            lambda idx: F.add(prefix + "SparseApplyMomentum", rows +
                          "accum = accum*momentum + grad; var -= lr*accum",
                          var=st(), accum=st(), lr=sc(0.1), grad=g(),
                          indices=idx, momentum=sc(0.9),
                          use_nesterov=False),
            lambda idx: F.add(prefix + "SparseApplyMomentum", rows +
                          "accum = accum*momentum + grad; "
                          "var -= grad*lr + accum*momentum*lr",
                          var=st(), accum=st(), lr=sc(0.1), grad=g(),
                          indices=idx, momentum=sc(0.9), use_nesterov=True),
            lambda idx: F.add(prefix + "SparseApplyAdagrad", rows +
                          "accum += grad^2; var -= lr*grad/sqrt(accum)",
                          var=st(), accum=st(0.5, 2.0), lr=sc(0.1), grad=g(),
                          indices=idx, update_slots=True),
            lambda idx: F.add(prefix + "SparseApplyAdagrad", rows +
                          "accum unchanged; var -= lr*grad/sqrt(accum)",
                          var=st(), accum=st(0.5, 2.0), lr=sc(0.1), grad=g(),
                          indices=idx, update_slots=False),
            lambda idx: F.add(prefix + "SparseApplyAdagradV2", rows +
                          "accum += grad^2; var -= lr*grad/(sqrt(accum) + "
                          "epsilon)",
                          var=st(), accum=st(0.5, 2.0), lr=sc(0.1),
                          epsilon=sc(0.1), grad=g(), indices=idx),
            lambda idx: F.add(prefix + "SparseApplyRMSProp", rows +
                          "ms = rho*ms + (1-rho)*grad^2; mom = momentum*mom +"
                          " lr*grad/sqrt(ms+epsilon); var -= mom",
                          var=st(), ms=st(0.5, 2.0), mom=st(), lr=sc(0.01),
                          rho=sc(0.9), momentum=sc(0.5), epsilon=sc(1e-7),
                          grad=g(), indices=idx),
            lambda idx: F.add(prefix + "SparseApplyCenteredRMSProp", rows +
                          "mg = rho*mg + (1-rho)*grad; ms = rho*ms + (1-rho)*"
                          "grad^2; mom = momentum*mom + lr*grad/sqrt(ms - "
                          "mg^2 + epsilon); var -= mom",
                          var=st(), mg=State(F.u(shape, dt, -.2, .2)),
                          ms=st(0.5, 2.0), mom=st(), lr=sc(0.01), rho=sc(0.9),
                          momentum=sc(0.5), epsilon=sc(1e-7), grad=g(),
                          indices=idx),
            lambda idx: F.add(prefix + "SparseApplyFtrl", rows + FTRL_V1,
                          var=st(), accum=st(0.1, 1.0), linear=st(), grad=g(),
                          indices=idx, lr=sc(0.1), l1=sc(0.3), l2=sc(0.1),
                          lr_power=sc(-0.5)),
            lambda idx: F.add(prefix + "SparseApplyFtrlV2", rows + FTRL_V2,
                          var=st(), accum=st(0.1, 1.0), linear=st(), grad=g(),
                          indices=idx, lr=sc(0.1), l1=sc(0.3), l2=sc(0.1),
                          l2_shrinkage=sc(0.05), lr_power=sc(-0.5)),
            lambda idx: F.add(prefix + "SparseApplyAdadelta", rows +
                          "accum = rho*accum + (1-rho)*grad^2; update = "
                          "sqrt(accum_update+epsilon)/sqrt(accum+epsilon)*"
                          "grad; accum_update = rho*accum_update + (1-rho)*"
                          "update^2; var -= lr*update",
                          var=st(), accum=st(0.1, 1.0),
                          accum_update=st(0.1, 1.0), lr=sc(1.0), rho=sc(0.95),
                          epsilon=sc(1e-6), grad=g(), indices=idx),
            lambda idx: F.add(prefix + "SparseApplyProximalAdagrad",
                          rows + PROX_ADAGRAD,
                          var=st(), accum=st(0.5, 2.0), lr=sc(0.1),
                          l1=sc(0.05), l2=sc(0.1), grad=g(), indices=idx),
        ]

    # int32 / int64 indices alternate, the other way round for Resource*
    for prefix, first, other in (("", I32, I64), ("Resource", I64, I32)):
        for k, make in enumerate(cases(prefix, F32)):
            make(np.array([4, 0, 2], first if k % 2 == 0 else other))
    # float64 (other index orders)
    f64_cases = cases("", F64)
    f64_cases[2](i64([1, 5, 3]))   # SparseApplyAdagrad
    f64_cases[7](i32([5, 3, 1]))   # SparseApplyFtrl
    cases("Resource", F64)[0](i64([3, 5, 0]))  # ResourceSparseApplyMomentum
    # 1-D variable, no rows at all
    F.add("SparseApplyAdagrad", "1-D variable: rows are elements; "
          "accum += grad^2; var -= lr*grad/sqrt(accum)",
          var=State(F.u([5])), accum=State(F.pos([5])), lr=f32(0.1),
          grad=F.u([2]), indices=i32([3, 1]))
    F.add("ResourceSparseApplyFtrl", "1-D variable; " + FTRL_V1,
          var=State(F.u([5])), accum=State(F.pos([5], F32, 0.1, 1.0)),
          linear=State(F.u([5])), grad=F.u([2]), indices=i64([0, 4]),
          lr=f32(0.1), l1=f32(0.3), l2=f32(0.1), lr_power=f32(-0.5))
    F.add("ResourceSparseApplyAdagrad", "no indices: nothing changes",
          var=State(F.u(shape)), accum=State(F.pos(shape)), lr=f32(0.1),
          grad=np.zeros([0, 3], F32), indices=np.zeros([0], I32))


def build_optim_scatter(F):
    """Scatter* on ref variables, ResourceScatter* on resource variables:
    var[indices[...]] op= updates[...]; duplicate indices all apply."""
    shape = [5, 3]
    for op, fn in (("ScatterAdd", "+="), ("ScatterSub", "-="),
                   ("ScatterUpdate", "="), ("ScatterMul", "*="),
                   ("ScatterDiv", "/="), ("ScatterMax", "max="),
                   ("ScatterMin", "min=")):
        desc = "var[indices] %s updates" % fn
        upd = F.nz if op == "ScatterDiv" else F.u
        F.add(op, desc, ref=State(F.u(shape)), indices=i32([1, 3, 0]),
              updates=upd([3, 3]))
        if op != "ScatterUpdate":  # ScatterUpdate with duplicates: any wins
            F.add(op, desc + "; duplicate indices (each one applies)",
                  ref=State(F.u(shape)), indices=i64([1, 3, 1, 1]),
                  updates=upd([4, 3]))
    F.add("ScatterAdd", "1-D variable, one scalar update per index "
          "(updates.shape == indices.shape + var.shape[1:] == [4]), "
          "duplicates", ref=State(F.u([6])), indices=i32([5, 2, 5, 0]),
          updates=F.u([4]))
    F.add("ScatterAdd", "2-D indices: updates.shape = indices.shape + "
          "var.shape[1:]", ref=State(F.u(shape)),
          indices=i64([[0, 4], [2, 4]]), updates=F.u([2, 2, 3]))
    F.add("ScatterAdd", "scalar index: updates.shape = var.shape[1:]",
          ref=State(F.u(shape)), indices=i32(2), updates=F.u([3]))
    F.add("ScatterAdd", "int32, duplicates", ref=State(F.ri(shape, -9, 9)),
          indices=i32([4, 4, 1]), updates=F.ri([3, 3], -9, 9))
    F.add("ScatterAdd", "float64", ref=State(F.u(shape, F64)),
          indices=i64([2, 0]), updates=F.u([2, 3], F64))
    F.add("ScatterSub", "1-D variable, scalar update per index",
          ref=State(F.u([4], F64)), indices=i64([3, 0, 3]),
          updates=F.u([3], F64))
    F.add("ScatterUpdate", "scalar updates (shape []) broadcast to every "
          "indexed row", ref=State(F.u(shape)), indices=i32([0, 2]),
          updates=f32(7.5))
    F.add("ScatterDiv", "int32: truncating division (C++ '/')",
          ref=State(i32([[7, -7, 9], [-9, 5, 1], [3, 3, 3]])),
          indices=i32([0, 1]), updates=i32([[2, 2, -4], [4, -2, 3]]))
    F.add("ScatterMax", "int32, duplicates",
          ref=State(i32([[0, 5, -3], [2, 2, 2], [-7, 0, 9]])),
          indices=i32([2, 0, 2]),
          updates=i32([[1, -1, 4], [3, 5, -8], [-9, 6, 10]]))
    for op, fn in (("ResourceScatterAdd", "+="), ("ResourceScatterSub", "-="),
                   ("ResourceScatterUpdate", "=")):
        desc = "var[indices] %s updates" % fn
        F.add(op, desc, resource=State(F.u(shape)), indices=i32([1, 3, 0]),
              updates=F.u([3, 3]))
        if op != "ResourceScatterUpdate":
            F.add(op, desc + "; duplicate indices", resource=State(
                F.u(shape, F64)), indices=i64([2, 4, 2]),
                updates=F.u([3, 3], F64))
        else:
            F.add(op, desc + "; int64 indices, 1-D variable",
                  resource=State(F.u([6])), indices=i64([5, 1]),
                  updates=F.u([2]))
    F.add("ResourceScatterAdd", "int32, 1-D variable, duplicates",
          resource=State(F.ri([4], -9, 9)), indices=i32([0, 0, 3]),
          updates=F.ri([3], -9, 9))
    F.add("ResourceScatterAdd", "2-D indices",
          resource=State(F.u(shape)), indices=i32([[4, 1], [1, 0]]),
          updates=F.u([2, 2, 3]))
    F.add("ResourceScatterUpdate", "scalar index",
          resource=State(F.u(shape)), indices=i32(3), updates=F.u([3]))


def build_optim_scatter_nd(F):
    """ScatterNd{Update,Add,Sub} on ref variables, ResourceScatterNd{Update,
    Add} on resource variables: indices [..., d] address var[i_0, ...,
    i_{d-1}] (an element or a slice of the innermost dims), updates.shape =
    indices.shape[:-1] + var.shape[d:]; duplicate indices all apply (Add,
    Sub; not used for Update)."""
    shape = [5, 3]
    for prefix in ("", "Resource"):
        F.add(prefix + "ScatterNdUpdate", "rows: var[indices[i]] = "
              "updates[i]", ref=State(F.u(shape)), indices=i32([[1], [3]]),
              updates=F.u([2, 3]))
        F.add(prefix + "ScatterNdUpdate", "elements: var[i, j] = u, int64 "
              "indices", ref=State(F.u(shape, F64)),
              indices=i64([[0, 1], [2, 2], [4, 0]]), updates=F.u([3], F64))
        F.add(prefix + "ScatterNdUpdate", "3-D variable, slices of the last"
              " dim", ref=State(F.u([2, 3, 4])),
              indices=i32([[1, 2], [0, 0]]), updates=F.u([2, 4]))
        F.add(prefix + "ScatterNdAdd", "rows, duplicate indices",
              ref=State(F.u(shape)), indices=i32([[1], [3], [1]]),
              updates=F.u([3, 3]))
        F.add(prefix + "ScatterNdAdd", "elements, duplicates, int64 indices",
              ref=State(F.u(shape, F64)),
              indices=i64([[0, 0], [4, 2], [0, 0]]), updates=F.u([3], F64))
        F.add(prefix + "ScatterNdAdd", "int32, 1-D variable, duplicates",
              ref=State(F.ri([6], -9, 9)), indices=i32([[5], [0], [5]]),
              updates=F.ri([3], -9, 9))
    F.add("ScatterNdUpdate", "int32, indices [2, 2, 1]: updates [2, 2, 3]",
          ref=State(F.ri(shape, -9, 9)), indices=i32([[[0], [2]], [[4],
                                                                   [1]]]),
          updates=F.ri([2, 2, 3], -9, 9))
    F.add("ScatterNdUpdate", "no indices: nothing changes",
          ref=State(F.u(shape)), indices=np.zeros([0, 1], I32),
          updates=np.zeros([0, 3], F32))
    F.add("ScatterNdSub", "rows", ref=State(F.u(shape)),
          indices=i32([[4], [0]]), updates=F.u([2, 3]))
    F.add("ScatterNdSub", "elements, duplicates, float64",
          ref=State(F.u(shape, F64)), indices=i64([[3, 1], [3, 1], [0, 2]]),
          updates=F.u([3], F64))
    F.add("ScatterNdSub", "int64 variable", ref=State(F.ri([4, 2], -9, 9,
                                                           I64)),
          indices=i32([[2], [0]]), updates=F.ri([2, 2], -9, 9, I64))
    F.add("ResourceScatterNdAdd", "indices [2, 1, 2]: updates [2, 1]",
          ref=State(F.u(shape)), indices=i32([[[4, 2]], [[1, 0]]]),
          updates=F.u([2, 1]))


def build_optim_strided_slice_assign(F):
    """StridedSliceAssign (ref) / ResourceStridedSliceAssign (resource):
    var[begin:end:strides] = value with StridedSlice's masks; value is
    broadcast to the slice's shape."""
    def add(op, desc, var, begin, end, strides, value_shape=None, value=None,
            **masks):
        v = State(var)
        if value is None:
            dt = var.dtype.type
            value = (F.ri(value_shape, -9, 9, dt) if var.dtype.kind == "i"
                     else F.u(value_shape, dt))
        F.add(op, desc, ref=v, begin=begin, end=end, strides=strides,
              value=value, **masks)

    for prefix in ("", "Resource"):
        op = prefix + "StridedSliceAssign"
        add(op, "var[1:3, 0:5:2]", F.u([4, 5]), i32([1, 0]), i32([3, 5]),
            i32([1, 2]), [2, 3])
        add(op, "negative strides, end_mask 2: var[3:0:-1, 4::-2]",
            F.u([4, 5]), i32([3, 4]), i32([0, 0]), i32([-1, -2]), [3, 3],
            end_mask=2)
        add(op, "shrink_axis_mask 1: var[2, 1:4]", F.u([4, 5]), i32([2, 1]),
            i32([3, 4]), i32([1, 1]), [3], shrink_axis_mask=1)
        add(op, "ellipsis_mask 1, new_axis_mask 4: var[..., 1:3, "
            "tf.newaxis]", F.u([2, 3, 4]), i32([0, 1, 0]), i32([0, 3, 0]),
            i32([1, 1, 1]), [2, 3, 2, 1], ellipsis_mask=1, new_axis_mask=4)
        add(op, "scalar value broadcast: var[0:2, :], end_mask 2",
            F.u([4, 5]), i32([0, 0]), i32([2, 0]), i32([1, 1]),
            value=f32(7.5), end_mask=2)
        add(op, "int64 begin/end/strides, float64, value [1, 5] broadcast: "
            "var[::2]", F.u([4, 5], F64), i64([0]), i64([0]), i64([2]),
            [1, 5], begin_mask=1, end_mask=1)
    op = "StridedSliceAssign"
    add(op, "begin_mask 1, end_mask 2: var[:3, 1:]", F.u([4, 5]),
        i32([2, 1]), i32([3, 0]), i32([1, 1]), [3, 4], begin_mask=1,
        end_mask=2)
    add(op, "negative begin/end: var[-3:-1, -4:-1]", F.u([4, 5]),
        i32([-3, -4]), i32([-1, -1]), i32([1, 1]), [2, 3])
    add(op, "end beyond the dims is clamped: var[2:10, 3:10]", F.u([4, 5]),
        i32([2, 3]), i32([10, 10]), i32([1, 1]), [2, 2])
    add(op, "new_axis_mask 1: var[tf.newaxis, 1:3, :]", F.u([4, 5]),
        i32([0, 1, 0]), i32([0, 3, 5]), i32([1, 1, 1]), [1, 2, 5],
        new_axis_mask=1)
    add(op, "ellipsis_mask 1: var[..., 1:3]", F.u([2, 3, 4]), i32([0, 1]),
        i32([0, 3]), i32([1, 1]), [2, 3, 2], ellipsis_mask=1)
    add(op, "ellipsis and shrink: var[..., 2]", F.u([2, 3, 4]), i32([0, 2]),
        i32([0, 3]), i32([1, 1]), [2, 3], ellipsis_mask=1,
        shrink_axis_mask=2)
    add(op, "ellipsis in the middle: var[1, ..., ::2]", F.u([2, 3, 4]),
        i32([1, 0, 0]), i32([2, 0, 0]), i32([1, 1, 2]), [3, 2],
        ellipsis_mask=2, shrink_axis_mask=1, end_mask=4)
    add(op, "int32 variable, stride 3 and negative stride: var[::3, ::-1]",
        F.ri([5, 3], -9, 9), i32([0, 0]), i32([0, 0]), i32([3, -1]), [2, 3],
        begin_mask=3, end_mask=3)
    add(op, "empty slice var[2:2]: nothing changes", F.u([4, 5]),
        i32([2, 0]), i32([2, 5]), i32([1, 1]), [0, 5])
    op = "ResourceStridedSliceAssign"
    add(op, "shrink_axis_mask 3: one element var[1, 2]", F.u([3, 4]),
        i32([1, 2]), i32([2, 3]), i32([1, 1]), value=f32(-4.0),
        shrink_axis_mask=3)
    add(op, "begin_mask 2, negative stride: var[1:3, :0:-1]", F.u([4, 5]),
        i32([1, 0]), i32([3, 0]), i32([1, -1]), [2, 4], begin_mask=2)
    add(op, "int32 variable, var[..., 0], int64 indices",
        F.ri([2, 2, 3], -9, 9), i64([0, 0]), i64([0, 1]), i64([1, 1]),
        [2, 2], ellipsis_mask=1, shrink_axis_mask=2)


# ---------------------------------------------------------------------------
# random
# ---------------------------------------------------------------------------

def build_random(F):
    seeds = iter(range(11, 1000, 7))

    def rnd(op, desc, shape, rng=None, stats=None, **kw):
        opts = {"_check": "shape_dtype"}
        if rng is not None:
            opts["_range"] = rng
        if stats is not None:
            opts["_stats"] = stats
        F.add(op, desc, shape=shape, seed=next(seeds), seed2=next(seeds),
              **kw, **opts)

    uni_stats = (0.5, float(np.sqrt(1.0 / 12)))
    normal_stats = (0.0, 1.0)
    # std of N(0,1) truncated to [-2, 2]
    phi2 = np.exp(-2.0) / np.sqrt(2 * np.pi)
    z = 0.9544997361036416  # P(|N| < 2)
    tn_stats = (0.0, float(np.sqrt(1 - 2 * 2 * phi2 / z)))
    for op, rng, stats in (("RandomUniform", [0, 1], uni_stats),
                           ("RandomStandardNormal", None, normal_stats),
                           ("TruncatedNormal", [-2, 2], tn_stats)):
        rnd(op, "", i32([2, 3]), rng, dtype=tf.float32)
        rnd(op, "", i32([4]), rng, dtype=tf.float64)
        rnd(op, "", i32([3, 2]), rng, dtype=tf.float16)
        rnd(op, "int64 shape", i64([2, 2, 2]), rng, dtype=tf.float32)
        rnd(op, "scalar", np.zeros([0], I32), rng, dtype=tf.float32)
        rnd(op, "empty", i32([0, 3]), rng, dtype=tf.float32)
        rnd(op, "large sample for statistics", i32([10000]), rng, stats,
            dtype=tf.float32)
    for shape, lo, hi, dt in (([2, 3], 0, 10, I32), ([4], -5, 5, I64),
                              ([2, 2], 100, 103, I32)):
        rnd("RandomUniformInt", "", i32(shape), [lo, hi],
            minval=np.array(lo, dt), maxval=np.array(hi, dt))
    lo, hi = -3, 7
    n = hi - lo
    rnd("RandomUniformInt", "large sample for statistics", i32([10000]),
        [lo, hi], ((lo + hi - 1) / 2.0, float(np.sqrt((n * n - 1) / 12.0))),
        minval=i32(lo), maxval=i32(hi))


# ---------------------------------------------------------------------------
# segment (segment reductions, Unique, top-k)
# ---------------------------------------------------------------------------

def build_segment(F):
    F.add("Unique", "unique values in first-occurrence order; idx[i] = "
          "position of x[i] in y", x=i32([3, 1, 3, 7, 1, 1, -2]))
    F.add("Unique", x=i64([5, 5, -1, 0, 9, -1]), out_idx=tf.int64)
    F.add("Unique", x=i64([2, 8, 2]), out_idx=tf.int32)
    F.add("Unique", x=i32([4, 0, 0, 4]), out_idx=tf.int64)
    F.add("Unique", "float values", x=f32([0.5, -1.0, 0.5, 2.0, -1.0]))
    F.add("Unique", "empty", x=np.zeros([0], I32))
    F.add("UniqueWithCounts", "count[j] = occurrences of y[j]",
          x=i32([3, 1, 3, 7, 1, 1, -2]))
    F.add("UniqueWithCounts", x=i64([9, 9, 9, 0]), out_idx=tf.int64)

    F.add("UnsortedSegmentSum", "", data=F.u([6]),
          segment_ids=i32([2, 0, 2, 1, 0, 2]), num_segments=i32(3))
    F.add("UnsortedSegmentSum", "num_segments > max id + 1 (empty segments "
          "are 0); negative ids are dropped", data=F.u([5, 3]),
          segment_ids=i64([3, -1, 0, 3, -1]), num_segments=i32(6))
    F.add("UnsortedSegmentSum", "int64 num_segments", data=F.u([4, 2], F64),
          segment_ids=i32([1, 1, 0, 1]), num_segments=i64(2))
    F.add("UnsortedSegmentSum", "int32 data",
          data=F.ri([5, 2], -9, 9), segment_ids=i64([0, 2, 0, 2, 1]),
          num_segments=i64(4))
    F.add("UnsortedSegmentSum", "2-D segment ids: out.shape = "
          "[num_segments] + data.shape[ids.ndim:]", data=F.u([2, 3, 2]),
          segment_ids=i32([[0, 2, 0], [-1, 2, 1]]), num_segments=i32(4))
    F.add("UnsortedSegmentSum", "ids.shape == data.shape (scalar segments)",
          data=F.u([2, 2]), segment_ids=i32([[1, 0], [1, 1]]),
          num_segments=i32(2))
    for op, empty in (("UnsortedSegmentMax", "lowest (float: -FLT_MAX, "
                       "not -inf)"),
                      ("UnsortedSegmentMin", "highest (float: FLT_MAX, "
                       "not inf)"),
                      ("UnsortedSegmentProd", "1")):
        desc = "empty segments are the dtype's " + empty
        F.add(op, desc, data=F.u([5, 2]), segment_ids=i32([3, 0, 3, -1, 0]),
              num_segments=i32(5))
        F.add(op, desc, data=F.ri([6], -9, 9),
              segment_ids=i64([1, 1, 0, 1, 0, 0]), num_segments=i32(3))
        F.add(op, desc, data=F.u([4], F64), segment_ids=i32([0, 2, 2, 0]),
              num_segments=i64(4))

    F.add("SegmentSum", "sorted ids; out has max(id)+1 rows, skipped ids "
          "give 0", data=F.u([5, 3]), segment_ids=i32([0, 0, 1, 3, 3]))
    F.add("SegmentSum", data=F.ri([4], -9, 9), segment_ids=i64([1, 1, 1, 2]))
    F.add("SegmentSum", data=F.u([3, 2], F64), segment_ids=i32([0, 1, 1]))
    F.add("SegmentMean", "sorted ids; skipped ids give 0",
          data=F.u([5, 3]), segment_ids=i32([0, 0, 1, 3, 3]))
    F.add("SegmentMean", data=F.u([4, 2], F64),
          segment_ids=i64([0, 0, 0, 2]))

    F.add("InTopKV2", "k=1", predictions=F.u([3, 4]),
          targets=i32([0, 3, 2]), k=i32(1))
    F.add("InTopKV2", "k=2 with ties: true iff fewer than k predictions are "
          "strictly greater than the target's (ties at the boundary are all "
          "in)", predictions=f32([[0.9, 0.5, 0.5, 0.1],
                                  [0.9, 0.5, 0.5, 0.1],
                                  [0.2, 0.7, 0.7, 0.7],
                                  [0.3, 0.3, 0.3, 0.3]]),
          targets=i64([2, 3, 3, 1]), k=i64(2))
    F.add("InTopKV2", "k=1 with ties", predictions=f32([[0.5, 0.5, 0.1],
                                                        [0.1, 0.5, 0.5]]),
          targets=i32([1, 1]), k=i32(1))
    F.add("InTopKV2", "false whenever ANY prediction in the row is "
          "non-finite (not only the target's), or the target is out of range",
          predictions=f32([[0.1, np.inf, 0.3], [0.1, np.nan, 0.3],
                           [0.1, 0.2, 0.3], [0.1, 0.2, 0.3],
                           [np.nan, 0.2, 0.3], [np.inf, 0.2, 0.1],
                           [-np.inf, 0.2, 0.1]]),
          targets=i32([1, 1, 3, -1, 2, 1, 1]), k=i32(1))

    F.add("TopKV2", "k=3; ties: the lower index comes first",
          input=f32([0.5, 2.0, -1.0, 2.0, 0.5, 0.5]), k=i32(3))
    F.add("TopKV2", "k=1 per row; ties: the lower index",
          input=f32([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]]), k=i32(1))
    F.add("TopKV2", "k=3; int32 with ties", input=i32([[4, 1, 4, 7, 1],
                                                        [0, 0, 0, 5, 5]]),
          k=i32(3))
    F.add("TopKV2", "3-D input, top-k along the last axis",
          input=F.u([2, 2, 5], F64), k=i32(2))
    F.add("TopKV2", "int64 k, int64 indices", input=F.u([2, 4]), k=i64(4),
          index_type=tf.int64)
    F.add("TopKV2", "k=0: empty outputs", input=F.u([2, 3]), k=i32(0))

    F.add("UnsortedSegmentSum", "segment id >= num_segments",
          data=F.u([3]), segment_ids=i32([0, 3, 1]), num_segments=i32(3),
          _error=True)
    F.add("SegmentSum", "ids not sorted", data=F.u([3]),
          segment_ids=i32([1, 0, 1]), _error=True)
    F.add("TopKV2", "k > last dimension", input=F.u([2, 3]), k=i32(4),
          _error=True)


# ---------------------------------------------------------------------------
# models (ops of common model architectures: depthwise convs, attention,
# detection/segmentation heads)
# ---------------------------------------------------------------------------

def build_models(F):
    # DepthwiseConv2dNative and backprops (NHWC only: TF CPU rejects NCHW
    # for all three (UnimplementedError), dilations > 1 in the forward op
    # (UnimplementedError) and unequal row/column strides
    # (InvalidArgumentError); the backprops accept dilations but ignore
    # them, so no dilation case is recorded).  filter: [kh, kw, C, M],
    # output channel c*M + m.
    dw_cfgs = [
        ("VALID 3x3, multiplier 1", [2, 5, 5, 3], [3, 3, 3, 1],
         dict(strides=[1, 1, 1, 1], padding="VALID")),
        ("SAME 3x3, multiplier 2", [1, 5, 5, 2], [3, 3, 2, 2],
         dict(strides=[1, 1, 1, 1], padding="SAME")),
        ("SAME 3x3 stride 2, odd size, multiplier 2", [1, 7, 6, 2],
         [3, 3, 2, 2], dict(strides=[1, 2, 2, 1], padding="SAME")),
        ("VALID 3x3 stride 2, multiplier 1", [2, 7, 7, 3], [3, 3, 3, 1],
         dict(strides=[1, 2, 2, 1], padding="VALID")),
        ("SAME 5x5, multiplier 1", [1, 6, 6, 2], [5, 5, 2, 1],
         dict(strides=[1, 1, 1, 1], padding="SAME")),
        ("VALID 5x5 stride 2, multiplier 2", [1, 9, 8, 2], [5, 5, 2, 2],
         dict(strides=[1, 2, 2, 1], padding="VALID")),
        ("SAME 5x5 stride 2, even size, multiplier 1", [1, 8, 8, 3],
         [5, 5, 3, 1], dict(strides=[1, 2, 2, 1], padding="SAME")),
        ("EXPLICIT padding, multiplier 2", [1, 5, 5, 2], [3, 3, 2, 2],
         dict(strides=[1, 1, 1, 1], padding="EXPLICIT",
              explicit_paddings=[0, 0, 1, 2, 0, 1, 0, 0])),
    ]
    ctol = dict(_atol=1e-5)
    cdesc = " (atol 1e-5: summation order)"
    for desc, xs, ws, attrs in dw_cfgs:
        F.add("DepthwiseConv2dNative", desc + cdesc, input=F.u(xs),
              filter=F.u(ws), **attrs, **ctol)
    for desc, xs, ws, attrs in dw_cfgs[1:3]:
        F.add("DepthwiseConv2dNative", desc, input=F.u(xs, F64),
              filter=F.u(ws, F64), **attrs)
    F.add("DepthwiseConv2dNative", "(f16 tol 1e-2: accumulation)",
          input=F.u([1, 4, 4, 2], F16), filter=F.u([3, 3, 2, 2], F16),
          strides=[1, 1, 1, 1], padding="SAME", _rtol=1e-2, _atol=1e-2)
    for dt in (F32, F64):
        for desc, xs, ws, attrs in (dw_cfgs if dt == F32 else dw_cfgs[1:3]):
            x, w = F.u(xs, dt), F.u(ws, dt)
            y = ev("DepthwiseConv2dNative", input=x, filter=w, **attrs)
            dy = F.u(y.shape, dt)
            extra = ctol if dt == F32 else {}
            d = desc + (cdesc if dt == F32 else "")
            F.add("DepthwiseConv2dNativeBackpropInput", d,
                  input_sizes=i32(xs), filter=w, out_backprop=dy, **attrs,
                  **extra)
            F.add("DepthwiseConv2dNativeBackpropFilter", d, input=x,
                  filter_sizes=i32(ws), out_backprop=dy, **attrs, **extra)

    # Erf / Erfc
    spread = f32([-5.0, -3.0, -2.0, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0,
                  1.5, 2.0, 3.0, 4.0, 5.0])
    for op in ["Erf", "Erfc"]:
        F.add(op, "spread over [-5, 5] with 0, +-0.5", x=spread)
        F.add(op, x=F.u([3, 4], F32, -5, 5))
        F.add(op, "large magnitudes, inf, nan",
              x=f32([-30.0, -10.0, -6.0, 6.0, 10.0, 30.0, np.inf, -np.inf,
                     np.nan, -0.0]))
        F.add(op, x=spread.astype(F64))
        F.add(op, x=F.u([2, 3], F64, -5, 5))
        F.add(op, "(TF's half results are the exactly rounded values)",
              x=spread.astype(F16))
        F.add(op, x=F.u([2, 3], F16, -3, 3))
        F.add(op, "empty", x=F.u([0, 2]))
    F.add("Erfc", "positive tail: TF computes erfc directly, not 1 - erf "
          "(atol 0: relative accuracy down to erfc(9) = 4.1e-37)",
          x=f32([0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]),
          _atol=0.0)

    # Einsum (atol 1e-5 where something is summed: summation order)
    etol = dict(_atol=1e-5)
    F.add("Einsum", "matmul" + cdesc, inputs=[F.u([2, 3]), F.u([3, 4])],
          equation="ij,jk->ik", **etol)
    F.add("Einsum", "batch matmul" + cdesc,
          inputs=[F.u([2, 2, 3]), F.u([2, 3, 2])], equation="bij,bjk->bik",
          **etol)
    F.add("Einsum", "attention scores q.k^T" + cdesc,
          inputs=[F.u([1, 2, 3, 4]), F.u([1, 2, 5, 4])],
          equation="bhqd,bhkd->bhqk", **etol)
    F.add("Einsum", "attention weights x values" + cdesc,
          inputs=[F.u([1, 2, 3, 5]), F.u([1, 2, 5, 4])],
          equation="bhqk,bhkd->bhqd", **etol)
    F.add("Einsum", "transpose", inputs=[F.u([2, 3])], equation="ij->ji")
    F.add("Einsum", "diagonal", inputs=[F.u([3, 3])], equation="ii->i")
    F.add("Einsum", "sum of all elements" + cdesc, inputs=[F.u([3, 4])],
          equation="ij->", **etol)
    F.add("Einsum", "outer product", inputs=[F.u([3]), F.u([4])],
          equation="i,j->ij")
    F.add("Einsum", "broadcast batch dims [2,1] x [3]" + cdesc,
          inputs=[F.u([2, 1, 2, 3]), F.u([3, 3, 2])],
          equation="...ij,...jk->...ik", **etol)
    F.add("Einsum", "no batch dims on one side" + cdesc,
          inputs=[F.u([2, 3]), F.u([2, 3, 2])],
          equation="...ij,...jk->...ik", **etol)
    F.add("Einsum", inputs=[F.u([2, 3], F64), F.u([3, 2], F64)],
          equation="ij,jk->ik")
    F.add("Einsum", "int32", inputs=[F.ri([2, 2, 3], -5, 5),
                                     F.ri([2, 3, 2], -5, 5)],
          equation="bij,bjk->bik")

    # MatrixBandPart: keep in[i, j] where (lower < 0 or i - j <= lower) and
    # (upper < 0 or j - i <= upper)
    x2, x3 = F.u([4, 5]), F.u([2, 3, 4])
    for lo, up, what in ((0, -1, "upper triangle"),
                         (-1, 0, "lower triangle"), (1, 1, "tridiagonal"),
                         (0, 0, "diagonal")):
        F.add("MatrixBandPart", what, input=x2, num_lower=i32(lo),
              num_upper=i32(up))
        F.add("MatrixBandPart", what + ", batched", input=x3,
              num_lower=i32(lo), num_upper=i32(up))
    F.add("MatrixBandPart", "int64 bounds", input=F.u([5, 4]),
          num_lower=i64(2), num_upper=i64(0))
    F.add("MatrixBandPart", "bounds equal to the matrix size (keep all)",
          input=F.u([3, 4], F64), num_lower=i64(3), num_upper=i64(4))
    F.add("MatrixBandPart", "int32 input", input=F.ri([2, 3, 3], -9, 9),
          num_lower=i32(-1), num_upper=i32(1))

    # GatherNd / ScatterNd / TensorScatter*
    p2 = F.u([3, 4])
    F.add("GatherNd", "index depth = rank: elements", params=p2,
          indices=i32([[0, 1], [2, 3], [1, 0], [0, 1]]))
    F.add("GatherNd", "index depth 1 < rank: rows", params=p2,
          indices=i32([[2], [0]]))
    F.add("GatherNd", "batch of indices [2,2,2] -> [2,2]", params=p2,
          indices=i32([[[0, 0], [1, 1]], [[2, 2], [2, 3]]]))
    F.add("GatherNd", "int64 indices, depth 2 of rank 3: slices [N, 2]",
          params=F.u([3, 4, 2]), indices=i64([[1, 3], [0, 0], [2, 1]]))
    F.add("GatherNd", "batch of depth-1 indices on rank 3",
          params=F.u([3, 2, 2], F64), indices=i64([[[1], [0]], [[2], [2]]]))
    F.add("GatherNd", "int32 params", params=F.ri([2, 3, 2], -9, 9),
          indices=i32([[1, 2, 0], [0, 0, 1]]))
    F.add("GatherNd", "empty indices", params=p2,
          indices=np.zeros([0, 2], I32))
    F.add("ScatterNd", "duplicate indices accumulate",
          indices=i32([[1], [3], [1], [0], [1]]), updates=F.u([5]),
          shape=i32([6]))
    F.add("ScatterNd", "slices: depth 1 into [4, 3]",
          indices=i32([[2], [0]]), updates=F.u([2, 3]), shape=i32([4, 3]))
    F.add("ScatterNd", "elements of a matrix, int64 indices and shape",
          indices=i64([[0, 1], [2, 2], [0, 1]]), updates=F.u([3], F64),
          shape=i64([3, 3]))
    F.add("ScatterNd", "int32 updates, batch of indices [2,2,1]",
          indices=i32([[[0], [2]], [[2], [1]]]),
          updates=F.ri([2, 2, 2], -9, 9), shape=i32([3, 2]))
    t = F.u([4, 3])
    F.add("TensorScatterUpdate", "elements (unique indices)", tensor=t,
          indices=i32([[0, 0], [3, 2], [1, 1]]), updates=F.u([3]))
    F.add("TensorScatterUpdate", "rows", tensor=t, indices=i64([[3], [1]]),
          updates=F.u([2, 3]))
    F.add("TensorScatterUpdate", "int32", tensor=F.ri([5], -9, 9),
          indices=i32([[4], [0]]), updates=i32([100, 200]))
    for op in ["TensorScatterAdd", "TensorScatterSub"]:
        F.add(op, "duplicate indices accumulate", tensor=t,
              indices=i32([[1, 2], [0, 0], [1, 2]]), updates=F.u([3]))
        F.add(op, "rows, duplicates", tensor=t, indices=i64([[2], [0], [2]]),
              updates=F.u([3, 3]))
        F.add(op, tensor=F.u([2, 3], F64), indices=i32([[1]]),
              updates=F.u([1, 3], F64))
        F.add(op, "int32", tensor=F.ri([4], -9, 9),
              indices=i32([[3], [3], [0]]), updates=F.ri([3], -9, 9))

    # MaxPoolV2 / MaxPoolGradV2: ksize and strides are int32 inputs
    pool_cfgs = [
        ("2x2 stride 2 VALID", [2, 4, 4, 3], [1, 2, 2, 1], [1, 2, 2, 1],
         "VALID"),
        ("2x2 stride 2 SAME, odd size", [1, 5, 5, 2], [1, 2, 2, 1],
         [1, 2, 2, 1], "SAME"),
        ("3x3 stride 2 overlapping SAME", [1, 7, 6, 2], [1, 3, 3, 1],
         [1, 2, 2, 1], "SAME"),
        ("3x3 stride 1 overlapping VALID", [1, 5, 5, 2], [1, 3, 3, 1],
         [1, 1, 1, 1], "VALID"),
    ]
    for desc, xs, k, s, p in pool_cfgs:
        F.add("MaxPoolV2", desc, input=F.u(xs), ksize=i32(k),
              strides=i32(s), padding=p)
    F.add("MaxPoolV2", input=F.u([1, 4, 4, 2], F64), ksize=i32([1, 2, 2, 1]),
          strides=i32([1, 2, 2, 1]), padding="SAME")
    for desc, xs, k, s, p in pool_cfgs:
        for dt in (F32, F64):
            if dt == F64 and p == "VALID":
                continue
            x = F.u(xs, dt)  # random floats: no ties
            y = ev("MaxPool", input=x, ksize=k, strides=s, padding=p)
            F.add("MaxPoolGradV2", desc, orig_input=x, orig_output=y,
                  grad=F.u(y.shape, dt), ksize=i32(k), strides=i32(s),
                  padding=p)

    # LRN / LRNGrad: sqr_sum[c] = sum of x[c']^2 over |c' - c| <=
    # depth_radius (clipped to the channels), out = x / (bias + alpha *
    # sqr_sum)^beta (alpha is not divided by the window size).  LRN and
    # LRNGrad have no float64 kernels (T in half, bfloat16, float).
    lrn_attrs = [("default attrs (depth_radius 5, bias 1, alpha 1, beta "
                  "0.5)", {}),
                 ("", dict(depth_radius=2, bias=2.0, alpha=1e-3,
                           beta=0.75))]
    for desc, attrs in lrn_attrs:
        F.add("LRN", desc, input=F.n([2, 2, 3, 8]), **attrs)
        F.add("LRN", desc + (", " if desc else "") + "5 channels",
              input=F.n([1, 2, 2, 5]), **attrs)
    F.add("LRN", "depth_radius 1, beta 1", input=F.n([1, 3, 2, 4]),
          depth_radius=1, bias=0.5, alpha=0.2, beta=1.0)
    F.add("LRN", "float16 (TF's result is within 4e-4 of the exact one)",
          input=F.n([1, 2, 2, 6], F16), depth_radius=2, bias=2.0, alpha=1e-3,
          beta=0.75)
    for desc, attrs in lrn_attrs:
        for shape in ([2, 2, 3, 8], [1, 2, 2, 5]):
            x = F.n(shape)
            y = ev("LRN", input=x, **attrs)
            F.add("LRNGrad", (desc + "; " if desc else "")
                  + "output_image = LRN(input_image)",
                  input_grads=F.n(shape), input_image=x, output_image=y,
                  **attrs)
    x = F.n([1, 2, 2, 6], F16)
    attrs = dict(depth_radius=2, bias=2.0, alpha=1e-3, beta=0.75)
    F.add("LRNGrad", "output_image = LRN(input_image) (f16 tol 1e-2: TF's "
          "half result is 1e-3 off the exact gradient)", input_grads=F.n([1, 2, 2, 6], F16), input_image=x,
          output_image=ev("LRN", input=x, **attrs), **attrs, _rtol=1e-2,
          _atol=1e-2)

    # ResizeBilinear / ResizeNearestNeighbor and grads.  TF rejects
    # align_corners=True with half_pixel_centers=True (InvalidArgumentError)
    # in all but ResizeNearestNeighborGrad; that combination is not covered.
    combos = [dict(), dict(align_corners=True),
              dict(half_pixel_centers=True)]
    sizes = [("upscale", [7, 8]), ("downscale", [2, 3]),
             ("downscale, non-integer ratio", [3, 4])]
    img = F.u([1, 4, 5, 2])
    for attrs in combos:
        for what, size in sizes:
            F.add("ResizeBilinear", what, images=img, size=i32(size),
                  **attrs)
    F.add("ResizeBilinear", "float64 images -> float32 output",
          images=F.u([1, 3, 3, 1], F64), size=i32([5, 4]),
          half_pixel_centers=True)
    F.add("ResizeBilinear", "int32 images -> float32 output, batch 2",
          images=F.ri([2, 3, 2, 2], -50, 50), size=i32([4, 5]),
          align_corners=True)
    for attrs in combos:
        for what, size in sizes[:2]:
            F.add("ResizeBilinearGrad", what + "; output shape = "
                  "original_image's (atol 1e-5: accumulation)",
                  grads=F.u([1] + size + [2]), original_image=img, **attrs,
                  _atol=1e-5)
    F.add("ResizeBilinearGrad", "float64 original_image -> float64 output "
          "(float32 grads; tol 1e-5/1e-6: TF forms grad * weight in float32)",
          grads=F.u([1, 5, 4, 1]), original_image=F.u([1, 3, 3, 1], F64),
          half_pixel_centers=True, _rtol=1e-5, _atol=1e-6)
    # arange images make the source index of every output pixel visible
    ramp = np.arange(4 * 6 * 2, dtype=F32).reshape(1, 4, 6, 2)
    nn_sizes = [("upscale", [7, 9]), ("downscale", [2, 4]),
                ("downscale, non-integer ratio", [3, 4]),
                ("upscale x2", [8, 12])]
    for attrs in combos:
        for what, size in nn_sizes:
            F.add("ResizeNearestNeighbor", what, images=ramp,
                  size=i32(size), **attrs)
    F.add("ResizeNearestNeighbor", "4 -> 7 with align_corners: scale 0.5, "
          "sources round half away from zero",
          images=ramp[:, :, :4, :1].copy(), size=i32([7, 7]),
          align_corners=True)
    F.add("ResizeNearestNeighbor", "int32 images, batch 2",
          images=F.ri([2, 3, 3, 1], -50, 50), size=i32([5, 2]),
          half_pixel_centers=True)
    for attrs in combos:
        for what, size in nn_sizes[:3]:
            F.add("ResizeNearestNeighborGrad", what + "; size = the "
                  "original image's [H, W] (atol 1e-5: accumulation)",
                  grads=F.u([1] + size + [2]), size=i32([4, 6]), **attrs,
                  _atol=1e-5)
    F.add("ResizeNearestNeighborGrad", "float64",
          grads=F.u([1, 5, 3, 1], F64), size=i32([3, 2]),
          half_pixel_centers=True)

    # Cumsum / Cumprod
    for op in ["Cumsum", "Cumprod"]:
        x = F.u([2, 5], F32, 0.5, 1.5) if op == "Cumprod" else F.u([2, 5])
        for ex in (False, True):
            for rev in (False, True):
                F.add(op, x=x, axis=i32(1), exclusive=ex, reverse=rev)
        F.add(op, "axis 0", x=F.u([3, 2]), axis=i32(0))
        F.add(op, "negative int64 axis, 3-D", x=F.u([2, 3, 2]),
              axis=i64(-2), reverse=True)
        F.add(op, x=F.u([4], F64), axis=i32(0), exclusive=True)
        F.add(op, "int32", x=F.ri([2, 4], -4, 5), axis=i32(-1))
        F.add(op, "int64, exclusive reverse", x=F.ri([5], -4, 5, I64),
              axis=i32(0), exclusive=True, reverse=True)
        F.add(op, "empty", x=F.u([0, 3]), axis=i32(0))

    F.add("GatherNd", "index out of range (CPU raises; TF GPU gives zeros)",
          params=F.u([3, 4]), indices=i32([[0, 1], [3, 0]]), _error=True)


# ---------------------------------------------------------------------------
# layout (partition/sparse/dense conversions, counting, set difference,
# space <-> depth/batch rearrangements, MirrorPadGrad)
# ---------------------------------------------------------------------------

def build_layout(F):
    # DynamicPartition: outputs[p] = data[partitions == p] (in order); the
    # partitions shape is a prefix of data's, each output is [count] +
    # data.shape[partitions.ndim:]
    F.add("DynamicPartition", "1-D partitions of a vector",
          data=F.u([6]), partitions=i32([2, 0, 2, 1, 0, 2]),
          num_partitions=3)
    F.add("DynamicPartition", "1-D partitions select rows; partition 1 is "
          "empty [0, 3]", data=F.u([5, 3]), partitions=i32([0, 2, 2, 0, 2]),
          num_partitions=3)
    F.add("DynamicPartition", "2-D partitions of [2, 3, 2] data: outputs "
          "[count, 2]", data=F.u([2, 3, 2]),
          partitions=i32([[1, 0, 2], [2, 1, 1]]), num_partitions=3)
    F.add("DynamicPartition", "partitions.shape == data.shape, int32 data",
          data=F.ri([2, 3], -9, 9), partitions=i32([[1, 1, 0], [0, 1, 1]]),
          num_partitions=2)
    F.add("DynamicPartition", "float64, num_partitions 1",
          data=F.u([3, 2], F64), partitions=i32([0, 0, 0]),
          num_partitions=1)
    F.add("DynamicPartition", "empty data: all partitions empty",
          data=F.u([0, 2]), partitions=np.zeros([0], I32), num_partitions=3)

    # SparseToDense: out = default_value everywhere, out[indices[i]] =
    # values[i] (values may be a scalar: broadcast)
    F.add("SparseToDense", "[N, 2] sorted indices",
          sparse_indices=i32([[0, 1], [1, 0], [1, 3], [2, 2]]),
          output_shape=i32([3, 4]), sparse_values=F.u([4]),
          default_value=f32(0.0))
    F.add("SparseToDense", "1-D indices: vector output, default -1",
          sparse_indices=i32([0, 2, 3]), output_shape=i32([5]),
          sparse_values=F.u([3]), default_value=f32(-1.0))
    F.add("SparseToDense", "scalar index, scalar value",
          sparse_indices=i32(2), output_shape=i32([5]),
          sparse_values=f32(7.5), default_value=f32(0.5))
    F.add("SparseToDense", "scalar value broadcast to every index, int64 "
          "indices and shape",
          sparse_indices=i64([[0, 0, 1], [1, 1, 0], [1, 2, 1]]),
          output_shape=i64([2, 3, 2]), sparse_values=f32(3.0),
          default_value=f32(-2.0))
    F.add("SparseToDense", "validate_indices=False, unsorted indices",
          sparse_indices=i32([[2, 1], [0, 3], [1, 0], [0, 0]]),
          output_shape=i32([3, 4]), sparse_values=F.u([4]),
          default_value=f32(0.0), validate_indices=False)
    F.add("SparseToDense", "validate_indices=False, unsorted 1-D int64 "
          "indices, int32 values", sparse_indices=i64([4, 1, 3]),
          output_shape=i64([6]), sparse_values=i32([10, 20, 30]),
          default_value=i32(-5), validate_indices=False)
    F.add("SparseToDense", "float64, validate_indices=True (default)",
          sparse_indices=i64([[0, 2], [1, 1]]), output_shape=i64([2, 3]),
          sparse_values=F.u([2], F64), default_value=f64(1.0))
    F.add("SparseToDense", "no indices: all default",
          sparse_indices=np.zeros([0, 2], I32), output_shape=i32([2, 2]),
          sparse_values=np.zeros([0], F32), default_value=f32(4.0))

    # SparseTensorDenseMatMul: out = op(A) @ op(B), A given by (indices,
    # values, shape) before the adjoint; duplicate indices accumulate
    spmm_tol = dict(_atol=1e-5)
    spmm_desc = " (atol 1e-5: summation order)"
    a_idx = i64([[0, 0], [0, 2], [1, 1], [2, 0], [2, 3]])
    for dt in (F32, F64):
        for adj_a in (False, True):
            for adj_b in (False, True):
                a_shape = [4, 3] if adj_a else [3, 4]   # op(A): [3, 4]
                idx = a_idx[:, ::-1].copy() if adj_a else a_idx
                b_shape = [2, 4] if adj_b else [4, 2]   # op(B): [4, 2]
                F.add("SparseTensorDenseMatMul",
                      "A [%d,%d]%s" % (a_shape[0], a_shape[1],
                                       spmm_desc if dt == F32 else ""),
                      a_indices=idx, a_values=F.u([5], dt),
                      a_shape=i64(a_shape), b=F.u(b_shape, dt),
                      adjoint_a=adj_a, adjoint_b=adj_b,
                      **(spmm_tol if dt == F32 else {}))
    F.add("SparseTensorDenseMatMul", "unsorted and duplicate indices "
          "accumulate; empty row" + spmm_desc,
          a_indices=i64([[2, 1], [0, 0], [2, 1], [0, 2]]),
          a_values=F.u([4]), a_shape=i64([4, 3]), b=F.u([3, 5]), **spmm_tol)
    F.add("SparseTensorDenseMatMul", "int32 indices" + spmm_desc,
          a_indices=i32([[0, 1], [1, 0]]), a_values=F.u([2]),
          a_shape=i64([2, 2]), b=F.u([2, 3]), **spmm_tol)
    F.add("SparseTensorDenseMatMul", "no nonzeros: zeros",
          a_indices=np.zeros([0, 2], I64), a_values=np.zeros([0], F32),
          a_shape=i64([2, 3]), b=F.u([3, 2]))

    # Bincount: out[v] = count (or weight sum) of v in arr; values >= size
    # are ignored; an empty weights tensor means counts (as tf.math.bincount
    # passes when weights is None) in weights' dtype
    F.add("Bincount", "empty f32 weights: counts; 5, 7 >= size are ignored",
          arr=i32([1, 3, 1, 0, 5, 3, 1, 7]), size=i32(5),
          weights=np.zeros([0], F32))
    F.add("Bincount", "empty int32 weights: int32 counts, trailing empty bins",
          arr=i32([2, 0, 2, 2]), size=i32(6), weights=np.zeros([0], I32))
    F.add("Bincount", "float32 weights; value 4 >= size ignored",
          arr=i32([0, 2, 2, 4, 1, 2]), size=i32(4), weights=F.u([6]))
    F.add("Bincount", "float64 weights, 2-D arr",
          arr=i32([[3, 0], [3, 3]]), size=i32(4), weights=F.u([2, 2], F64))
    F.add("Bincount", "int64 weights", arr=i32([1, 1, 2]), size=i32(3),
          weights=i64([5, -2, 7]))
    F.add("Bincount", "size 0: empty output", arr=i32([1, 0, 2]),
          size=i32(0), weights=np.zeros([0], F32))
    F.add("Bincount", "empty arr", arr=np.zeros([0], I32), size=i32(3),
          weights=np.zeros([0], F32))

    # ListDiff: out = x's elements not in y (x's order, duplicates kept),
    # idx = their positions in x
    F.add("ListDiff", "duplicates in x are kept",
          x=i32([1, 2, 3, 4, 2, 6, 1]), y=i32([2, 5, 6]), out_idx=tf.int32)
    F.add("ListDiff", "int64 out_idx", x=i32([7, -1, 0, 7, 3]),
          y=i32([3, 9]), out_idx=tf.int64)
    F.add("ListDiff", "int64 values, int32 idx", x=i64([10, 20, 30]),
          y=i64([20]), out_idx=tf.int32)
    F.add("ListDiff", "float values, int64 idx",
          x=f32([0.5, -1.0, 2.0, 0.5, 3.25]), y=f32([0.5, 3.0]),
          out_idx=tf.int64)
    F.add("ListDiff", "empty result", x=i32([4, 1, 4]), y=i32([1, 4, 8]),
          out_idx=tf.int32)
    F.add("ListDiff", "empty y: everything", x=F.u([3], F64),
          y=np.zeros([0], F64), out_idx=tf.int64)

    # DepthToSpace / SpaceToDepth (NHWC; TF CPU has no NCHW kernel):
    # out[b, h*bs + i, w*bs + j, c] = in[b, h, w, (i*bs + j)*C + c]; arange
    # inputs make the mapping visible
    def ramp(shape, dt=F32):
        return np.arange(int(np.prod(shape)), dtype=dt).reshape(shape)

    F.add("DepthToSpace", "block 2, 1 output channel",
          input=ramp([1, 2, 3, 4]), block_size=2)
    F.add("DepthToSpace", "block 2, 3 output channels, batch 2",
          input=ramp([2, 2, 2, 12]), block_size=2)
    F.add("DepthToSpace", "block 3, 2 output channels",
          input=ramp([1, 2, 1, 18]), block_size=3)
    F.add("DepthToSpace", "block 2, float64", input=F.u([1, 1, 2, 8], F64),
          block_size=2)
    F.add("DepthToSpace", "block 3, int32", input=F.ri([1, 2, 2, 9], -9, 9),
          block_size=3)
    F.add("SpaceToDepth", "block 2, 1 channel", input=ramp([1, 4, 6, 1]),
          block_size=2)
    F.add("SpaceToDepth", "block 2, 3 channels, batch 2",
          input=ramp([2, 4, 2, 3]), block_size=2)
    F.add("SpaceToDepth", "block 3, 2 channels", input=ramp([1, 3, 6, 2]),
          block_size=3)
    F.add("SpaceToDepth", "block 2, float64", input=F.u([1, 2, 4, 2], F64),
          block_size=2)
    F.add("SpaceToDepth", "block 3, int32", input=F.ri([1, 6, 3, 1], -9, 9),
          block_size=3)

    # SpaceToBatchND / BatchToSpaceND: input [batch] + spatial + remaining;
    # block offsets vary slowest in the output batch.  The atrous cases are
    # what tf.nn.atrous_conv2d (rate 2, 3x3 filter, SAME) builds around its
    # VALID Conv2D: 6x6 -> paddings [[2,2],[2,2]], crops 0; 5x5 -> paddings
    # [[2,3],[2,3]], crops [[0,1],[0,1]]
    F.add("SpaceToBatchND", "1 spatial dim, paddings [[1,2]], channel dim",
          input=ramp([2, 6, 3]), block_shape=i32([3]),
          paddings=i32([[1, 2]]))
    F.add("SpaceToBatchND", "1 spatial dim, no remaining dims, paddings "
          "[[0,0]]", input=ramp([1, 4]), block_shape=i32([2]),
          paddings=i32([[0, 0]]))
    F.add("SpaceToBatchND", "1 spatial dim of [2, 4, 3, 2]: remaining "
          "[3, 2], paddings [[1,1]]", input=ramp([2, 4, 3, 2]),
          block_shape=i32([2]), paddings=i32([[1, 1]]))
    F.add("SpaceToBatchND", "2 spatial dims, block [2, 3], paddings "
          "[[1,1],[0,3]]", input=ramp([2, 4, 6, 1]),
          block_shape=i32([2, 3]), paddings=i32([[1, 1], [0, 3]]))
    F.add("SpaceToBatchND", "atrous_conv2d rate 2 on 6x6: paddings "
          "[[2,2],[2,2]]", input=F.u([1, 6, 6, 2]), block_shape=i32([2, 2]),
          paddings=i32([[2, 2], [2, 2]]))
    F.add("SpaceToBatchND", "atrous_conv2d rate 2 on 5x5: paddings "
          "[[2,3],[2,3]]", input=F.u([1, 5, 5, 2]), block_shape=i32([2, 2]),
          paddings=i32([[2, 3], [2, 3]]))
    F.add("SpaceToBatchND", "int64 block_shape and paddings [[0,0],[1,1]], "
          "float64", input=F.u([1, 3, 4, 2], F64), block_shape=i64([3, 2]),
          paddings=i64([[0, 0], [1, 1]]))
    F.add("SpaceToBatchND", "int32 data, int64 block_shape with int32 "
          "paddings [[0,0],[0,0]]", input=F.ri([2, 2, 2, 1], -9, 9),
          block_shape=i64([2, 2]), paddings=i32([[0, 0], [0, 0]]))
    F.add("BatchToSpaceND", "1 spatial dim, crops [[1,2]], channel dim",
          input=ramp([6, 3, 3]), block_shape=i32([3]), crops=i32([[1, 2]]))
    F.add("BatchToSpaceND", "1 spatial dim, no remaining dims, crops "
          "[[0,0]]", input=ramp([2, 2]), block_shape=i32([2]),
          crops=i32([[0, 0]]))
    F.add("BatchToSpaceND", "1 spatial dim of [4, 3, 3, 2]: remaining "
          "[3, 2], crops [[1,1]]", input=ramp([4, 3, 3, 2]),
          block_shape=i32([2]), crops=i32([[1, 1]]))
    F.add("BatchToSpaceND", "2 spatial dims, block [2, 3], batch 2, crops "
          "[[1,1],[0,3]]", input=ramp([12, 3, 3, 1]),
          block_shape=i32([2, 3]), crops=i32([[1, 1], [0, 3]]))
    F.add("BatchToSpaceND", "atrous_conv2d rate 2 on 6x6 (after the 3x3 "
          "VALID conv): crops [[0,0],[0,0]]", input=F.u([4, 3, 3, 3]),
          block_shape=i32([2, 2]), crops=i32([[0, 0], [0, 0]]))
    F.add("BatchToSpaceND", "atrous_conv2d rate 2 on 5x5: crops "
          "[[0,1],[0,1]]", input=F.u([4, 3, 3, 3]), block_shape=i32([2, 2]),
          crops=i32([[0, 1], [0, 1]]))
    F.add("BatchToSpaceND", "int64 block_shape and crops [[0,0],[1,1]], "
          "float64", input=F.u([6, 3, 3, 2], F64), block_shape=i64([3, 2]),
          crops=i64([[0, 0], [1, 1]]))
    F.add("BatchToSpaceND", "int32 data, batch 8 = 2 x block, int64 "
          "block_shape with int32 crops [[0,0],[0,0]]",
          input=F.ri([8, 1, 1, 1], -9, 9), block_shape=i64([2, 2]),
          crops=i32([[0, 0], [0, 0]]))

    # MirrorPadGrad: input is the gradient of MirrorPad's output; every
    # padded element's gradient is added to its mirror source (REFLECT
    # excludes the edge, paddings < dim; SYMMETRIC includes it, paddings
    # <= dim); output shape = input shape - paddings
    for mode in ("REFLECT", "SYMMETRIC"):
        F.add("MirrorPadGrad", "1-D, paddings [[2,1]]", input=F.u([7]),
              paddings=i32([[2, 1]]), mode=mode)
        F.add("MirrorPadGrad", "2-D, paddings [[1,2],[0,1]]",
              input=F.u([7, 4]), paddings=i32([[1, 2], [0, 1]]), mode=mode)
        F.add("MirrorPadGrad", "2-D, paddings [[0,0],[2,2]], float64",
              input=F.u([2, 7], F64), paddings=i32([[0, 0], [2, 2]]),
              mode=mode)
        F.add("MirrorPadGrad", "3-D, int64 paddings [[1,0],[0,2],[1,1]]",
              input=F.u([3, 5, 5]), paddings=i64([[1, 0], [0, 2], [1, 1]]),
              mode=mode)
        F.add("MirrorPadGrad", "3-D, paddings [[2,1],[1,0],[0,0]]",
              input=F.u([6, 3, 2]), paddings=i32([[2, 1], [1, 0], [0, 0]]),
              mode=mode)
        F.add("MirrorPadGrad", "int32, zero paddings",
              input=F.ri([2, 3], -9, 9), paddings=i32([[0, 0], [0, 0]]),
              mode=mode)
    F.add("MirrorPadGrad", "REFLECT, largest paddings (dim - 1 = 3)",
          input=f32(np.arange(10)), paddings=i32([[3, 3]]), mode="REFLECT")
    F.add("MirrorPadGrad", "SYMMETRIC, paddings == dim (3): the whole "
          "input mirrored", input=f32(np.arange(9)), paddings=i32([[3, 3]]),
          mode="SYMMETRIC")

    # errors (TF's messages)
    F.add("DynamicPartition", "partition id >= num_partitions",
          data=F.u([4]), partitions=i32([0, 3, 1, 0]), num_partitions=3,
          _error=True)
    F.add("SparseToDense", "index out of bounds",
          sparse_indices=i32([[0, 1], [3, 0]]), output_shape=i32([3, 4]),
          sparse_values=F.u([2]), default_value=f32(0.0), _error=True)
    F.add("SparseToDense", "index out of bounds, validate_indices=False",
          sparse_indices=i32([[0, 1], [3, 0]]), output_shape=i32([3, 4]),
          sparse_values=F.u([2]), default_value=f32(0.0),
          validate_indices=False, _error=True)
    F.add("SparseToDense", "unsorted indices, validate_indices=True",
          sparse_indices=i32([[1, 1], [0, 2]]), output_shape=i32([3, 4]),
          sparse_values=F.u([2]), default_value=f32(0.0), _error=True)
    F.add("SparseToDense", "repeated index, validate_indices=True",
          sparse_indices=i32([[0, 0], [1, 1], [1, 1]]),
          output_shape=i32([3, 4]), sparse_values=F.u([3]),
          default_value=f32(0.0), _error=True)
    F.add("SparseTensorDenseMatMul", "row index out of bounds",
          a_indices=i64([[0, 0], [5, 1]]), a_values=F.u([2]),
          a_shape=i64([2, 3]), b=F.u([3, 2]), _error=True)
    F.add("SparseTensorDenseMatMul", "column index out of bounds",
          a_indices=i64([[0, 0], [1, 7]]), a_values=F.u([2]),
          a_shape=i64([2, 3]), b=F.u([3, 2]), _error=True)
    F.add("Bincount", "negative value", arr=i32([1, -1, 2]), size=i32(4),
          weights=np.zeros([0], F32), _error=True)
    F.add("DepthToSpace", "depth 6 not divisible by block_size^2",
          input=F.u([1, 2, 2, 6]), block_size=2, _error=True)
    F.add("SpaceToDepth", "height 5 not divisible by block_size",
          input=F.u([1, 5, 4, 1]), block_size=2, _error=True)
    # (no SpaceToBatchND/BatchToSpaceND error case: their shape functions
    # reject a block_shape of unknown rank at graph construction)
    F.add("MirrorPadGrad", "REFLECT paddings == dim",
          input=F.u([8]), paddings=i32([[3, 2]]), mode="REFLECT",
          _error=True)


# ---------------------------------------------------------------------------
# sparse_segment (SparseSegment* reductions and their gradients, as used by
# tf.nn.embedding_lookup_sparse, and the SparseTensor ops SparseFillEmptyRows
# and SparseReshape)
# ---------------------------------------------------------------------------

def build_sparse_segment(F):
    # SparseSegment{Sum,Mean,SqrtN}: out[s] = reduce of data[indices[k]] over
    # the k with segment_ids[k] == s (ids sorted, not necessarily
    # contiguous); Mean divides by the count, SqrtN by sqrt(count); empty
    # segments are 0.  Without num_segments out has segment_ids[-1] + 1 rows.
    for kind in ("Sum", "Mean", "SqrtN"):
        op = "SparseSegment" + kind
        F.add(op, "1-D data, repeated indices, contiguous ids",
              data=F.u([5]), indices=i32([0, 2, 2, 4, 1, 0]),
              segment_ids=i32([0, 0, 1, 1, 1, 2]))
        F.add(op, "2-D data, repeated indices; ids skip 1 and 3 (empty "
              "segments are 0)", data=F.u([6, 3]),
              indices=i32([5, 0, 5, 3, 1]), segment_ids=i32([0, 0, 2, 2, 4]))
        F.add(op, "float64, int64 indices and segment ids; first id 2 "
              "(rows 0, 1 empty)", data=F.u([4, 2], F64),
              indices=i64([3, 3, 1, 0]), segment_ids=i64([2, 2, 2, 3]))
        F.add(op, "int64 indices, int32 segment ids, 3-D data",
              data=F.u([3, 2, 2]), indices=i64([2, 0, 1]),
              segment_ids=i32([0, 1, 1]))
        F.add(op, "int32 indices, int64 segment ids, float64",
              data=F.u([4, 3], F64), indices=i32([1, 1, 1, 2]),
              segment_ids=i64([0, 0, 0, 1]))
        F.add(op, "no indices: empty output [0, 3]", data=F.u([3, 3]),
              indices=np.zeros([0], I32), segment_ids=np.zeros([0], I32))
        opn = op + "WithNumSegments"
        F.add(opn, "num_segments 6 > last id + 1; empty segments 1, 3, 4, 5 "
              "are 0", data=F.u([5, 2]), indices=i32([4, 1, 1, 0, 2]),
              segment_ids=i32([0, 0, 2, 2, 2]), num_segments=i32(6))
        F.add(opn, "1-D data, int64 indices/ids/num_segments, repeated "
              "indices", data=F.u([4], F64), indices=i64([3, 0, 3, 3]),
              segment_ids=i64([1, 1, 3, 3]), num_segments=i64(5))
        F.add(opn, "num_segments == last id + 1, int64 num_segments with "
              "int32 ids", data=F.u([3, 4]), indices=i32([2, 2, 0]),
              segment_ids=i32([0, 1, 1]), num_segments=i64(2))
        F.add(opn, "int64 indices, int32 ids, float64, 3 empty leading "
              "segments", data=F.u([5, 3], F64), indices=i64([0, 4, 4]),
              segment_ids=i32([3, 3, 4]), num_segments=i32(7))
        F.add(opn, "no indices: all num_segments rows 0",
              data=F.u([3, 2]), indices=np.zeros([0], I64),
              segment_ids=np.zeros([0], I64), num_segments=i32(3))
    F.add("SparseSegmentSum", "int32 data", data=F.ri([5, 2], -9, 9),
          indices=i32([4, 4, 0, 3]), segment_ids=i32([0, 1, 1, 3]))
    F.add("SparseSegmentSumWithNumSegments", "int64 data",
          data=F.ri([4], -9, 9).astype(I64), indices=i64([1, 3, 1]),
          segment_ids=i64([0, 0, 2]), num_segments=i32(4))

    # SparseSegment{Sum,Mean,SqrtN}Grad: out has output_dim0 rows,
    # out[indices[k]] += grad[segment_ids[k]] (/ count or sqrt(count) of
    # segment_ids[k]); rows no index names are 0, repeated indices add up
    for kind in ("Sum", "Mean", "SqrtN"):
        op = "SparseSegment%sGrad" % kind
        F.add(op, "output_dim0 6 > max index + 1 (rows 1, 5 are 0); "
              "repeated indices add up", grad=F.u([3, 2]),
              indices=i32([0, 3, 3, 2, 4, 0]),
              segment_ids=i32([0, 0, 1, 1, 1, 2]), output_dim0=i32(6))
        F.add(op, "1-D grad, int64 indices and ids, float64",
              grad=F.u([4], F64), indices=i64([2, 2, 2, 0]),
              segment_ids=i64([0, 1, 1, 3]), output_dim0=i32(4))
        F.add(op, "3-D grad, int64 indices, int32 ids; a grad row no id "
              "names is ignored", grad=F.u([3, 2, 2]),
              indices=i64([1, 0, 1]), segment_ids=i32([0, 0, 2]),
              output_dim0=i32(3))
        F.add(op, "no indices: zeros [output_dim0, 3]", grad=F.u([2, 3]),
              indices=np.zeros([0], I32), segment_ids=np.zeros([0], I32),
              output_dim0=i32(4))

    # SparseSegment{Sum,Mean,SqrtN}GradV2 (the gradient of the forward ops
    # with sparse_gradient=True, as embedding_lookup_sparse's fast path on a
    # ref table uses): the same sums, but only for the rows indices names:
    # outputs (rows [n_unique, ...], sorted_unique_indices [n_unique]);
    # dense_output_dim0 only bounds the indices
    for kind in ("Sum", "Mean", "SqrtN"):
        op = "SparseSegment%sGradV2" % kind
        F.add(op, "unsorted repeated indices: rows for the sorted unique "
              "indices [0, 2, 3, 4]", grad=F.u([3, 2]),
              indices=i32([0, 3, 3, 2, 4, 0]),
              segment_ids=i32([0, 0, 1, 1, 1, 2]), dense_output_dim0=i32(6))
        F.add(op, "1-D grad, int64 indices and ids, float64",
              grad=F.u([4], F64), indices=i64([2, 2, 2, 0]),
              segment_ids=i64([0, 1, 1, 3]), dense_output_dim0=i32(4))
        F.add(op, "no indices: empty outputs [0, 3], [0]", grad=F.u([2, 3]),
              indices=np.zeros([0], I32), segment_ids=np.zeros([0], I32),
              dense_output_dim0=i32(4))

    # SparseFillEmptyRows: each row r (first index column) with no entry
    # gets one [r, 0, ...] = default_value; outputs (indices, values,
    # empty_row_indicator [dense_shape[0]], reverse_index_map [N]: the
    # output position of each input entry); rows come out in order, entries
    # of a row in their input order
    F.add("SparseFillEmptyRows", "rows 1, 3 and 4 empty",
          indices=i64([[0, 1], [0, 3], [2, 0], [5, 2]]), values=F.u([4]),
          dense_shape=i64([6, 4]), default_value=f32(-1.0))
    F.add("SparseFillEmptyRows", "no empty rows: unchanged",
          indices=i64([[0, 0], [1, 2], [1, 3], [2, 1]]),
          values=F.u([4], F64), dense_shape=i64([3, 4]),
          default_value=f64(0.5))
    F.add("SparseFillEmptyRows", "no entries at all: every row filled",
          indices=np.zeros([0, 2], I64), values=np.zeros([0], F32),
          dense_shape=i64([3, 5]), default_value=f32(7.0))
    F.add("SparseFillEmptyRows", "3-D dense_shape: filled entries are "
          "[r, 0, 0]", indices=i64([[0, 1, 1], [0, 2, 0], [3, 0, 2]]),
          values=F.u([3]), dense_shape=i64([4, 3, 3]),
          default_value=f32(0.0))
    F.add("SparseFillEmptyRows", "int64 values (ids), last rows empty",
          indices=i64([[0, 0], [0, 1], [1, 0]]), values=i64([11, 4, 7]),
          dense_shape=i64([4, 2]), default_value=i64(0))
    F.add("SparseFillEmptyRows", "int64 values, first row empty, "
          "default -1", indices=i64([[1, 0], [2, 0], [2, 1]]),
          values=i64([3, 9, 3]), dense_shape=i64([3, 2]),
          default_value=i64(-1))
    F.add("SparseFillEmptyRows", "rows out of order: output sorted by row "
          "(stable within a row), reverse_index_map follows",
          indices=i64([[2, 1], [0, 0], [2, 0], [0, 3]]), values=F.u([4]),
          dense_shape=i64([4, 4]), default_value=f32(-2.0))
    F.add("SparseFillEmptyRows", "dense_shape[0] == 0: all outputs empty",
          indices=np.zeros([0, 2], I64), values=np.zeros([0], F32),
          dense_shape=i64([0, 3]), default_value=f32(1.0))

    # SparseReshape: output_indices = unravel(ravel(indices, input_shape),
    # output_shape); at most one -1 in new_shape, inferred
    F.add("SparseReshape", "[2, 6] -> [-1, 3] (-1 inferred as 4)",
          input_indices=i64([[0, 1], [0, 5], [1, 0], [1, 4]]),
          input_shape=i64([2, 6]), new_shape=i64([-1, 3]))
    F.add("SparseReshape", "rank 2 -> 3: [4, 6] -> [2, 3, 4]",
          input_indices=i64([[0, 0], [1, 5], [2, 3], [3, 5]]),
          input_shape=i64([4, 6]), new_shape=i64([2, 3, 4]))
    F.add("SparseReshape", "rank 3 -> 2: [2, 3, 4] -> [6, -1]",
          input_indices=i64([[0, 0, 1], [0, 2, 3], [1, 1, 0], [1, 2, 3]]),
          input_shape=i64([2, 3, 4]), new_shape=i64([6, -1]))
    F.add("SparseReshape", "rank 3 -> 1: flatten",
          input_indices=i64([[0, 1, 1], [1, 0, 0]]),
          input_shape=i64([2, 2, 3]), new_shape=i64([-1]))
    F.add("SparseReshape", "empty indices [0, 2] -> [0, 3]",
          input_indices=np.zeros([0, 2], I64), input_shape=i64([3, 4]),
          new_shape=i64([2, -1, 3]))
    F.add("SparseReshape", "same shape: unchanged",
          input_indices=i64([[0, 2], [1, 1]]), input_shape=i64([2, 3]),
          new_shape=i64([2, 3]))

    # errors (TF's messages)
    F.add("SparseSegmentSum", "segment ids not sorted", data=F.u([4, 2]),
          indices=i32([0, 1, 2]), segment_ids=i32([1, 0, 1]), _error=True)
    F.add("SparseSegmentSum", "index 5 out of range for 4 rows",
          data=F.u([4, 2]), indices=i32([0, 5, 1]),
          segment_ids=i32([0, 0, 1]), _error=True)
    F.add("SparseSegmentMean", "negative index", data=F.u([3]),
          indices=i64([0, -1]), segment_ids=i32([0, 1]), _error=True)
    F.add("SparseSegmentSumWithNumSegments", "segment id >= num_segments",
          data=F.u([3, 2]), indices=i32([0, 1]), segment_ids=i32([0, 3]),
          num_segments=i32(3), _error=True)
    F.add("SparseSegmentMeanGrad", "index >= output_dim0", grad=F.u([2, 2]),
          indices=i32([0, 4]), segment_ids=i32([0, 1]),
          output_dim0=i32(3), _error=True)
    F.add("SparseSegmentMeanGradV2", "index >= dense_output_dim0",
          grad=F.u([2, 2]), indices=i32([0, 4]), segment_ids=i32([0, 1]),
          dense_output_dim0=i32(3), _error=True)
    F.add("SparseReshape", "impossible shape: 6 elements into [4, 2]",
          input_indices=i64([[0, 1]]), input_shape=i64([2, 3]),
          new_shape=i64([4, 2]), _error=True)
    F.add("SparseReshape", "-1 cannot be inferred: 6 elements into "
          "[4, -1]", input_indices=i64([[0, 1]]), input_shape=i64([2, 3]),
          new_shape=i64([4, -1]), _error=True)
    F.add("SparseFillEmptyRows", "row index 5 >= dense_shape[0] = 3",
          indices=i64([[0, 0], [5, 1]]), values=F.u([2]),
          dense_shape=i64([3, 2]), default_value=f32(0.0), _error=True)
    # SparseTensorDenseAdd: b plus the sparse a, added value by value (repeated
    # indices accumulate)
    F.add("SparseTensorDenseAdd", "repeated index",
          a_indices=i64([[0, 1], [2, 0], [0, 1]]), a_values=F.u([3]),
          a_shape=i64([3, 2]), b=F.u([3, 2]))
    F.add("SparseTensorDenseAdd", "int32 indices, rank 3, int64 values",
          a_indices=i32([[0, 0, 1], [1, 2, 0]]), a_values=i64([5, -7]),
          a_shape=i32([2, 3, 2]), b=F.ri([2, 3, 2], -9, 9, I64))
    F.add("SparseTensorDenseAdd", "no entries", a_indices=i64(np.zeros((0, 2))),
          a_values=F.u([0], F64), a_shape=i64([2, 2]), b=F.u([2, 2], F64))
    F.add("SparseTensorDenseAdd", "shape differs from b's",
          a_indices=i64([[0, 0]]), a_values=F.u([1]), a_shape=i64([3, 2]),
          b=F.u([2, 3]), _error=True)
    F.add("SparseTensorDenseAdd", "index out of bounds",
          a_indices=i64([[0, 0], [3, 1]]), a_values=F.u([2]), a_shape=i64([3, 2]),
          b=F.u([3, 2]), _error=True)
    # SparseSoftmax: a softmax over the entries of each row (all but the last index)
    F.add("SparseSoftmax", "rows of 3, 1 and 2 entries; an empty row",
          sp_indices=i64([[0, 0], [0, 2], [0, 3], [1, 1], [3, 0], [3, 4]]),
          sp_values=F.u([6], F32, -3, 3), sp_shape=i64([4, 5]))
    F.add("SparseSoftmax", "rank 3, float64",
          sp_indices=i64([[0, 0, 1], [0, 0, 2], [0, 1, 0], [1, 1, 1], [1, 1, 2]]),
          sp_values=F.u([5], F64, -20, 20), sp_shape=i64([2, 2, 3]))
    F.add("SparseSoftmax", "rank 1 (one row)", sp_indices=i64([[0, 0]])[:, :1],
          sp_values=F.u([1]), sp_shape=i64([3]), _error=True)


# ---------------------------------------------------------------------------
# conv3d (Conv3D, its V2 backprops, MaxPool3D/AvgPool3D and their grads)
# ---------------------------------------------------------------------------

def build_conv3d(F):
    # Conv3D: input [N, D, H, W, C], filter [kd, kh, kw, C, O].  TF CPU
    # supports NDHWC only (NCDHW: InvalidArgumentError for Conv3D and both
    # backprops), dilations 1 only (forward and backprops:
    # InvalidArgumentError), no EXPLICIT padding (not in the op's list) and
    # no grouped convolution (input depth 4 with filter in_channels 2 is an
    # error, see the error cases); none of those is covered.  SAME pads
    # (out - 1) * stride + k - in in total, the smaller half before.
    conv_cfgs = [
        ("VALID 3x3x3", [2, 5, 6, 5, 3], [3, 3, 3, 3, 4],
         dict(strides=[1, 1, 1, 1, 1], padding="VALID")),
        ("SAME 3x3x3", [2, 4, 5, 6, 2], [3, 3, 3, 2, 3],
         dict(strides=[1, 1, 1, 1, 1], padding="SAME")),
        ("SAME 3x3x3 strides (1,2,2), odd sizes", [1, 5, 7, 5, 2],
         [3, 3, 3, 2, 2], dict(strides=[1, 1, 2, 2, 1], padding="SAME")),
        ("VALID 3x3x3 strides (1,2,2)", [2, 5, 7, 6, 3], [3, 3, 3, 3, 2],
         dict(strides=[1, 1, 2, 2, 1], padding="VALID")),
        ("VALID 2x3x1 strides (1,2,3)", [2, 6, 7, 7, 3], [2, 3, 1, 3, 2],
         dict(strides=[1, 1, 2, 3, 1], padding="VALID")),
        ("SAME 2x3x1 strides (1,2,3): even kernel depth pads after only",
         [1, 5, 6, 7, 2], [2, 3, 1, 2, 4],
         dict(strides=[1, 1, 2, 3, 1], padding="SAME")),
        ("SAME 2x3x1 stride 1", [2, 4, 5, 4, 2], [2, 3, 1, 2, 3],
         dict(strides=[1, 1, 1, 1, 1], padding="SAME")),
        ("VALID 3x3x3 stride 2 in every spatial dim", [1, 7, 7, 6, 2],
         [3, 3, 3, 2, 3], dict(strides=[1, 2, 2, 2, 1], padding="VALID")),
        ("SAME 1x1x1 kernel, depth stride 2", [2, 5, 4, 4, 3],
         [1, 1, 1, 3, 2], dict(strides=[1, 2, 1, 1, 1], padding="SAME")),
        ("VALID kernel as large as the input", [2, 3, 3, 3, 2],
         [3, 3, 3, 2, 4], dict(strides=[1, 1, 1, 1, 1], padding="VALID")),
    ]
    ctol = dict(_atol=1e-5)
    cdesc = " (atol 1e-5: summation order)"
    for desc, xs, ws, attrs in conv_cfgs:
        F.add("Conv3D", desc + cdesc, input=F.u(xs), filter=F.u(ws),
              **attrs, **ctol)
    for desc, xs, ws, attrs in (conv_cfgs[1], conv_cfgs[5]):
        F.add("Conv3D", desc, input=F.u(xs, F64), filter=F.u(ws, F64),
              **attrs)
    F.add("Conv3D", "(f16 tol 1e-2: accumulation)",
          input=F.u([1, 4, 4, 5, 2], F16), filter=F.u([2, 3, 2, 2, 3], F16),
          strides=[1, 1, 1, 2, 1], padding="SAME", _rtol=1e-2, _atol=1e-2)
    F.add("Conv3D", "empty batch", input=F.u([0, 4, 4, 4, 2]),
          filter=F.u([2, 2, 2, 2, 3]), strides=[1, 1, 1, 1, 1],
          padding="SAME")

    # Conv3DBackpropInputV2 (input_sizes: int32 or int64 [5]) and
    # Conv3DBackpropFilterV2 (filter_sizes: int32 only), same attrs
    for dt in (F32, F64):
        for desc, xs, ws, attrs in (conv_cfgs if dt == F32
                                    else conv_cfgs[1:3] + conv_cfgs[5:6]):
            x, w = F.u(xs, dt), F.u(ws, dt)
            dy = F.u(ev("Conv3D", input=x, filter=w, **attrs).shape, dt)
            extra = ctol if dt == F32 else {}
            d = desc + (cdesc if dt == F32 else "")
            F.add("Conv3DBackpropInputV2", d, input_sizes=i32(xs), filter=w,
                  out_backprop=dy, **attrs, **extra)
            F.add("Conv3DBackpropFilterV2", d, input=x, filter_sizes=i32(ws),
                  out_backprop=dy, **attrs, **extra)
    for desc, xs, ws, attrs in (conv_cfgs[2], conv_cfgs[4]):
        w = F.u(ws)
        dy = F.u(ev("Conv3D", input=F.u(xs), filter=w, **attrs).shape)
        F.add("Conv3DBackpropInputV2", "int64 input_sizes, " + desc + cdesc,
              input_sizes=i64(xs), filter=w, out_backprop=dy, **attrs, **ctol)
    x, w = F.u([1, 4, 4, 5, 2], F16), F.u([2, 3, 2, 2, 3], F16)
    attrs = dict(strides=[1, 1, 1, 2, 1], padding="SAME")
    dy = F.u(ev("Conv3D", input=x, filter=w, **attrs).shape, F16)
    F.add("Conv3DBackpropInputV2", "(f16 tol 1e-2: accumulation)",
          input_sizes=i32(x.shape), filter=w, out_backprop=dy, **attrs,
          _rtol=1e-2, _atol=1e-2)
    F.add("Conv3DBackpropFilterV2", "(f16 tol 1e-2: accumulation)",
          input=x, filter_sizes=i32(w.shape), out_backprop=dy, **attrs,
          _rtol=1e-2, _atol=1e-2)

    # MaxPool3D / AvgPool3D and grads: no float16/float64 TF CPU kernels
    # (NotFoundError or not in the op's type list), so float32 only; NDHWC
    # only; ksize/strides on the batch or channel dim are
    # UnimplementedError.  SAME edge windows: MaxPool3D ignores the padding
    # (all-negative inputs stay negative), AvgPool3D divides by the number
    # of valid elements in the window.
    pool_cfgs = [
        ("2x2x2 stride 2 VALID", [2, 4, 4, 4, 3], [1, 2, 2, 2, 1],
         [1, 2, 2, 2, 1], "VALID"),
        ("2x2x2 stride 2 VALID, odd sizes (last plane/row/column dropped)",
         [1, 5, 5, 7, 2], [1, 2, 2, 2, 1], [1, 2, 2, 2, 1], "VALID"),
        ("2x2x2 stride 2 SAME, odd sizes", [1, 5, 4, 7, 2], [1, 2, 2, 2, 1],
         [1, 2, 2, 2, 1], "SAME"),
        ("3x3x3 stride 2 SAME, overlapping", [1, 5, 6, 7, 2],
         [1, 3, 3, 3, 1], [1, 2, 2, 2, 1], "SAME"),
        ("3x3x3 stride 1 SAME, overlapping", [1, 4, 4, 5, 2],
         [1, 3, 3, 3, 1], [1, 1, 1, 1, 1], "SAME"),
        ("3x3x3 stride 1 VALID, overlapping", [2, 4, 5, 5, 3],
         [1, 3, 3, 3, 1], [1, 1, 1, 1, 1], "VALID"),
        ("(1,2,2) window, strides (1,2,2) SAME", [2, 4, 5, 6, 2],
         [1, 1, 2, 2, 1], [1, 1, 2, 2, 1], "SAME"),
        ("(2,3,2) window, strides (2,1,3) SAME", [1, 6, 5, 7, 2],
         [1, 2, 3, 2, 1], [1, 2, 1, 3, 1], "SAME"),
        ("2x2x2 window, stride 3 > window, SAME", [1, 7, 7, 7, 1],
         [1, 2, 2, 2, 1], [1, 3, 3, 3, 1], "SAME"),
    ]
    for desc, xs, k, s, p in pool_cfgs:
        F.add("MaxPool3D", desc, input=F.u(xs), ksize=k, strides=s,
              padding=p)
        F.add("AvgPool3D", desc + (" (edge windows divide by their count of "
                                   "valid elements)" if p == "SAME" else ""),
              input=F.u(xs), ksize=k, strides=s, padding=p)
    for op in ("MaxPool3D", "AvgPool3D"):
        F.add(op, "all-negative input, 3x3x3 stride 2 SAME: padding never "
              "counts", input=F.u([1, 5, 5, 5, 2], F32, -2, -1),
              ksize=[1, 3, 3, 3, 1], strides=[1, 2, 2, 2, 1], padding="SAME")
        F.add(op, "empty batch", input=F.u([0, 4, 4, 4, 2]),
              ksize=[1, 2, 2, 2, 1], strides=[1, 2, 2, 2, 1],
              padding="SAME")
    for desc, xs, k, s, p in pool_cfgs:
        x = F.u(xs)  # random floats: no ties
        y = ev("MaxPool3D", input=x, ksize=k, strides=s, padding=p)
        F.add("MaxPool3DGrad", desc, orig_input=x, orig_output=y,
              grad=F.u(y.shape), ksize=k, strides=s, padding=p)
        F.add("AvgPool3DGrad", desc + (" (edge windows spread over their "
                                       "valid elements only)"
                                       if p == "SAME" else ""),
              orig_input_shape=i32(xs), grad=F.u(y.shape), ksize=k,
              strides=s, padding=p)
    # ties: TF CPU's MaxPool3DGrad gives a window's gradient to EVERY input
    # equal to orig_output (MaxPoolGrad picks only the first)
    tie_cfgs = [
        ("2x2x2 stride 2 VALID", [1, 4, 4, 4, 2], [1, 2, 2, 2, 1],
         [1, 2, 2, 2, 1], "VALID"),
        ("3x3x3 stride 2 SAME, overlapping", [1, 5, 5, 5, 2],
         [1, 3, 3, 3, 1], [1, 2, 2, 2, 1], "SAME"),
    ]
    for desc, xs, k, s, p in tie_cfgs:
        x = F.ri(xs, 0, 3).astype(F32)
        y = ev("MaxPool3D", input=x, ksize=k, strides=s, padding=p)
        F.add("MaxPool3DGrad", "ties (inputs in {0,1,2}): every input equal "
              "to its window's max gets the window's whole gradient (summed "
              "over windows), " + desc, orig_input=x, orig_output=y,
              grad=F.u(y.shape), ksize=k, strides=s, padding=p)
    x = np.zeros([1, 2, 2, 2, 1], F32)
    x[0, 0, 0, 1, 0] = x[0, 1, 1, 0, 0] = 1.0
    F.add("MaxPool3DGrad", "one window, two tied maxima: both get the "
          "gradient 5", orig_input=x,
          orig_output=np.ones([1, 1, 1, 1, 1], F32),
          grad=np.full([1, 1, 1, 1, 1], 5.0, F32), ksize=[1, 2, 2, 2, 1],
          strides=[1, 2, 2, 2, 1], padding="VALID")

    # errors (TF's messages)
    F.add("Conv3D", "input depth 3 not divisible by filter in_channels 2",
          input=F.u([1, 4, 4, 4, 3]), filter=F.u([2, 2, 2, 2, 4]),
          strides=[1, 1, 1, 1, 1], padding="VALID", _error=True)
    F.add("Conv3D", "grouped convolution (input depth 4, filter in_channels "
          "2): rejected on CPU", input=F.u([1, 4, 4, 4, 4]),
          filter=F.u([2, 2, 2, 2, 4]), strides=[1, 1, 1, 1, 1],
          padding="VALID", _error=True)
    F.add("Conv3DBackpropInputV2", "out_backprop depth 2 != computed 3",
          input_sizes=i32([1, 4, 4, 4, 2]), filter=F.u([2, 2, 2, 2, 3]),
          out_backprop=F.u([1, 2, 3, 3, 3]), strides=[1, 1, 1, 1, 1],
          padding="VALID", _error=True)


def build_linalg(F):
    eye = np.eye

    def wc(shape, dt=F32, neg=False):
        """Well-conditioned: uniform(-1, 1) + n*I (diagonally dominant, det
        > 0); neg: the first row negated (det < 0)."""
        a = F.u(shape, F64) + shape[-1] * eye(shape[-1])
        if neg:
            a[..., 0, :] *= -1
        return a.astype(dt)

    def spd(shape, dt=F32):
        """Symmetric positive definite: b b^T + n*I."""
        b = F.u(shape, F64)
        a = b @ np.swapaxes(b, -1, -2) + shape[-1] * eye(shape[-1])
        return a.astype(dt)

    # ---- ReverseSequence: x[b, :len[b]] reversed along seq_dim, the rest
    # kept (lengths 0 and 1 leave a row alone); data movement, exact
    F.add("ReverseSequence", "lengths 0, full (5) and 3",
          input=F.u([3, 5, 2]), seq_lengths=i64([0, 5, 3]), seq_dim=1,
          batch_dim=0)
    F.add("ReverseSequence", "seq_dim 0, batch_dim 1, int32 lengths",
          input=F.u([4, 3]), seq_lengths=i32([4, 2, 0]), seq_dim=0,
          batch_dim=1)
    F.add("ReverseSequence", "seq_dim 0, batch_dim 2, int32 data",
          input=F.ri([4, 2, 3], -9, 9), seq_lengths=i32([1, 4, 3]),
          seq_dim=0, batch_dim=2)
    F.add("ReverseSequence", "seq_dim 2 > batch_dim 0, float64",
          input=F.u([2, 3, 4], F64), seq_lengths=i64([2, 4]), seq_dim=2,
          batch_dim=0)
    F.add("ReverseSequence", "batch_dim 1, seq_dim 2, int64 data",
          input=F.ri([2, 3, 4], -9, 9, I64), seq_lengths=i32([3, 1, 4]),
          seq_dim=2, batch_dim=1)
    F.add("ReverseSequence", "a length larger than the sequence dim",
          input=F.u([2, 3]), seq_lengths=i32([1, 4]), seq_dim=1,
          batch_dim=0, _error=True)
    F.add("ReverseSequence", "seq_lengths has 3 entries for batch dim 2",
          input=F.u([2, 3]), seq_lengths=i32([1, 2, 3]), seq_dim=1,
          batch_dim=0, _error=True)

    # ---- Diag / DiagPart (rank k <-> rank 2k), MatrixDiag / MatrixDiagPart
    # / MatrixSetDiag (V1: main diagonal of the innermost two dims)
    F.add("Diag", "[3] -> [3, 3]", diagonal=F.u([3]))
    F.add("Diag", "[2, 3] -> [2, 3, 2, 3]", diagonal=F.u([2, 3]))
    F.add("Diag", "int32", diagonal=F.ri([4], -9, 9))
    F.add("Diag", diagonal=F.u([2, 2], F64))
    F.add("DiagPart", "[3, 3] -> [3]", input=F.u([3, 3]))
    F.add("DiagPart", "[2, 3, 2, 3] -> [2, 3]", input=F.u([2, 3, 2, 3]))
    F.add("DiagPart", "int64", input=F.ri([3, 3], -9, 9, I64))
    F.add("DiagPart", "odd rank", input=F.u([2, 3, 2]), _error=True)
    F.add("DiagPart", "dims 2 and 3 differ", input=F.u([2, 3]),
          _error=True)
    F.add("MatrixDiag", "[2, 3] -> [2, 3, 3]", diagonal=F.u([2, 3]))
    F.add("MatrixDiag", "[4] -> [4, 4], int32", diagonal=F.ri([4], -9, 9))
    F.add("MatrixDiag", diagonal=F.u([2, 1, 2], F64))
    F.add("MatrixDiagPart", "[2, 3, 4] -> [2, 3] (min of the two dims)",
          input=F.u([2, 3, 4]))
    F.add("MatrixDiagPart", "[4, 2] -> [2]", input=F.u([4, 2]))
    F.add("MatrixDiagPart", "int32", input=F.ri([3, 3], -9, 9))
    F.add("MatrixDiagPart", input=F.u([2, 2, 2], F64))
    F.add("MatrixSetDiag", "[2, 3, 4] with [2, 3]", input=F.u([2, 3, 4]),
          diagonal=F.u([2, 3]))
    F.add("MatrixSetDiag", "[4, 3] with [3]", input=F.u([4, 3], F64),
          diagonal=F.u([3], F64))
    F.add("MatrixSetDiag", "int32", input=F.ri([3, 3], -9, 9),
          diagonal=F.ri([3], -9, 9))
    F.add("MatrixSetDiag", "diagonal [4] for a [3, 3] matrix",
          input=F.u([3, 3]), diagonal=F.u([4]), _error=True)

    # ---- V3: k (scalar d or a band [lo, hi]), align of the shorter
    # diagonals in a band ("RIGHT_LEFT": superdiagonals right-aligned,
    # subdiagonals left-aligned; row i of a band is diagonal hi - i)
    m1 = i32(-1)
    F.add("MatrixDiagV3", "k = 0, square", diagonal=F.u([2, 3]), k=i32(0),
          num_rows=m1, num_cols=m1, padding_value=f32(0.0))
    F.add("MatrixDiagV3", "k = 1: [4, 4], padding 9 elsewhere",
          diagonal=F.u([3]), k=i32(1), num_rows=m1, num_cols=m1,
          padding_value=f32(9.0))
    F.add("MatrixDiagV3", "k = -2: [4, 4]", diagonal=F.u([2]), k=i32(-2),
          num_rows=m1, num_cols=m1, padding_value=f32(0.0))
    F.add("MatrixDiagV3", "k = 0, num_rows 3, num_cols 5",
          diagonal=F.u([3]), k=i32(0), num_rows=i32(3), num_cols=i32(5),
          padding_value=f32(-1.0))
    F.add("MatrixDiagV3", "k = 1, num_rows 5 given, num_cols inferred (4)",
          diagonal=F.u([3]), k=i32(1), num_rows=i32(5), num_cols=m1,
          padding_value=f32(0.0))
    band = F.u([3, 3])
    for align in ("RIGHT_LEFT", "LEFT_RIGHT", "LEFT_LEFT", "RIGHT_RIGHT"):
        F.add("MatrixDiagV3", "band k = [-1, 1] of a 3x3 matrix (the "
              "shorter diagonals' unused entry is ignored)", diagonal=band,
              k=i32([-1, 1]), num_rows=m1, num_cols=m1,
              padding_value=f32(0.0), align=align)
    for align in ("RIGHT_LEFT", "LEFT_RIGHT"):
        F.add("MatrixDiagV3", "band k = [-1, 2], num_rows 3, num_cols 5, "
              "padding -1", diagonal=F.u([2, 4, 3]), k=i32([-1, 2]),
              num_rows=i32(3), num_cols=i32(5), padding_value=f32(-1.0),
              align=align)
    F.add("MatrixDiagV3", "int32, band k = [0, 1]",
          diagonal=F.ri([2, 3], -9, 9), k=i32([0, 1]), num_rows=m1,
          num_cols=m1, padding_value=i32(7))
    F.add("MatrixDiagV3", "band k = [-2, 0], LEFT_RIGHT",
          diagonal=F.u([3, 4], F64), k=i32([-2, 0]), num_rows=m1,
          num_cols=m1, padding_value=f64(0.5), align="LEFT_RIGHT")
    F.add("MatrixDiagV3", "k = [1, 0]: lower > upper", diagonal=F.u([2, 3]),
          k=i32([1, 0]), num_rows=m1, num_cols=m1, padding_value=f32(0.0),
          _error=True)
    F.add("MatrixDiagV3", "band k = [-1, 1] needs 3 diagonals, got 2",
          diagonal=F.u([2, 3]), k=i32([-1, 1]), num_rows=m1, num_cols=m1,
          padding_value=f32(0.0), _error=True)

    F.add("MatrixDiagPartV3", "k = 0, [2, 3, 4] -> [2, 3]",
          input=F.u([2, 3, 4]), k=i32(0), padding_value=f32(0.0))
    x34 = F.u([3, 4])
    for k in (1, -2, 3):
        F.add("MatrixDiagPartV3", "k = %d of a [3, 4] matrix" % k, input=x34,
              k=i32(k), padding_value=f32(0.0))
    x = F.u([2, 4, 5])
    for align in ("RIGHT_LEFT", "LEFT_RIGHT"):
        F.add("MatrixDiagPartV3", "band k = [-1, 2], padding 9", input=x,
              k=i32([-1, 2]), padding_value=f32(9.0), align=align)
    x = F.ri([4, 3], -9, 9)
    for align in ("RIGHT_LEFT", "LEFT_RIGHT", "LEFT_LEFT", "RIGHT_RIGHT"):
        F.add("MatrixDiagPartV3", "int32 [4, 3], band k = [-2, 1], "
              "padding -1", input=x, k=i32([-2, 1]), padding_value=i32(-1),
              align=align)
    F.add("MatrixDiagPartV3", "band k = [0, 0]: one diagonal, no diagonal "
          "axis (as k = 0)",
          input=F.u([3, 3], F64), k=i32([0, 0]), padding_value=f64(0.0))
    F.add("MatrixDiagPartV3", "k = 4 beyond the last column of [3, 4]",
          input=F.u([3, 4]), k=i32(4), padding_value=f32(0.0), _error=True)

    F.add("MatrixSetDiagV3", "k = 0, [2, 3, 4] with [2, 3]",
          input=F.u([2, 3, 4]), diagonal=F.u([2, 3]), k=i32(0))
    F.add("MatrixSetDiagV3", "k = 1 of [3, 4]", input=F.u([3, 4]),
          diagonal=F.u([3]), k=i32(1))
    F.add("MatrixSetDiagV3", "k = -1 of [3, 4]", input=F.u([3, 4]),
          diagonal=F.u([2]), k=i32(-1))
    x, d = F.u([3, 5]), F.u([3, 3])
    for align in ("RIGHT_LEFT", "LEFT_RIGHT", "LEFT_LEFT", "RIGHT_RIGHT"):
        F.add("MatrixSetDiagV3", "band k = [0, 2] of [3, 5]", input=x,
              diagonal=d, k=i32([0, 2]), align=align)
    F.add("MatrixSetDiagV3", "batched band k = [-1, 1], float64",
          input=F.u([2, 4, 4], F64), diagonal=F.u([2, 3, 4], F64),
          k=i32([-1, 1]), align="LEFT_RIGHT")
    F.add("MatrixSetDiagV3", "int32, k = [-1, 0]",
          input=F.ri([3, 3], -9, 9), diagonal=F.ri([2, 3], -9, 9),
          k=i32([-1, 0]))
    F.add("MatrixSetDiagV3", "diagonal [2] for k = 0 of [3, 3]",
          input=F.u([3, 3]), diagonal=F.u([2]), k=i32(0), _error=True)

    # ---- factorizations and solves (tol: LAPACK-style implementations
    # round differently from TF's Eigen kernels)
    t32 = dict(_rtol=1e-4, _atol=1e-5)
    d32 = " (f32 tol 1e-4/1e-5: factorization rounding)"
    t64 = dict(_rtol=1e-10, _atol=1e-10)
    d64 = " (f64 tol 1e-10: factorization rounding)"

    def tol(dt):
        return (t32, d32) if dt == F32 else (t64, d64)

    for dt, shape in ((F32, [3, 3]), (F32, [2, 4, 4]), (F64, [4, 4]),
                      (F64, [2, 3, 3])):
        tl, dd = tol(dt)
        for adj in (False, True):
            F.add("MatrixInverse", ("adjoint: inverse of the transpose"
                                    if adj else "") + dd,
                  input=wc(shape, dt, neg=adj), adjoint=adj, **tl)
    F.add("MatrixInverse", "1x1", input=wc([1, 1]))
    F.add("MatrixInverse", "empty batch", input=np.zeros([0, 3, 3], F32))

    for dt, shape in ((F32, [4, 4]), (F32, [2, 3, 3]), (F64, [3, 3]),
                      (F64, [2, 4, 4])):
        tl, dd = tol(dt)
        F.add("Cholesky", dd, input=spd(shape, dt), **tl)
    a = spd([4, 4])
    a[np.triu_indices(4, 1)] = F.u([6], F32, 5, 9)
    F.add("Cholesky", "only the lower triangle is read (upper is garbage); "
          "the output's upper triangle is 0" + d32, input=a, **t32)

    for dt, shape in ((F32, [3, 3]), (F32, [2, 4, 4]), (F64, [4, 4]),
                      (F64, [3, 2, 2])):
        tl, dd = tol(dt)
        for neg in (False, True):
            F.add("MatrixDeterminant", ("negative determinant" if neg
                                        else "") + dd,
                  input=wc(shape, dt, neg), **tl)
            F.add("LogMatrixDeterminant", ("sign -1" if neg else "sign 1")
                  + dd, input=wc(shape, dt, neg), **tl)
    sing = f32([[[1.0, 2.0], [2.0, 4.0]], [[2.0, 1.0], [1.0, 3.0]]])
    F.add("MatrixDeterminant", "exactly singular first matrix: -0.0",
          input=sing, **t32)
    F.add("LogMatrixDeterminant", "exactly singular first matrix: sign 0 "
          "(-0.0), log -inf", input=sing, **t32)
    for op in ("MatrixDeterminant", "LogMatrixDeterminant"):
        F.add(op, "0x0 matrices: determinant 1",
              input=np.zeros([2, 0, 0], F32))

    for dt, (ms, rs) in ((F32, ([3, 3], [3, 2])), (F32, ([2, 4, 4],
                                                         [2, 4, 3])),
                         (F64, ([2, 3, 3], [2, 3, 1]))):
        tl, dd = tol(dt)
        for lower in (True, False):
            for adj in (False, True):
                F.add("MatrixTriangularSolve", "only the %s triangle is "
                      "read (the other holds random values)%s%s" % (
                          "lower" if lower else "upper",
                          "; solves with its transpose" if adj else "", dd),
                      matrix=wc(ms, dt), rhs=F.u(rs, dt), lower=lower,
                      adjoint=adj, **tl)
    F.add("MatrixTriangularSolve", "batch dims broadcast: matrix [3, 3], "
          "rhs [2, 3, 2]" + d32, matrix=wc([3, 3]), rhs=F.u([2, 3, 2]),
          lower=True, adjoint=False, **t32)
    F.add("MatrixTriangularSolve", "batch dims broadcast: [2, 1, 3, 3] "
          "with [3, 3, 1]" + d64, matrix=wc([2, 1, 3, 3], F64),
          rhs=F.u([3, 3, 1], F64), lower=False, adjoint=True, **t64)

    for dt, (ms, rs) in ((F32, ([3, 3], [3, 2])), (F32, ([2, 4, 4],
                                                         [2, 4, 1])),
                         (F64, ([4, 4], [4, 3])), (F64, ([2, 3, 3],
                                                         [2, 3, 2]))):
        tl, dd = tol(dt)
        for adj in (False, True):
            F.add("MatrixSolve", ("adjoint: solves with the transpose"
                                  if adj else "") + dd,
                  matrix=wc(ms, dt), rhs=F.u(rs, dt), adjoint=adj, **tl)

    # Qr: Householder (LAPACK geqrf/orgqr convention, as numpy): R's
    # diagonal may be negative; full_matrices: Q [m, m], R [m, n], else Q
    # [m, k], R [k, n] (k = min(m, n))
    for dt, shape in ((F32, [4, 3]), (F32, [3, 5]), (F64, [2, 4, 4]),
                      (F64, [2, 3, 2])):
        tl, dd = tol(dt)
        x = F.u(shape, dt)
        for full in (False, True):
            F.add("Qr", "Householder signs: R's diagonal may be negative"
                  + dd, input=x, full_matrices=full, **tl)

    # Svd: singular values only (U/V signs are not unique); with
    # compute_uv=False TF's u/v outputs are uninitialized scalars, with
    # compute_uv=True they are valid but sign-ambiguous: neither is stored
    for dt, shape in ((F32, [4, 3]), (F32, [2, 3, 5]), (F64, [4, 4]),
                      (F64, [2, 3, 2])):
        tl, dd = tol(dt)
        F.add("Svd", "compute_uv=False: s only, descending (u, v not "
              "stored: uninitialized)" + dd, input=F.u(shape, dt),
              compute_uv=False, full_matrices=False, _skip=[1, 2],
              _omit=[1, 2], **tl)
    F.add("Svd", "compute_uv=True, full_matrices=True: s only (u, v not "
          "stored: signs not unique)" + d32, input=F.u([3, 4]),
          compute_uv=True, full_matrices=True, _skip=[1, 2], _omit=[1, 2],
          **t32)
    F.add("Svd", "rank-1 matrix: two (numerically) zero singular values"
          + d64,
          input=np.outer(F.u([3], F64), F.u([3], F64)), compute_uv=False,
          full_matrices=False, _skip=[1, 2], _omit=[1, 2], **t64)

    # SelfAdjointEigV2: ascending eigenvalues of the matrix made from the
    # LOWER triangle (the upper one is not read)
    for dt, shape in ((F32, [3, 3]), (F32, [2, 4, 4]), (F64, [4, 4]),
                      (F64, [2, 3, 3])):
        tl, dd = tol(dt)
        F.add("SelfAdjointEigV2", "compute_v=False: e only, ascending (v not"
              " stored: uninitialized)" + dd, input=spd(shape, dt) - 3 * eye(
                  shape[-1], dtype=dt), compute_v=False, _skip=[1],
              _omit=[1], **tl)
    a = F.u([4, 4])
    F.add("SelfAdjointEigV2", "non-symmetric input: the lower triangle is "
          "read" + d32, input=a, compute_v=False, _skip=[1], _omit=[1], **t32)
    F.add("SelfAdjointEigV2", "compute_v=True: e only (v not stored: signs "
          "not unique)" + d64, input=spd([3, 3], F64), compute_v=True,
          _skip=[1], _omit=[1], **t64)

    # errors (TF's messages); TF 2.21 CPU's Cholesky does NOT raise for a
    # matrix that is not positive definite (NaN lower triangle, upper
    # triangle left uninitialized), so there is no such case
    F.add("MatrixInverse", "singular", input=f32([[1.0, 2.0], [2.0, 4.0]]),
          _error=True)
    F.add("MatrixInverse", "not square", input=F.u([2, 3]), _error=True)
    F.add("MatrixSolve", "singular", matrix=f64([[1.0, 2.0], [2.0, 4.0]]),
          rhs=F.u([2, 1], F64), _error=True)
    F.add("MatrixSolve", "batch dims do not broadcast", matrix=wc([3, 3]),
          rhs=F.u([2, 3, 2]), _error=True)
    F.add("Cholesky", "not square", input=F.u([2, 3]), _error=True)
    F.add("MatrixDeterminant", "not square", input=F.u([3, 2]), _error=True)
    F.add("MatrixTriangularSolve", "rhs rows 2 != matrix rows 3",
          matrix=wc([3, 3]), rhs=F.u([2, 2]), _error=True)

    # ---- Xlogy / Xdivy / Xlog1py: 0 wherever x == 0 (whatever y: 0, inf,
    # nan, negative), else x*log(y), x/y, x*log1p(y)
    xs = f32([0, 0, 0, 0, 0, 0, 1, 2, -1, 0.5, 1, 3])
    ys = f32([0, np.inf, -np.inf, np.nan, -1, 2, 0, np.inf, 0, -1, np.nan,
              0.25])
    for op in ("Xlogy", "Xdivy", "Xlog1py"):
        y = ys - 1 if op == "Xlog1py" else ys
        F.add(op, "x == 0 gives 0 for y in {0, inf, -inf, nan, <0}; "
              "special values", x=xs, y=y)
        F.add(op, "broadcast", x=F.u([2, 3]), y=F.pos([3]))
        F.add(op, x=F.u([2, 1], F64), y=F.pos([1, 3], F64))
        F.add(op, x=xs.astype(F64), y=y.astype(F64))
        F.add(op, x=F.u([2, 3], F16), y=F.pos([2, 3], F16))

    # ---- Roll (data movement, exact): shifts add up per axis, modulo the
    # dim size; negative shifts and axes
    F.add("Roll", "1-D, shift 2", input=F.u([5]), shift=i32(2), axis=i32(0))
    F.add("Roll", "negative shift -1 on axis 1", input=F.u([3, 4]),
          shift=i32(-1), axis=i32(1))
    F.add("Roll", "two axes, shift larger than the dim (7 on 3)",
          input=F.u([3, 4]), shift=i32([7, -2]), axis=i32([0, 1]))
    F.add("Roll", "same axis twice: shifts add (1 + 2 on 3: identity on "
          "axis 0) and axis -1", input=F.ri([3, 2, 4], -9, 9),
          shift=i32([1, 2, 3]), axis=i32([0, 0, -1]))
    F.add("Roll", "int64 shift and axis, float64",
          input=F.u([2, 3, 2], F64), shift=i64([-4, 1]), axis=i64([1, 2]))
    F.add("Roll", "int64 shift, int32 axis, empty input",
          input=F.u([0, 3]), shift=i64(1), axis=i32(1))
    F.add("Roll", "shift and axis lengths differ", input=F.u([3, 4]),
          shift=i32([1, 2]), axis=i32([0]), _error=True)

    # ---- Reverse (V1: one bool per dim)
    F.add("Reverse", "dims [True, False, True]", tensor=F.u([2, 3, 4]),
          dims=bools([True, False, True]))
    F.add("Reverse", "no dim", tensor=F.u([2, 3]), dims=bools([False, False]))
    F.add("Reverse", "1-D int32", tensor=F.ri([5], -9, 9), dims=bools([True]))
    F.add("Reverse", "float64, all dims", tensor=F.u([3, 2], F64),
          dims=bools([True, True]))
    F.add("Reverse", "dims length 2 for rank 3", tensor=F.u([2, 3, 4]),
          dims=bools([True, False]), _error=True)

    # ---- EuclideanNorm: sqrt(sum(x^2)) over axis
    F.add("EuclideanNorm", input=F.u([3, 4]), axis=i32(1))
    F.add("EuclideanNorm", input=F.u([3, 4]), axis=i32([0, 1]),
          keep_dims=True)
    F.add("EuclideanNorm", "negative axis", input=F.u([2, 3, 4]),
          axis=i64(-1), keep_dims=True)
    F.add("EuclideanNorm", input=F.u([2, 3, 4], F64), axis=i32([0, 2]))
    F.add("EuclideanNorm", "no axis: |x|", input=F.u([2, 3]),
          axis=np.zeros([0], I32))
    F.add("EuclideanNorm", "int32: sqrt truncated (|[1, 1]| = 1)",
          input=i32([[3, 4], [1, 1], [-5, 12]]), axis=i32(1))
    F.add("EuclideanNorm", "empty reduction: 0", input=F.u([0, 3]),
          axis=i32(0))

    # ---- SoftsignGrad: gradients / (1 + |features|)^2
    F.add("SoftsignGrad", gradients=F.u([2, 3]), features=F.u([2, 3], F32,
                                                               -3, 3))
    F.add("SoftsignGrad", gradients=F.u([4], F64), features=F.u([4], F64,
                                                                -3, 3))

    # ---- ApproximateEqual: |x - y| <= tolerance (TF's kernel uses <=;
    # the op doc says <), same shapes only (no broadcasting)
    x = F.u([6])
    F.add("ApproximateEqual", "default tolerance 1e-5",
          x=x, y=x + f32([0, 1e-6, -1e-6, 1e-3, -1e-3, 0.5]))
    F.add("ApproximateEqual", "tolerance 0.5: |x - y| == 0.5 is equal",
          x=f32([1.0, 2.0, 0.0, -1.0]), y=f32([1.5, 2.75, 0.25, -1.5]),
          tolerance=0.5)
    x = F.u([2, 3], F64)
    F.add("ApproximateEqual", "float64, tolerance 0.1", x=x,
          y=x + F.u([2, 3], F64, -0.2, 0.2), tolerance=0.1)
    F.add("ApproximateEqual", "shapes [2] and []", x=F.u([2]), y=F.u([]),
          _error=True)

    # ---- CumulativeLogsumexp: log(cumsum(exp(x))) (exclusive: the first
    # element is -inf; reverse: from the end)
    x = F.u([3, 4], F32, -3, 3)
    for exclusive in (False, True):
        for reverse in (False, True):
            F.add("CumulativeLogsumexp", x=x, axis=i32(1),
                  exclusive=exclusive, reverse=reverse)
    F.add("CumulativeLogsumexp", x=F.u([3, 2], F64, -3, 3), axis=i64(0),
          exclusive=True)
    F.add("CumulativeLogsumexp", "large values (no overflow), -inf entries",
          x=f32([[100.0, -np.inf, 101.0, -np.inf], [-np.inf, -np.inf, 0.0,
                                                      -50.0]]),
          axis=i32(-1), reverse=True)

    # ---- complex: Complex (exact), ComplexAbs, Angle
    C64, C128 = np.complex64, np.complex128

    def cx(re, im, dt=C64):
        z = np.zeros(np.shape(re), dt)
        z.real, z.imag = re, im
        return z

    F.add("Complex", real=F.u([2, 3]), imag=F.u([2, 3]), Tout=tf.complex64)
    F.add("Complex", "broadcast", real=F.u([2, 3], F64), imag=F.u([3], F64),
          Tout=tf.complex128)
    inf, nan = np.inf, np.nan
    special_re = [-1, -1, 0, -0.0, -0.0, inf, inf, nan, inf, -inf, 3, 0]
    special_im = [0, -0.0, 0, 0, -0.0, inf, nan, inf, 0, 1, nan, -2]
    for op, arg, tout in (("ComplexAbs", "x", "Tout"),
                          ("Angle", "input", "Tout")):
        F.add(op, **{arg: cx(F.u([2, 3]), F.u([2, 3]))})
        F.add(op, **{arg: cx(F.u([4]), F.u([4]), C128), tout: tf.float64})
        F.add(op, "signed zeros, inf, nan", **{
            arg: cx(special_re, special_im)})
    F.add("ComplexAbs", "no overflow/underflow in |z| (hypot)",
          x=cx([1e30, 1e-30, 3e38], [1e30, 1e-30, 3e38]))

    # ---- FFTs over the innermost 1 or 2 dims.  RFFT/IRFFT: fft_length is
    # an input; RFFT crops a longer input but raises for a shorter one
    # (tf.signal pads in Python), IRFFT uses fft_length//2 + 1 input
    # entries (cropping more) and ignores the imaginary parts of the DC
    # (and, for even lengths, Nyquist) terms, as numpy's irfft does
    ft = dict(_atol=1e-5)
    fd = " (f32 atol 1e-5: FFT rounding)"

    def ftol(dt):
        return (ft, fd) if dt in (F32, C64) else ({}, "")

    for op in ("FFT", "IFFT"):
        for dt, shape in ((C64, [8]), (C64, [2, 6]), (C128, [3, 5]),
                          (C128, [2, 1, 4])):
            tl, dd = ftol(dt)
            F.add(op, dd.strip(), input=cx(F.u(shape), F.u(shape), dt), **tl)
    for op in ("FFT2D", "IFFT2D"):
        for dt, shape in ((C64, [4, 4]), (C128, [2, 3, 5])):
            tl, dd = ftol(dt)
            F.add(op, dd.strip(), input=cx(F.u(shape), F.u(shape), dt), **tl)
    for dt, shape, n, desc in ((F32, [8], 8, ""), (F32, [2, 7], 7, "odd"),
                               (F32, [2, 9], 6, "input cropped to 6"),
                               (F64, [3, 4], 4, "float64")):
        tl, dd = ftol(dt)
        extra = {} if dt == F32 else dict(Tcomplex=tf.complex128)
        F.add("RFFT", desc + dd, input=F.u(shape, dt), fft_length=i32([n]),
              **extra, **tl)
    for dt, shape, n, desc in ((C64, [5], 8, "even length"),
                               (C64, [2, 4], 7, "odd length"),
                               (C64, [2, 6], 6, "6//2+1 = 4 of 6 entries "
                                "used"), (C128, [3, 3], 4, "complex128")):
        tl, dd = ftol(dt)
        extra = {} if dt == C64 else dict(Treal=tf.float64)
        F.add("IRFFT", desc + dd, input=cx(F.u(shape), F.u(shape), dt),
              fft_length=i32([n]), **extra, **tl)
    F.add("RFFT2D", fd.strip(), input=F.u([2, 4, 6]), fft_length=i32([4, 6]),
          **ft)
    F.add("RFFT2D", "input [5, 7] cropped to [4, 5]" + fd,
          input=F.u([5, 7]), fft_length=i32([4, 5]), **ft)
    F.add("RFFT2D", "float64", input=F.u([3, 4], F64),
          fft_length=i32([3, 4]), Tcomplex=tf.complex128)
    F.add("IRFFT2D", fd.strip(), input=cx(F.u([2, 4, 4]), F.u([2, 4, 4])),
          fft_length=i32([4, 6]), **ft)
    F.add("IRFFT2D", "odd inner length 7, input cropped" + fd,
          input=cx(F.u([4, 5]), F.u([4, 5])), fft_length=i32([3, 7]), **ft)
    F.add("IRFFT2D", "complex128", input=cx(F.u([3, 3]), F.u([3, 3]), C128),
          fft_length=i32([3, 4]), Treal=tf.float64)
    F.add("RFFT", "fft_length 6 > input length 4 (not padded)",
          input=F.u([4]), fft_length=i32([6]), _error=True)
    F.add("IRFFT", "fft_length 8 needs 5 input entries, got 3",
          input=cx(F.u([3]), F.u([3])), fft_length=i32([8]), _error=True)


FAMILIES = {
    "math": (build_math, 101),
    "nn": (build_nn, 202),
    "array": (build_array, 303),
    "reduce": (build_reduce, 404),
    "optim": (build_optim, 505),
    "random": (build_random, 606),
    "segment": (build_segment, 707),
    "models": (build_models, 808),
    "layout": (build_layout, 909),
    "sparse_segment": (build_sparse_segment, 1010),
    "conv3d": (build_conv3d, 1111),
    "linalg": (build_linalg, 1212),
}


# ---------------------------------------------------------------------------
# Graph building and running
# ---------------------------------------------------------------------------

def session_config():
    config = config_pb2.ConfigProto(intra_op_parallelism_threads=1,
                                    inter_op_parallelism_threads=1)
    config.graph_options.optimizer_options.opt_level = (
        config_pb2.OptimizerOptions.L0)
    config.graph_options.optimizer_options.do_constant_folding = False
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    config.graph_options.rewrite_options.constant_folding = (
        rewriter_config_pb2.RewriterConfig.OFF)
    return config


def error_message(exc):
    """TF's message without 'Graph execution error' trace and node tags."""
    msg = exc.message
    lines = msg.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("Node: '"):
            lines = lines[i + 1:]
            break
    msg = "\n".join(lines)
    msg = msg.split("\n\t [[")[0]
    return msg.strip()


class Built:
    def __init__(self, case, index):
        self.case, self.index = case, index
        self.feeds = []     # (placeholder tensor, array, npz key)
        self.state = []     # (variable, initial array, name)
        self.op = None


def build_case(graph, case, i):
    built = Built(case, i)
    scope = "c%d" % i
    unknown = case.opts.get("error", False)
    kwargs = {}
    counter = [0, 0]

    def placeholder(arr):
        name = "in%d" % counter[0]
        counter[0] += 1
        ph = tf.compat.v1.placeholder(tf.as_dtype(arr.dtype),
                                      None if unknown else arr.shape,
                                      name=name)
        built.feeds.append((ph, arr, "%s/%s" % (scope, name)))
        return ph

    with graph.as_default(), graph.name_scope(scope + "/"):
        for key, value in case.args.items():
            if isinstance(value, State):
                name = "var%d" % counter[1]
                counter[1] += 1
                resource = case.op.startswith("Resource")
                var = tf.compat.v1.Variable(value.value, name=name,
                                            use_resource=resource)
                built.state.append((var, value.value,
                                    "%s/%s" % (scope, name)))
                kwargs[key] = var.handle if resource else var
            elif isinstance(value, np.ndarray):
                kwargs[key] = placeholder(value)
            elif is_input(value):
                kwargs[key] = [placeholder(v) for v in value]
            else:
                kwargs[key] = value
        getattr(RAW, case.op)(name="op", **kwargs)
    built.op = graph.get_operation_by_name(scope + "/op")
    assert built.op.type == case.op, (built.op.type, case.op)
    return built


def tolerances(dtypes):
    floats = [REAL_PART.get(np.dtype(d), np.dtype(d).type) for d in dtypes
              if np.dtype(d).kind in "fc"]
    if not floats:
        return 0.0, 0.0
    return max(TOL[d] for d in floats)


def run_case(sess, built, arrays):
    case, i = built.case, built.index
    scope = "c%d" % i
    feed = {ph: arr for ph, arr, _ in built.feeds}
    for ph, arr, key in built.feeds:
        arrays[key] = arr
    record = {"case": scope, "op": case.op, "desc": auto_desc(case),
              "inputs": len(built.feeds)}
    skip = case.opts.get("skip", [])
    omit = case.opts.get("omit", [])
    if built.state:
        sess.run([v.initializer for v, _, _ in built.state])
        sess.run(built.op, feed)
        # fetching the variable itself reads it through the nodes made at
        # construction (VariableV2 ref / c<i>/var<j>/Read/ReadVariableOp),
        # so the GraphDef gets no extra nodes
        values = sess.run([v for v, _, _ in built.state])
        record["outputs"] = len(values)
        for k, ((_, init, name), val) in enumerate(zip(built.state, values)):
            arrays[name] = init
            arrays["%s/out%d" % (scope, k)] = val
        out_dtypes = [v.dtype for v in values]
        check = "values"
    else:
        record["outputs"] = len(built.op.outputs)
        try:
            values = sess.run(list(built.op.outputs), feed)
            error = None
        except tf.errors.OpError as exc:
            values, error = None, exc
        if case.opts.get("error"):
            if error is None:
                raise AssertionError("%s %s: expected an error" %
                                     (scope, case.op))
            check = "error"
            out_dtypes = [a.dtype for _, a, _ in built.feeds]
        else:
            if error is not None:
                raise RuntimeError("%s %s (%s) failed: %s" %
                                   (scope, case.op, record["desc"], error))
            check = case.opts.get("check", "values")
            for k, val in enumerate(values):
                if k not in omit:
                    arrays["%s/out%d" % (scope, k)] = np.asarray(val)
            out_dtypes = [np.asarray(v).dtype for k, v in enumerate(values)
                          if k not in skip]
    rtol, atol = tolerances(out_dtypes)
    if case.op in EXACT_OPS:
        rtol, atol = 0.0, 0.0
    if check == "values":
        rtol = case.opts.get("rtol", rtol)
        atol = case.opts.get("atol", atol)
    record.update(rtol=rtol, atol=atol, check=check)
    if check == "error":
        record["error"] = type(error).__name__
        record["message"] = error_message(error)
    if skip:
        record["skip_outputs"] = skip
    if "range" in case.opts:
        record["range"] = case.opts["range"]
        lo, hi = case.opts["range"]
        v = np.asarray(values[0])
        ok = ((v >= lo) & (v <= hi)) if case.op == "TruncatedNormal" else (
            (v >= lo) & (v < hi))
        assert ok.all(), (scope, case.op)
    if "stats" in case.opts:
        v = np.asarray(values[0], np.float64)
        record["mean"] = round(float(v.mean()), 6)
        record["std"] = round(float(v.std()), 6)
        record["expected_mean"] = round(case.opts["stats"][0], 6)
        record["expected_std"] = round(case.opts["stats"][1], 6)
    if built.state:
        record["state"] = [name for _, _, name in built.state]
        record["state_out"] = ["%s/out%d" % (scope, k)
                               for k in range(len(built.state))]
        record["scalars"] = [key for _, _, key in built.feeds]
        record["resource"] = case.op.startswith("Resource")
    if check == "values" and case.op == "FusedBatchNormV3":
        check_fbn_claims(case, values)
    return record


def check_fbn_claims(case, values):
    """Assert what the FusedBatchNormV3 descs claim about TF CPU."""
    x = case.args["x"].astype(np.float64)
    axes = (0, 2, 3) if case.args.get("data_format") == "NCHW" else (0, 1, 2)
    if case.args.get("is_training", True):
        n = x.size // (x.shape[1] if axes == (0, 2, 3) else x.shape[-1])
        mean, var = x.mean(axes), x.var(axes)
        tol = dict(rtol=1e-2, atol=1e-2) if case.args["x"].dtype == F16 \
            else dict(rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(values[3], mean, **tol)
        np.testing.assert_allclose(values[4], var, **tol)
        factor = case.args.get("exponential_avg_factor", 1.0)
        if factor == 1.0:
            np.testing.assert_allclose(values[2], var * n / (n - 1), **tol)
        assert np.asarray(values[5]).shape == () and values[5] == 0.0
    else:
        np.testing.assert_array_equal(values[1], case.args["mean"])
        np.testing.assert_array_equal(values[2], case.args["variance"])


def json_dump(records):
    lines = [json.dumps(r, separators=(", ", ": ")) for r in records]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def generate(name, graph=None):
    """Writes family ``name``'s fixtures; its cases are built into ``graph`` (a new one by
    default: make_legacy_bn_fixtures.py passes one whose GraphDef producer predates an op's
    removal)."""
    build, seed = FAMILIES[name]
    fam = Family(name, seed)
    build(fam)
    graph = tf.Graph() if graph is None else graph
    builts = [build_case(graph, case, i) for i, case in enumerate(fam.cases)]
    arrays, records = {}, []
    with tf.compat.v1.Session(graph=graph, config=session_config()) as sess:
        for built in builts:
            records.append(run_case(sess, built, arrays))
    graph_def = graph.as_graph_def()
    for node in graph_def.node:  # nothing but placeholders, ops, variables
        leaf = node.name.split("/", 1)[1]
        assert (node.op == "Placeholder" and leaf.startswith("in")
                or leaf == "op" or leaf.startswith("var")), node.name
    (OUT / (name + ".pb")).write_bytes(
        graph_def.SerializeToString(deterministic=True))
    save_npz(OUT / (name + ".npz"), arrays)
    (OUT / (name + ".json")).write_text(json_dump(records))
    ops = sorted({r["op"] for r in records})
    errors = sum(r["check"] == "error" for r in records)
    print("%-7s %4d cases (%d error), %d ops: %s" %
          (name, len(records), errors, len(ops), " ".join(ops)))


def generate_family(name, build, seed, graph=None):
    """Registers family ``name`` (cases from ``build``, random inputs from ``seed``) and
    writes its fixtures: what each make_<family>_fixtures.py script beside this one runs."""
    FAMILIES[name] = (build, seed)
    OUT.mkdir(parents=True, exist_ok=True)
    generate(name, graph)


def main(argv):
    names = argv or list(FAMILIES)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise SystemExit("unknown families: %s" % unknown)
    if not argv and OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        generate(name)


if __name__ == "__main__":
    main(sys.argv[1:])
