"""Generate the per-op fixture family ``legacy_handles``: the TF <= 1.x names
of the stack and TensorArray ops (``Stack``/``StackPush``/``StackPop``/
``StackClose`` with a ``Ref(string)`` handle; ``TensorArray`` (Ref(string)
handle) and ``TensorArrayV2`` (string handle) with their Write/Read/Gather/
Scatter/Concat/Split/Size/Close/Grad forms, unversioned and V2, and
``TensorArrayPack``/``TensorArrayUnpack``) with real TensorFlow.

gpugraph never imports TensorFlow; this script (run in the TF virtualenv)
rewrites only ``tests/fixtures/ops/legacy_handles.pb``,
``legacy_handles.npz`` and ``legacy_handles.json``::

    /work/tfenv/bin/python scripts/make_legacy_handle_fixtures.py

Format
======

Exactly the format of ``make_tensor_array_fixtures.py`` (read its
docstring): case ``i`` is a sub-graph under the scope ``c<i>/`` whose every
tensor input is a placeholder ``c<i>/in<j>``; the JSON records have
``fetches``, ``targets``, ``op_types``, ``rtol``/``atol`` and ``check``
(``"values"``, or ``"error"`` with TF's ``error`` class name and its
``message`` with per-process resource ids replaced by ``<id>``); the npz
holds ``c<i>/in<j>`` and ``c<i>/out<k>``.  A case runs in ONE
``Session.run(fetches + targets, feed)``.

Differences that come from the ops themselves:

* The creating ops ``TensorArray``/``TensorArrayV2`` have no ``flow``
  output (TF 1.0's Python made the first flow a ``Const`` 0.0).  Here the
  first flow is a placeholder like every other input: role ``flow``, fed a
  float32 0.0.  A ``TensorArrayGrad``/``TensorArrayGradV2`` array's writes
  chain on the forward flow (as TF 1.0's ``TensorArray.grad`` did).
* ``Stack`` has no ``max_size`` input (unbounded) and hence no placeholder.

Producer version
================

TF 2.21 refuses to build the deprecated ops in a graph whose producer is
its own (2474): ``TensorArray`` and its unversioned ops were removed in
GraphDef version 16 (``TensorArrayScatter`` 19, ``TensorArrayUnpack`` 20),
the ``*V2`` ops in 26.  TF checks an op against the graph's producer
version when it is added to a graph, and ``tf.import_graph_def`` lowers a
graph's producer to the imported GraphDef's.  So the graph is made by first
importing an empty GraphDef with ``versions.producer = 15`` and then
building every case with ``tf.raw_ops`` as usual; the written .pb (the
graph's ``as_graph_def()``) carries ``versions { producer: 15 }``, below
all of the deprecation versions above (the Stack ops and
``TensorArrayConcatV2`` are not deprecated).  TF still has CPU kernels for
all of these ops, and the values/errors are those of that graph run in a
``tf.compat.v1.Session`` (single thread, optimizers off, as in
``make_op_fixtures.py``).

Determinism: fixed numpy seed, single-threaded session, no graph
optimizations, npz written by ``make_fixtures.save_npz``; running twice gives
byte-identical files.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_op_fixtures as mof  # noqa: E402  (sets env, enables v2 behavior)
import make_tensor_array_fixtures as mtaf  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import graph_pb2  # noqa: E402

from make_fixtures import save_npz  # noqa: E402

RAW = tf.raw_ops
OUT = mof.OUT
NAME = "legacy_handles"
SEED = 1016
PRODUCER = 15

F32, F64, I32, I64, BOOL = np.float32, np.float64, np.int32, np.int64, np.bool_
i32, i64, f32 = mof.i32, mof.i64, mof.f32
GRAD_TOL = mtaf.GRAD_TOL
after = mtaf.after


class Ctx:
    """Builder context of one case: placeholders and named ops.

    ``v`` is the op-name suffix of the TensorArray ops: ``""`` (unversioned,
    Ref(string) handle) or ``"V2"`` (string handle).
    """

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
    # Placeholders first, then (under control dependencies on ``deps``) the
    # op: a control input on a fed placeholder would be lost when it is fed.
    def ta(self, v, size, dtype=tf.float32, name="ta", **attrs):
        """(handle, first flow): the flow is a placeholder fed 0.0."""
        size = self.ph("size", i32(size))
        handle = getattr(RAW, "TensorArray" + v)(size=size, dtype=dtype,
                                                 name=name, **attrs)
        return handle, self.ph("flow", f32(0.0))

    def write(self, v, handle, flow, index, value, name, deps=()):
        index, value = self.ph("index", i32(index)), self.ph("value", value)
        with after(*deps):
            return getattr(RAW, "TensorArrayWrite" + v)(
                handle=handle, index=index, value=value, flow_in=flow,
                name=name)

    def writes(self, v, handle, flow, pairs, prefix="write"):
        for k, (index, value) in enumerate(pairs):
            flow = self.write(v, handle, flow, index, value,
                              "%s%d" % (prefix, k))
        return flow

    def read(self, v, handle, flow, index, dtype=tf.float32, name="read",
             deps=()):
        index = self.ph("index", i32(index))
        with after(*deps):
            return getattr(RAW, "TensorArrayRead" + v)(
                handle=handle, index=index, flow_in=flow, dtype=dtype,
                name=name)

    def gather(self, v, handle, flow, indices, dtype=tf.float32,
               name="gather", deps=(), **attrs):
        indices = self.ph("indices", i32(indices))
        with after(*deps):
            return getattr(RAW, "TensorArrayGather" + v)(
                handle=handle, indices=indices, flow_in=flow, dtype=dtype,
                name=name, **attrs)

    def scatter(self, v, handle, flow, indices, value, name="scatter"):
        indices = self.ph("indices", i32(indices))
        value = self.ph("value", value)
        return getattr(RAW, "TensorArrayScatter" + v)(
            handle=handle, indices=indices, value=value, flow_in=flow,
            name=name)

    def concat(self, v, handle, flow, dtype=tf.float32, name="concat",
               **attrs):
        return getattr(RAW, "TensorArrayConcat" + v)(
            handle=handle, flow_in=flow, dtype=dtype, name=name, **attrs)

    def split(self, v, handle, flow, value, lengths, name="split"):
        value = self.ph("value", value)
        lengths = self.ph("lengths", i64(lengths))
        return getattr(RAW, "TensorArraySplit" + v)(
            handle=handle, value=value, lengths=lengths, flow_in=flow,
            name=name)

    def size(self, v, handle, flow, name="size", deps=()):
        with after(*deps):
            return getattr(RAW, "TensorArraySize" + v)(
                handle=handle, flow_in=flow, name=name)

    def close(self, v, handle, name="close", deps=()):
        with after(*deps):
            return getattr(RAW, "TensorArrayClose" + v)(handle=handle,
                                                        name=name)

    def grad(self, v, handle, flow, source="gradients", name="grad"):
        """The gradient array's handle; its writes chain on ``flow``."""
        return getattr(RAW, "TensorArrayGrad" + v)(
            handle=handle, flow_in=flow, source=source, name=name)

    def pack(self, handle, flow, dtype=tf.float32, name="pack", deps=(),
             **attrs):
        with after(*deps):
            return RAW.TensorArrayPack(handle=handle, flow_in=flow,
                                       dtype=dtype, name=name, **attrs)

    def unpack(self, handle, flow, value, name="unpack"):
        value = self.ph("value", value)
        return RAW.TensorArrayUnpack(handle=handle, value=value, flow_in=flow,
                                     name=name)

    # ---- Stack ops (Ref(string) handle, no max_size) -------------------------
    def stack(self, elem_type=tf.float32, name="stack", **attrs):
        return RAW.Stack(elem_type=elem_type, name=name, **attrs)

    def push(self, handle, elem, name, deps=(), **attrs):
        elem = self.ph("elem", elem)
        with after(*deps):
            return RAW.StackPush(handle=handle, elem=elem, name=name, **attrs)

    def pop(self, handle, elem_type=tf.float32, name="pop", deps=()):
        with after(*deps):
            return RAW.StackPop(handle=handle, elem_type=elem_type, name=name)

    def stack_close(self, handle, name="close", deps=()):
        with after(*deps):
            return RAW.StackClose(handle=handle, name=name)


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

