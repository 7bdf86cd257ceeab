"""Lookup tables and the string and bucketing ops of estimator feature columns and text models,
all on the host as TF runs them (TF has CPU kernels only, except ``Bucketize``).

Tables.  ``HashTableV2`` (an initialize-once table: ``InitializeTableV2``,
``InitializeTableFromTextFileV2``, ``LookupTableImportV2``), ``MutableHashTableV2`` (scalar
values) and ``MutableHashTableOfTensorsV2`` (vector values) with ``LookupTableFindV2``,
``LookupTableInsertV2``, ``LookupTableRemoveV2``, ``LookupTableSizeV2`` and
``LookupTableExportV2``, and the TF 1.x forms of each (``HashTable``, ``LookupTableFind``, ...),
whose handle is a ``Ref(string)``.  A table is a session resource
(:meth:`gpugraph.state.SessionState.resource`) keyed as TF's resource manager keys it: by
``container`` and ``shared_name``, so ops naming the same ``shared_name`` share one table; by
the node name when ``use_node_name_sharing`` is set; otherwise the table is private to its
creating node (TF names it ``_<id>_<node name>``).  A table lives as long as the session, and a
hash table is initialized once: a lookup before that fails ("Table not initialized."), a second
``InitializeTableV2`` is a no-op when it brings as many entries as the table holds (TF compares
only the counts) and fails otherwise; a second text-file initialization is always a no-op.

Text files (``InitializeTableFromTextFileV2``) are read as TF's ``TextFileLineIterator`` reads
them: lines end at ``\\n`` (one trailing ``\\r`` dropped), ``key_index``/``value_index`` -1 is
the line number (plus ``offset``), -2 the whole line, ``n >= 0`` the n-th field split at the
one-byte ``delimiter``; ``offset`` is also added to int32 fields (not int64 ones: TF's rule);
``vocab_size`` truncates, or fails when the file is shorter.  Relative file names are relative
to the working directory, as in TF.

Strings.  ``StringSplit`` (any byte of ``delimiter`` splits), ``StringSplitV2`` (Python's
``str.split`` rules, with TF's own ``maxsplit`` edge cases), ``StringLength``, ``Substr`` (byte or
UTF-8 character units, TF's broadcasting and range errors), ``AsString`` (TF's printf formats;
like TF's CPU, which flushes subnormals to zero, a subnormal float prints as a signed zero),
``RegexReplace``/``StaticRegexReplace``, ``StringToHashBucketFast`` (farmhash ``Fingerprint64``
modulo the bucket count, the 64-bit hash implemented here as farmhash's ``farmhashna::Hash64``)
and ``StringToHashBucketStrong`` (keyed SipHash-2-4).  ``Bucketize`` maps numbers to the
bucket index ``upper_bound(boundaries, x)``, comparing in float32 (float64 for float64 input) as
TF's kernel does.

Regular expressions are RE2's in TF; here they run on Python's ``re`` after a translation of
RE2's syntax (ASCII ``\\d \\w \\s \\b``, POSIX classes, ``\\z``, ``\\Q...\\E``, ``$`` as the end of
the text, ``.`` not matching invalid UTF-8, octal and ``\\x{...}`` escapes) and with RE2's
replacement loop (an empty match right after a match is skipped; ``\\0``-``\\9`` in the rewrite;
a rewrite naming a missing group leaves the string unchanged).  Unicode classes (``\\pL``),
``\\C`` and the ``(?U)`` flag are not supported (UnimplementedError); RE2's most common pattern
errors carry RE2's text, the others Python's.

Differences from TF, by design: ``LookupTableExportV2`` lists entries in insertion order (TF's
order is that of its hash map); ``SparseReorder`` (in sparse_tensor_ops) keeps repeated indices
in input order.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gpugraph import dtypes, errors
from gpugraph.ops.registry import BuildContext, dims_text, op


def _strings(value: Any) -> np.ndarray:
    """A string tensor as an object array of ``bytes`` (a copy where items need converting)."""
    array = np.asarray(value, dtype=object)
    if all(isinstance(item, bytes) for item in array.reshape(-1)):
        return array
    items = [i.encode("utf-8") if isinstance(i, str) else bytes(i) for i in array.reshape(-1)]
    return _string_array(items, array.shape)


def _string_array(items: list, shape: tuple | None = None) -> np.ndarray:
    """An object array of ``items`` (bytes), of ``shape`` (default: a vector)."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out if shape is None else out.reshape(shape)


def _text(value: bytes) -> str:
    """Bytes as TF's messages show them (raw, which Python reads as UTF-8)."""
    return value.decode("utf-8", "replace")


def _host(ctx: BuildContext, value: Any) -> np.ndarray:
    return np.asarray(ctx.device.to_host(value))


def _deferred(error: errors.OpError | None, kernel: Callable) -> Callable:
    """``kernel``, or one raising ``error``: TF checks attrs when it builds the kernel, which
    fails the run that needs the op (not the building of a plan that may never run it)."""
    if error is None:
        return kernel

    def failing(*args: Any) -> Any:
        raise error

    return failing


# --- tables -----------------------------------------------------------------------------------
def _scalar_text(value: Any) -> str:
    """A key or value as TF's ``StrCat`` prints it (floats with six significant digits)."""
    if isinstance(value, bytes):
        return _text(value)
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


