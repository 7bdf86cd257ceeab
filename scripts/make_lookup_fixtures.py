"""Generate the per-op fixture family ``lookup`` (lookup tables: HashTableV2,
MutableHashTableV2, MutableHashTableOfTensorsV2 and their TF 1.x forms with
Ref(string) handles, InitializeTable*, InitializeTableFromTextFile*,
LookupTableFind/Insert/Remove/Size/Export/Import) with real TensorFlow.

gpugraph never imports TensorFlow; this script (run in the TF virtualenv)
rewrites only ``tests/fixtures/ops/lookup.pb``, ``lookup.npz``,
``lookup.json`` and the vocabulary files ``tests/fixtures/ops/lookup.vocab*``::

    /work/tfenv/bin/python scripts/make_lookup_fixtures.py

It also holds the case engine of ``make_string_fixtures.py``.

Format
======

The format of ``make_tensor_array_fixtures.py`` (read its docstring): case
``i`` is a sub-graph under the scope ``c<i>/`` whose every tensor input is a
placeholder ``c<i>/in<j>`` (exact shapes, unknown rank in ``"check":
"error"`` cases); the JSON records have ``fetches``, ``targets``,
``op_types``, ``rtol``/``atol`` (always 0: everything here is exact) and
``check`` (``"values"``, or ``"error"`` with TF's ``error`` class name and
its ``message``); the npz holds ``c<i>/in<j>`` and ``c<i>/out<k>`` (TF's
value of ``fetches[k]``).  A case runs in ONE ``Session.run(fetches +
targets, feed)``.  Ops are named after their role (``c3/table``,
``c3/init``, ``c3/find``, ...; ``make_string_fixtures.py`` names the op
under test ``c<i>/op``) and ordered by control dependencies on the ops
(never on fed placeholders, whose control inputs TF drops).

What differs from make_tensor_array_fixtures:

* Tables are session resources that outlive a run: the test harness runs
  every case of the family once in ONE session.  Each case has its own
  tables (a ``shared_name`` is made unique with the case's scope), so cases
  do not see each other's tables.
* String tensors.  The npz cannot hold object arrays (``save_npz`` writes
  without pickles): string inputs are stored as fixed-width ``bytes``
  arrays (``dtype "S<n>"``; no input string ends in a NUL byte, which that
  dtype would drop) and fed as such.  A string *output* is not fetched
  itself: the case fetches ``c<i>/hash<k>`` =
  ``StringToHashBucketFast(t, num_buckets=2**63-1)`` (int64, farmhash
  Fingerprint64 modulo 2**63-1, itself checked against TF on thousands of
  strings in the ``strings`` family) and ``c<i>/len<k>`` =
  ``StringLength(t)`` instead, and the record lists TF's exact strings
  under ``"strings"``: ``{tensor name: {"shape": [...], "latin1": [each
  string's bytes decoded as Latin-1]}}`` (tests/runtime/
  test_lookup_string_values.py compares them byte for byte).
* Exports.  ``LookupTableExportV2``'s order is that of TF's hash map (not
  reproducible); export cases sort it in the graph: integer keys with
  ``TopKV2`` (k = the table size, a placeholder) and ``GatherV2`` of the
  values by the same indices, string keys by their hash
  (``StringToHashBucketFast``), so the fetched values are order-free.
* Text files.  ``InitializeTableFromTextFile*`` read the vocabulary files
  this script writes next to the fixtures (``tests/fixtures/ops/
  lookup.vocab*.txt``).  The file name is a placeholder fed the path
  RELATIVE TO THE REPOSITORY ROOT (``tests/fixtures/ops/lookup.vocab.txt``),
  as a string in the npz; TF ran with the repository root as its working
  directory, so run the cases from there (the test harness does: pytest
  runs from the repository root).  Error messages name that path.
* Error ``message``s have TF's per-process resource ids replaced by
  ``<id>``: a private table is named ``_<id>_<node name>``.

TF 2.21 CPU behaviour the cases show (each is a case below):
* A hash table must be initialized before a lookup ("Table not
  initialized."), before an export (AbortedError "HashTable is not
  initialized."); its size is 0 until then.  A second InitializeTableV2 is a
  no-op when it brings as many keys as the table holds, whatever they are
  (TF compares only the counts), and fails otherwise; a second
  initialization from a text file is always a no-op.  A key repeated with
  another value fails ("HashTable has different value for same key ...",
  values printed with six significant digits, bools as 1/0); repeated with
  the same value it is fine.  Empty keys fail.
* ``default_value`` is one value or one per key.  Insert/Remove into a hash
  table are UnimplementedErrors; Initialize* of a mutable table is "Table
  <container> <name> is not initializable" (container ``localhost`` unless
  set).  Dtypes differing from the table's are "Signature mismatch" errors
  (``string_ref`` for TF 1.x handles); two tables with one ``shared_name``
  and different dtypes are a "Conflicting key/value dtypes" error.
* Text files: lines end at ``\\n`` with one trailing ``\\r`` dropped, a last
  line without ``\\n`` counts; index -1 is the line number plus ``offset``,
  -2 the whole line; ``offset`` is added to int32 fields but NOT to int64
  ones; ``vocab_size`` truncates, a longer one fails; an empty line fails
  with its end's byte position; an empty file is an OutOfRangeError ("Read
  less bytes than requested").

Determinism: fixed numpy seed, single-threaded session, no graph
optimizations, npz written by ``make_fixtures.save_npz``; running twice gives
byte-identical files.
"""

import os
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
ROOT = mof.ROOT
NAME = "lookup"
SEED = 2024

