"""Generate the per-op fixture family ``tensor_array`` (TensorArray*V3 and
Stack*V2 ops) with real TensorFlow.

gpugraph never imports TensorFlow; this script (run in the TF virtualenv)
rewrites only ``tests/fixtures/ops/tensor_array.pb``, ``tensor_array.npz``
and ``tensor_array.json``::

    /work/tfenv/bin/python scripts/make_tensor_array_fixtures.py

Format
======

The format of ``make_op_fixtures.py`` (read its docstring), with the
deviations that stateful ops need.  These ops act on a TensorArray or stack
resource created by another op of the same graph (and living only for one
``Session.run``), so a case is a small *sub-graph*, not a single op:

* ``tensor_array.pb``: one GraphDef, case ``i`` in the name scope ``c<i>/``.
  Its inputs are ``Placeholder`` nodes ``c<i>/in<j>`` as usual: EVERY tensor
  input of every op (sizes, indices, values, lengths, max_size) is a
  placeholder, nothing is a ``Const``.  The other nodes are the ops of the
  case, built with ``tf.raw_ops`` under descriptive names (``c<i>/ta``,
  ``c<i>/write0``, ``c<i>/read1``, ``c<i>/grad``, ``c<i>/push0``,
  ``c<i>/pop0``, ...), chained by the TensorArray ``flow`` tensors, and for
  the Stack ops (which have no flow) by control dependencies
  (``^c<i>/push0``).  There is NO single ``c<i>/op`` node.  Placeholder
  shapes are exact, except in ``"check": "error"`` cases, where they have
  unknown rank (as in make_op_fixtures).
* ``tensor_array.json``: one record per case with the usual keys (``case``,
  ``op`` = the op type under test, ``desc``, ``inputs`` = number of
  placeholders, ``outputs`` = number of fetches, ``rtol``, ``atol``,
  ``check`` and, for errors, ``error``/``message``) plus:

  - ``"fetches"``: the tensor names to fetch, e.g.
    ``["c3/read0:0", "c3/size:0"]``; ``out<k>`` in the npz is the value of
    ``fetches[k]``.
  - ``"targets"``: operation names to run in the same ``Session.run`` without
    fetching a value (``TensorArrayCloseV3``/``StackCloseV2``, which have no
    outputs); usually ``[]``.
  - ``"op_types"``: the op types of the case's nodes other than
    ``Placeholder``, in creation order (with repeats).

  Run a case as ``sess.run(fetches + targets, feed)`` with all of the case's
  ``c<i>/in<j>`` fed, in ONE run (the resources die at the end of the run).
  ``desc`` is free text, then after ``;`` the placeholders in order as
  ``<role>=<dtype>[shape]`` or ``<role>=<dtype>:<value>``; attrs are in the
  free text.
* ``tensor_array.npz``: ``c<i>/in<j>`` (the fed arrays) and ``c<i>/out<k>``
  (TF's value of ``fetches[k]``); error cases have no ``out`` arrays.

Tolerances are 0/0 (pure data movement), except for the cases that sum
several writes into a gradient TensorArray (float32: 1e-5/1e-6).

Error ``message``s are TF's, without the node/trace decoration, and with the
unique per-process resource suffix TF appends to TensorArray/stack names
replaced by ``<id>`` (e.g. ``TensorArray c52/ta_<id>``,
``Stack[c70/stack_<id>]``) so that the file is reproducible.

TF 2.21 CPU behaviour worth knowing (each is a case below):
* Reading (Read/Gather/Concat/Pack) an element that was never written
  returns zeros when the array's ``element_shape`` is fully defined, and also
  when ``identical_element_shapes`` is true and some element has been
  written (its shape is used); otherwise it is an InvalidArgumentError.
* ``clear_after_read`` (default true) makes a second read of an element an
  error; gathers count as reads.
* Writing an index twice is an error unless the array is a gradient array
  (``TensorArrayGradV3``), where the writes are summed.  Gradient arrays
  with the same ``source`` on the same forward array are the same array;
  their size is the forward array's size and they get the forward's
  element_shape.
* A gather with EMPTY indices (or of a size-0 array) uses only the
  Gather op's own ``element_shape`` attr: unknown there is an
  UnimplementedError even if the array's element_shape is [2] (and
  likewise ``element_shape_except0`` for Concat of a size-0 array).
* ``dynamic_size`` only lets writes grow the array; reading past the size
  fails either way.  Reading, writing or sizing a closed array fails.
* Control dependencies must be on the ops, not on their fed placeholders:
  TF drops a fed placeholder's control inputs (every control edge in the
  .pb is on a TensorArray/Stack op).
* See the individual ``desc`` texts for the rest.

Determinism: fixed numpy seed, single-threaded session, no graph
optimizations, npz written by ``make_fixtures.save_npz``; running twice gives
byte-identical files.
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_op_fixtures as mof  # noqa: E402  (sets env, enables v2 behavior)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from make_fixtures import save_npz  # noqa: E402

RAW = tf.raw_ops
OUT = mof.OUT
NAME = "tensor_array"
SEED = 707

F32, F64, I32, I64, BOOL = np.float32, np.float64, np.int32, np.int64, np.bool_
i32, i64, f32 = mof.i32, mof.i64, mof.f32
GRAD_TOL = (1e-5, 1e-6)


class Spec:
    def __init__(self, op, desc, build, error, tol):
        self.op, self.desc, self.build = op, desc, build
        self.error, self.tol = error, tol


class Ctx:
    """Builder context of one case: placeholders and named ops."""

    def __init__(self, graph, index, error):
        self.graph, self.index, self.error = graph, index, error
        self.scope = "c%d" % index
        self.feeds = []       # (placeholder, array, npz key, role)

    def ph(self, role, arr):
        arr = np.asarray(arr)
        name = "in%d" % len(self.feeds)
        ph = tf.compat.v1.placeholder(tf.as_dtype(arr.dtype),
                                      None if self.error else arr.shape,
                                      name=name)
        self.feeds.append((ph, arr, "%s/%s" % (self.scope, name), role))
        return ph

    # ---- TensorArray ops -------------------------------------------------
    # Every helper makes its placeholders first and only then, under
    # control dependencies on ``deps``, the op: a control input on a fed
    # placeholder would be lost when it is fed.
    def ta(self, size, dtype=tf.float32, name="ta", **attrs):
        size = self.ph("size", i32(size))
        handle, flow = RAW.TensorArrayV3(size=size, dtype=dtype, name=name,
                                         **attrs)
        return handle, flow

    def write(self, handle, flow, index, value, name, deps=()):
        index, value = self.ph("index", i32(index)), self.ph("value", value)
        with after(*deps):
            return RAW.TensorArrayWriteV3(handle=handle, index=index,
                                          value=value, flow_in=flow,
                                          name=name)

    def read(self, handle, flow, index, dtype=tf.float32, name="read",
             deps=()):
        index = self.ph("index", i32(index))
        with after(*deps):
            return RAW.TensorArrayReadV3(handle=handle, index=index,
                                         flow_in=flow, dtype=dtype, name=name)

    def gather(self, handle, flow, indices, dtype=tf.float32, name="gather",
               deps=(), **attrs):
        indices = self.ph("indices", i32(indices))
        with after(*deps):
            return RAW.TensorArrayGatherV3(handle=handle, indices=indices,
                                           flow_in=flow, dtype=dtype,
                                           name=name, **attrs)

    def scatter(self, handle, flow, indices, value, name="scatter"):
        indices = self.ph("indices", i32(indices))
        value = self.ph("value", value)
        return RAW.TensorArrayScatterV3(handle=handle, indices=indices,
                                        value=value, flow_in=flow, name=name)

    def concat(self, handle, flow, dtype=tf.float32, name="concat", **attrs):
        return RAW.TensorArrayConcatV3(handle=handle, flow_in=flow,
                                       dtype=dtype, name=name, **attrs)

    def split(self, handle, flow, value, lengths, name="split"):
        value = self.ph("value", value)
        lengths = self.ph("lengths", i64(lengths))
        return RAW.TensorArraySplitV3(handle=handle, value=value,
                                      lengths=lengths, flow_in=flow,
                                      name=name)

    def size(self, handle, flow, name="size", deps=()):
        with after(*deps):
            return RAW.TensorArraySizeV3(handle=handle, flow_in=flow,
                                         name=name)

    def close(self, handle, name="close", deps=()):
        with after(*deps):
            return RAW.TensorArrayCloseV3(handle=handle, name=name)

    def grad(self, handle, flow, source="gradients", name="grad"):
        return RAW.TensorArrayGradV3(handle=handle, flow_in=flow,
                                     source=source, name=name)

    def writes(self, handle, flow, pairs, prefix="write"):
        """Chain of writes [(index, value), ...] named write0, write1, ..."""
        for k, (index, value) in enumerate(pairs):
            flow = self.write(handle, flow, index, value, "%s%d" % (prefix, k))
        return flow

    # ---- Stack ops ---------------------------------------------------------
    def stack(self, max_size, elem_type=tf.float32, name="stack", **attrs):
        max_size = self.ph("max_size", i32(max_size))
        return RAW.StackV2(max_size=max_size, elem_type=elem_type, name=name,
                           **attrs)

    def push(self, handle, elem, name, deps=(), **attrs):
        elem = self.ph("elem", elem)
        with after(*deps):
            return RAW.StackPushV2(handle=handle, elem=elem, name=name,
                                   **attrs)

    def pop(self, handle, elem_type=tf.float32, name="pop", deps=()):
        with after(*deps):
            return RAW.StackPopV2(handle=handle, elem_type=elem_type,
                                  name=name)

    def stack_close(self, handle, name="close", deps=()):
        with after(*deps):
            return RAW.StackCloseV2(handle=handle, name=name)


def after(*deps):
    """Control-dependency context on tensors/ops."""
    ops = [d.op if isinstance(d, tf.Tensor) else d for d in deps]
    return tf.control_dependencies(ops)


class Family:
    def __init__(self):
        self.rng = np.random.RandomState(SEED)
        self.specs = []

    def u(self, shape, dt=F32):
        return np.asarray(self.rng.uniform(-1.0, 1.0, shape), dt)

    def ri(self, shape, lo=-9, hi=9, dt=I32):
        return np.asarray(self.rng.randint(lo, hi, size=shape), dt)

    def add(self, op, desc, build, error=False, tol=(0.0, 0.0)):
        """build(ctx) -> (fetch tensors, target ops)."""
        self.specs.append(Spec(op, desc, build, error, tol))


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

def build_cases(F):  # noqa: C901  (a flat case table)
    u, ri = F.u, F.ri

    # ---- TensorArrayV3 / Write / Read / Size --------------------------------
    a, b, c = u([2, 3]), u([2, 3]), u([2, 3])

    def basic(x):
        h, fl = x.ta(3)
        fl = x.writes(h, fl, [(2, c), (0, a), (1, b)])
        return [x.read(h, fl, 0, name="read0"), x.read(h, fl, 1, name="read1"),
                x.read(h, fl, 2, name="read2"), x.size(h, fl)], []
    F.add("TensorArrayReadV3", "size 3, writes at 2,0,1 then reads 0,1,2 and "
          "size; TensorArrayV3 defaults (dynamic_size=False, "
          "clear_after_read=True, element_shape unknown)", basic)

    v_i32 = [ri([4]) for _ in range(3)]

    def int_gather(x):
        h, fl = x.ta(3, dtype=tf.int32, element_shape=[4])
        fl = x.writes(h, fl, [(k, v_i32[k]) for k in range(3)])
        return [x.gather(h, fl, [0, 1, 2], dtype=tf.int32)], []
    F.add("TensorArrayGatherV3", "int32 elements, element_shape=[4]; gather "
          "[0,1,2] stacks to [3,4]", int_gather)

    v_f64 = [np.asarray(v, F64) for v in (1.5, -2.25, 3.0, 0.5)]

    def f64_scalars(x):
        h, fl = x.ta(4, dtype=tf.float64, element_shape=[])
        fl = x.writes(h, fl, [(k, v_f64[k]) for k in (3, 1, 0, 2)])
        return [x.gather(h, fl, [0, 1, 2, 3], dtype=tf.float64)], []
    F.add("TensorArrayGatherV3", "float64 scalar elements, element_shape=[]; "
          "gather -> [4]", f64_scalars)

    v_bool = [np.array([True, False]), np.array([False, False])]

    def bool_read(x):
        h, fl = x.ta(2, dtype=tf.bool)
        fl = x.writes(h, fl, [(1, v_bool[1]), (0, v_bool[0])])
        return [x.gather(h, fl, [1, 0], dtype=tf.bool)], []
    F.add("TensorArrayGatherV3", "bool elements; gather [1,0]", bool_read)

    d = u([3])

    def no_clear(x):
        h, fl = x.ta(2, clear_after_read=False)
        fl = x.write(h, fl, 0, d, "write0")
        r0 = x.read(h, fl, 0, name="read0")
        r1 = x.read(h, fl, 0, name="read1")
        return [r0, r1, x.gather(h, fl, [0, 0], name="gather")], []
    F.add("TensorArrayReadV3", "clear_after_read=False: index 0 read twice and "
          "gathered twice", no_clear)

    def dynamic(x):
        h, fl = x.ta(0, dynamic_size=True)
        fl = x.writes(h, fl, [(3, a), (1, b)])
        return [x.size(h, fl), x.read(h, fl, 3, name="read0"),
                x.read(h, fl, 1, name="read1")], []
    F.add("TensorArrayV3", "dynamic_size=True, initial size 0; writes at "
          "3 then 1 grow the size to 4", dynamic)

    def unwritten_known(x):
        h, fl = x.ta(3, element_shape=[2, 2])
        fl = x.write(h, fl, 0, u([2, 2]), "write0")
        return [x.read(h, fl, 1, name="read0"), x.gather(h, fl, [2, 0]),
                x.size(h, fl)], []
    F.add("TensorArrayV3", "element_shape=[2,2] fully defined: reading or "
          "gathering never-written indices 1 and 2 gives zeros", unwritten_known)

    def unwritten_dynamic(x):
        h, fl = x.ta(0, dynamic_size=True, element_shape=[3])
        fl = x.write(h, fl, 2, d, "write0")
        return [x.gather(h, fl, [0, 1, 2]), x.size(h, fl)], []
    F.add("TensorArrayGatherV3", "dynamic_size=True, element_shape=[3]; write "
          "at 2 only; gather [0,1,2] -> rows 0,1 zeros", unwritten_dynamic)

    def identical(x):
        h, fl = x.ta(3, identical_element_shapes=True)
        fl = x.write(h, fl, 1, a, "write0")
        return [x.gather(h, fl, [0, 1, 2])], []
    F.add("TensorArrayV3", "identical_element_shapes=True, element_shape "
          "unknown; only index 1 written; gather [0,1,2] fills zeros of the "
          "written element's shape", identical)

    def identical_read(x):
        h, fl = x.ta(2, identical_element_shapes=True)
        fl = x.write(h, fl, 0, b, "write0")
        return [x.read(h, fl, 1, name="read0")], []
    F.add("TensorArrayV3", "identical_element_shapes=True, element_shape "
          "unknown; read of unwritten index 1 after a write to 0",
          identical_read)

    def array_attrs(x):
        h, fl = x.ta(2, element_shape=[None, 3], tensor_array_name="named")
        fl = x.writes(h, fl, [(0, u([1, 3])), (1, u([2, 3]))])
        return [x.read(h, fl, 0, name="read0"),
                x.read(h, fl, 1, name="read1")], []
    F.add("TensorArrayV3", "partially known element_shape=[?,3] allows "
          "elements [1,3] and [2,3]; tensor_array_name='named'", array_attrs)

    # ---- errors of TensorArrayV3 / Write / Read ------------------------------
    def err_read_twice(x):
        h, fl = x.ta(2)
        fl = x.write(h, fl, 0, d, "write0")
        r0 = x.read(h, fl, 0, name="read0")
        r1 = x.read(h, fl, 0, name="read1", deps=[r0])
        return [r0, r1], []
    F.add("TensorArrayReadV3", "clear_after_read=True (default): second read "
          "of index 0 (ordered by a control dependency)", err_read_twice,
          error=True)

    def err_unwritten(x):
        h, fl = x.ta(3)
        fl = x.write(h, fl, 0, d, "write0")
        return [x.read(h, fl, 1, name="read0")], []
    F.add("TensorArrayReadV3", "reading an unwritten index, element_shape "
          "unknown", err_unwritten, error=True)

    def err_unwritten_gather(x):
        h, fl = x.ta(3)
        fl = x.write(h, fl, 0, d, "write0")
        return [x.gather(h, fl, [0, 2])], []
    F.add("TensorArrayGatherV3", "gathering an unwritten index, element_shape "
          "unknown", err_unwritten_gather, error=True)

    def err_write_twice(x):
        h, fl = x.ta(2)
        fl = x.writes(h, fl, [(1, d), (1, u([3]))])
        return [x.read(h, fl, 1, name="read0")], []
    F.add("TensorArrayWriteV3", "writing index 1 twice (not a gradient array)",
          err_write_twice, error=True)

    def err_read_past(x):
        h, fl = x.ta(3)
        fl = x.write(h, fl, 0, d, "write0")
        return [x.read(h, fl, 3, name="read0")], []
    F.add("TensorArrayReadV3", "reading index 3 of a size-3 array, "
          "dynamic_size=False", err_read_past, error=True)

    def err_read_past_dynamic(x):
        h, fl = x.ta(1, dynamic_size=True)
        fl = x.write(h, fl, 0, d, "write0")
        return [x.read(h, fl, 2, name="read0")], []
    F.add("TensorArrayReadV3", "reading past the size also fails with "
          "dynamic_size=True (only writes grow)", err_read_past_dynamic,
          error=True)

    def err_read_negative(x):
        h, fl = x.ta(2)
        fl = x.write(h, fl, 0, d, "write0")
        return [x.read(h, fl, -1, name="read0")], []
    F.add("TensorArrayReadV3", "negative index", err_read_negative, error=True)

    def err_write_past(x):
        h, fl = x.ta(2)
        fl = x.write(h, fl, 2, d, "write0")
        return [x.size(h, fl)], []
    F.add("TensorArrayWriteV3", "writing index 2 of a size-2 array, "
          "dynamic_size=False", err_write_past, error=True)

    def err_element_shape(x):
        h, fl = x.ta(2, element_shape=[2])
        fl = x.write(h, fl, 0, d, "write0")
        return [x.size(h, fl)], []
    F.add("TensorArrayWriteV3", "value [3] vs element_shape=[2]",
          err_element_shape, error=True)

    def err_identical(x):
        h, fl = x.ta(2, identical_element_shapes=True)
        fl = x.writes(h, fl, [(0, u([2])), (1, d)])
        return [x.size(h, fl)], []
    F.add("TensorArrayV3", "identical_element_shapes=True: writes of [2] "
          "then [3]", err_identical, error=True)

    def err_dtype(x):
        h, fl = x.ta(2)
        fl = x.write(h, fl, 0, ri([3]), "write0")
        return [x.size(h, fl)], []
    F.add("TensorArrayWriteV3", "int32 value written into a float32 array",
          err_dtype, error=True)

    # ---- Gather ----------------------------------------------------------------
    e = [u([2]) for _ in range(3)]

    def gather_dups(x):
        h, fl = x.ta(3, clear_after_read=False)
        fl = x.writes(h, fl, [(k, e[k]) for k in range(3)])
        return [x.gather(h, fl, [2, 0, 2, 1])], []
    F.add("TensorArrayGatherV3", "clear_after_read=False; repeated indices "
          "[2,0,2,1]", gather_dups)

    def gather_attr(x):
        h, fl = x.ta(3)
        fl = x.writes(h, fl, [(k, e[k]) for k in range(3)])
        return [x.gather(h, fl, [1, 2], element_shape=[2])], []
    F.add("TensorArrayGatherV3", "element_shape=[2] attr on the gather; subset "
          "[1,2]", gather_attr)

    def gather_empty(x):
        h, fl = x.ta(2, element_shape=[2])
        fl = x.write(h, fl, 0, e[0], "write0")
        return [x.gather(h, fl, np.zeros([0], I32), element_shape=[2])], []
    F.add("TensorArrayGatherV3", "empty indices; gather attr element_shape=[2] "
          "-> [0,2]", gather_empty)

    def gather_empty_array(x):
        h, fl = x.ta(0, element_shape=[2, 3])
        return [x.gather(h, fl, np.zeros([0], I32), element_shape=[2, 3]),
                x.size(h, fl)], []
    F.add("TensorArrayGatherV3", "size-0 array; gather attr element_shape="
          "[2,3], empty indices -> [0,2,3]", gather_empty_array)

    def err_gather_empty_attr(x):
        h, fl = x.ta(2, element_shape=[2])
        fl = x.write(h, fl, 0, e[0], "write0")
        return [x.gather(h, fl, np.zeros([0], I32))], []
    F.add("TensorArrayGatherV3", "empty indices: only the GATHER's "
          "element_shape attr counts; here it is unknown (the array's is [2], "
          "index 0 written)", err_gather_empty_attr, error=True)

    def err_gather_dup(x):
        h, fl = x.ta(2)
        fl = x.writes(h, fl, [(0, e[0]), (1, e[1])])
        return [x.gather(h, fl, [0, 0])], []
    F.add("TensorArrayGatherV3", "clear_after_read=True with a repeated index",
          err_gather_dup, error=True)

    def err_gather_shapes(x):
        h, fl = x.ta(2)
        fl = x.writes(h, fl, [(0, u([2])), (1, d)])
        return [x.gather(h, fl, [0, 1])], []
    F.add("TensorArrayGatherV3", "elements of shapes [2] and [3]",
          err_gather_shapes, error=True)

    def err_gather_empty_unknown(x):
        h, fl = x.ta(0)
        return [x.gather(h, fl, np.zeros([0], I32))], []
    F.add("TensorArrayGatherV3", "size-0 array, element_shape unknown, empty "
          "indices", err_gather_empty_unknown, error=True)

    # ---- Scatter ---------------------------------------------------------------
    sv = u([3, 2])

    def scatter(x):
        h, fl = x.ta(3)
        fl = x.scatter(h, fl, [2, 0, 1], sv)
        return [x.read(h, fl, 0, name="read0"), x.read(h, fl, 2, name="read1"),
                x.read(h, fl, 1, name="read2")], []
    F.add("TensorArrayScatterV3", "scatter rows of [3,2] to indices [2,0,1]; "
          "read 0,2,1", scatter)

    def scatter_dynamic(x):
        h, fl = x.ta(0, dynamic_size=True, element_shape=[2])
        fl = x.scatter(h, fl, [4, 1], u([2, 2]))
        return [x.size(h, fl), x.gather(h, fl, [0, 1, 2, 3, 4])], []
    F.add("TensorArrayScatterV3", "dynamic_size=True size 0, element_shape="
          "[2]; scatter to [4,1] grows to 5; gather all (unwritten rows are "
          "zeros)", scatter_dynamic)

    def scatter_empty(x):
        h, fl = x.ta(2, element_shape=[3])
        fl = x.scatter(h, fl, np.zeros([0], I32), np.zeros([0, 3], F32))
        return [x.size(h, fl), x.gather(h, fl, [0, 1])], []
    F.add("TensorArrayScatterV3", "empty scatter (indices [0], value [0,3]); "
          "gather gives zeros", scatter_empty)

    def err_scatter_range(x):
        h, fl = x.ta(2)
        fl = x.scatter(h, fl, [0, 2], u([2, 2]))
        return [x.size(h, fl)], []
    F.add("TensorArrayScatterV3", "index 2 of a size-2 array, "
          "dynamic_size=False", err_scatter_range, error=True)

    def err_scatter_dup(x):
        h, fl = x.ta(3)
        fl = x.scatter(h, fl, [1, 1], u([2, 2]))
        return [x.size(h, fl)], []
    F.add("TensorArrayScatterV3", "repeated index [1,1] (not a gradient "
          "array)", err_scatter_dup, error=True)

    def err_scatter_count(x):
        h, fl = x.ta(3)
        fl = x.scatter(h, fl, [0, 1, 2], u([2, 2]))
        return [x.size(h, fl)], []
    F.add("TensorArrayScatterV3", "3 indices for a value with 2 rows",
          err_scatter_count, error=True)

    # ---- Concat ----------------------------------------------------------------
    def concat(x):
        h, fl = x.ta(3)
        fl = x.writes(h, fl, [(0, u([1, 2])), (1, u([3, 2])), (2, u([2, 2]))])
        value, lengths = x.concat(h, fl)
        return [value, lengths], []
    F.add("TensorArrayConcatV3", "elements [1,2],[3,2],[2,2] -> value [6,2], "
          "lengths int64 [1,3,2]", concat)

    def concat_zero(x):
        h, fl = x.ta(3, dtype=tf.int32)
        fl = x.writes(h, fl, [(0, ri([2, 2])), (1, np.zeros([0, 2], I32)),
                              (2, ri([1, 2]))])
        value, lengths = x.concat(h, fl, dtype=tf.int32)
        return [value, lengths], []
    F.add("TensorArrayConcatV3", "int32; middle element has 0 rows", concat_zero)

    def concat_vectors(x):
        h, fl = x.ta(2)
        fl = x.writes(h, fl, [(1, u([3])), (0, u([2]))])
        value, lengths = x.concat(h, fl)
        return [value, lengths], []
    F.add("TensorArrayConcatV3", "rank-1 elements [2],[3] -> [5]",
          concat_vectors)

    def concat_empty(x):
        h, fl = x.ta(0)
        value, lengths = x.concat(h, fl, element_shape_except0=[2])
        return [value, lengths], []
    F.add("TensorArrayConcatV3", "size-0 array with element_shape_except0=[2] "
          "-> value [0,2], lengths [0]", concat_empty)

    def concat_unwritten(x):
        h, fl = x.ta(3, element_shape=[2, 2])
        fl = x.writes(h, fl, [(0, u([2, 2])), (2, u([2, 2]))])
        value, lengths = x.concat(h, fl)
        return [value, lengths], []
    F.add("TensorArrayConcatV3", "element_shape=[2,2]; index 1 unwritten "
          "contributes zeros", concat_unwritten)

    def err_concat_scalar(x):
        h, fl = x.ta(2)
        fl = x.writes(h, fl, [(0, f32(1.0)), (1, f32(2.0))])
        value, lengths = x.concat(h, fl)
        return [value, lengths], []
    F.add("TensorArrayConcatV3", "scalar elements", err_concat_scalar,
          error=True)

    def err_concat_inner(x):
        h, fl = x.ta(2)
        fl = x.writes(h, fl, [(0, u([1, 2])), (1, u([1, 3]))])
        value, lengths = x.concat(h, fl)
        return [value, lengths], []
    F.add("TensorArrayConcatV3", "elements [1,2] and [1,3] (inner dims "
          "differ)", err_concat_inner, error=True)

    def err_concat_empty_unknown(x):
        h, fl = x.ta(0)
        value, lengths = x.concat(h, fl)
        return [value, lengths], []
    F.add("TensorArrayConcatV3", "size-0 array, element_shape_except0 unknown",
          err_concat_empty_unknown, error=True)

    # ---- Split -----------------------------------------------------------------
    split_value = u([6, 2])

    def split(x):
        h, fl = x.ta(3)
        fl = x.split(h, fl, split_value, [1, 2, 3])
        return [x.read(h, fl, 0, name="read0"), x.read(h, fl, 1, name="read1"),
                x.read(h, fl, 2, name="read2"), x.size(h, fl)], []
    F.add("TensorArraySplitV3", "value [6,2] split by lengths [1,2,3] into a "
          "size-3 array; read each", split)

    def split_dynamic(x):
        h, fl = x.ta(0, dtype=tf.int32, dynamic_size=True)
        fl = x.split(h, fl, ri([5]), [2, 0, 3])
        value, lengths = x.concat(h, fl, dtype=tf.int32)
        return [x.size(h, fl), value, lengths], []
    F.add("TensorArraySplitV3", "int32 [5] by lengths [2,0,3] into a dynamic "
          "size-0 array (grows to 3); concat back", split_dynamic)

    def split_rank3(x):
        h, fl = x.ta(2, clear_after_read=False)
        fl = x.split(h, fl, u([3, 2, 2]), [3, 0])
        return [x.read(h, fl, 0, name="read0"), x.read(h, fl, 1, name="read1")
                ], []
    F.add("TensorArraySplitV3", "value [3,2,2], lengths [3,0]: element 1 is "
          "[0,2,2]", split_rank3)

    def err_split_sum(x):
        h, fl = x.ta(3)
        fl = x.split(h, fl, split_value, [1, 2, 2])
        return [x.size(h, fl)], []
    F.add("TensorArraySplitV3", "lengths sum 5 != 6 rows", err_split_sum,
          error=True)

    def err_split_size(x):
        h, fl = x.ta(2)
        fl = x.split(h, fl, split_value, [1, 2, 3])
        return [x.size(h, fl)], []
    F.add("TensorArraySplitV3", "3 lengths into a size-2 array, "
          "dynamic_size=False", err_split_size, error=True)

    # ---- Size / Close ----------------------------------------------------------
    def size_only(x):
        h, fl = x.ta(5)
        return [x.size(h, fl)], []
    F.add("TensorArraySizeV3", "unwritten size-5 array", size_only)

    def close(x):
        h, fl = x.ta(2)
        fl = x.write(h, fl, 0, d, "write0")
        r = x.read(h, fl, 0, name="read0")
        cl = x.close(h, deps=[r])
        return [r], [cl]
    F.add("TensorArrayCloseV3", "write, read, then close (target, after the "
          "read)", close)

    def err_close(x):
        h, fl = x.ta(2)
        fl = x.write(h, fl, 0, d, "write0")
        cl = x.close(h, deps=[fl])
        r = x.read(h, fl, 0, name="read0", deps=[cl])
        return [r], [cl]
    F.add("TensorArrayCloseV3", "read after close", err_close, error=True)

    # ---- Grad ------------------------------------------------------------------
    g = [u([2]) for _ in range(4)]

    def grad_basic(x):
        h, fl = x.ta(3, element_shape=[2])
        fl = x.writes(h, fl, [(k, e[k]) for k in range(3)])
        gh, gfl = x.grad(h, fl)
        gfl = x.writes(gh, gfl, [(0, g[0]), (2, g[1]), (0, g[2])],
                       prefix="gwrite")
        return [x.size(gh, gfl, name="gsize"),
                x.read(gh, gfl, 0, name="gread0"),
                x.read(gh, gfl, 2, name="gread1"),
                x.read(gh, gfl, 1, name="gread2")], []
    F.add("TensorArrayGradV3", "forward size 3, element_shape=[2]; grad "
          "(source 'gradients') has size 3; writes at 0,2,0: index 0 reads "
          "the SUM of its two writes, unwritten index 1 reads zeros",
          grad_basic, tol=GRAD_TOL)

    def grad_three(x):
        h, fl = x.ta(2)
        fl = x.writes(h, fl, [(0, a), (1, b)])
        gh, gfl = x.grad(h, fl)
        gfl = x.writes(gh, gfl, [(1, c), (1, a), (1, b)], prefix="gwrite")
        return [x.read(gh, gfl, 1, name="gread0")], []
    F.add("TensorArrayGradV3", "element_shape unknown; three writes to grad "
          "index 1 are summed", grad_three, tol=GRAD_TOL)

    def grad_shared(x):
        h, fl = x.ta(2, element_shape=[2])
        fl = x.writes(h, fl, [(0, e[0]), (1, e[1])])
        g1, g1fl = x.grad(h, fl, name="grad")
        g1fl = x.write(g1, g1fl, 1, g[0], "gwrite0")
        g2, g2fl = x.grad(h, g1fl, name="grad_1")
        g2fl = x.write(g2, g2fl, 1, g[1], "gwrite1")
        g3, g3fl = x.grad(h, fl, source="other", name="grad_other")
        return [x.gather(g2, g2fl, [0, 1], name="ggather"),
                x.gather(g3, g3fl, [0, 1], name="ogather")], []
    F.add("TensorArrayGradV3", "two TensorArrayGradV3 with the same source "
          "share one array (writes through both are summed); source 'other' "
          "is a separate, unwritten array (zeros)", grad_shared, tol=GRAD_TOL)

    def grad_scatter(x):
        h, fl = x.ta(3, element_shape=[2])
        fl = x.scatter(h, fl, [0, 1, 2], u([3, 2]))
        gh, gfl = x.grad(h, fl)
        gfl = x.scatter(gh, gfl, [2, 0, 2], u([3, 2]), name="gscatter")
        return [x.gather(gh, gfl, [0, 1, 2], name="ggather")], []
    F.add("TensorArrayGradV3", "scatter into the grad array with repeated "
          "index 2 sums the rows", grad_scatter, tol=GRAD_TOL)

    def grad_dynamic(x):
        h, fl = x.ta(0, dynamic_size=True, element_shape=[2])
        fl = x.writes(h, fl, [(0, e[0]), (3, e[1])])
        gh, gfl = x.grad(h, fl)
        gfl = x.write(gh, gfl, 2, g[0], "gwrite0")
        return [x.size(gh, gfl, name="gsize"),
                x.gather(gh, gfl, [0, 1, 2, 3], name="ggather")], []
    F.add("TensorArrayGradV3", "dynamic forward grown to size 4: grad size 4",
          grad_dynamic)

    def grad_split(x):
        h, fl = x.ta(2)
        fl = x.split(h, fl, u([3, 2]), [1, 2])
        gh, gfl = x.grad(h, fl)
        gfl = x.split(gh, gfl, u([3, 2]), [1, 2], name="gsplit")
        gfl = x.split(gh, gfl, u([3, 2]), [1, 2], name="gsplit_1")
        value, lengths = x.concat(gh, gfl, name="gconcat")
        return [value, lengths], []
    F.add("TensorArrayGradV3", "two splits into the grad array are summed "
          "element-wise; concat back", grad_split, tol=GRAD_TOL)

    def err_grad_shape(x):
        h, fl = x.ta(2)
        fl = x.writes(h, fl, [(0, a), (1, b)])
        gh, gfl = x.grad(h, fl)
        gfl = x.writes(gh, gfl, [(0, u([2, 3])), (0, u([3, 2]))],
                       prefix="gwrite")
        return [x.read(gh, gfl, 0, name="gread0")], []
    F.add("TensorArrayGradV3", "grad writes of shapes [2,3] then [3,2] to the "
          "same index", err_grad_shape, error=True)

    # ---- Stack -----------------------------------------------------------------
    s = [u([2]) for _ in range(3)]

    def stack_lifo(x):
        st = x.stack(-1, stack_name="lifo")
        p0 = x.push(st, s[0], "push0")
        p1 = x.push(st, s[1], "push1", deps=[p0])
        q0 = x.pop(st, name="pop0", deps=[p1])
        p2 = x.push(st, s[2], "push2", deps=[q0])
        q1 = x.pop(st, name="pop1", deps=[p2])
        q2 = x.pop(st, name="pop2", deps=[q1])
        return [p0, p1, q0, p2, q1, q2], []
    F.add("StackPopV2", "max_size -1 (unlimited), stack_name='lifo'; push "
          "a, push b, pop (b), push c, pop (c), pop (a); StackPushV2 outputs "
          "its elem", stack_lifo)

    si = [ri([2, 2]), ri([3]), ri([])]

    def stack_swap(x):
        st = x.stack(3, elem_type=tf.int32)
        p0 = x.push(st, si[0], "push0", swap_memory=True)
        p1 = x.push(st, si[1], "push1", deps=[p0], swap_memory=True)
        p2 = x.push(st, si[2], "push2", deps=[p1], swap_memory=True)
        q0 = x.pop(st, tf.int32, name="pop0", deps=[p2])
        q1 = x.pop(st, tf.int32, name="pop1", deps=[q0])
        q2 = x.pop(st, tf.int32, name="pop2", deps=[q1])
        return [q0, q1, q2], []
    F.add("StackPushV2", "int32, swap_memory=True, max_size 3 filled "
          "exactly; elements of different shapes [2,2],[3],[]", stack_swap)

    def stack_close(x):
        st = x.stack(-1)
        p0 = x.push(st, s[0], "push0")
        q0 = x.pop(st, name="pop0", deps=[p0])
        cl = x.stack_close(st, deps=[q0])
        return [q0], [cl]
    F.add("StackCloseV2", "push, pop, then close (target)", stack_close)

    def err_stack_empty(x):
        st = x.stack(-1)
        return [x.pop(st, name="pop0")], []
    F.add("StackPopV2", "popping an empty stack", err_stack_empty, error=True)

    def err_stack_drained(x):
        st = x.stack(-1)
        p0 = x.push(st, s[0], "push0")
        q0 = x.pop(st, name="pop0", deps=[p0])
        q1 = x.pop(st, name="pop1", deps=[q0])
        return [q0, q1], []
    F.add("StackPopV2", "push once, pop twice", err_stack_drained, error=True)

    def err_stack_overflow(x):
        st = x.stack(1)
        p0 = x.push(st, s[0], "push0")
        p1 = x.push(st, s[1], "push1", deps=[p0])
        return [p1], []
    F.add("StackPushV2", "max_size 1, two pushes", err_stack_overflow,
          error=True)

    def err_stack_dtype(x):
        st = x.stack(-1)
        return [x.push(st, ri([2]), "push0")], []
    F.add("StackPushV2", "int32 elem pushed on a float32 stack",
          err_stack_dtype, error=True)

    def err_stack_closed(x):
        st = x.stack(-1)
        cl = x.stack_close(st)
        p0 = x.push(st, s[0], "push0", deps=[cl])
        return [p0], [cl]
    F.add("StackCloseV2", "push after close", err_stack_closed, error=True)


# ---------------------------------------------------------------------------
# Building and running
# ---------------------------------------------------------------------------

def fmt_input(role, arr):
    if arr.size <= 4 and arr.dtype.kind in "iub" and arr.ndim <= 1:
        return "%s=%s" % (role, mof.fmt_value(arr))
    return "%s=%s" % (role, mof.fmt_arr(arr))


ID_PATTERNS = [
    # TensorArray resource names: "<op name>_<counter>" (or the
    # tensor_array_name attr + counter); grad arrays append "@<source>".
    (re.compile(r"(TensorArray (?:c\d+/)?[\w/]+?)_\d+"), r"\1_<id>"),
    (re.compile(r"(Stack\[[\w/]+?)_\d+\]"), r"\1_<id>]"),
]


def sanitize(message):
    for pattern, repl in ID_PATTERNS:
        message = pattern.sub(repl, message)
    return message


def run_spec(graph, sess, spec, index, arrays):
    ctx = Ctx(graph, index, spec.error)
    with graph.as_default(), graph.name_scope(ctx.scope + "/"):
        fetches, targets = spec.build(ctx)
    ops = [op for op in graph.get_operations()
           if op.name.startswith(ctx.scope + "/")]
    for op in ops:
        assert op.type != "Const", op.name
        assert not (op.type == "Placeholder" and op.control_inputs), op.name
    feed = {ph: arr for ph, arr, _, _ in ctx.feeds}
    for _, arr, key, _ in ctx.feeds:
        arrays[key] = arr
    desc = "%s; %s" % (spec.desc, " ".join(fmt_input(role, arr)
                                           for _, arr, _, role in ctx.feeds))
    record = {"case": ctx.scope, "op": spec.op, "desc": desc,
              "inputs": len(ctx.feeds), "outputs": len(fetches)}
    assert spec.op in {op.type for op in ops}, (ctx.scope, spec.op)
    try:
        values = sess.run(list(fetches) + list(targets), feed)[:len(fetches)]
        error = None
    except tf.errors.OpError as exc:
        values, error = None, exc
    if spec.error:
        if error is None:
            raise AssertionError("%s: expected an error (%s)" %
                                 (ctx.scope, spec.desc))
        check = "error"
    else:
        if error is not None:
            raise RuntimeError("%s (%s) failed: %s" % (ctx.scope, spec.desc,
                                                       error))
        check = "values"
        for k, val in enumerate(values):
            arrays["%s/out%d" % (ctx.scope, k)] = np.asarray(val)
    rtol, atol = spec.tol
    record.update(rtol=rtol, atol=atol, check=check)
    if error is not None:
        record["error"] = type(error).__name__
        record["message"] = sanitize(mof.error_message(error))
    record["fetches"] = [t.name for t in fetches]
    record["targets"] = [op.name for op in targets]
    record["op_types"] = [op.type for op in ops if op.type != "Placeholder"]
    return record, values


def generate():
    fam = Family()
    build_cases(fam)
    graph = tf.Graph()
    arrays, records, results = {}, [], []
    with tf.compat.v1.Session(graph=graph,
                              config=mof.session_config()) as sess:
        for i, spec in enumerate(fam.specs):
            record, values = run_spec(graph, sess, spec, i, arrays)
            records.append(record)
            results.append(values)
    graph_def = graph.as_graph_def()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / (NAME + ".pb")).write_bytes(
        graph_def.SerializeToString(deterministic=True))
    save_npz(OUT / (NAME + ".npz"), arrays)
    (OUT / (NAME + ".json")).write_text(mof.json_dump(records))
    return records, results


def main():
    records, results = generate()
    for record, values in zip(records, results):
        if record["check"] == "error":
            summary = "%s: %s" % (record["error"], record["message"])
        else:
            summary = " | ".join(
                np.array2string(np.asarray(v), precision=3,
                                separator=",").replace("\n", "")
                for v in values)
        print("%-5s %-21s %s\n      %s" % (record["case"], record["op"],
                                          record["desc"].split(";")[0],
                                          summary[:300]))
    ops = sorted({t for r in records for t in r["op_types"]})
    errors = sum(r["check"] == "error" for r in records)
    print("%s: %d cases (%d error), %d op types: %s" % (
        NAME, len(records), errors, len(ops), " ".join(ops)))


if __name__ == "__main__":
    main()