class LookupTable:
    """One lookup table of one session.

    Attributes:
        name: the table's resource name (``shared_name``, the node name, or ``_<id>_<node>``).
        container: the resource container (TF's default is ``localhost``).
        key_dtype, value_dtype: the table's gpugraph DTypes.
        value_shape: the shape of one value (``()`` for scalar tables).
        initializable: a ``HashTable`` (initialized once, read-only after) rather than a mutable
            table.
        initialized: whether an initializable table has been initialized (mutable tables: True).
    """

    def __init__(self, name: str, container: str, key_dtype: Any, value_dtype: Any,
                 value_shape: tuple = (), initializable: bool = False):
        self.name, self.container = name, container
        self.key_dtype, self.value_dtype = key_dtype, value_dtype
        self.value_shape = tuple(value_shape)
        self.initializable = initializable
        self.initialized = not initializable
        self.lock = threading.RLock()
        self._np_value = np.dtype(value_dtype.as_numpy_dtype)
        self._int_keys = key_dtype.is_integer
        self._data: dict[Any, Any] = {}
        self._cache: tuple | None = None  # (keys, values, sorted keys, their order)

    def __repr__(self) -> str:
        state = "" if self.initialized else " uninitialized"
        return (f"<LookupTable {self.container} {self.name!r} "
                f"{self.key_dtype.name}->{self.value_dtype.name}{state} size={len(self._data)}>")

    # -- entries --
    def _keys_of(self, keys: np.ndarray) -> list:
        flat = keys.reshape(-1)
        return list(flat) if keys.dtype == object else flat.tolist()

    def _values_of(self, values: np.ndarray, count: int) -> list:
        if self.value_shape:
            rows = np.asarray(values).reshape(count, *self.value_shape)
            return [row.copy() for row in rows]
        flat = np.asarray(values).reshape(-1)
        return list(flat) if flat.dtype == object else flat.tolist()

    def size(self) -> int:
        with self.lock:
            return len(self._data) if self.initialized else 0

    def insert(self, keys: np.ndarray, values: np.ndarray, clear: bool = False) -> None:
        """InsertOrUpdate every pair (a mutable table's insert and import)."""
        with self.lock:
            if clear:
                self._data.clear()
            items = self._keys_of(keys)
            self._data.update(zip(items, self._values_of(values, len(items)), strict=True))
            self._cache = None

    def remove(self, keys: np.ndarray) -> None:
        with self.lock:
            for key in self._keys_of(keys):
                self._data.pop(key, None)
            self._cache = None

    def fill(self, node: Any, pairs: Iterator[tuple[Any, Any]]) -> None:
        """Adds the pairs of an initializer to a hash table (TF's HashTable::DoInsert): a key
        repeated with another value fails, leaving what was added so far."""
        with self.lock:
            self._cache = None
            for key, value in pairs:
                previous = self._data.setdefault(key, value)
                if previous is not value and previous != value:
                    raise errors.FailedPreconditionError(
                        None, node, "HashTable has different value for same key. Key "
                        f"{_scalar_text(key)} has {_scalar_text(previous)} and trying to add "
                        f"value {_scalar_text(value)}", {"table": self.name})

    # -- lookups --
    def _arrays(self) -> tuple:
        if self._cache is None:
            keys = list(self._data)
            count = len(keys)
            if self.value_shape:
                values = (np.stack(list(self._data.values())).astype(self._np_value, copy=False)
                          if count else np.zeros((0, *self.value_shape), self._np_value))
            elif self._np_value.kind == "O":
                values = _string_array(list(self._data.values()))
            else:
                values = np.asarray(list(self._data.values()), dtype=self._np_value).reshape(count)
            if self._int_keys:
                key_array = np.asarray(keys, dtype=np.int64).reshape(count)
                order = np.argsort(key_array, kind="stable")
                self._cache = (keys, values, key_array[order], order)
            else:
                self._cache = (keys, values, {k: i for i, k in enumerate(keys)}, None)
        return self._cache

    def find(self, keys: np.ndarray, default: np.ndarray) -> np.ndarray:
        """The values of ``keys`` (shape ``keys.shape + value_shape``), ``default`` (one value,
        or one per key) where a key is absent.  (A hash table, as TF's, takes the first of
        per-key defaults for every absent key.)"""
        with self.lock:
            _, values, index, order = self._arrays()
            flat = keys.reshape(-1)
            if order is not None:
                wanted = flat.astype(np.int64, copy=False)
                at = np.searchsorted(index, wanted)
                at = np.minimum(at, max(len(index) - 1, 0))
                hit = (index[at] == wanted) if len(index) else np.zeros(len(flat), bool)
                rows = np.where(hit, order[at] if len(index) else 0, -1)
            else:
                get = index.get
                rows = np.fromiter((get(k, -1) for k in flat), np.int64, len(flat))
            count = len(flat)
            if self.initializable and default.size:
                default = default.reshape(-1)[:1].reshape(())  # HashTable::DoFind: flat()(0)
            if default.shape == self.value_shape:
                out = np.empty((count, *self.value_shape), dtype=self._np_value)
                out[...] = default
            else:
                out = np.array(default, dtype=self._np_value).reshape(count, *self.value_shape)
            hit = rows >= 0
            if hit.any():
                out[hit] = values[rows[hit]]
            return out.reshape(tuple(keys.shape) + self.value_shape)

    def export(self, key_dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            keys, values, _, _ = self._arrays()
            if key_dtype.kind == "O":
                key_array = _string_array(list(keys))
            else:
                key_array = np.asarray(keys, dtype=key_dtype).reshape(len(keys))
            return key_array, values.copy()


def _table_name(ctx: BuildContext) -> tuple[str, str, bool]:
    """(container, name, private) as TF's ContainerInfo::Init picks them."""
    container = (ctx.attr_or("container", b"") or b"").decode()
    shared = (ctx.attr_or("shared_name", b"") or b"").decode()
    if shared:
        return container, shared, False
    if ctx.attr_or("use_node_name_sharing", False):
        return container, ctx.name, False
    return container, ctx.name, True


def _table_op(initializable: bool, with_shape: bool = False):
    def build(ctx: BuildContext):
        node, state = ctx.op, ctx.state
        container, name, private = _table_name(ctx)
        key_dtype = dtypes.as_dtype(ctx.op.get_attr("key_dtype"))
        value_dtype = dtypes.as_dtype(ctx.op.get_attr("value_dtype"))
        error = None
        value_shape: tuple = ()
        if with_shape:
            shape = ctx.attr_or("value_shape", None)
            dims = None if shape is None else shape.dims
            if dims is None or len(dims) != 1 or dims[0] is None:
                text = "<unknown>" if dims is None else \
                    "[" + ",".join("?" if d is None else str(d) for d in dims) + "]"
                error = errors.InvalidArgumentError(
                    None, node, f"Default value must be a vector, got shape {text}")
            else:
                value_shape = tuple(int(d) for d in dims)
        key = ("lookup_table", container, ("private", name) if private else name)

        def make() -> LookupTable:
            shown = name
            if private:  # TF's name for a private table: _<unique id>_<node name>
                shown = f"_{next(state.resource(('lookup_table_ids',), itertools.count))}_{name}"
            return LookupTable(shown, container or "localhost", key_dtype, value_dtype,
                               value_shape, initializable)

        def kernel() -> LookupTable:
            table = state.resource(key, make)
            if table.key_dtype != key_dtype or table.value_dtype != value_dtype:
                raise errors.InvalidArgumentError(
                    None, node, f"Conflicting key/value dtypes {dtypes.type_string(key_dtype)}->"
                    f"{dtypes.type_string(value_dtype)} with "
                    f"{dtypes.type_string(table.key_dtype)}-"
                    f"{dtypes.type_string(table.value_dtype)} for table {table.name}",
                    {"table": table.name})
            return table

        return _deferred(error, kernel)

    return build


op("HashTableV2", "HashTable", host_only=True)(_table_op(True))
op("MutableHashTableV2", "MutableHashTable", host_only=True)(_table_op(False))
op("MutableHashTableOfTensorsV2", "MutableHashTableOfTensors",
   host_only=True)(_table_op(False, with_shape=True))


def _check_signature(ctx: BuildContext, table: LookupTable, outputs: bool) -> None:
    """TF's ``MatchSignature``: the node's input (and output) dtypes against the table's."""
    have_in = [t.dtype for t in ctx.op.inputs]
    want_in = [have_in[0], table.key_dtype, table.value_dtype][:len(have_in)]
    have_out = [t.dtype for t in ctx.op.outputs] if outputs else []
    want_out = [table.value_dtype] if outputs else []
    if have_in[1:] == want_in[1:] and have_out == want_out:
        return
    text = lambda types: ", ".join(dtypes.type_string(t) for t in types)  # noqa: E731
    raise errors.InvalidArgumentError(
        None, ctx.op, f"Signature mismatch, have: {text(have_in)}->{text(have_out)} expected: "
        f"{text(want_in)}->{text(want_out)}", {"table": table.name})


def _check_pairs(node: Any, table: LookupTable, keys: np.ndarray, values: np.ndarray) -> None:
    """TF's CheckKeyAndValueTensorsForInsert/ForImport (the dtypes are checked already)."""
    want = tuple(keys.shape) + table.value_shape
    if tuple(values.shape) != want:
        raise errors.InvalidArgumentError(
            None, node, f"Expected shape {dims_text(want)} for value, got "
            f"{dims_text(values.shape)}", {"table": table.name})


def _not_initializable(node: Any, table: LookupTable) -> errors.OpError:
    return errors.InvalidArgumentError(
        None, node, f"Table {table.container} {table.name} is not initializable",
        {"table": table.name})


def _array(ctx: BuildContext, value: Any, dtype: Any) -> np.ndarray:
    return _strings(value) if dtype == dtypes.string else _host(ctx, value)


@op("LookupTableFindV2", "LookupTableFind", host_only=True)
def _lookup_find(ctx: BuildContext):
    node = ctx.op
    key_dtype, value_dtype = node.inputs[1].dtype, node.inputs[2].dtype

    def kernel(table: LookupTable, keys: Any, default: Any) -> Any:
        _check_signature(ctx, table, outputs=True)
        keys, default = _array(ctx, keys, key_dtype), _array(ctx, default, value_dtype)
        full = tuple(keys.shape) + table.value_shape
        if default.shape not in (table.value_shape, full):
            raise errors.InvalidArgumentError(
                None, node, f"Expected shape {dims_text(table.value_shape)} or "
                f"{dims_text(full)} for default value, got {dims_text(default.shape)}",
                {"table": table.name})
        if not table.initialized:
            raise errors.FailedPreconditionError(None, node, "Table not initialized.",
                                                 {"table": table.name})
        return table.find(keys, default)

    return kernel


@op("LookupTableInsertV2", "LookupTableInsert", host_only=True)
def _lookup_insert(ctx: BuildContext):
    node = ctx.op
    key_dtype, value_dtype = node.inputs[1].dtype, node.inputs[2].dtype

    def kernel(table: LookupTable, keys: Any, values: Any) -> None:
        _check_signature(ctx, table, outputs=False)
        keys, values = _array(ctx, keys, key_dtype), _array(ctx, values, value_dtype)
        _check_pairs(node, table, keys, values)
        if table.initializable:
            raise errors.UnimplementedError(
                None, node, "Insert not supported by InitializableLookupTable implementations",
                {"table": table.name})
        table.insert(keys, values)

    return kernel


@op("LookupTableRemoveV2", host_only=True)
def _lookup_remove(ctx: BuildContext):
    node = ctx.op
    key_dtype = node.inputs[1].dtype

    def kernel(table: LookupTable, keys: Any) -> None:
        if key_dtype != table.key_dtype:
            raise errors.InvalidArgumentError(
                None, node, f"Signature mismatch, have: resource, "
                f"{dtypes.type_string(key_dtype)}-> expected: resource, "
                f"{dtypes.type_string(table.key_dtype)}->", {"table": table.name})
        if table.initializable:
            raise errors.UnimplementedError(
                None, node, "Remove not supported by InitializableLookupTable implementations",
                {"table": table.name})
        table.remove(_array(ctx, keys, key_dtype))

    return kernel


@op("LookupTableSizeV2", "LookupTableSize", host_only=True)
def _lookup_size(ctx: BuildContext):
    return lambda table: np.int64(table.size())


@op("LookupTableExportV2", "LookupTableExport", host_only=True)
def _lookup_export(ctx: BuildContext):
    node, key_dtype = ctx.op, ctx.out_dtype(0)

    def kernel(table: LookupTable) -> tuple:
        if not table.initialized:
            raise errors.AbortedError(None, node, "HashTable is not initialized.",
                                      {"table": table.name})
        return table.export(key_dtype)

    return kernel


def _tensor_pairs(table: LookupTable, keys: np.ndarray, values: np.ndarray) -> Iterator:
    return zip(table._keys_of(keys), table._values_of(values, keys.size), strict=True)


def _initialize_from_tensors(node: Any, table: LookupTable, keys: np.ndarray,
                             values: np.ndarray) -> None:
    """InitializableLookupTable::ImportValues/Initialize with a KeyValueTensorIterator."""
    if keys.size == 0:
        raise errors.InvalidArgumentError(None, node, "keys and values cannot be empty tensors.",
                                          {"table": table.name})
    with table.lock:
        if table.initialized:
            # TF compares only the number of entries ("AreEntriesSame").
            if keys.size != table.size():
                raise errors.FailedPreconditionError(
                    None, node, "Table was already initialized with different data.",
                    {"table": table.name})
            return
        table.fill(node, _tensor_pairs(table, keys, values))
        table.initialized = True


@op("LookupTableImportV2", "LookupTableImport", host_only=True)
def _lookup_import(ctx: BuildContext):
    node = ctx.op
    key_dtype, value_dtype = node.inputs[1].dtype, node.inputs[2].dtype

    def kernel(table: LookupTable, keys: Any, values: Any) -> None:
        _check_signature(ctx, table, outputs=False)
        keys, values = _array(ctx, keys, key_dtype), _array(ctx, values, value_dtype)
        _check_pairs(node, table, keys, values)
        if table.initializable:
            _initialize_from_tensors(node, table, keys, values)
        else:
            table.insert(keys, values, clear=True)

    return kernel


@op("InitializeTableV2", "InitializeTable", host_only=True)
def _initialize_table(ctx: BuildContext):
    node = ctx.op
    key_dtype, value_dtype = node.inputs[1].dtype, node.inputs[2].dtype

    def kernel(table: LookupTable, keys: Any, values: Any) -> None:
        if not table.initializable:
            raise _not_initializable(node, table)
        _check_signature(ctx, table, outputs=False)
        keys, values = _array(ctx, keys, key_dtype), _array(ctx, values, value_dtype)
        if keys.ndim != 1:
            raise errors.InvalidArgumentError(
                None, node, f"Keys must be a vector, but received shape{dims_text(keys.shape)}")
        if values.ndim != 1:
            raise errors.InvalidArgumentError(
                None, node, "Values must be a vector, but received shape"
                f"{dims_text(values.shape)}")
        if keys.size != values.size:
            raise errors.InvalidArgumentError(
                None, node, f"Keys and values must have the same size {keys.size} vs "
                f"{values.size}")
        _initialize_from_tensors(node, table, keys, values)

    return kernel


# --- text-file initialization (lookup_util.cc) -----------------------------------------------
_LINE_NUMBER, _WHOLE_LINE = -1, -2


class _EndOfLinesError(Exception):
    """The reader's OutOfRange status (end of file, or the ``vocab_size`` lines read)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _parse_int(token: bytes, bits: int) -> int | None:
    """TF's ``safe_strto32``/``safe_strto64``: spaces around, an optional ``-``, digits."""
    text = token.strip(b" \t\n\v\f\r")
    digits = text[1:] if text.startswith(b"-") else text
    if not digits or not digits.isdigit():
        return None
    value = int(text)
    return value if -(1 << (bits - 1)) <= value < (1 << (bits - 1)) else None


def _parse_float(token: bytes, dtype: np.dtype) -> Any:
    """TF's ``safe_strtof``/``safe_strtod`` (double-conversion: spaces around, ``inf``/``nan``
    in any case)."""
    text = token.strip(b" \t\n\v\f\r")
    if not text or len(token) >= 32 or not re.fullmatch(
            rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|nan)", text, re.IGNORECASE):
        return None
    return dtype.type(float(text))


class _TextFileLines:
    """TF's ``TextFileLineIterator`` over one file: yields (key, value) pairs, raising TF's
    errors where TF's iterator stops with one."""

    def __init__(self, node: Any, filename: str, data: bytes, vocab_size: int,
                 delimiter: bytes, key: tuple, value: tuple, offset: int):
        self.node, self.filename, self.data = node, filename, data
        self.vocab_size, self.delimiter, self.offset = vocab_size, delimiter, offset
        self.key_index, self.key_dtype = key
        self.value_index, self.value_dtype = value
        self.ignore_split = max(self.key_index, self.value_index) < 0
        self.pos = 0
        self.next_id = 0

    def _read_line(self) -> bytes | None:
        """io::InputBuffer::ReadLine: None at the end of the file."""
        data, pos = self.data, self.pos
        end = data.find(b"\n", pos)
        if end < 0:
            line, self.pos = data[pos:], len(data)
            line = line[:-1] if line.endswith(b"\r") else line
            return line or None
        line, self.pos = data[pos:end], end + 1
        return line[:-1] if line.endswith(b"\r") else line

    def next(self) -> tuple[Any, Any]:
        """The next pair; _EndOfLinesError at the end, TF's InvalidArgumentError on a bad line."""
        line = self._read_line()
        if line is None:
            if self.vocab_size not in (-1, self.next_id):
                raise errors.InvalidArgumentError(
                    None, self.node, f"Invalid vocab_size in {self.filename}: expected "
                    f"{self.vocab_size} but got {self.next_id}")
            raise _EndOfLinesError("Read less bytes than requested")
        if self.vocab_size != -1 and self.next_id >= self.vocab_size:
            raise _EndOfLinesError(f"Finished reading {self.vocab_size} of lines from "
                             f"{self.filename}")
        if not line:
            raise errors.InvalidArgumentError(
                None, self.node, f"Invalid content in {self.filename}: empty line found at "
                f"position {self.pos}.")
        tokens: list[bytes] = []
        if not self.ignore_split:
            tokens = line.split(self.delimiter)
            expected = max(self.key_index, self.value_index) + 1
            if len(tokens) < expected:
                raise errors.InvalidArgumentError(
                    None, self.node, f"Invalid number of columns in {self.filename} line "
                    f"{self.next_id} ({_text(line)}) : expected at least {expected} got "
                    f"{len(tokens)}")
        pair = (self._value(line, tokens, self.key_index, self.key_dtype),
                self._value(line, tokens, self.value_index, self.value_dtype))
        self.next_id += 1
        return pair

    def _value(self, line: bytes, tokens: list, index: int, dtype: Any) -> Any:
        if index == _LINE_NUMBER:
            return self.next_id + self.offset
        token = line if index == _WHOLE_LINE else tokens[index]
        if dtype == dtypes.string:
            return token
        parsed: Any = None
        if dtype in (dtypes.int32, dtypes.int64):
            parsed = _parse_int(token, 32 if dtype == dtypes.int32 else 64)
            if parsed is not None and dtype == dtypes.int32:  # TF adds the offset to int32s only
                parsed = int(np.int64(parsed + self.offset).astype(np.int32))
        elif dtype in (dtypes.float32, dtypes.float64):
            parsed = _parse_float(token, np.dtype(dtype.as_numpy_dtype))
            parsed = None if parsed is None else float(parsed)
        else:
            raise errors.InvalidArgumentError(
                None, self.node, f"Data type {dtypes.type_string(dtype)} not supported.")
        if parsed is None:
            raise errors.InvalidArgumentError(
                None, self.node, f"Field {_text(token)} in line {self.next_id} is not a valid "
                f"{dtypes.type_string(dtype)}.")
        return parsed

    def pairs(self, first: tuple) -> Iterator[tuple[Any, Any]]:
        yield first
        while True:
            try:
                pair = self.next()
            except _EndOfLinesError:
                return
            yield pair


@op("InitializeTableFromTextFileV2", "InitializeTableFromTextFile", host_only=True)
def _initialize_from_text_file(ctx: BuildContext):
    node = ctx.op
    key_index, value_index = int(ctx.attr("key_index")), int(ctx.attr("value_index"))
    vocab_size, offset = int(ctx.attr_or("vocab_size", -1)), int(ctx.attr_or("offset", 0))
    delimiter = ctx.attr_or("delimiter", b"\t")
    error = None
    if len(delimiter) != 1:
        error = errors.InvalidArgumentError(None, node, "delimiter should be only 1 char")

    def kernel(table: LookupTable, filename: Any) -> None:
        if not table.initializable:
            raise _not_initializable(node, table)
        name_array = _strings(filename)
        if name_array.ndim != 0:
            raise errors.InvalidArgumentError(
                None, node, "filename should be a single string, but got "
                f"{dims_text(name_array.shape)}")
        raw_name = name_array.item()
        name = _text(raw_name)
        if not name:
            raise errors.InvalidArgumentError(None, node, "filename cannot be empty.")
        _check_text_file_dtypes(node, table, key_index, value_index)
        try:
            with open(raw_name, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise errors.NotFoundError(None, node, f"{name}; No such file or directory",
                                       {"path": name}) from None
        except OSError as e:
            raise errors.FailedPreconditionError(None, node, f"{name}; {e.strerror}",
                                                 {"path": name}) from None
        lines = _TextFileLines(node, name, data, vocab_size, delimiter,
                               (key_index, table.key_dtype), (value_index, table.value_dtype),
                               offset)
        try:
            first = lines.next()  # TF's iterator reads its first line when it opens the file
        except _EndOfLinesError as end:
            raise errors.OutOfRangeError(None, node, end.message, {"path": name}) from None
        with table.lock:
            if table.initialized:  # TF ignores a second initialization from a file
                return
            table.fill(node, lines.pairs(first))
            table.initialized = True

    return _deferred(error, kernel)


def _check_text_file_dtypes(node: Any, table: LookupTable, key_index: int,
                            value_index: int) -> None:
    key, value = table.key_dtype, table.value_dtype
    message = None
    if key_index == _LINE_NUMBER and key != dtypes.int64:
        message = ("Key index for line number requires table key dtype of int64, got "
                   f"{dtypes.type_string(key)}")
    elif key_index == _WHOLE_LINE and not key.is_integer and key != dtypes.string:
        message = ("Key index for whole line requires string or integer table key, got "
                   f"{dtypes.type_string(key)}")
    elif value_index == _LINE_NUMBER and value != dtypes.int64:
        message = ("Value index for line number requires table value dtype of int64, got "
                   f"{dtypes.type_string(value)}")
    elif value_index == _WHOLE_LINE and not value.is_integer and value != dtypes.string:
        message = ("Value index for whole line requires table value dtype of integer or "
                   f"string, got {dtypes.type_string(value)}")
    if message is not None:
        raise errors.InvalidArgumentError(None, node, message, {"table": table.name})


# --- string hashing ---------------------------------------------------------------------------
_M64 = (1 << 64) - 1
_K0, _K1, _K2 = 0xC3A5C85C97CB3127, 0xB492B66FBE98F273, 0x9AE16A3B2F90404F


def _fetch64(s: bytes, i: int) -> int:
    return int.from_bytes(s[i:i + 8], "little")


def _rotate(v: int, shift: int) -> int:
    return ((v >> shift) | (v << (64 - shift))) & _M64


def _hash_len16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & _M64
    a ^= a >> 47
    b = ((v ^ a) * mul) & _M64
    b ^= b >> 47
    return (b * mul) & _M64


def _weak_hash_len32(s: bytes, i: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = (_fetch64(s, i + k) for k in (0, 8, 16, 24))
    a = (a + w) & _M64
    b = _rotate((b + a + z) & _M64, 21)
    c = a
    a = (a + x + y) & _M64
    b = (b + _rotate(a, 44)) & _M64
    return (a + z) & _M64, (b + c) & _M64


def fingerprint64(s: bytes) -> int:
    """farmhash's ``Fingerprint64`` (``farmhashna::Hash64``), TF's ``Fingerprint64``.  Short
    strings (vocabulary words) are remembered: feature columns hash the same ones each step."""
    return _short_fingerprint64(s) if len(s) <= 64 else _fingerprint64(s)


def _fingerprint64(s: bytes) -> int:
    n = len(s)
    if n <= 16:
        if n >= 8:
            mul = (_K2 + n * 2) & _M64
            a = (_fetch64(s, 0) + _K2) & _M64
            b = _fetch64(s, n - 8)
            c = (_rotate(b, 37) * mul + a) & _M64
            d = ((_rotate(a, 25) + b) * mul) & _M64
            return _hash_len16(c, d, mul)
        if n >= 4:
            mul = (_K2 + n * 2) & _M64
            a = int.from_bytes(s[:4], "little")
            return _hash_len16((n + (a << 3)) & _M64, int.from_bytes(s[n - 4:], "little"), mul)
        if n:
            y = s[0] + (s[n >> 1] << 8)
            z = n + (s[n - 1] << 2)
            v = ((y * _K2) ^ (z * _K0)) & _M64
            return ((v ^ (v >> 47)) * _K2) & _M64
        return _K2
    if n <= 32:
        mul = (_K2 + n * 2) & _M64
        a = (_fetch64(s, 0) * _K1) & _M64
        b = _fetch64(s, 8)
        c = (_fetch64(s, n - 8) * mul) & _M64
        d = (_fetch64(s, n - 16) * _K2) & _M64
        return _hash_len16((_rotate((a + b) & _M64, 43) + _rotate(c, 30) + d) & _M64,
                           (a + _rotate((b + _K2) & _M64, 18) + c) & _M64, mul)
    if n <= 64:
        mul = (_K2 + n * 2) & _M64
        a = (_fetch64(s, 0) * _K2) & _M64
        b = _fetch64(s, 8)
        c = (_fetch64(s, n - 8) * mul) & _M64
        d = (_fetch64(s, n - 16) * _K2) & _M64
        y = (_rotate((a + b) & _M64, 43) + _rotate(c, 30) + d) & _M64
        z = _hash_len16(y, (a + _rotate((b + _K2) & _M64, 18) + c) & _M64, mul)
        e = (_fetch64(s, 16) * mul) & _M64
        f = _fetch64(s, 24)
        g = ((y + _fetch64(s, n - 32)) * mul) & _M64
        h = ((z + _fetch64(s, n - 24)) * mul) & _M64
        return _hash_len16((_rotate((e + f) & _M64, 43) + _rotate(g, 30) + h) & _M64,
                           (e + _rotate((f + a) & _M64, 18) + g) & _M64, mul)
    # Over 64 bytes: 64-byte blocks, then the last 64 bytes.
    x, y = 81, (81 * _K1 + 113) & _M64
    z = (y * _K2 + 113) & _M64
    z = ((z ^ (z >> 47)) * _K2) & _M64
    v0 = v1 = w0 = w1 = 0
    x = (x * _K2 + _fetch64(s, 0)) & _M64
    end = ((n - 1) // 64) * 64
    for p in range(0, end, 64):
        x = (_rotate((x + y + v0 + _fetch64(s, p + 8)) & _M64, 37) * _K1) & _M64
        y = (_rotate((y + v1 + _fetch64(s, p + 48)) & _M64, 42) * _K1) & _M64
        x ^= w1
        y = (y + v0 + _fetch64(s, p + 40)) & _M64
        z = (_rotate((z + w0) & _M64, 33) * _K1) & _M64
        v0, v1 = _weak_hash_len32(s, p, (v1 * _K1) & _M64, (x + w0) & _M64)
        w0, w1 = _weak_hash_len32(s, p + 32, (z + w1) & _M64, (y + _fetch64(s, p + 16)) & _M64)
        z, x = x, z
    mul = (_K1 + ((z & 0xFF) << 1)) & _M64
    p = n - 64
    w0 = (w0 + ((n - 1) & 63)) & _M64
    v0 = (v0 + w0) & _M64
    w0 = (w0 + v0) & _M64
    x = (_rotate((x + y + v0 + _fetch64(s, p + 8)) & _M64, 37) * mul) & _M64
    y = (_rotate((y + v1 + _fetch64(s, p + 48)) & _M64, 42) * mul) & _M64
    x ^= (w1 * 9) & _M64
    y = (y + v0 * 9 + _fetch64(s, p + 40)) & _M64
    z = (_rotate((z + w0) & _M64, 33) * mul) & _M64
    v0, v1 = _weak_hash_len32(s, p, (v1 * mul) & _M64, (x + w0) & _M64)
    w0, w1 = _weak_hash_len32(s, p + 32, (z + w1) & _M64, (y + _fetch64(s, p + 16)) & _M64)
    z, x = x, z
    return _hash_len16((_hash_len16(v0, w0, mul) + (y ^ (y >> 47)) * _K0 + z) & _M64,
                       (_hash_len16(v1, w1, mul) + x) & _M64, mul)


_short_fingerprint64 = functools.lru_cache(maxsize=1 << 16)(_fingerprint64)


def _rotl(v: int, shift: int) -> int:
    return ((v << shift) | (v >> (64 - shift))) & _M64


def siphash24(k0: int, k1: int, data: bytes) -> int:
    """SipHash-2-4 with the 128-bit key (k0, k1): TF's ``StrongKeyedHash``."""
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573

    def rounds(count: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(count):
            v0 = (v0 + v1) & _M64
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _M64
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _M64
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _M64
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    n = len(data)
    full = n - n % 8
    for i in range(0, full, 8):
        m = _fetch64(data, i)
        v3 ^= m
        rounds(2)
        v0 ^= m
    last = ((n & 0xFF) << 56) | int.from_bytes(data[full:], "little")
    v3 ^= last
    rounds(2)
    v0 ^= last
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def _hash_buckets(values: Any, hash64: Callable[[bytes], int], buckets: int) -> np.ndarray:
    array = _strings(values)
    out = np.fromiter((hash64(v) % buckets for v in array.reshape(-1)), np.int64, array.size)
    return out.reshape(array.shape)


@op("StringToHashBucketFast", host_only=True)
def _string_to_hash_bucket_fast(ctx: BuildContext):
    buckets = int(ctx.attr("num_buckets"))
    return lambda values: _hash_buckets(values, fingerprint64, buckets)


@op("StringToHashBucketStrong", host_only=True)
def _string_to_hash_bucket_strong(ctx: BuildContext):
    buckets, key = int(ctx.attr("num_buckets")), [int(k) & _M64 for k in ctx.attr("key")]
    if len(key) != 2:
        return _deferred(errors.InvalidArgumentError(None, ctx.op, "Key must have 2 elements"),
                         lambda values: None)
    return lambda values: _hash_buckets(
        values, lambda s: siphash24(key[0], key[1], s), buckets)


# --- splitting ----------------------------------------------------------------------------------
def _sparse_tokens(rows: list[list[bytes]]) -> tuple:
    """(indices, values, dense_shape) of a [batch, max tokens] sparse tensor of tokens."""
    counts = [len(r) for r in rows]
    total = sum(counts)
    indices = np.zeros((total, 2), dtype=np.int64)
    if total:
        indices[:, 0] = np.repeat(np.arange(len(rows), dtype=np.int64), counts)
        starts = np.repeat(np.cumsum([0] + counts[:-1]), counts)
        indices[:, 1] = np.arange(total, dtype=np.int64) - starts
    tokens = _string_array([t for r in rows for t in r])
    shape = np.array([len(rows), max(counts, default=0)], dtype=np.int64)
    return indices, tokens, shape


def _vector_input(node: Any, values: Any, what: str = "input") -> np.ndarray:
    array = _strings(values)
    if array.ndim != 1:
        raise errors.InvalidArgumentError(
            None, node, f"{what} must be a vector, got shape: {dims_text(array.shape)}")
    return array


@op("StringSplit", host_only=True)
def _string_split(ctx: BuildContext):
    node, skip_empty = ctx.op, bool(ctx.attr_or("skip_empty", True))

    def split(text: bytes, delimiter: bytes) -> list[bytes]:
        if not text:  # no tokens, whatever skip_empty
            return []
        if not delimiter:  # every byte a token
            return [text[i:i + 1] for i in range(len(text))]
        parts = re.split(b"[" + re.escape(delimiter) + b"]", text) if len(delimiter) > 1 else \
            text.split(delimiter)
        return [p for p in parts if p] if skip_empty else parts

    def kernel(values: Any, delimiter: Any) -> tuple:
        strings = _vector_input(node, values)
        delim = _strings(delimiter)
        if delim.ndim != 0:
            raise errors.InvalidArgumentError(
                None, node, f"delimiter must be a scalar, got shape: {dims_text(delim.shape)}")
        return _sparse_tokens([split(s, delim.item()) for s in strings])

    return kernel


_WHITESPACE = b" \t\n\v\f\r"


def _split_v2(text: bytes, sep: bytes, maxsplit: int) -> list[bytes]:
    """TF's SplitV2: Python's str.split, except that with ``maxsplit`` reached the rest is a
    token even when empty (``"a ".split(None, 1)`` gives ``["a", ""]``) and ``maxsplit=0``
    keeps the text whole (leading spaces too)."""
    if maxsplit == 0:
        return [text]
    if sep:
        return text.split(sep, maxsplit if maxsplit > 0 else -1)
    out: list[bytes] = []
    rest = text.lstrip(_WHITESPACE)
    while rest:
        cut = next((i for i, c in enumerate(rest) if c in _WHITESPACE), len(rest))
        out.append(rest[:cut])
        rest = rest[cut:].lstrip(_WHITESPACE)
        if maxsplit > 0 and len(out) == maxsplit:
            out.append(rest)
            break
    return out


@op("StringSplitV2", host_only=True)
def _string_split_v2(ctx: BuildContext):
    node, maxsplit = ctx.op, int(ctx.attr_or("maxsplit", -1))

    def kernel(values: Any, sep: Any) -> tuple:
        strings = _vector_input(node, values)
        separator = _strings(sep)
        if separator.ndim != 0:
            raise errors.InvalidArgumentError(
                None, node, f"sep must be a scalar, got shape: {dims_text(separator.shape)}")
        return _sparse_tokens([_split_v2(s, separator.item(), maxsplit) for s in strings])

    return kernel


# --- lengths and substrings ---------------------------------------------------------------------
def _is_trail(byte: int) -> bool:
    return 0x80 <= byte < 0xC0  # a UTF-8 continuation byte


@op("StringLength", host_only=True)
def _string_length(ctx: BuildContext):
    chars = ctx.attr_or("unit", b"BYTE") == b"UTF8_CHAR"

    def kernel(values: Any) -> Any:
        array = _strings(values)
        flat = array.reshape(-1)
        lengths = np.fromiter((len(s) for s in flat), np.int64, flat.size)
        if chars and flat.size:
            data = np.frombuffer(b"".join(flat), dtype=np.uint8)
            trail = np.concatenate([[0], np.cumsum((data & 0xC0) == 0x80)])
            ends = np.cumsum(lengths)
            lengths = lengths - (trail[ends] - trail[ends - lengths])
        return lengths.astype(np.int32).reshape(array.shape)

    return kernel


def _forward_chars(s: bytes, count: int, pos: int) -> tuple[bool, int]:
    """ForwardNUTF8CharPositions: ``pos`` moved ``count`` UTF-8 characters on."""
    counted, size = 0, len(s)
    while counted < count and pos < size:
        pos += 1
        while pos < size and _is_trail(s[pos]):
            pos += 1
        counted += 1
    return counted == count, pos


def _back_chars(s: bytes, count: int, pos: int) -> tuple[bool, int]:
    """BackNUTF8CharPositions: ``pos`` moved ``count`` UTF-8 characters back."""
    counted = 0
    while counted < count and pos > 0:
        pos -= 1
        while _is_trail(s[pos]) and pos > 0:
            pos -= 1
        counted += 1
    return counted == count, pos


def _utf8_span(s: bytes, pos: int, length: int) -> tuple[int, int] | None:
    """The byte (start, length) of ``length`` characters from character ``pos`` (TF's
    UpdatePosAndLenForUtf8); None where ``pos`` is out of range."""
    if pos >= 0:
        ok, start = _forward_chars(s, pos, 0)
        if not ok:
            return None
        _, end = _forward_chars(s, length, start)
        return start, end - start
    skip = max(-pos - length, 0)
    ok, end = _back_chars(s, skip, len(s))
    if not ok:
        return None
    ok, start = _back_chars(s, -pos - skip, end)
    return (start, end - start) if ok else None


@op("Substr", host_only=True)
def _substr(ctx: BuildContext):
    node, chars = ctx.op, ctx.attr_or("unit", b"BYTE") == b"UTF8_CHAR"

    def one(s: bytes, pos: int, length: int, where: str, where_chars: str) -> bytes:
        if chars:
            span = _utf8_span(s, pos, length)
            if span is None:
                raise errors.InvalidArgumentError(
                    None, node, f"pos {pos} out of range for string at index {where_chars}")
            start, length = span
        else:
            start = len(s) + pos if pos < 0 else pos
            if not 0 <= start <= len(s):
                raise errors.InvalidArgumentError(
                    None, node, f"pos {pos} out of range for string b'{_text(s)}' at index "
                    f"{where}")
        return s[start:] if length < 0 else s[start:start + length]

    def kernel(values: Any, pos: Any, length: Any) -> Any:
        strings = _strings(values)
        pos, length = np.asarray(pos), np.asarray(length)
        if pos.shape != length.shape:
            raise errors.InvalidArgumentError(
                None, node, f"pos and len should have the same shape, got: "
                f"{dims_text(pos.shape)} vs. {dims_text(length.shape)}")
        if pos.ndim == 0 or pos.shape == strings.shape:
            flat = strings.reshape(-1)
            p = np.broadcast_to(pos, strings.shape).reshape(-1).tolist()
            n = np.broadcast_to(length, strings.shape).reshape(-1).tolist()
            out = [one(s, p[i], n[i], str(i), str(i)) for i, s in enumerate(flat)]
            return _string_array(out, strings.shape)
        try:
            shape = np.broadcast_shapes(strings.shape, pos.shape)
        except ValueError:
            raise errors.InvalidArgumentError(
                None, node, f"Incompatible shapes: {dims_text(strings.shape)} vs. "
                f"{dims_text(pos.shape)}") from None
        if len(shape) not in (1, 2):
            raise errors.UnimplementedError(
                None, node, f"Substr broadcast not implemented for {len(shape)} dimensions")
        s_b = np.broadcast_to(strings, shape)
        p_b, n_b = np.broadcast_to(pos, shape), np.broadcast_to(length, shape)
        out = np.empty(shape, dtype=object)
        for index in np.ndindex(*shape):
            where = str(index[0]) if len(shape) == 1 else f"({index[0]}, {index[1]})"
            out[index] = one(s_b[index], int(p_b[index]), int(n_b[index]), where,
                             str(index[0]))
        return out

    return kernel


# --- formatting ---------------------------------------------------------------------------------
@op("AsString", host_only=True)
def _as_string(ctx: BuildContext):
    node = ctx.op
    dtype = dtypes.as_dtype(ctx.op.get_attr("T"))
    precision, width = int(ctx.attr_or("precision", -1)), int(ctx.attr_or("width", -1))
    scientific, shortest = bool(ctx.attr_or("scientific", False)), bool(
        ctx.attr_or("shortest", False))
    fill = ctx.attr_or("fill", b"").decode("latin-1")
    floating = dtype.is_floating or dtype.is_complex
    message = None
    if dtype != dtypes.string and not floating and (scientific or shortest):
        message = ("scientific and shortest format not supported for datatype "
                   f"{dtypes.type_string(dtype)}")
    elif dtype != dtypes.string and not floating and precision >= 0:
        message = f"precision not supported for datatype {dtypes.type_string(dtype)}"
    elif len(fill) > 1:
        message = "Fill string must be one or fewer characters"
    elif scientific and shortest:
        message = "Cannot select both scientific and shortest notation"
    elif fill and fill not in " +-0#":
        message = f'Fill argument not supported: "{fill}"'
    elif not (dtype in (dtypes.string, dtypes.bool) or dtype.is_integer or floating):
        message = f"Type not supported: {dtypes.type_string(dtype)}"
    if message is not None:
        return _deferred(errors.InvalidArgumentError(None, node, message), lambda x: None)
    width = max(width, 0)
    left = fill == "-"
    conversion = "g" if shortest else "e" if scientific else "f"
    spec = "%" + fill + (str(width) if width else "") + (
        f".{precision}" if precision >= 0 else "")
    float_spec, int_spec = spec + conversion, "%" + fill + (str(width) if width else "") + "d"
    tiny = float(np.finfo(np.float32 if dtype in (dtypes.float32, dtypes.complex64)
                          else np.float64).tiny) if floating else 0.0

    def pad(text: str) -> str:
        return text.ljust(width) if left else text.rjust(width)

    def real(x: float) -> str:
        if not math.isfinite(x):  # absl: signed, space-padded
            sign = "-" if np.signbit(x) else "+" if fill == "+" else " " if fill == " " else ""
            return pad(sign + ("nan" if math.isnan(x) else "inf"))
        if 0 < abs(x) < tiny:  # TF's CPU threads flush subnormals to zero
            x = -0.0 if x < 0 else 0.0
        return float_spec % x

    def kernel(values: Any) -> Any:
        array = np.asarray(values) if dtype != dtypes.string else _strings(values)
        flat = array.reshape(-1)
        if dtype == dtypes.string:
            if width <= 0:
                return array
            cut = [s if precision < 0 else s[:precision] for s in flat]
            out = [s.ljust(width) if left else s.rjust(width) for s in cut]
        elif dtype == dtypes.bool:
            out = [b"true" if v else b"false" for v in flat]
        elif dtype.is_complex:
            out = [f"({real(float(v.real))},{real(float(v.imag))})".encode() for v in flat]
        elif floating:
            out = [real(v).encode() for v in flat.astype(np.float64).tolist()]
        else:
            out = [(int_spec % v).encode() for v in flat.tolist()]
        return _string_array(out, array.shape)

    return kernel


# --- regular expressions (RE2 syntax on Python's re) ------------------------------------------
class _PatternError(Exception):
    """A pattern RE2 rejects (``message`` is RE2's), or one this translation cannot run."""

    def __init__(self, message: str, unsupported: bool = False):
        super().__init__(message)
        self.message, self.unsupported = message, unsupported


_MAX_RUNE = 0x10FFFF
_INVALID_BYTES = (0xDC80, 0xDCFF)  # the invalid UTF-8 bytes of a text ("surrogateescape")
_PERL_SETS = {"d": [(0x30, 0x39)], "s": [(0x9, 0xA), (0xC, 0xD), (0x20, 0x20)],
              "w": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]}
_POSIX_SETS = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)], "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x0, 0x7F)], "blank": [(0x9, 0x9), (0x20, 0x20)],
    "cntrl": [(0x0, 0x1F), (0x7F, 0x7F)], "digit": [(0x30, 0x39)], "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)], "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x9, 0xD), (0x20, 0x20)], "upper": [(0x41, 0x5A)],
    "word": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, start = [], 0
    for lo, hi in sorted(ranges):
        if lo > start:
            out.append((start, lo - 1))
        start = max(start, hi + 1)
    if start <= _MAX_RUNE:
        out.append((start, _MAX_RUNE))
    return out