F32, F64, I32, I64, BOOL = np.float32, np.float64, np.int32, np.int64, np.bool_
i32, i64, f32 = mof.i32, mof.i64, mof.f32
S, INT64 = tf.string, tf.int64
HASH_BUCKETS = 2 ** 63 - 1


def strs(*items):
    """A string array (object dtype) of bytes."""
    arr = np.empty(len(items), dtype=object)
    arr[:] = [i.encode() if isinstance(i, str) else i for i in items]
    return arr


def strs2(rows):
    return np.array([strs(*r) for r in rows], dtype=object)


def as_stored(arr):
    """The npz form of a fed array: strings as fixed-width bytes."""
    arr = np.asarray(arr)
    if arr.dtype != object:
        return arr
    flat = [bytes(v) for v in arr.reshape(-1)]
    assert not any(v.endswith(b"\0") for v in flat), "S dtype would drop a trailing NUL"
    width = max([len(v) for v in flat] + [1])
    return np.array(flat, dtype="S%d" % width).reshape(arr.shape)


def after(*deps):
    """Control-dependency context on tensors/ops."""
    ops = [d.op if isinstance(d, tf.Tensor) else d for d in deps]
    return tf.control_dependencies(ops)


class Spec:
    def __init__(self, op, desc, build, error):
        self.op, self.desc, self.build, self.error = op, desc, build, error


class Ctx:
    """Builder context of one case: placeholders, named ops, string fetches."""

    def __init__(self, graph, index, error):
        self.graph, self.index, self.error = graph, index, error
        self.scope = "c%d" % index
        self.feeds = []        # (placeholder, array, npz key, role)
        self.string_fetches = []  # raw string tensors (TF's values go to the JSON)
        self.names = {}

    def name(self, base):
        """A fresh op name: base, base1, base2, ..."""
        count = self.names.get(base, 0)
        self.names[base] = count + 1
        return base if count == 0 else "%s%d" % (base, count)

    def shared(self, name):
        return "%s_%s" % (self.scope, name)

    def ph(self, role, arr):
        arr = np.asarray(arr)
        dtype = tf.string if arr.dtype == object else tf.as_dtype(arr.dtype)
        name = "in%d" % len(self.feeds)
        ph = tf.compat.v1.placeholder(dtype, None if self.error else arr.shape,
                                      name=name)
        self.feeds.append((ph, arr, "%s/%s" % (self.scope, name), role))
        return ph

    def fetch(self, tensor):
        """``[tensor]``, or for a string tensor its hash and length (see the
        docstring)."""
        if tensor.dtype != tf.string:
            return [tensor]
        k = len(self.string_fetches)
        self.string_fetches.append(tensor)
        hashed = RAW.StringToHashBucketFast(input=tensor,
                                            num_buckets=HASH_BUCKETS,
                                            name="hash%d" % k)
        length = RAW.StringLength(input=tensor, name="len%d" % k)
        return [hashed, length]

    # ---- tables ------------------------------------------------------------
    def hash_table(self, k=S, v=INT64, name="table", v1=False, **attrs):
        op = RAW.HashTable if v1 else RAW.HashTableV2
        return op(key_dtype=k, value_dtype=v, name=self.name(name), **attrs)

    def mutable(self, k=S, v=INT64, name="table", v1=False, **attrs):
        op = RAW.MutableHashTable if v1 else RAW.MutableHashTableV2
        return op(key_dtype=k, value_dtype=v, name=self.name(name), **attrs)

    def init(self, table, keys, values, deps=(), v1=False):
        keys, values = self.ph("keys", keys), self.ph("values", values)
        op = RAW.InitializeTable if v1 else RAW.InitializeTableV2
        with after(*deps):
            return op(table_handle=table, keys=keys, values=values,
                      name=self.name("init"))

    def init_file(self, table, path, key_index, value_index, deps=(),
                  v1=False, **attrs):
        filename = self.ph("filename", np.array(path.encode(), dtype=object))
        op = (RAW.InitializeTableFromTextFile if v1
              else RAW.InitializeTableFromTextFileV2)
        with after(*deps):
            return op(table_handle=table, filename=filename,
                      key_index=key_index, value_index=value_index,
                      name=self.name("init"), **attrs)

    def find(self, table, keys, default, deps=(), v1=False):
        keys, default = self.ph("keys", keys), self.ph("default", default)
        op = RAW.LookupTableFind if v1 else RAW.LookupTableFindV2
        with after(*deps):
            return op(table_handle=table, keys=keys, default_value=default,
                      name=self.name("find"))

    def insert(self, table, keys, values, deps=(), v1=False):
        keys, values = self.ph("keys", keys), self.ph("values", values)
        op = RAW.LookupTableInsert if v1 else RAW.LookupTableInsertV2
        with after(*deps):
            return op(table_handle=table, keys=keys, values=values,
                      name=self.name("insert"))

    def import_(self, table, keys, values, deps=()):
        keys, values = self.ph("keys", keys), self.ph("values", values)
        with after(*deps):
            return RAW.LookupTableImportV2(table_handle=table, keys=keys,
                                           values=values,
                                           name=self.name("import"))

    def remove(self, table, keys, deps=()):
        keys = self.ph("keys", keys)
        with after(*deps):
            return RAW.LookupTableRemoveV2(table_handle=table, keys=keys,
                                           name=self.name("remove"))

    def size(self, table, deps=(), v1=False):
        op = RAW.LookupTableSize if v1 else RAW.LookupTableSizeV2
        with after(*deps):
            return op(table_handle=table, name=self.name("size"))

    def export(self, table, k=S, v=INT64, deps=(), v1=False):
        op = RAW.LookupTableExport if v1 else RAW.LookupTableExportV2
        with after(*deps):
            return op(table_handle=table, Tkeys=k, Tvalues=v,
                      name=self.name("export"))

    def sorted_export(self, table, count, k=S, v=INT64, deps=(), v1=False):
        """Fetches of an export sorted by key (see the docstring): [sorted
        integer keys or key hashes, values in that order]."""
        kk = self.ph("k", i32(count))
        axis = self.ph("axis", i32(0))
        keys, values = self.export(table, k, v, deps, v1)
        order_keys = keys if k != S else RAW.StringToHashBucketFast(
            input=keys, num_buckets=HASH_BUCKETS, name=self.name("keyhash"))
        top, index = RAW.TopKV2(input=order_keys, k=kk, name=self.name("sort"))
        picked = RAW.GatherV2(params=values, indices=index, axis=axis,
                              name=self.name("gather"))
        return [top] + self.fetch(picked)


