""".meta files: bytes <-> MetaGraphDef, binary or text, with clear errors for damaged files.

TF reads a ``.meta`` binary-first and falls back to text format, with no magic number.  gpugraph
does the same, but a file that is neither (truncated, empty, random bytes, not UTF-8) raises
:class:`~gpugraph.errors.DataLossError` naming the file and both parse failures instead of a raw
``DecodeError``/``UnicodeDecodeError``.  Writes are atomic: a temporary file renamed into place.
"""

from __future__ import annotations

import os
from typing import Any

from google.protobuf import message, text_format

from gpugraph import _proto as pb
from gpugraph.errors import DataLossError, InvalidArgumentError, NotFoundError


def parse_meta_graph(data: bytes, source: str = "<bytes>") -> Any:
    """Parses ``data`` (binary, else text format) into a MetaGraphDef.

    Raises:
        DataLossError: the bytes are neither a binary nor a text MetaGraphDef.
    """
    return _parse(data, source)[0]


def _parse(data: bytes, source: str) -> tuple[Any, bool]:
    """(MetaGraphDef, whether ``data`` was binary)."""
    if not data:
        raise DataLossError(None, None, f"Cannot parse MetaGraphDef from {source}: the file is empty.",
                            {"path": source})
    meta = pb.MetaGraphDef()
    try:
        meta.ParseFromString(data)
        if _looks_like_meta_graph(meta):
            return meta, True
        binary_error = "it parsed as binary protobuf but holds no graph_def or meta_info_def"
    except message.DecodeError as e:
        binary_error = f"not a binary MetaGraphDef ({e or 'malformed wire data'})"
    return _parse_text(data, source, binary_error), False


def _looks_like_meta_graph(meta: Any) -> bool:
    # A binary parse of garbage can succeed with only unknown fields; every real MetaGraphDef
    # (even of an empty graph) has a graph_def or meta_info_def.
    return meta.HasField("graph_def") or meta.HasField("meta_info_def")