def _class_char(cp: int) -> str:
    char = chr(cp)
    return char if char.isascii() and char.isalnum() else f"\\U{cp:08x}"


def _render_class(ranges: list[tuple[int, int]], negated: bool) -> str:
    if negated:  # RE2's negated classes do not match invalid UTF-8 either
        ranges = [*ranges, _INVALID_BYTES]
    elif not ranges:
        return "(?!)"
    body = "".join(_class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}"
                   for lo, hi in ranges)
    return f"[{'^' if negated else ''}{body}]"


_SIMPLE_ESCAPES = {"a": 0x7, "f": 0xC, "t": 0x9, "n": 0xA, "r": 0xD, "v": 0xB}


def _escape(pattern: str, i: int) -> tuple[Any, int]:
    """The escape at ``pattern[i] == "\\\\"``: (a code point, or a list of ranges for a class
    escape, or a (text,) tuple of Python regex text), and the index after it."""
    if i + 1 >= len(pattern):
        raise _PatternError("trailing \\")
    c = pattern[i + 1]
    if c in "dsw":
        return _PERL_SETS[c], i + 2
    if c in "DSW":
        return _complement(_PERL_SETS[c.lower()]), i + 2
    if c in "pP":
        raise _PatternError(f"Unicode class escapes (\\{c}) are not supported", True)
    if c == "C":
        raise _PatternError("\\C (any byte) is not supported", True)
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c], i + 2
    if c in "01234567":
        j = i + 2
        if c != "0" and not (j < len(pattern) and pattern[j] in "01234567"):
            raise _PatternError(f"invalid escape sequence: \\{c}")
        while j < len(pattern) and j < i + 4 and pattern[j] in "01234567":
            j += 1
        return int(pattern[i + 1:j], 8), j
    if c == "x":
        if pattern.startswith("{", i + 2):
            end = pattern.find("}", i + 3)
            digits = pattern[i + 3:end] if end > 0 else ""
            if end < 0 or not re.fullmatch(r"[0-9A-Fa-f]+", digits) or int(digits, 16) > \
                    _MAX_RUNE:
                raise _PatternError(f"invalid escape sequence: {pattern[i:end + 1 or None]}")
            return int(digits, 16), end + 1
        digits = pattern[i + 2:i + 4]
        if not re.fullmatch(r"[0-9A-Fa-f]{2}", digits):
            raise _PatternError(f"invalid escape sequence: {pattern[i:i + 4]}")
        return int(digits, 16), i + 4
    if c.isascii() and not c.isalnum() and c != "_" or not c.isascii():
        return ord(c), i + 2
    raise _PatternError(f"invalid escape sequence: \\{c}")


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    """The class ``[...]`` at ``pattern[i]``, as Python regex text."""
    start, n = i, len(pattern)
    i += 1
    negated = pattern.startswith("^", i)
    i += negated
    ranges: list[tuple[int, int]] = []
    first = True
    while True:
        if i >= n:
            raise _PatternError(f"missing ]: {pattern[start:]}")
        c = pattern[i]
        if c == "]" and not first:
            i += 1
            break
        first = False
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2:end] if end > 0 else ""
            positive = name.lstrip("^")
            if end > 0 and positive in _POSIX_SETS:
                items = _POSIX_SETS[positive]
                ranges.extend(_complement(items) if name.startswith("^") else items)
                i = end + 2
                continue
            if end > 0:
                raise _PatternError(f"invalid character class range: {pattern[i:end + 2]}")
        if c == "\\":
            item, i = _escape(pattern, i)
            if isinstance(item, list):
                ranges.extend(item)
                continue
            lo = item
        else:
            lo, i = ord(c), i + 1
        hi = lo
        if pattern.startswith("-", i) and i + 1 < n and pattern[i + 1] != "]":
            if pattern[i + 1] == "\\":
                item, j = _escape(pattern, i + 1)
                if isinstance(item, list):
                    raise _PatternError(f"invalid character class range: {pattern[i - 1:j]}")
            else:
                item, j = ord(pattern[i + 1]), i + 2
            if item < lo:
                raise _PatternError(f"invalid character class range: {pattern[i - 1:j]}")
            hi, i = item, j
        ranges.append((lo, hi))
    return _render_class(ranges, negated), i


