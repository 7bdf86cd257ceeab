"""TF-wire-compatible protobuf message classes, built in a private descriptor pool.

Why a private pool: TensorFlow registers ``tensorflow/core/framework/*.proto`` (package
``tensorflow``) in protobuf's process-wide default pool.  If gpugraph registered its own files
of the same names there, whichever library imported second would fail with a duplicate-file or
duplicate-symbol error.  Building our classes in a pool of our own keeps the two libraries
independent in one process, in either import order, while the wire format (package
``tensorflow``, same field numbers and types) stays identical, so bytes written by either side
parse in the other.  Type URLs of ``Any`` values are plain strings and are kept untouched.

Only ``gpugraph.io`` and the graph/train layers touch these classes; they are not public API.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal import enum_type_wrapper

from gpugraph._proto._descriptors import SERIALIZED_FILE_DESCRIPTOR_SET

POOL = descriptor_pool.DescriptorPool()


def _load_classes() -> dict[str, type]:
    fds = descriptor_pb2.FileDescriptorSet.FromString(SERIALIZED_FILE_DESCRIPTOR_SET)
    for file_proto in fds.file:  # protoc --include_imports writes dependencies first
        POOL.Add(file_proto)
    return message_factory.GetMessages(list(fds.file), pool=POOL)


_CLASSES = _load_classes()


def message_class(full_name: str) -> type:
    """Returns the message class for a full proto name such as ``tensorflow.NodeDef``."""
    return _CLASSES[full_name]


def _enum(full_name: str) -> enum_type_wrapper.EnumTypeWrapper:
    return enum_type_wrapper.EnumTypeWrapper(POOL.FindEnumTypeByName(full_name))


Any = _CLASSES["google.protobuf.Any"]
MetaGraphDef = _CLASSES["tensorflow.MetaGraphDef"]
CollectionDef = _CLASSES["tensorflow.CollectionDef"]
SignatureDef = _CLASSES["tensorflow.SignatureDef"]
TensorInfo = _CLASSES["tensorflow.TensorInfo"]
AssetFileDef = _CLASSES["tensorflow.AssetFileDef"]
GraphDef = _CLASSES["tensorflow.GraphDef"]
NodeDef = _CLASSES["tensorflow.NodeDef"]
AttrValue = _CLASSES["tensorflow.AttrValue"]
NameAttrList = _CLASSES["tensorflow.NameAttrList"]
TensorProto = _CLASSES["tensorflow.TensorProto"]
VariantTensorDataProto = _CLASSES["tensorflow.VariantTensorDataProto"]
TensorShapeProto = _CLASSES["tensorflow.TensorShapeProto"]
ResourceHandleProto = _CLASSES["tensorflow.ResourceHandleProto"]
VersionDef = _CLASSES["tensorflow.VersionDef"]
FunctionDefLibrary = _CLASSES["tensorflow.FunctionDefLibrary"]
FunctionDef = _CLASSES["tensorflow.FunctionDef"]
OpDef = _CLASSES["tensorflow.OpDef"]
OpList = _CLASSES["tensorflow.OpList"]
SaverDef = _CLASSES["tensorflow.SaverDef"]
VariableDef = _CLASSES["tensorflow.VariableDef"]
SaveSliceInfoDef = _CLASSES["tensorflow.SaveSliceInfoDef"]
QueueRunnerDef = _CLASSES["tensorflow.QueueRunnerDef"]
ValuesDef = _CLASSES["tensorflow.ValuesDef"]
ControlFlowContextDef = _CLASSES["tensorflow.ControlFlowContextDef"]
CondContextDef = _CLASSES["tensorflow.CondContextDef"]
WhileContextDef = _CLASSES["tensorflow.WhileContextDef"]
FullTypeDef = _CLASSES["tensorflow.FullTypeDef"]
BundleHeaderProto = _CLASSES["tensorflow.BundleHeaderProto"]
BundleEntryProto = _CLASSES["tensorflow.BundleEntryProto"]
TensorSliceProto = _CLASSES["tensorflow.TensorSliceProto"]
CheckpointState = _CLASSES["tensorflow.CheckpointState"]
SavedTensorSlices = _CLASSES["tensorflow.SavedTensorSlices"]
GraphDebugInfo = _CLASSES["tensorflow.GraphDebugInfo"]

DataType = _enum("tensorflow.DataType")
FullTypeId = _enum("tensorflow.FullTypeId")
ErrorCode = _enum("tensorflow.error.Code")
VariableSynchronization = _enum("tensorflow.VariableSynchronization")
VariableAggregation = _enum("tensorflow.VariableAggregation")