def _parse_text(data: bytes, source: str, binary_error: str) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _data_loss(source, binary_error, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    meta = pb.MetaGraphDef()
    try:
        text_format.Parse(text, meta, descriptor_pool=pb.POOL, allow_unknown_extension=True)
    except text_format.ParseError as e:
        raise _data_loss(source, binary_error, f"not a text MetaGraphDef ({e})") from None
    if not _looks_like_meta_graph(meta):
        raise _data_loss(source, binary_error, "the text holds no graph_def or meta_info_def")
    return meta


def _data_loss(source: str, binary_error: str, text_error: str) -> DataLossError:
    return DataLossError(
        None,
        None,
        f"Cannot parse MetaGraphDef from {source}: the file is truncated or corrupt. "
        f"As binary: {binary_error}. As text: {text_error}.",
        {"path": source},
    )


def read_meta_graph_file(path: str | os.PathLike) -> Any:
    """Reads a binary or text ``.meta`` file (TF's ``read_meta_graph_file``)."""
    return _parse(_read_file(path), os.fspath(path))[0]


def _read_file(path: str | os.PathLike) -> bytes:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise NotFoundError(None, None, f"File does not exist. Received: {path}.", {"path": path})
    with open(path, "rb") as f:
        return f.read()


def as_meta_graph_def(meta_graph_or_file: Any) -> Any:
    """A private MetaGraphDef copy from a path, bytes, or a MetaGraphDef (ours or TF's).

    The caller's object is never modified, and later changes to it don't reach gpugraph.
    """
    return load_meta_graph(meta_graph_or_file)[0]


def load_meta_graph(meta_graph_or_file: Any) -> tuple[Any, memoryview | None]:
    """:func:`as_meta_graph_def`, and its GraphDef's serialized bytes where the input was
    binary (what :func:`gpugraph.io.node_table.node_table` scans), else None."""
    if isinstance(meta_graph_or_file, (str, os.PathLike)):
        data = _read_file(meta_graph_or_file)
        source = os.fspath(meta_graph_or_file)
    elif isinstance(meta_graph_or_file, (bytes, bytearray, memoryview)):
        data, source = bytes(meta_graph_or_file), "<bytes>"
    else:
        copy = _private_copy(meta_graph_or_file, pb.MetaGraphDef)
        if copy is None:
            raise InvalidArgumentError(None, None, (
                f"Expected a .meta path, bytes or a MetaGraphDef, got "
                f"{type(meta_graph_or_file).__name__}."))
        return copy, None
    meta, binary = _parse(data, source)
    return meta, graph_def_bytes(data) if binary else None


def graph_def_bytes(data: bytes) -> memoryview | None:
    """The bytes of a binary MetaGraphDef's ``graph_def`` field (field 2, a view, not a copy),
    None when it is absent or written more than once (upb merges the parts; a scan would
    not)."""
    spans = [(lo, hi) for field, lo, hi in _fields(data) if field == _GRAPH_DEF_FIELD]
    if len(spans) != 1:
        return None
    lo, hi = spans[0]
    return memoryview(data)[lo:hi]


_GRAPH_DEF_FIELD = 2


def _fields(data: bytes) -> list[tuple[int, int, int]]:
    """(field number, value start, value end) of a parsed message's length-delimited
    top-level fields (the data parsed, so it is well-formed)."""
    fields = []
    pos, end = 0, len(data)
    while pos < end:
        tag, pos = _varint(data, pos)
        wire_type = tag & 7
        if wire_type == 2:
            length, pos = _varint(data, pos)
            fields.append((tag >> 3, pos, pos + length))
            pos += length
        elif wire_type == 0:
            pos = _varint(data, pos)[1]
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
        else:  # a group: upb parsed it, but a top-level scan can't follow it
            return []
    return fields


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def private_graph_def(graph_def: Any) -> Any:
    """A private copy of a GraphDef (ours or TF's), as an import keeps its NodeDefs.

    TF's importer copies the nodes into its own graph, so later changes to the caller's
    GraphDef never reach the imported ops; holding a copy gives the same guarantee.
    """
    copy = _private_copy(graph_def, pb.GraphDef)
    if copy is None:
        raise InvalidArgumentError(
            None, None, f"Expected a GraphDef, got {type(graph_def).__name__}.")
    return copy


def _private_copy(message: Any, cls: type) -> Any | None:
    """A copy of ``message`` as gpugraph's ``cls``, from ours or TF's own class; else None."""
    if isinstance(message, cls):
        copy = cls()
        copy.CopyFrom(message)
        return copy
    descriptor = getattr(message, "DESCRIPTOR", None)
    if getattr(descriptor, "full_name", None) == cls.DESCRIPTOR.full_name:
        # TF's own class (another descriptor pool): same wire format, so go through bytes.
        return cls.FromString(message.SerializeToString())
    return None


def serialize_meta_graph(meta: Any, as_text: bool = False) -> bytes:
    """Bytes as TF writes them: deterministic binary, or ``text_format.MessageToString``."""
    if as_text:
        return text_format.MessageToString(meta, descriptor_pool=pb.POOL).encode("utf-8")
    return meta.SerializeToString(deterministic=True)


def write_meta_graph_file(meta: Any, path: str | os.PathLike, as_text: bool = False) -> str:
    """Writes ``meta`` to ``path`` atomically (temp file + rename), creating parent dirs.

    Raises:
        OpError: the file cannot be written (ResourceExhaustedError for a full disk,
            PermissionDeniedError for a read-only directory, ...; see
            :func:`gpugraph.io.bundle.write_error`), naming it; no temporary file is left then.
    """
    from gpugraph.io import bundle  # here: parsing .meta files needs none of its imports

    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as e:
            raise bundle.write_error(e, parent, "cannot create directory") from None
    bundle.write_file_atomically(path, serialize_meta_graph(meta, as_text))
    return path