_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")


def _translate(pattern: str) -> str:
    """RE2 pattern text -> Python ``re`` text with RE2's meaning."""
    multiline = re.search(r"\(\?[imsU]*m", pattern) is not None
    out: list[str] = []
    i, n, depth = 0, len(pattern), 0
    can_repeat, repeated_at = False, -1  # an atom to repeat; where the last repetition began
    # Flags set mid-group ("a(?i)b"; Python takes global flags only at the start) become
    # scoped groups, closed at each "|" and ")" of their group and reopened after a "|".
    scopes: list[list[str]] = [[]]
    while i < n:
        c = pattern[i]
        repeat = _REPEAT.match(pattern, i) if c == "{" else None
        if c in "*+?" or repeat:
            end = repeat.end() if repeat else i + 1
            if repeat:
                low, high = int(repeat.group(1)), repeat.group(3)
                if low > 1000 or (high and int(high) > 1000) or (high and int(high) < low):
                    raise _PatternError(f"invalid repetition size: {repeat.group(0)}")
            if repeated_at >= 0:
                raise _PatternError(f"bad repetition operator: {pattern[repeated_at:end]}")
            if not can_repeat:
                raise _PatternError(f"missing argument to repetition operator: "
                                    f"{pattern[i:end]}" if repeat else
                                    f"no argument for repetition operator: {c}")
            if pattern.startswith("?", end):
                end += 1
            out.append(pattern[i:end])
            repeated_at, i = i, end
            continue
        repeated_at = -1
        if c == "\\":
            if pattern.startswith("\\Q", i):
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2:] if end < 0 else pattern[i + 2:end]
                out.append(f"(?:{re.escape(literal)})")
                i, can_repeat = (n if end < 0 else end + 2), True
                continue
            if i + 1 < n and pattern[i + 1] in "bBAzE":
                out.append({"b": r"(?a:\b)", "B": r"(?a:\B)", "A": r"\A", "z": r"\Z",
                            "E": ""}[pattern[i + 1]])
                i, can_repeat = i + 2, False
                continue
            item, i = _escape(pattern, i)
            out.append(_render_class(item, False) if isinstance(item, list)
                       else _class_char(item))
            can_repeat = True
        elif c == "[":
            text, i = _char_class(pattern, i)
            out.append(text)
            can_repeat = True
        elif c == "(":
            if pattern.startswith("(?", i):
                flags = re.match(r"\(\?([a-zA-Z]*(?:-[a-zA-Z]*)?)([:)])", pattern[i:])
                if pattern.startswith("(?P<", i) or pattern.startswith("(?<", i) and \
                        not pattern.startswith(("(?<=", "(?<!"), i):
                    name_end = pattern.find(">", i)
                    out.append("(?P<" + pattern[i + (4 if pattern[i + 2] == "P" else 3):
                                                  name_end + 1])
                    i, depth, can_repeat = name_end + 1, depth + 1, False
                    scopes.append([])
                    continue
                if flags is None or set(flags.group(1)) - set("imsU-"):
                    raise _PatternError(f"invalid perl operator: {pattern[i:i + 3]}")
                if "U" in flags.group(1):
                    raise _PatternError("the (?U) flag is not supported", True)
                i += flags.end()
                if flags.group(2) == ":":
                    out.append(flags.group(0))
                    depth += 1
                    scopes.append([])
                elif not out:
                    out.append(flags.group(0))
                else:
                    out.append(f"(?{flags.group(1)}:")
                    scopes[-1].append(flags.group(1))
                can_repeat = False
                continue
            out.append("(")
            i, depth, can_repeat = i + 1, depth + 1, False
            scopes.append([])
        elif c == ")":
            if depth == 0:
                raise _PatternError(f"unexpected ): {pattern}")
            out.append(")" * len(scopes.pop()) + ")")
            i, depth, can_repeat = i + 1, depth - 1, True
        elif c == "|":
            active = scopes[-1]
            out.append(")" * len(active) + "|" + "".join(f"(?{f}:" for f in active))
            i, can_repeat = i + 1, False
        elif c == ".":
            out.append("(?:(?![\\udc80-\\udcff]).)")
            i, can_repeat = i + 1, True
        elif c == "$":
            out.append("$" if multiline else r"(?!\n)$")
            i, can_repeat = i + 1, False
        elif c == "^":
            out.append("^")
            i, can_repeat = i + 1, False
        else:
            out.append(re.escape(c))
            i, can_repeat = i + 1, True
    if depth:
        raise _PatternError(f"missing ): {pattern}")
    return "".join(out) + ")" * len(scopes[0])


