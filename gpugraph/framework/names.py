"""Node and tensor name syntax, and name-scope rewriting, exactly as TensorFlow spells them.

TF names: an op is ``scope/name``; its outputs are ``name:0``, ``name:1``...; a control input
in a NodeDef is ``^name``; colocation constraints are ``loc:@name`` strings in the ``_class``
attr.  ``prepend_name_scope``/``strip_name_scope`` are TF's regex rewrites from
``python/framework/ops.py``, used by ``import_scope`` and ``export_scope``.
"""

from __future__ import annotations

import functools
import re

# TF's validation regexes (python/framework/ops.py).
VALID_OP_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*$")
VALID_SCOPE_NAME = re.compile(r"^[A-Za-z0-9_.\\/>-]*$")

COLOCATION_PREFIX = "loc:@"
_PREPEND = re.compile(r"([\^]|loc:@|^)(.*)")


def split_input(name: str) -> tuple[str, int]:
    """Parses a NodeDef input: ``"x"`` -> ("x", 0), ``"x:2"`` -> ("x", 2), ``"^x"`` -> ("x", -1).

    Index -1 marks a control input.  Malformed indices raise ValueError.
    """
    if name.startswith("^"):
        return name[1:], -1
    op_name, sep, index = name.rpartition(":")
    if not sep:
        return name, 0
    if not index.isdigit():
        raise ValueError(f"Invalid tensor name {name!r}: output index {index!r} is not a number")
    return op_name, int(index)


def split_tensor_name(name: str) -> tuple[str, int | None]:
    """Splits ``"x:0"`` into ("x", 0); an op name without ``:`` gives (name, None)."""
    op_name, sep, index = name.rpartition(":")
    if not sep:
        return name, None
    if not index.isdigit():
        raise ValueError(
            f"The name {name!r} looks a like a Tensor name, but is not a valid one. "
            "Tensor names must be of the form \"<op_name>:<output_index>\"."
        )
    return op_name, int(index)


@functools.lru_cache(maxsize=None)
def _scope_prefix(scope: str) -> str:
    return scope[:-1] if scope.endswith("/") else scope


def prepend_name_scope(name: str, scope: str | None) -> str:
    """TF's ``ops.prepend_name_scope``: ``x`` -> ``s/x``, ``^x`` -> ``^s/x``, ``loc:@x`` -> ``loc:@s/x``."""
    if not scope:
        return name
    prefix = _scope_prefix(scope)
    if name.startswith("^"):
        return f"^{prefix}/{name[1:]}"
    if name.startswith(COLOCATION_PREFIX):
        return f"{COLOCATION_PREFIX}{prefix}/{name[len(COLOCATION_PREFIX):]}"
    return f"{prefix}/{name}"


def strip_name_scope(name: str, scope: str | None) -> str:
    """TF's ``ops.strip_name_scope``: removes the first ``scope/`` after an optional ``^``/``loc:@``."""
    if not scope:
        return name
    prefix = _scope_prefix(scope)
    pattern = r"([\^]|loc:@|^)" + re.escape(prefix) + r"[\/]+(.*)"
    return re.sub(pattern, r"\1\2", name, count=1)


def colocation_target(entry: str | bytes) -> str | None:
    """Returns the op name in a ``loc:@name`` ``_class`` entry, or None for other entries."""
    if isinstance(entry, bytes):
        entry = entry.decode("utf-8", "replace")
    if entry.startswith(COLOCATION_PREFIX):
        return entry[len(COLOCATION_PREFIX):]
    return None
