"""A compiled scan of a serialized GraphDef: the NodeDef fields an import reads, in bulk.

Reading a field of a upb message from Python costs 0.1-0.3 us (a wrapper object, a name
lookup, a new ``str``), and an import reads five or six per node: 150 ms of a 50k-node import
(``scripts/bench_import.py``), more than everything else it does per node.  This scan reads
the same bytes upb has already parsed (and so validated: lengths, UTF-8) and copies, for every
node, its name, op, device and inputs into ``\\n``-separated buffers that Python splits into
strings in one call each.  It also finds the raw ``_class`` AttrValue (a cache key for the
colocation rewrite) and a *signature key*: the node's attr entries whose names can be OpDef
attrs (no leading ``_``), raw, and its op type, so that equal keys mean the same op type with
equal dtype and count attrs.  :func:`first_equal` turns both into small ints.

Whatever the scan does not model exactly as upb decodes it makes it give up (a status other
than 0) and the caller reads the fields through upb instead: a string holding ``\\n``, a group,
an AttrValue with two fields set.  TF never writes those.  Requires numba (imported by the
caller inside a ``try``).
"""

from __future__ import annotations

import numba
import numpy as np

OK = 0
GAVE_UP_NEWLINE = 1  # a name, op, device or input holds "\n" (the separator)
GAVE_UP_WIRE = 2  # a group, a wire type or length the scan does not follow
GAVE_UP_ATTR = 3  # a map entry or AttrValue with a field repeated or several set
NEWLINE = 10
UNDERSCORE = 95
_LENGTH_DELIMITED = 2
_TENSOR_FIELD = 8  # AttrValue.tensor: large, and irrelevant to a signature
_MARKER_FIELD_TAG = 15 << 3  # stands for an AttrValue that holds only a tensor


# The small readers are inlined into their callers (numba's IR inlining): called as functions
# they made the scan ~30% slower.
@numba.njit(cache=True, nogil=True, inline="always")
def _varint(buf, pos, end):
    """(value, next position) of a tag or length, or (-1, pos) for a varint that runs past
    ``end`` or 63 bits."""
    value = 0
    shift = 0
    while pos < end and shift < 63:
        byte = buf[pos]
        pos += 1
        value |= np.int64(byte & 0x7F) << shift
        if byte < 0x80:  # noqa: PLR2004 - no continuation bit
            return value, pos
        shift += 7
    return -1, pos


@numba.njit(cache=True, nogil=True, inline="always")
def _skip(buf, pos, end, wire_type):
    """The position after a field's value of ``wire_type`` (not 2), or -1."""
    if wire_type == 0:  # up to 10 bytes (a negative int64); only its end matters here
        for i in range(pos, min(pos + 10, end)):
            if buf[i] < 0x80:  # noqa: PLR2004 - no continuation bit
                return i + 1
        return -1
    if wire_type == 1:
        pos += 8
    elif wire_type == 5:  # noqa: PLR2004 - fixed32
        pos += 4
    else:  # 3, 4: groups; 6, 7: invalid
        return -1
    return pos if pos <= end else -1


@numba.njit(cache=True, nogil=True, inline="always")
def _next_field(buf, pos, end):
    """(field number, value lo, value hi) of the field at ``pos``: a length-delimited one's
    value bounds, or lo -1 for another wire type (hi: the next field).  Number -1 for a
    field the scan can't follow."""
    tag, pos = _varint(buf, pos, end)
    if tag < 0:
        return -1, pos, pos
    if tag & 7 != _LENGTH_DELIMITED:
        after = _skip(buf, pos, end, tag & 7)
        return (tag >> 3 if after >= 0 else -1), -1, after
    length, pos = _varint(buf, pos, end)
    if length < 0 or pos + length > end:
        return -1, pos, pos
    return tag >> 3, pos, pos + length


@numba.njit(cache=True, nogil=True, inline="always")
def _copy_line(buf, lo, hi, out, at):
    """Copies ``buf[lo:hi]`` and a newline to ``out[at:]``; the new end, or -1 when the
    string holds a newline itself."""
    for i in range(lo, hi):
        byte = buf[i]
        if byte == NEWLINE:
            return -1
        out[at] = byte
        at += 1
    out[at] = NEWLINE
    return at + 1


@numba.njit(cache=True, nogil=True)
def _single_field(buf, lo, hi):
    """The field number of an AttrValue's only field, 0 for none, -1 for several or bad."""
    field = 0
    pos = lo
    while pos < hi:
        number, _, pos = _next_field(buf, pos, hi)
        if number < 0 or field != 0:
            return -1
        field = number
    return field