@functools.lru_cache(maxsize=256)
def _compiled(pattern: bytes) -> Any:
    """The compiled pattern, or a _PatternError."""
    try:
        text = pattern.decode("utf-8")
    except UnicodeDecodeError:
        return _PatternError("invalid UTF-8")
    try:
        return re.compile(_translate(text))
    except _PatternError as e:
        return e
    except re.error as e:  # what the translation lets through and Python still refuses
        return _PatternError(str(e))
    except RecursionError:
        return _PatternError("pattern too large - compile failed")


def _regex(node: Any, pattern: bytes) -> Any:
    found = _compiled(pattern)
    if isinstance(found, _PatternError):
        if found.unsupported:
            raise errors.UnimplementedError(
                None, node, f"Pattern {_text(pattern)}: {found.message} (RE2 syntax run on "
                "Python's re)", {"pattern": _text(pattern)})
        raise errors.InvalidArgumentError(
            None, node, f"Invalid pattern: {_text(pattern)}, error: {found.message}",
            {"pattern": _text(pattern)})
    return found


@functools.lru_cache(maxsize=256)
def _rewrite(rewrite: bytes) -> tuple[list, bool, int]:
    """RE2's reading of a rewrite string: (pieces: text or group numbers, whether it is valid
    to the end (RE2 stops at a bad escape, keeping what came before), the highest group)."""
    text = rewrite.decode("utf-8", "surrogateescape")
    pieces: list[Any] = []
    literal: list[str] = []
    valid, i = True, 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            literal.append(c)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt.isdigit() and nxt.isascii():
            pieces.append("".join(literal))
            literal = []
            pieces.append(int(nxt))
        elif nxt == "\\":
            literal.append("\\")
        else:
            valid = False
            break
        i += 2
    pieces.append("".join(literal))
    highest = max((int(m) for m in re.findall(r"\\(?:\\|([0-9]))", text) if m), default=0)
    return pieces, valid, highest