class Family:
    def __init__(self, seed=SEED):
        self.rng = np.random.RandomState(seed)
        self.specs = []

    def add(self, op, desc, build, error=False):
        """build(ctx) -> (fetch tensors, target ops); string fetches go
        through ctx.fetch."""
        self.specs.append(Spec(op, desc, build, error))


# ---------------------------------------------------------------------------
# Vocabulary files
# ---------------------------------------------------------------------------

VOCAB = {
    "lookup.vocab.txt": b"apple\t10\t1.5\nbanana\t20\t-2.25\ncherry\t30\t3e2\n"
                        b"date\t-40\t0.125\n",
    "lookup.vocab_crlf.txt": b"x y\r\nyy z\r\n\xc3\xa9t\xc3\xa9 w",
    "lookup.vocab_blank.txt": b"a 1\nb 2\n\nc 3\n",
    "lookup.vocab_bad.txt": b"k1\t7\nk2\tseven\n",
    "lookup.vocab_dup.txt": b"a\nb\na\n",
    "lookup.vocab_empty.txt": b"",
}


def vocab(name):
    """The path of a vocabulary file, relative to the repository root."""
    return "tests/fixtures/ops/" + name


def write_vocab():
    for name, data in VOCAB.items():
        (OUT / name).write_bytes(data)


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