@numba.njit(cache=True, nogil=True)
def _attr_entry(buf, lo, hi):
    """Reads one ``attr`` map entry ``buf[lo:hi]``: (status, key lo, key hi, value lo,
    value hi), an absent key or value as an empty range."""
    key_lo = key_hi = value_lo = value_hi = -1
    pos = lo
    while pos < hi:
        field, field_lo, pos = _next_field(buf, pos, hi)
        if field < 0:
            return GAVE_UP_WIRE, 0, 0, 0, 0
        if field_lo < 0:
            continue  # upb: a field of the wrong wire type is an unknown field
        if (field == 1 and key_lo >= 0) or (field == 2 and value_lo >= 0):  # noqa: PLR2004
            return GAVE_UP_ATTR, 0, 0, 0, 0  # upb would take the last key, merge the values
        if field == 1:
            key_lo, key_hi = field_lo, pos
        elif field == 2:  # noqa: PLR2004 - entry.value
            value_lo, value_hi = field_lo, pos
    if key_lo < 0:
        key_lo = key_hi = hi
    if value_lo < 0:
        value_lo = value_hi = hi
    return OK, key_lo, key_hi, value_lo, value_hi


@numba.njit(cache=True, nogil=True)
def _is_class(buf, lo, hi):
    # "_class"
    return (hi - lo == 6 and buf[lo] == UNDERSCORE and buf[lo + 1] == 99 and buf[lo + 2] == 108
            and buf[lo + 3] == 97 and buf[lo + 4] == 115 and buf[lo + 5] == 115)


@numba.njit(cache=True, nogil=True)
def _signature_part(buf, entry, key, value, keys, at):
    """Appends an attr entry (bounds in ``buf``: the whole ``entry`` with its tag, its ``key``
    and ``value``) to the node's signature key; the new end, or -1 to give up.

    The entry's own bytes (tag and length included, so the key parses back into entries),
    except an AttrValue holding only a tensor: its key and a marker field stand for it.
    """
    field = _single_field(buf, value[0], value[1])
    if field < 0:
        return -1
    if field != _TENSOR_FIELD:
        for i in range(entry[0], entry[1]):
            keys[at] = buf[i]
            at += 1
        return at
    key_length = key[1] - key[0]
    if key_length > 100:  # noqa: PLR2004 - keeps the lengths below one varint byte
        return -1
    keys[at] = 0x2A  # NodeDef.attr, length-delimited
    keys[at + 1] = key_length + 4
    keys[at + 2] = 0x0A  # entry.key
    keys[at + 3] = key_length
    at += 4
    for i in range(key[0], key[1]):
        keys[at] = buf[i]
        at += 1
    keys[at] = _MARKER_FIELD_TAG
    keys[at + 1] = 0
    return at + 2


@numba.njit(cache=True, nogil=True)
def _scan_attr(buf, entry, keys, keys_at, klass):
    """One ``attr`` entry of a node: (status, its ``_class`` value's bounds so far, keys end)."""
    status, key_lo, key_hi, value_lo, value_hi = _attr_entry(buf, entry[2], entry[1])
    if status != OK:
        return status, klass, keys_at
    if _is_class(buf, key_lo, key_hi):
        return OK, (value_lo, value_hi), keys_at
    if key_hi > key_lo and buf[key_lo] == UNDERSCORE:  # not an attr an OpDef can name
        return OK, klass, keys_at
    keys_at = _signature_part(buf, (entry[0], entry[1]), (key_lo, key_hi), (value_lo, value_hi),
                              keys, keys_at)
    return (OK if keys_at >= 0 else GAVE_UP_ATTR), klass, keys_at


@numba.njit(cache=True, nogil=True)
def _append_op(buf, op, keys, at):
    """Ends a signature key with the op type and its length (4 bytes, little-endian), so the
    key parses back from its end and nodes of different types never share one."""
    for i in range(op[0], op[1]):
        keys[at] = buf[i]
        at += 1
    length = op[1] - op[0]
    for shift in range(4):
        keys[at] = (length >> (8 * shift)) & 0xFF
        at += 1
    return at