def build_stack_cases(F):
    u, ri = F.u, F.ri
    s = [u([2]) for _ in range(3)]

    def stack_lifo(x):
        st = x.stack(stack_name="lifo")
        p0 = x.push(st, s[0], "push0")
        p1 = x.push(st, s[1], "push1", deps=[p0])
        q0 = x.pop(st, name="pop0", deps=[p1])
        p2 = x.push(st, s[2], "push2", deps=[q0])
        q1 = x.pop(st, name="pop1", deps=[p2])
        q2 = x.pop(st, name="pop2", deps=[q1])
        return [p0, p1, q0, p2, q1, q2], []
    F.add("StackPop", "float32, stack_name='lifo'; push a, push b, pop (b), "
          "push c, pop (c), pop (a); StackPush outputs its elem", stack_lifo)

    si = [ri([2, 2]), ri([3]), ri([])]

    def stack_int(x):
        st = x.stack(elem_type=tf.int32)
        p0 = x.push(st, si[0], "push0", swap_memory=True)
        p1 = x.push(st, si[1], "push1", deps=[p0], swap_memory=True)
        p2 = x.push(st, si[2], "push2", deps=[p1], swap_memory=True)
        q0 = x.pop(st, tf.int32, name="pop0", deps=[p2])
        q1 = x.pop(st, tf.int32, name="pop1", deps=[q0])
        q2 = x.pop(st, tf.int32, name="pop2", deps=[q1])
        return [q0, q1, q2], []
    F.add("StackPush", "int32, swap_memory=True; elements of different "
          "shapes [2,2],[3],[] popped in reverse order", stack_int)

    sd = [np.asarray(v, F64) for v in (0.25, -1.5, 3.0, 7.75)]

    def stack_f64(x):
        st = x.stack(elem_type=tf.float64)
        deps, pops = [], []
        for k in range(4):
            deps = [x.push(st, sd[k], "push%d" % k, deps=deps)]
        for k in range(4):
            deps = [x.pop(st, tf.float64, name="pop%d" % k, deps=deps)]
            pops.append(deps[0])
        return pops, []
    F.add("StackPop", "float64 scalars, 4 pushes then 4 pops (LIFO)",
          stack_f64)

    sb = [np.array([True, False, True]), np.array([[False], [True]])]
    sl = [np.array([5, -7], I64)]

    def stack_bool_i64(x):
        st = x.stack(elem_type=tf.bool, name="bstack")
        p0 = x.push(st, sb[0], "push0")
        p1 = x.push(st, sb[1], "push1", deps=[p0])
        q0 = x.pop(st, tf.bool, name="pop0", deps=[p1])
        q1 = x.pop(st, tf.bool, name="pop1", deps=[q0])
        st2 = x.stack(elem_type=tf.int64, name="lstack")
        p2 = x.push(st2, sl[0], "push2")
        q2 = x.pop(st2, tf.int64, name="pop2", deps=[p2])
        return [q0, q1, q2], []
    F.add("Stack", "two stacks in one case: bool ([3] then [2,1]) and int64 "
          "([2]); each pops its own elements", stack_bool_i64)

    def stack_close(x):
        st = x.stack()
        p0 = x.push(st, s[0], "push0")
        q0 = x.pop(st, name="pop0", deps=[p0])
        cl = x.stack_close(st, deps=[q0])
        return [q0], [cl]
    F.add("StackClose", "push, pop, then close (target, after the pop)",
          stack_close)

    def err_stack_empty(x):
        st = x.stack()
        return [x.pop(st, name="pop0")], []
    F.add("StackPop", "popping an empty stack", err_stack_empty, error=True)

    def err_stack_drained(x):
        st = x.stack(stack_name="drained")
        p0 = x.push(st, s[0], "push0")
        q0 = x.pop(st, name="pop0", deps=[p0])
        q1 = x.pop(st, name="pop1", deps=[q0])
        return [q0, q1], []
    F.add("StackPop", "stack_name='drained'; push once, pop twice",
          err_stack_drained, error=True)

    def err_stack_closed(x):
        st = x.stack()
        cl = x.stack_close(st)
        p0 = x.push(st, s[0], "push0", deps=[cl])
        return [p0], [cl]
    F.add("StackPush", "push after close", err_stack_closed, error=True)

    def err_stack_dtype(x):
        st = x.stack()
        return [x.push(st, ri([2]), "push0")], []
    F.add("StackPush", "int32 elem pushed on a float32 stack",
          err_stack_dtype, error=True)