def build_cases(F):  # noqa: C901  (a flat case table)
    words = strs("apple", "banana", "cherry", "date", "elder")
    ids = i64([3, 1, 4, 1, 5])

    # ---- HashTableV2 / InitializeTableV2 / LookupTableFindV2 ---------------
    def basic(x):
        t = x.hash_table()
        i = x.init(t, words, ids)
        f = x.find(t, strs2([["banana", "fig"], ["elder", "apple"]]), i64(-1),
                   deps=[i])
        return [f, x.size(t, deps=[i])], []
    F.add("LookupTableFindV2", "string->int64 hash table: init, then a [2,2] "
          "lookup with a scalar default and the size", basic)

    def int_to_string(x):
        t = x.hash_table(INT64, S)
        i = x.init(t, i64([7, -2, 40]), strs("seven", "minus two", ""))
        f = x.find(t, i64([[40, 7, 8], [-2, 0, 7]]),
                    strs2([["d0", "d1", "d2"], ["d3", "d4", "d5"]]), deps=[i])
        return x.fetch(f), []
    F.add("LookupTableFindV2", "int64->string: default_value of the keys' "
          "shape is accepted, but a HashTable uses its FIRST element for every "
          "absent key (TF's HashTable::DoFind)", int_to_string)

    def int_to_float(x):
        t = x.hash_table(INT64, tf.float32)
        i = x.init(t, i64([2 ** 40, -1, 0]), f32([1.5, -0.25, np.inf]))
        f = x.find(t, i64([0, 2 ** 40, 5, -1]), f32(np.nan), deps=[i])
        return [f], []
    F.add("LookupTableFindV2", "int64->float32 with a NaN default", int_to_float)

    def int32_table(x):
        t = x.hash_table(tf.int32, tf.int32)
        i = x.init(t, i32([5, 6]), i32([50, 60]))
        f = x.find(t, i32([[6], [7], [5]]), i32(0), deps=[i])
        return [f], []
    F.add("LookupTableFindV2", "int32->int32, keys [3,1]", int32_table)

    def string_to_double(x):
        t = x.hash_table(S, tf.float64)
        i = x.init(t, strs("pi", "e"), np.array([3.14159, 2.71828], F64))
        f = x.find(t, strs("e", "tau", "pi"), np.array(-1.0, F64), deps=[i])
        return [f], []
    F.add("LookupTableFindV2", "string->float64", string_to_double)

    def string_to_bool(x):
        t = x.hash_table(S, tf.bool)
        i = x.init(t, strs("yes", "no"), np.array([True, False]))
        f = x.find(t, strs("no", "yes", "maybe"), np.array(True), deps=[i])
        return [f], []
    F.add("LookupTableFindV2", "string->bool", string_to_bool)

    def string_to_string(x):
        t = x.hash_table(S, S)
        i = x.init(t, strs("\xe9t\xe9", "b"), strs("summer", "\x00bee"))
        f = x.find(t, strs("b", "\xe9t\xe9", "z"), np.array(b"?", object),
                   deps=[i])
        return x.fetch(f), []
    F.add("LookupTableFindV2", "string->string with UTF-8 keys and a value "
          "starting with NUL", string_to_string)

    def scalar_key(x):
        t = x.hash_table()
        i = x.init(t, words, ids)
        f = x.find(t, np.array(b"cherry", object), i64(-1), deps=[i])
        return [f], []
    F.add("LookupTableFindV2", "a scalar key", scalar_key)

    def empty_keys(x):
        t = x.hash_table()
        i = x.init(t, words, ids)
        f = x.find(t, np.zeros([0, 3], object), i64(-1), deps=[i])
        return [f], []
    F.add("LookupTableFindV2", "an empty [0,3] lookup", empty_keys)

    def dup_same(x):
        t = x.hash_table()
        i = x.init(t, strs("a", "b", "a"), i64([1, 2, 1]))
        return [x.size(t, deps=[i])] + x.sorted_export(t, 2, deps=[i]), []
    F.add("InitializeTableV2", "a key repeated with the same value: fine, "
          "counted once", dup_same)

    def size_before(x):
        t = x.hash_table()
        return [x.size(t)], []
    F.add("LookupTableSizeV2", "size of a hash table never initialized: 0",
          size_before)

    def reinit_same_count(x):
        t = x.hash_table()
        i = x.init(t, strs("a", "b"), i64([1, 2]))
        i2 = x.init(t, strs("c", "d"), i64([3, 4]), deps=[i])
        f = x.find(t, strs("a", "b", "c", "d"), i64(-1), deps=[i2])
        return [f, x.size(t, deps=[i2])], []
    F.add("InitializeTableV2", "initialized twice with as many keys: the "
          "second is a no-op (TF compares only the counts)", reinit_same_count)

    def export_hash(x):
        t = x.hash_table()
        i = x.init(t, words, ids)
        return x.sorted_export(t, 5, deps=[i]), []
    F.add("LookupTableExportV2", "hash table export (string keys, sorted by "
          "hash in the graph)", export_hash)

    def export_int(x):
        t = x.hash_table(INT64, S)
        i = x.init(t, i64([30, -7, 12, 0]), strs("x", "y", "z", "w"))
        return x.sorted_export(t, 4, INT64, S, deps=[i]), []
    F.add("LookupTableExportV2", "int64->string export sorted by key",
          export_int)

    def import_hash(x):
        t = x.hash_table()
        i = x.import_(t, strs("k", "l"), i64([8, 9]))
        f = x.find(t, strs("l", "m", "k"), i64(0), deps=[i])
        return [f], []
    F.add("LookupTableImportV2", "importing into a hash table initializes it",
          import_hash)

    def shared(x):
        t = x.hash_table(name="table", shared_name=x.shared("vocab"))
        t2 = x.hash_table(name="other", shared_name=x.shared("vocab"))
        i = x.init(t, words, ids)
        f = x.find(t2, strs("date", "zz"), i64(-9), deps=[i])
        return [f, x.size(t2, deps=[i])], []
    F.add("HashTableV2", "two HashTableV2 nodes with one shared_name are one "
          "table", shared)

    def node_name_sharing(x):
        t = x.hash_table(use_node_name_sharing=True)
        i = x.init(t, words, ids)
        return [x.find(t, strs("apple"), i64(-1), deps=[i])], []
    F.add("HashTableV2", "use_node_name_sharing", node_name_sharing)

    # ---- errors --------------------------------------------------------------
    def err_not_init(x):
        t = x.hash_table()
        return [x.find(t, strs("a"), i64(-1))], []
    F.add("LookupTableFindV2", "lookup before initialization", err_not_init,
          error=True)

    def err_export_not_init(x):
        t = x.hash_table()
        keys, values = x.export(t)
        return [keys, values], []
    F.add("LookupTableExportV2", "export before initialization",
          err_export_not_init, error=True)

    def err_reinit(x):
        t = x.hash_table()
        i = x.init(t, strs("a", "b"), i64([1, 2]))
        i2 = x.init(t, strs("a", "b", "c"), i64([1, 2, 3]), deps=[i])
        return [], [i2]
    F.add("InitializeTableV2", "initialized twice with another number of keys",
          err_reinit, error=True)

    def err_dup(x):
        t = x.hash_table()
        return [], [x.init(t, strs("a", "b", "a"), i64([1, 2, 3]))]
    F.add("InitializeTableV2", "a key repeated with another value", err_dup,
          error=True)

    def err_dup_float(x):
        t = x.hash_table(INT64, tf.float64)
        return [], [x.init(t, i64([4, 5, 4]),
                           np.array([1234567.0, 2, 0.1], F64))]
    F.add("InitializeTableV2", "a repeated int64 key with float64 values "
          "(printed with 6 significant digits)", err_dup_float, error=True)

    def err_dup_bool(x):
        t = x.hash_table(S, tf.bool)
        return [], [x.init(t, strs("a", "a"), np.array([True, False]))]
    F.add("InitializeTableV2", "a repeated key with bool values", err_dup_bool,
          error=True)

    def err_empty(x):
        t = x.hash_table()
        return [], [x.init(t, np.zeros([0], object), np.zeros([0], I64))]
    F.add("InitializeTableV2", "empty keys", err_empty, error=True)

    def err_keys_matrix(x):
        t = x.hash_table()
        return [], [x.init(t, strs2([["a", "b"]]), i64([[1, 2]]))]
    F.add("InitializeTableV2", "keys of shape [1,2]", err_keys_matrix,
          error=True)

    def err_values_matrix(x):
        t = x.hash_table()
        return [], [x.init(t, strs("a", "b"), i64([[1, 2]]))]
    F.add("InitializeTableV2", "values of shape [1,2]", err_values_matrix,
          error=True)

    def err_sizes(x):
        t = x.hash_table()
        return [], [x.init(t, strs("a", "b"), i64([1, 2, 3]))]
    F.add("InitializeTableV2", "2 keys, 3 values", err_sizes, error=True)

    def err_init_dtype(x):
        t = x.hash_table()
        return [], [x.init(t, i64([1, 2]), i64([1, 2]))]
    F.add("InitializeTableV2", "int64 keys for a string-keyed table",
          err_init_dtype, error=True)

    def err_find_dtype(x):
        t = x.hash_table()
        i = x.init(t, words, ids)
        return [x.find(t, strs("a"), i32(-1), deps=[i])], []
    F.add("LookupTableFindV2", "an int32 default for an int64-valued table",
          err_find_dtype, error=True)

    def err_default_shape(x):
        t = x.hash_table()
        i = x.init(t, words, ids)
        return [x.find(t, strs2([["a", "b"]]), i64([1, 2]), deps=[i])], []
    F.add("LookupTableFindV2", "default of shape [2] for keys [1,2]",
          err_default_shape, error=True)

    def err_default_shape_first(x):
        t = x.hash_table()
        return [x.find(t, strs("a", "b"), i64([1, 2, 3]))], []
    F.add("LookupTableFindV2", "a bad default shape is reported before the "
          "missing initialization", err_default_shape_first, error=True)

    def err_insert_hash(x):
        t = x.hash_table()
        i = x.init(t, words, ids)
        return [], [x.insert(t, strs("z"), i64([1]), deps=[i])]
    F.add("LookupTableInsertV2", "insert into a hash table", err_insert_hash,
          error=True)

    def err_remove_hash(x):
        t = x.hash_table()
        i = x.init(t, words, ids)
        return [], [x.remove(t, strs("apple"), deps=[i])]
    F.add("LookupTableRemoveV2", "remove from a hash table", err_remove_hash,
          error=True)

    def err_shared_dtype(x):
        t = x.hash_table(name="table", shared_name=x.shared("t"))
        i = x.init(t, words, ids)
        with after(i):  # created after the int64 table: its op fails
            t2 = x.hash_table(S, tf.float32, name="other",
                              shared_name=x.shared("t"))
        return [x.find(t2, strs("a"), f32(0))], []
    F.add("HashTableV2", "one shared_name, two value dtypes (the second "
          "table op runs after the first table's initialization)",
          err_shared_dtype, error=True)

    # ---- MutableHashTableV2 ---------------------------------------------------
    def mutable_basic(x):
        t = x.mutable()
        f0 = x.find(t, strs("a", "b"), i64(-1))
        n = x.insert(t, strs("a", "b", "a"), i64([1, 2, 3]), deps=[f0])
        f1 = x.find(t, strs2([["a", "c"], ["b", "a"]]), i64(-1), deps=[n])
        n2 = x.insert(t, strs("c", "b"), i64([7, 8]), deps=[f1])
        f2 = x.find(t, strs("a", "b", "c"), i64(0), deps=[n2])
        s = x.size(t, deps=[n2])
        return [f0, f1, f2, s] + x.sorted_export(t, 3, deps=[n2]), []
    F.add("LookupTableInsertV2", "mutable string->int64: lookups before and "
          "after inserts (the last of a repeated key wins, a second insert "
          "updates), size, export", mutable_basic)

    def mutable_full_default(x):
        t = x.mutable(INT64, tf.float32)
        n = x.insert(t, i64([1, 2]), f32([0.5, 1.5]))
        f = x.find(t, i64([[2, 9], [9, 1]]), f32([[-1, -2], [-3, -4]]),
                   deps=[n])
        return [f] + x.sorted_export(t, 2, INT64, tf.float32, deps=[n]), []
    F.add("LookupTableFindV2", "mutable int64->float32 with one default per "
          "key", mutable_full_default)

    def mutable_string_values(x):
        t = x.mutable(INT64, S)
        n = x.insert(t, i64([5, 6]), strs("five", "six"))
        f = x.find(t, i64([6, 7, 5]), np.array(b"none", object), deps=[n])
        return x.fetch(f), []
    F.add("LookupTableFindV2", "mutable int64->string", mutable_string_values)

    def mutable_remove(x):
        t = x.mutable()
        n = x.insert(t, strs("x", "y", "z"), i64([7, 8, 9]))
        r = x.remove(t, strs("y", "q"), deps=[n])
        f = x.find(t, strs("x", "y", "z"), i64(-1), deps=[r])
        return [f, x.size(t, deps=[r])], []
    F.add("LookupTableRemoveV2", "remove a present and an absent key",
          mutable_remove)

    def mutable_import(x):
        t = x.mutable()
        n = x.insert(t, strs("x", "y"), i64([7, 8]))
        m = x.import_(t, strs("a", "b"), i64([1, 2]), deps=[n])
        f = x.find(t, strs("a", "x", "b"), i64(-1), deps=[m])
        return [f, x.size(t, deps=[m])], []
    F.add("LookupTableImportV2", "import replaces a mutable table's entries",
          mutable_import)

    def mutable_tensors(x):
        t = RAW.MutableHashTableOfTensorsV2(key_dtype=S, value_dtype=tf.float32,
                                            value_shape=[3],
                                            name=x.name("table"))
        n = x.insert(t, strs("u", "v"), f32([[1, 2, 3], [4, 5, 6]]))
        f = x.find(t, strs2([["v"], ["w"]]), f32([-1, -2, -3]), deps=[n])
        n2 = x.insert(t, strs("u"), f32([[7, 8, 9]]), deps=[f])
        f2 = x.find(t, strs("u", "w"), f32([[0, 0, 0], [1, 1, 1]]),
                    deps=[n2])
        s = x.size(t, deps=[n2])
        return [f, f2, s] + x.sorted_export(t, 2, S, tf.float32,
                                            deps=[n2]), []
    F.add("LookupTableFindV2", "MutableHashTableOfTensorsV2, value_shape [3]: "
          "keys [2,1] give [2,1,3]", mutable_tensors)

    def mutable_shared(x):
        t = x.mutable(name="table", container="box",
                      shared_name=x.shared("m"))
        t2 = x.mutable(name="other", container="box",
                       shared_name=x.shared("m"))
        n = x.insert(t, strs("p"), i64([1]))
        return [x.find(t2, strs("p", "q"), i64(0), deps=[n])], []
    F.add("MutableHashTableV2", "shared through container and shared_name",
          mutable_shared)

    def err_import_initialized(x):
        t = x.hash_table()
        i = x.init(t, strs("a"), i64([1]))
        return [], [x.import_(t, strs("a", "b"), i64([1, 2]), deps=[i])]
    F.add("LookupTableImportV2", "importing two keys into a hash table "
          "initialized with one", err_import_initialized, error=True)

    def err_import_shape(x):
        t = x.mutable()
        return [], [x.import_(t, strs("a"), i64([1, 2]))]
    F.add("LookupTableImportV2", "1 key, 2 values", err_import_shape,
          error=True)

    def err_remove_dtype(x):
        t = x.mutable()
        return [], [x.remove(t, i64([1]))]
    F.add("LookupTableRemoveV2", "int64 keys for a string-keyed table",
          err_remove_dtype, error=True)

    def err_mutable_init(x):
        t = x.mutable()
        return [], [x.init(t, strs("a"), i64([1]))]
    F.add("InitializeTableV2", "initializing a mutable table (private: "
          "_<id>_<node>)", err_mutable_init, error=True)

    def err_mutable_init_shared(x):
        t = x.mutable(container="box", shared_name=x.shared("m"))
        return [], [x.init(t, strs("a"), i64([1]))]
    F.add("InitializeTableV2", "initializing a mutable table with container "
          "and shared_name", err_mutable_init_shared, error=True)

    def err_insert_shape(x):
        t = x.mutable()
        return [], [x.insert(t, strs("a", "b"), i64([1]))]
    F.add("LookupTableInsertV2", "2 keys, 1 value", err_insert_shape,
          error=True)

    def err_mutable_default(x):
        t = x.mutable()
        return [x.find(t, strs("a", "b"), i64([1, 2, 3]))], []
    F.add("LookupTableFindV2", "mutable: default of shape [3] for keys [2]",
          err_mutable_default, error=True)

    def err_tensors_value(x):
        t = RAW.MutableHashTableOfTensorsV2(key_dtype=S, value_dtype=tf.float32,
                                            value_shape=[2],
                                            name=x.name("table"))
        return [], [x.insert(t, strs("a", "b"), f32([1, 2]))]
    F.add("LookupTableInsertV2", "MutableHashTableOfTensorsV2: values [2] for "
          "value_shape [2]", err_tensors_value, error=True)

    def err_tensors_default(x):
        t = RAW.MutableHashTableOfTensorsV2(key_dtype=S, value_dtype=tf.float32,
                                            value_shape=[2],
                                            name=x.name("table"))
        return [x.find(t, strs("a", "b"), f32(-1))], []
    F.add("LookupTableFindV2", "MutableHashTableOfTensorsV2: a scalar default",
          err_tensors_default, error=True)

    # ---- InitializeTableFromTextFileV2 -------------------------------------------
    main = vocab("lookup.vocab.txt")

    def text(k, v, key_index, value_index, keys, default, count, path=main,
             **attrs):
        def build(x):
            t = x.hash_table(k, v)
            i = x.init_file(t, path, key_index, value_index, **attrs)
            f = x.find(t, keys, default, deps=[i])
            return (x.fetch(f) + [x.size(t, deps=[i])]
                    + x.sorted_export(t, count, k, v, deps=[i])), []
        return build

    F.add("InitializeTableFromTextFileV2", "whole line -> line number",
          text(S, INT64, -2, -1, strs("date\t-40\t0.125", "apple", ""), i64(-1),
               4))
    F.add("InitializeTableFromTextFileV2", "line number + offset 10 -> whole "
          "line", text(INT64, S, -1, -2, i64([13, 10, 3]),
                       np.array(b"?", object), 4, offset=10))
    F.add("InitializeTableFromTextFileV2", "column 0 -> column 1 as int64 "
          "(offset 100 is NOT added to int64 fields)",
          text(S, INT64, 0, 1, strs("date", "banana", "kiwi"), i64(0), 4,
               offset=100))
    F.add("InitializeTableFromTextFileV2", "column 0 -> column 1 as int32 "
          "(offset 100 IS added to int32 fields)",
          text(S, tf.int32, 0, 1, strs("date", "banana", "kiwi"), i32(0), 4,
               offset=100))
    F.add("InitializeTableFromTextFileV2", "column 0 -> column 2 as float32",
          text(S, tf.float32, 0, 2, strs("cherry", "date", "x"), f32(-1), 4))
    F.add("InitializeTableFromTextFileV2", "column 0 -> column 2 as float64",
          text(S, tf.float64, 0, 2, strs("banana", "x"),
               np.array(0.0, F64), 4))
    F.add("InitializeTableFromTextFileV2", "column 1 (int64 key) -> column 0",
          text(INT64, S, 1, 0, i64([20, -40, 0]), np.array(b"", object), 4))
    F.add("InitializeTableFromTextFileV2", "vocab_size 2 reads two lines",
          text(S, INT64, 0, -1, strs("apple", "banana", "cherry"), i64(-1), 2,
               vocab_size=2))
    F.add("InitializeTableFromTextFileV2", "delimiter ' ', CRLF line ends, a "
          "last line without newline, UTF-8 keys",
          text(S, S, 0, 1, strs("yy", "\xe9t\xe9", "x", "q"),
               np.array(b"-", object), 3,
               path=vocab("lookup.vocab_crlf.txt"), delimiter=" "))
    F.add("InitializeTableFromTextFileV2", "CRLF whole lines -> line number",
          text(S, INT64, -2, -1, strs("x y", "x y\r", "\xe9t\xe9 w"), i64(-1),
               3, path=vocab("lookup.vocab_crlf.txt")))

    def text_twice(x):
        t = x.hash_table()
        i = x.init_file(t, main, 0, -1)
        i2 = x.init_file(t, vocab("lookup.vocab_crlf.txt"), -2, -1, deps=[i])
        f = x.find(t, strs("apple", "x y"), i64(-1), deps=[i2])
        return [f, x.size(t, deps=[i2])], []
    F.add("InitializeTableFromTextFileV2", "a second initialization from "
          "another file is a no-op", text_twice)

    def text_err(k, v, key_index, value_index, path=main, **attrs):
        def build(x):
            t = x.hash_table(k, v)
            return [], [x.init_file(t, path, key_index, value_index, **attrs)]
        return build

    F.add("InitializeTableFromTextFileV2", "vocab_size 5 for a 4-line file",
          text_err(S, INT64, 0, -1, vocab_size=5), error=True)
    F.add("InitializeTableFromTextFileV2", "an empty line",
          text_err(S, S, 0, 1, vocab("lookup.vocab_blank.txt"),
                   delimiter=" "), error=True)
    F.add("InitializeTableFromTextFileV2", "a missing file",
          text_err(S, INT64, 0, -1, vocab("lookup.vocab_missing.txt")),
          error=True)
    F.add("InitializeTableFromTextFileV2", "an empty file",
          text_err(S, INT64, -2, -1, vocab("lookup.vocab_empty.txt")),
          error=True)
    F.add("InitializeTableFromTextFileV2", "a field that is not an int64",
          text_err(S, INT64, 0, 1, vocab("lookup.vocab_bad.txt")), error=True)
    F.add("InitializeTableFromTextFileV2", "a field that is not an int32",
          text_err(S, tf.int32, 0, 1, vocab("lookup.vocab_bad.txt")),
          error=True)
    F.add("InitializeTableFromTextFileV2", "a whole line that is not an int64",
          text_err(S, INT64, 0, -2), error=True)
    F.add("InitializeTableFromTextFileV2", "too few columns",
          text_err(S, INT64, 0, 5), error=True)
    F.add("InitializeTableFromTextFileV2", "line-number keys need int64 keys",
          text_err(tf.int32, S, -1, 0), error=True)
    F.add("InitializeTableFromTextFileV2", "line-number values need int64",
          text_err(S, tf.int32, 0, -1), error=True)
    F.add("InitializeTableFromTextFileV2", "whole-line values need an integer "
          "or string dtype", text_err(S, tf.float32, 0, -2), error=True)
    F.add("InitializeTableFromTextFileV2", "a repeated key (whole line -> line "
          "number)", text_err(S, INT64, -2, -1, vocab("lookup.vocab_dup.txt")),
          error=True)

    def err_text_vector_name(x):
        t = x.hash_table()
        filename = x.ph("filename", strs(main))
        return [], [RAW.InitializeTableFromTextFileV2(
            table_handle=t, filename=filename, key_index=0, value_index=-1,
            name=x.name("init"))]
    F.add("InitializeTableFromTextFileV2", "a file name of shape [1]",
          err_text_vector_name, error=True)

    F.add("InitializeTableFromTextFileV2", "vocab_size 0",
          text_err(S, INT64, 0, -1, vocab_size=0), error=True)
    F.add("InitializeTableFromTextFileV2", "an empty file name",
          text_err(S, INT64, 0, -1, ""), error=True)
    F.add("InitializeTableFromTextFileV2", "a two-character delimiter",
          text_err(S, INT64, 0, -1, delimiter="ab"), error=True)

    def err_text_reinit_missing(x):
        t = x.hash_table()
        i = x.init(t, strs("a"), i64([1]))
        return [], [x.init_file(t, vocab("lookup.vocab_missing.txt"), 0, -1,
                                deps=[i])]
    F.add("InitializeTableFromTextFileV2", "an initialized table still opens "
          "the file", err_text_reinit_missing, error=True)

    def err_text_mutable(x):
        t = x.mutable()
        return [], [x.init_file(t, main, 0, -1)]
    F.add("InitializeTableFromTextFileV2", "a mutable table",
          err_text_mutable, error=True)

    # ---- TF 1.x forms (Ref(string) handles) ---------------------------------------
    def v1_hash(x):
        t = x.hash_table(v1=True)
        i = x.init(t, words, ids, v1=True)
        f = x.find(t, strs("cherry", "zz"), i64(-1), deps=[i], v1=True)
        s = x.size(t, deps=[i], v1=True)
        return [f, s] + x.sorted_export(t, 5, deps=[i], v1=True), []
    F.add("LookupTableFind", "HashTable / InitializeTable / LookupTableFind / "
          "LookupTableSize / LookupTableExport", v1_hash)

    def v1_mutable(x):
        t = x.mutable(INT64, tf.float32, v1=True)
        n = x.insert(t, i64([4, 2]), f32([0.5, 2.5]), v1=True)
        f = x.find(t, i64([2, 3, 4]), f32(0), deps=[n], v1=True)
        return [f, x.size(t, deps=[n], v1=True)], []
    F.add("LookupTableInsert", "MutableHashTable / LookupTableInsert",
          v1_mutable)

    def v1_text(x):
        t = x.hash_table(v1=True)
        i = x.init_file(t, main, 0, 1, v1=True)
        f = x.find(t, strs("banana", "x", "date"), i64(-1), deps=[i], v1=True)
        return [f], []
    F.add("InitializeTableFromTextFile", "HashTable from a text file", v1_text)

    def v1_size_before(x):
        t = x.hash_table(v1=True)
        return [x.size(t, v1=True)], []
    F.add("LookupTableSize", "size of an uninitialized HashTable",
          v1_size_before)

    def err_v1_not_init(x):
        t = x.hash_table(v1=True)
        return [x.find(t, strs("a"), i64(-1), v1=True)], []
    F.add("LookupTableFind", "HashTable lookup before initialization",
          err_v1_not_init, error=True)

    def err_v1_signature(x):
        t = x.hash_table(v1=True)
        return [x.find(t, i64([1]), i64(-1), v1=True)], []
    F.add("LookupTableFind", "int64 keys for a string-keyed HashTable "
          "(string_ref handle)", err_v1_signature, error=True)

    def err_v1_mutable_init(x):
        t = x.mutable(v1=True, shared_name=x.shared("m"))
        return [], [x.init(t, strs("a"), i64([1]), v1=True)]
    F.add("InitializeTable", "InitializeTable of a MutableHashTable",
          err_v1_mutable_init, error=True)