def _render(pieces: list, match: Any) -> str:
    return "".join(p if isinstance(p, str) else (match.group(p) or "") for p in pieces)


def _replace(regex: Any, rewrite: bytes, text: bytes, replace_global: bool) -> bytes:
    """RE2::GlobalReplace / RE2::Replace of one string."""
    pieces, valid, highest = _rewrite(rewrite)
    if highest > regex.groups:
        return text
    source = text.decode("utf-8", "surrogateescape")
    if not replace_global:
        match = regex.search(source)
        if match is None or not valid:
            return text
        replaced = source[:match.start()] + _render(pieces, match) + source[match.end():]
        return replaced.encode("utf-8", "surrogateescape")
    out: list[str] = []
    pos, last_end, count, size = 0, -1, 0, len(source)
    while pos <= size:
        match = regex.search(source, pos)
        if match is None:
            break
        start, end = match.span()
        if pos < start:
            out.append(source[pos:start])
        if start == last_end and start == end:  # no empty match right after a match
            out.append(source[pos:pos + 1])
            pos += 1
            continue
        out.append(_render(pieces, match))
        pos = last_end = end
        count += 1
    if not count:
        return text
    out.append(source[pos:])
    return "".join(out).encode("utf-8", "surrogateescape")


def _regex_replace(node: Any, values: Any, regex: Any, rewrite: bytes, replace_global: bool):
    array = _strings(values)
    out = [_replace(regex, rewrite, s, replace_global) for s in array.reshape(-1)]
    return _string_array(out, array.shape)