def build_ta_cases(F, v):
    """Cases shared by the unversioned (v='') and the V2 (v='V2') ops."""
    u, ri = F.u, F.ri
    create = "TensorArray" + v
    a, b, c = u([2, 3]), u([2, 3]), u([2, 3])
    d = u([3])

    def basic(x):
        h, fl = x.ta(v, 3)
        fl = x.writes(v, h, fl, [(2, c), (0, a), (1, b)])
        return [x.read(v, h, fl, 0, name="read0"),
                x.read(v, h, fl, 1, name="read1"),
                x.read(v, h, fl, 2, name="read2"), x.size(v, h, fl)], []
    F.add("TensorArrayRead" + v, "%s size 3 (defaults: dynamic_size=False, "
          "clear_after_read=True, element_shape unknown); writes at 2,0,1, "
          "reads 0,1,2 and size" % create, basic)

    def no_clear(x):
        h, fl = x.ta(v, 2, clear_after_read=False)
        fl = x.write(v, h, fl, 0, d, "write0")
        r0 = x.read(v, h, fl, 0, name="read0")
        r1 = x.read(v, h, fl, 0, name="read1", deps=[r0])
        return [r0, r1], []
    F.add("TensorArrayRead" + v, "clear_after_read=False: index 0 read twice",
          no_clear)

    def dynamic(x):
        h, fl = x.ta(v, 0, dynamic_size=True)
        fl = x.writes(v, h, fl, [(3, a), (1, b)])
        return [x.size(v, h, fl), x.read(v, h, fl, 3, name="read0"),
                x.read(v, h, fl, 1, name="read1")], []
    F.add(create, "dynamic_size=True, initial size 0; writes at 3 then 1 "
          "grow the size to 4", dynamic)

    def unwritten_known(x):
        h, fl = x.ta(v, 3, element_shape=[2, 2])
        fl = x.write(v, h, fl, 0, u([2, 2]), "write0")
        return [x.read(v, h, fl, 1, name="read0"), x.size(v, h, fl)], []
    F.add(create, "element_shape=[2,2] fully defined: reading never-written "
          "index 1 gives zeros", unwritten_known)

    def err_unwritten(x):
        h, fl = x.ta(v, 3)
        fl = x.write(v, h, fl, 0, d, "write0")
        return [x.read(v, h, fl, 1, name="read0")], []
    F.add("TensorArrayRead" + v, "reading an unwritten index, element_shape "
          "unknown", err_unwritten, error=True)

    def err_read_twice(x):
        h, fl = x.ta(v, 2)
        fl = x.write(v, h, fl, 0, d, "write0")
        r0 = x.read(v, h, fl, 0, name="read0")
        r1 = x.read(v, h, fl, 0, name="read1", deps=[r0])
        return [r0, r1], []
    F.add("TensorArrayRead" + v, "clear_after_read=True (default): second "
          "read of index 0 (ordered by a control dependency)", err_read_twice,
          error=True)

    def close(x):
        h, fl = x.ta(v, 2)
        fl = x.write(v, h, fl, 0, d, "write0")
        r = x.read(v, h, fl, 0, name="read0")
        cl = x.close(v, h, deps=[r])
        return [r], [cl]
    F.add("TensorArrayClose" + v, "write, read, then close (target, after "
          "the read)", close)

    def err_close(x):
        h, fl = x.ta(v, 2)
        fl = x.write(v, h, fl, 0, d, "write0")
        cl = x.close(v, h, deps=[fl])
        r = x.read(v, h, fl, 0, name="read0", deps=[cl])
        return [r], [cl]
    F.add("TensorArrayClose" + v, "read after close", err_close, error=True)

    e = [u([2]) for _ in range(3)]

    def gather(x):
        h, fl = x.ta(v, 3, clear_after_read=False)
        fl = x.writes(v, h, fl, [(k, e[k]) for k in range(3)])
        return [x.gather(v, h, fl, [2, 0, 2, 1])], []
    F.add("TensorArrayGather" + v, "clear_after_read=False; gather repeated "
          "indices [2,0,2,1]", gather)

    sv = ri([3, 2])

    def scatter(x):
        h, fl = x.ta(v, 3, dtype=tf.int32)
        fl = x.scatter(v, h, fl, [2, 0, 1], sv)
        return [x.read(v, h, fl, 0, dtype=tf.int32, name="read0"),
                x.read(v, h, fl, 2, dtype=tf.int32, name="read1"),
                x.read(v, h, fl, 1, dtype=tf.int32, name="read2")], []
    F.add("TensorArrayScatter" + v, "int32; scatter rows of [3,2] to indices "
          "[2,0,1]; read 0,2,1", scatter)

    def concat(x):
        h, fl = x.ta(v, 3)
        fl = x.writes(v, h, fl, [(0, u([1, 2])), (1, u([3, 2])),
                                 (2, u([2, 2]))])
        value, lengths = x.concat(v, h, fl)
        return [value, lengths], []
    F.add("TensorArrayConcat" + v, "elements [1,2],[3,2],[2,2] -> value "
          "[6,2], lengths int64 [1,3,2]", concat)

    split_value = u([6, 2])

    def split(x):
        h, fl = x.ta(v, 3)
        fl = x.split(v, h, fl, split_value, [1, 2, 3])
        return [x.read(v, h, fl, 0, name="read0"),
                x.read(v, h, fl, 1, name="read1"),
                x.read(v, h, fl, 2, name="read2"), x.size(v, h, fl)], []
    F.add("TensorArraySplit" + v, "value [6,2] split by lengths [1,2,3] into "
          "a size-3 array; read each", split)

    g = [u([2]) for _ in range(3)]

    def grad(x):
        h, fl = x.ta(v, 3, element_shape=[2])
        fl = x.writes(v, h, fl, [(k, e[k]) for k in range(3)])
        gh = x.grad(v, h, fl)
        gfl = x.writes(v, gh, fl, [(0, g[0]), (2, g[1]), (0, g[2])],
                       prefix="gwrite")
        return [x.size(v, gh, gfl, name="gsize"),
                x.read(v, gh, gfl, 0, name="gread0"),
                x.read(v, gh, gfl, 2, name="gread1"),
                x.read(v, gh, gfl, 1, name="gread2")], []
    F.add("TensorArrayGrad" + v, "forward size 3, element_shape=[2]; grad "
          "(source 'gradients') has size 3; writes at 0,2,0: index 0 reads "
          "the SUM of its two writes, unwritten index 1 reads zeros",
          grad, tol=GRAD_TOL)

    def grad_shapes(x):
        h, fl = x.ta(v, 3)  # element shape unknown
        fl = x.writes(v, h, fl, [(k, e[k]) for k in range(3)])
        gh = x.grad(v, h, fl)
        gfl = x.writes(v, gh, fl, [(2, g[1])], prefix="gwrite")
        return [x.read(v, gh, gfl, 1, name="gread1"),
                x.read(v, gh, gfl, 2, name="gread2")], []
    F.add("TensorArrayGrad" + v, "forward element shape unknown, all 3 "
          "written; grad written at 2 only: unwritten index 1 reads zeros of "
          "the forward element's shape (the grad array copies the forward "
          "array's per-element shapes)", grad_shapes, tol=GRAD_TOL)