# ---------------------------------------------------------------------------
# Building and running
# ---------------------------------------------------------------------------

def fmt_input(role, arr):
    if arr.dtype == object:
        return "%s=str[%s]" % (role, ",".join(str(d) for d in arr.shape))
    if arr.size <= 4 and arr.dtype.kind in "iub" and arr.ndim <= 1:
        return "%s=%s" % (role, mof.fmt_value(arr))
    return "%s=%s" % (role, mof.fmt_arr(arr))


ID_PATTERNS = [(re.compile(r"( _)\d+(_)"), r"\1<id>\2")]


def sanitize(message):
    for pattern, repl in ID_PATTERNS:
        message = pattern.sub(repl, message)
    return message


def strings_record(tensor, value):
    value = np.asarray(value, dtype=object)
    return {"shape": list(value.shape),
            "latin1": [bytes(v).decode("latin-1") for v in value.reshape(-1)]}


def run_spec(graph, sess, spec, index, arrays):
    ctx = Ctx(graph, index, spec.error)
    with graph.as_default(), graph.name_scope(ctx.scope + "/"):
        fetches, targets = spec.build(ctx)
    ops = [op for op in graph.get_operations()
           if op.name.startswith(ctx.scope + "/")]
    for op in ops:
        assert op.type != "Const", op.name
        assert not (op.type == "Placeholder" and op.control_inputs), op.name
    for t in fetches:  # string values go through ctx.fetch (errors fetch anything)
        assert spec.error or t.dtype != tf.string, (ctx.scope, t.name)
    feed = {ph: arr for ph, arr, _, _ in ctx.feeds}
    for _, arr, key, _ in ctx.feeds:
        arrays[key] = as_stored(arr)
        assert (as_stored(arr).astype(object) == arr).all() if arr.dtype == object \
            else True
    desc = "%s; %s" % (spec.desc, " ".join(fmt_input(role, arr)
                                           for _, arr, _, role in ctx.feeds))
    record = {"case": ctx.scope, "op": spec.op, "desc": desc,
              "inputs": len(ctx.feeds), "outputs": len(fetches)}
    assert spec.op in {op.type for op in ops}, (ctx.scope, spec.op)
    extra = ctx.string_fetches
    try:
        got = sess.run(list(fetches) + list(extra) + list(targets), feed)
        values = got[:len(fetches)]
        raw = got[len(fetches):len(fetches) + len(extra)]
        error = None
    except tf.errors.OpError as exc:
        values, raw, error = None, None, exc
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
    record.update(rtol=0.0, atol=0.0, check=check)
    if error is not None:
        record["error"] = type(error).__name__
        record["message"] = sanitize(mof.error_message(error))
    record["fetches"] = [t.name for t in fetches]
    record["targets"] = [op.name for op in targets]
    record["op_types"] = [op.type for op in ops if op.type != "Placeholder"]
    if extra and error is None:
        record["strings"] = {t.name: strings_record(t, v)
                             for t, v in zip(extra, raw)}
    return record, values