@numba.njit(cache=True, nogil=True)
def _scan_node(buf, pos, end, inputs, input_at, keys, keys_at):
    """One NodeDef ``buf[pos:end]``: (status, (name, op, device, _class value) bounds, input
    count, inputs end, keys end).  The last of a repeated scalar field wins, as in upb."""
    name = op = device = (end, end)
    klass = (-1, -1)
    count = 0
    status = OK
    while pos < end and status == OK:
        field_start = pos
        field, lo, pos = _next_field(buf, pos, end)
        if field < 0:
            status = GAVE_UP_WIRE
        elif lo < 0:
            pass  # not length-delimited: unknown to upb
        elif field == 1:
            name = (lo, pos)
        elif field == 2:  # noqa: PLR2004 - NodeDef.op
            op = (lo, pos)
        elif field == 3:  # noqa: PLR2004 - NodeDef.input
            input_at = _copy_line(buf, lo, pos, inputs, input_at)
            count += 1
            status = OK if input_at >= 0 else GAVE_UP_NEWLINE
        elif field == 4:  # noqa: PLR2004 - NodeDef.device
            device = (lo, pos)
        elif field == 5:  # noqa: PLR2004 - NodeDef.attr
            status, klass, keys_at = _scan_attr(buf, (field_start, pos, lo), keys, keys_at, klass)
    if status == OK:
        keys_at = _append_op(buf, op, keys, keys_at)
    return status, (name, op, device, klass), count, input_at, keys_at


@numba.njit(cache=True, nogil=True)
def scan(buf, lines, inputs, keys, per_node, ends):
    """Scans the serialized GraphDef ``buf``; returns (status, nodes).

    Per node, in order: name, op and device as lines of ``lines[0..2]``; its inputs as lines of
    ``inputs``; in ``per_node``'s rows: input count, the raw ``_class`` AttrValue's bounds in
    ``buf`` (-1: none), its signature key's bounds in ``keys``.  ``ends`` receives the used
    lengths of the three line buffers, inputs and keys.
    """
    nodes = 0
    name_at = op_at = device_at = input_at = keys_at = 0
    pos = 0
    hi = buf.size
    while pos < hi:
        field, node_lo, pos = _next_field(buf, pos, hi)
        if field < 0:
            return GAVE_UP_WIRE, nodes
        if field != 1 or node_lo < 0:  # GraphDef.node
            continue
        key_start = keys_at
        status, bounds, count, input_at, keys_at = _scan_node(buf, node_lo, pos, inputs,
                                                              input_at, keys, keys_at)
        if status != OK:
            return status, nodes
        (name, op, device, klass) = bounds
        name_at = _copy_line(buf, name[0], name[1], lines[0], name_at)
        op_at = _copy_line(buf, op[0], op[1], lines[1], op_at)
        device_at = _copy_line(buf, device[0], device[1], lines[2], device_at)
        if name_at < 0 or op_at < 0 or device_at < 0:
            return GAVE_UP_NEWLINE, nodes
        per_node[0, nodes] = count
        per_node[1, nodes] = klass[0]
        per_node[2, nodes] = klass[1]
        per_node[3, nodes] = key_start
        per_node[4, nodes] = keys_at
        nodes += 1
    ends[0] = name_at
    ends[1] = op_at
    ends[2] = device_at
    ends[3] = input_at
    ends[4] = keys_at
    return OK, nodes


@numba.njit(cache=True, nogil=True)
def _same(a, a_lo, a_hi, b, b_lo, b_hi):
    if a_hi - a_lo != b_hi - b_lo:
        return False
    for i in range(a_hi - a_lo):
        if a[a_lo + i] != b[b_lo + i]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def first_equal(buf, lo, hi, ids):
    """``ids[i]``: the smallest ``j`` whose bytes ``buf[lo[j]:hi[j]]`` equal node ``i``'s
    (-1 where ``lo[i] < 0``: none).  Hashing finds candidates; bytes are compared, so equal
    ids mean equal bytes."""
    count = lo.size
    size = 16
    while size < 2 * count:
        size *= 2
    slots = np.full(size, -1, np.int64)
    for i in range(count):
        if lo[i] < 0:
            ids[i] = -1
            continue
        # FNV-1a of the length and the first and last 32 bytes (where keys differ: dtypes,
        # an op type, a colocation target): cheap, as the bytes are compared anyway.
        h = (np.uint64(14695981039346656037) ^ np.uint64(hi[i] - lo[i])) * np.uint64(1099511628211)
        for k in range(lo[i], min(hi[i], lo[i] + 32)):
            h = (h ^ np.uint64(buf[k])) * np.uint64(1099511628211)
        for k in range(max(lo[i] + 32, hi[i] - 32), hi[i]):
            h = (h ^ np.uint64(buf[k])) * np.uint64(1099511628211)
        slot = np.int64(h & np.uint64(size - 1))
        while True:
            j = slots[slot]
            if j < 0:
                slots[slot] = i
                ids[i] = i
                break
            if _same(buf, lo[j], hi[j], buf, lo[i], hi[i]):
                ids[i] = j
                break
            slot = (slot + 1) & (size - 1)