def build_v1_cases(F):
    u, ri = F.u, F.ri
    v = ""

    vi = [ri([4]) for _ in range(3)]

    def pack(x):
        h, fl = x.ta(v, 3, dtype=tf.int32)
        fl = x.writes(v, h, fl, [(1, vi[1]), (2, vi[2]), (0, vi[0])])
        return [x.pack(h, fl, dtype=tf.int32)], []
    F.add("TensorArrayPack", "int32, writes at 1,2,0; pack -> [3,4]", pack)

    def unpack(x):
        h, fl = x.ta(v, 4, dtype=tf.float64)
        fl = x.unpack(h, fl, np.asarray(F.u([4, 2]), F64))
        return [x.size(v, h, fl), x.pack(h, fl, dtype=tf.float64)], []
    F.add("TensorArrayUnpack", "float64 [4,2] unpacked into a size-4 array; "
          "size, and pack back", unpack)

    def pack_known(x):
        h, fl = x.ta(v, 3, element_shape=[2])
        fl = x.write(v, h, fl, 1, u([2]), "write0")
        return [x.pack(h, fl)], []
    F.add("TensorArrayPack", "element_shape=[2]; only index 1 written: pack "
          "fills zeros", pack_known)

    def err_pack_empty(x):
        h, fl = x.ta(v, 0)
        return [x.pack(h, fl)], []
    F.add("TensorArrayPack", "size-0 array, element_shape unknown",
          err_pack_empty, error=True)

    def err_write_past(x):
        h, fl = x.ta(v, 2)
        fl = x.write(v, h, fl, 2, u([3]), "write0")
        return [x.size(v, h, fl)], []
    F.add("TensorArrayWrite", "writing index 2 of a size-2 array, "
          "dynamic_size=False", err_write_past, error=True)