@op("RegexReplace", host_only=True)
def _regex_replace_op(ctx: BuildContext):
    node, replace_global = ctx.op, bool(ctx.attr_or("replace_global", True))

    def kernel(values: Any, pattern: Any, rewrite: Any) -> Any:
        pattern, rewrite = _strings(pattern), _strings(rewrite)
        if pattern.ndim != 0:
            raise errors.InvalidArgumentError(
                None, node, f"Pattern must be scalar, but received {dims_text(pattern.shape)}")
        regex = _regex(node, pattern.item())
        if rewrite.ndim != 0:
            raise errors.InvalidArgumentError(
                None, node, f"Rewrite must be scalar, but received {dims_text(rewrite.shape)}")
        return _regex_replace(node, values, regex, rewrite.item(), replace_global)

    return kernel


@op("StaticRegexReplace", host_only=True)
def _static_regex_replace(ctx: BuildContext):
    node, replace_global = ctx.op, bool(ctx.attr_or("replace_global", True))
    pattern, rewrite = ctx.attr("pattern"), ctx.attr("rewrite")
    try:
        regex = _regex(node, pattern)
    except errors.OpError as e:
        return _deferred(e, lambda values: None)
    return lambda values: _regex_replace(node, values, regex, rewrite, replace_global)


# --- bucketing ------------------------------------------------------------------------------
@op("Bucketize")
def _bucketize(ctx: BuildContext):
    xp = ctx.xp
    boundaries = np.asarray(ctx.attr("boundaries"), dtype=np.float32)
    if np.any(boundaries[1:] < boundaries[:-1]):
        return _deferred(errors.InvalidArgumentError(None, ctx.op, "Expected sorted boundaries"),
                         lambda values: None)
    # TF compares value < boundary in C++: ints and float32 as float32, doubles as doubles.
    wide = ctx.in_dtype(0) == np.float64
    edges = ctx.device.to_device(boundaries.astype(np.float64) if wide else boundaries)

    def kernel(values: Any) -> Any:
        keys = values if values.dtype == edges.dtype else values.astype(edges.dtype)
        return xp.searchsorted(edges, keys, side="right").astype(np.int32)

    return kernel
