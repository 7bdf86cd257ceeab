""".meta files: bytes <-> MetaGraphDef, binary or text, with clear errors for damaged files.

TF reads a ``.meta`` binary-first and falls back to text format, with no magic number.  gpugraph
does the same, but a file that is neither (truncated, empty, random bytes, not UTF-8) raises
:class:`~gpugraph.errors.DataLossError` naming the file and both parse failures instead of a raw
``DecodeError``/``UnicodeDecodeError``.  Writes are atomic: a temporary file renamed into place.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from google.protobuf import message, text_format

from gpugraph import _proto as pb
from gpugraph.errors import DataLossError, InvalidArgumentError, NotFoundError


def parse_meta_graph(data: bytes, source: str = "<bytes>") -> Any:
    """Parses ``data`` (binary, else text format) into a MetaGraphDef.

    Raises:
        DataLossError: the bytes are neither a binary nor a text MetaGraphDef.
    """
    if not data:
        raise DataLossError(None, None, f"Cannot parse MetaGraphDef from {source}: the file is empty.",
                            {"path": source})
    meta = pb.MetaGraphDef()
    try:
        meta.ParseFromString(data)
        if _looks_like_meta_graph(meta):
            return meta
        binary_error = "it parsed as binary protobuf but holds no graph_def or meta_info_def"
    except message.DecodeError as e:
        binary_error = f"not a binary MetaGraphDef ({e or 'malformed wire data'})"
    return _parse_text(data, source, binary_error)


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
    path = os.fspath(path)
    if not os.path.exists(path):
        raise NotFoundError(None, None, f"File does not exist. Received: {path}.", {"path": path})
    with open(path, "rb") as f:
        data = f.read()
    return parse_meta_graph(data, path)


def as_meta_graph_def(meta_graph_or_file: Any) -> Any:
    """A private MetaGraphDef copy from a path, bytes, or a MetaGraphDef (ours or TF's).

    The caller's object is never modified, and later changes to it don't reach gpugraph.
    """
    if isinstance(meta_graph_or_file, (str, os.PathLike)):
        return read_meta_graph_file(meta_graph_or_file)
    if isinstance(meta_graph_or_file, (bytes, bytearray, memoryview)):
        return parse_meta_graph(bytes(meta_graph_or_file))
    copy = _private_copy(meta_graph_or_file, pb.MetaGraphDef)
    if copy is None:
        raise InvalidArgumentError(None, None, (
            f"Expected a .meta path, bytes or a MetaGraphDef, got "
            f"{type(meta_graph_or_file).__name__}."))
    return copy


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
    """Writes ``meta`` to ``path`` atomically (temp file + rename), creating parent dirs."""
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as f:
            f.write(serialize_meta_graph(meta, as_text))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