def build_v2_cases(F):
    u = F.u
    v = "V2"
    e = [u([2]) for _ in range(3)]
    g = [u([2]) for _ in range(2)]

    def grad_shared(x):
        h, fl = x.ta(v, 2, element_shape=[2])
        fl = x.writes(v, h, fl, [(0, e[0]), (1, e[1])])
        g1 = x.grad(v, h, fl, name="grad")
        g1fl = x.write(v, g1, fl, 1, g[0], "gwrite0")
        g2 = x.grad(v, h, g1fl, name="grad_1")
        g2fl = x.write(v, g2, g1fl, 1, g[1], "gwrite1")
        g3 = x.grad(v, h, fl, source="other", name="grad_other")
        return [x.gather(v, g2, g2fl, [0, 1], name="ggather"),
                x.gather(v, g3, fl, [0, 1], name="ogather")], []
    F.add("TensorArrayGradV2", "two TensorArrayGradV2 with the same source "
          "share one array (writes through both are summed); source 'other' "
          "is a separate, unwritten array (zeros)", grad_shared, tol=GRAD_TOL)

    def err_write_twice(x):
        h, fl = x.ta(v, 2)
        fl = x.writes(v, h, fl, [(1, e[0]), (1, e[1])])
        return [x.size(v, h, fl)], []
    F.add("TensorArrayWriteV2", "writing index 1 twice (not a gradient "
          "array)", err_write_twice, error=True)

    def err_gather_shapes(x):
        h, fl = x.ta(v, 2)
        fl = x.writes(v, h, fl, [(0, u([2])), (1, u([3]))])
        return [x.gather(v, h, fl, [0, 1])], []
    F.add("TensorArrayGatherV2", "elements of shapes [2] and [3]",
          err_gather_shapes, error=True)