def generate(name, build_cases, seed=SEED, setup=None):
    """Builds, runs and writes family ``name``; returns (records, values)."""
    fam = Family(seed)
    build_cases(fam)
    graph = tf.Graph()
    arrays, records, results = {}, [], []
    OUT.mkdir(parents=True, exist_ok=True)
    if setup is not None:
        setup()
    cwd = os.getcwd()
    os.chdir(ROOT)  # relative file names resolve against the repository root
    try:
        with tf.compat.v1.Session(graph=graph,
                                  config=mof.session_config()) as sess:
            for i, spec in enumerate(fam.specs):
                record, values = run_spec(graph, sess, spec, i, arrays)
                records.append(record)
                results.append(values)
    finally:
        os.chdir(cwd)
    graph_def = graph.as_graph_def()
    (OUT / (name + ".pb")).write_bytes(
        graph_def.SerializeToString(deterministic=True))
    save_npz(OUT / (name + ".npz"), arrays)
    (OUT / (name + ".json")).write_text(mof.json_dump(records))
    return records, results


def report(name, records, results):
    for record, values in zip(records, results):
        if record["check"] == "error":
            summary = "%s: %s" % (record["error"], record["message"])
        else:
            summary = " | ".join(
                np.array2string(np.asarray(v), precision=4,
                                separator=",").replace("\n", "")
                for v in values)
        print("%-5s %-29s %s\n      %s" % (record["case"], record["op"],
                                          record["desc"].split(";")[0][:70],
                                          summary[:300]))
    ops = sorted({t for r in records for t in r["op_types"]})
    errors = sum(r["check"] == "error" for r in records)
    print("%s: %d cases (%d error), %d op types: %s" % (
        name, len(records), errors, len(ops), " ".join(ops)))


def main():
    records, results = generate(NAME, build_cases, setup=write_vocab)
    report(NAME, records, results)


if __name__ == "__main__":
    main()
