"""gpugraph's exception tree, mirroring ``tf.errors``.

Every error gpugraph raises on bad input is an :class:`OpError` subclass with TF's name and
error code, so code written against ``tf.errors`` ports by changing the import.  Errors carry
structured fields (``node_name``, ``path``, ``details``) next to the rendered message, so tools
can act on them without parsing text.

Where TensorFlow raises a *Python* builtin (``ValueError`` from ``import_meta_graph`` for a
malformed GraphDef, ``KeyError`` from ``get_tensor_by_name``), gpugraph raises the same builtin
or a class that inherits from both, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

from typing import Any

# Codes from tensorflow/core/protobuf/error_codes.proto (tsl.error.Code).
OK = 0
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
ABORTED = 10
OUT_OF_RANGE = 11
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
DATA_LOSS = 15
UNAUTHENTICATED = 16


class OpError(Exception):
    """Base class of gpugraph's runtime and format errors (``tf.errors.OpError``).

    Args:
        node_def: the NodeDef (or None) the error is about, as in TF.
        op: the Operation (or None) the error is about, as in TF.
        message: the rendered, human-readable message.
        details: optional structured data behind the message (file, tensor, shapes, ...).
    """

    error_code = UNKNOWN

    def __init__(self, node_def: Any, op: Any, message: str, details: dict | None = None):
        super().__init__(message)
        self._node_def = node_def
        self._op = op
        self._message = message
        self.details: dict = dict(details or {})

    @property
    def message(self) -> str:
        return self._message

    @property
    def node_def(self) -> Any:
        return self._node_def

    @property
    def op(self) -> Any:
        return self._op

    @property
    def code(self) -> int:
        return self.error_code

    def __str__(self) -> str:
        return self._message

    def __reduce__(self):
        # Keeps errors picklable across process boundaries (subprocess tests, multiprocessing).
        return (self.__class__, (None, None, self._message, self.details))


def _subclass(name: str, code: int, doc: str) -> type[OpError]:
    return type(name, (OpError,), {"error_code": code, "__doc__": doc})


CancelledError = _subclass("CancelledError", CANCELLED, "An operation was cancelled.")
UnknownError = _subclass("UnknownError", UNKNOWN, "An error of an unknown kind.")
InvalidArgumentError = _subclass(
    "InvalidArgumentError", INVALID_ARGUMENT, "An argument (graph, feed, shape, dtype, ...) is invalid."
)
DeadlineExceededError = _subclass("DeadlineExceededError", DEADLINE_EXCEEDED, "A deadline expired.")
NotFoundError = _subclass(
    "NotFoundError", NOT_FOUND, "A requested entity (file, variable, tensor) was not found."
)
AlreadyExistsError = _subclass("AlreadyExistsError", ALREADY_EXISTS, "An entity already exists.")
PermissionDeniedError = _subclass("PermissionDeniedError", PERMISSION_DENIED, "Permission denied.")
ResourceExhaustedError = _subclass(
    "ResourceExhaustedError", RESOURCE_EXHAUSTED, "A resource (memory, disk) is exhausted."
)
FailedPreconditionError = _subclass(
    "FailedPreconditionError",
    FAILED_PRECONDITION,
    "The system is not in a state for the operation (e.g. reading an uninitialized variable).",
)
AbortedError = _subclass("AbortedError", ABORTED, "An operation was aborted.")
OutOfRangeError = _subclass("OutOfRangeError", OUT_OF_RANGE, "An operation iterated past the valid range.")
UnimplementedError = _subclass(
    "UnimplementedError", UNIMPLEMENTED, "The operation or format is not implemented by gpugraph."
)
InternalError = _subclass("InternalError", INTERNAL, "An internal invariant was broken (a gpugraph bug).")
UnavailableError = _subclass("UnavailableError", UNAVAILABLE, "The service or device is unavailable.")
DataLossError = _subclass(
    "DataLossError", DATA_LOSS, "Unrecoverable data loss or corruption (truncated or damaged file)."
)
UnauthenticatedError = _subclass("UnauthenticatedError", UNAUTHENTICATED, "Missing credentials.")


class GraphDefError(InvalidArgumentError, ValueError):
    """A GraphDef/MetaGraphDef is malformed (unknown input, cycle, bad output index, ...).

    TF's ``import_meta_graph`` raises ``ValueError`` for these; this class is both an
    :class:`InvalidArgumentError` and a ``ValueError`` so either ``except`` clause catches it.
    """


class DeviceSpecError(InvalidArgumentError, ValueError):
    """A device string does not parse (TF raises ``ValueError`` from ``DeviceSpec.from_string``)."""


class DevicePlacementError(InvalidArgumentError):
    """Device assignments in a graph cannot be honoured on this machine.

    ``details["report"]`` holds the structured placement report the message was rendered from.
    """


class DataParallelError(UnavailableError):
    """A data-parallel run cannot go on: MPI is missing, a collective timed out (another rank
    died or hangs), or the ranks loaded different graphs or checkpoints (``details`` names the
    ranks and what differs)."""


_CODE_TO_CLASS = {
    cls.error_code: cls
    for cls in (
        CancelledError,
        UnknownError,
        InvalidArgumentError,
        DeadlineExceededError,
        NotFoundError,
        AlreadyExistsError,
        PermissionDeniedError,
        ResourceExhaustedError,
        FailedPreconditionError,
        AbortedError,
        OutOfRangeError,
        UnimplementedError,
        InternalError,
        UnavailableError,
        DataLossError,
        UnauthenticatedError,
    )
}


def exception_type_from_error_code(error_code: int) -> type[OpError]:
    """Returns the OpError subclass for a TF error code (as ``tf.errors`` does)."""
    try:
        return _CODE_TO_CLASS[error_code]
    except KeyError:
        raise KeyError(f"Unknown error code: {error_code!r}") from None


def error_code_from_exception_type(cls: type[OpError]) -> int:
    """Returns the TF error code of an OpError subclass."""
    return cls.error_code


__all__ = [
    "OpError",
    "GraphDefError",
    "DeviceSpecError",
    "DevicePlacementError",
    "DataParallelError",
    "exception_type_from_error_code",
    "error_code_from_exception_type",
    *(cls.__name__ for cls in _CODE_TO_CLASS.values()),
]