def build_cases(F):
    build_stack_cases(F)
    build_ta_cases(F, "")
    build_v1_cases(F)
    build_ta_cases(F, "V2")
    build_v2_cases(F)


# ---------------------------------------------------------------------------
# Building and running
# ---------------------------------------------------------------------------

def legacy_graph():
    """A tf.Graph whose producer version is PRODUCER (see the docstring)."""
    graph = tf.Graph()
    old = graph_pb2.GraphDef()
    old.versions.producer = PRODUCER
    with graph.as_default():
        tf.import_graph_def(old, name="")
    assert graph.graph_def_versions.producer == PRODUCER
    return graph


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
    desc = "%s; %s" % (spec.desc, " ".join(mtaf.fmt_input(role, arr)
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
            raise AssertionError("%s: expected an error (%s), got %r" %
                                 (ctx.scope, spec.desc, values))
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
        record["message"] = mtaf.sanitize(mof.error_message(error))
    record["fetches"] = [t.name for t in fetches]
    record["targets"] = [op.name for op in targets]
    record["op_types"] = [op.type for op in ops if op.type != "Placeholder"]
    return record, values


def generate():
    fam = mtaf.Family()
    fam.rng = np.random.RandomState(SEED)
    build_cases(fam)
    graph = legacy_graph()
    arrays, records, results = {}, [], []
    with tf.compat.v1.Session(graph=graph,
                              config=mof.session_config()) as sess:
        for i, spec in enumerate(fam.specs):
            record, values = run_spec(graph, sess, spec, i, arrays)
            records.append(record)
            results.append(values)
    graph_def = graph.as_graph_def()
    assert graph_def.versions.producer == PRODUCER, graph_def.versions
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
