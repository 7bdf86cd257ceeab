"""Writing TF1 SavedModels (``tf.compat.v1.saved_model.Builder``, ``simple_save``,
``signature_def_utils``), in the layout and protos TF's loader reads.

:class:`Builder` saves the session's variables once, as a V2 checkpoint under
``variables/variables``, and one MetaGraphDef per tag set (this graph, the Saver's SaverDef,
the signatures, the asset files copied into ``assets/`` and listed both in ``asset_file_def``
and in the ``saved_model_assets`` collection as TF 1.x loaders expect, the main op in the
``saved_model_main_op`` collection); :meth:`Builder.save` writes ``saved_model.pb`` (or
``.pbtxt``) last, through a rename.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from google.protobuf import text_format

from gpugraph import _proto as pb
from gpugraph import errors
from gpugraph.framework.graph import get_default_graph
from gpugraph.saved_model import loader, signature_constants, tag_constants
from gpugraph.train.saver import Saver

_ASSET_TYPE_URL = "type.googleapis.com/tensorflow.AssetFileDef"


# --- signature_def_utils ------------------------------------------------------------------------
def build_tensor_info(tensor: Any) -> Any:
    """A ``TensorInfo`` naming ``tensor`` with its dtype and (known) shape."""
    info = pb.TensorInfo(name=tensor.name, dtype=tensor.dtype.base_dtype.as_datatype_enum)
    shape = tensor.shape
    if shape.dims is None:
        info.tensor_shape.unknown_rank = True
    else:
        for dim in shape.dims:
            info.tensor_shape.dim.add().size = -1 if dim is None else int(dim)
    return info


def build_signature_def(inputs: Mapping[str, Any] | None = None,
                        outputs: Mapping[str, Any] | None = None,
                        method_name: str | None = None) -> Any:
    """A ``SignatureDef`` of TensorInfos (``signature_def_utils.build_signature_def``)."""
    signature = pb.SignatureDef(method_name=method_name or "")
    for key, info in (inputs or {}).items():
        signature.inputs[key].CopyFrom(info)
    for key, info in (outputs or {}).items():
        signature.outputs[key].CopyFrom(info)
    return signature


def predict_signature_def(inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    """A predict ``SignatureDef`` of tensors (``signature_def_utils.predict_signature_def``)."""
    if not inputs:
        raise ValueError("Prediction inputs cannot be None or empty.")
    if not outputs:
        raise ValueError("Prediction outputs cannot be None or empty.")
    return build_signature_def({k: build_tensor_info(t) for k, t in inputs.items()},
                               {k: build_tensor_info(t) for k, t in outputs.items()},
                               signature_constants.PREDICT_METHOD_NAME)


# --- the builder ----------------------------------------------------------------------------------
class Builder:
    """Builds a SavedModel in ``export_dir`` (TF's ``SavedModelBuilder``)."""

    def __init__(self, export_dir: str | os.PathLike):
        self._export_dir = os.fspath(export_dir)
        if os.path.exists(self._export_dir) and os.listdir(self._export_dir):
            raise AssertionError(
                "Export directory already exists, and isn't empty. Please choose a different "
                f"export directory, or delete all the contents of the specified directory: "
                f"{self._export_dir}")
        os.makedirs(self._export_dir, exist_ok=True)
        self._model = pb.message_class("tensorflow.SavedModel")(saved_model_schema_version=1)
        self._saver: Saver | None = None

    def add_meta_graph_and_variables(
            self, sess: Any, tags: Iterable[str], signature_def_map: Mapping | None = None,
            assets_collection: Any = None, legacy_init_op: Any = None,
            clear_devices: bool = False, main_op: Any = None, strip_default_attrs: bool = False,
            saver: Saver | None = None) -> None:
        """Saves the variables and the first MetaGraphDef, tagged ``tags``."""
        if self._saver is not None:
            raise AssertionError("Graph state including variables and assets has already been "
                                 "saved. Please invoke `add_meta_graph()` instead.")
        with sess.graph.as_default():
            self._saver = saver or Saver(sharded=True, allow_empty=True)
            variables = os.path.join(self._export_dir, "variables")
            os.makedirs(variables, exist_ok=True)
            self._saver.save(sess, os.path.join(variables, "variables"),
                             write_meta_graph=False, write_state=False)
            self._add(sess, tags, signature_def_map, assets_collection,
                      main_op or legacy_init_op, clear_devices, strip_default_attrs)

    def add_meta_graph(self, tags: Iterable[str], signature_def_map: Mapping | None = None,
                       assets_collection: Any = None, legacy_init_op: Any = None,
                       clear_devices: bool = False, main_op: Any = None,
                       strip_default_attrs: bool = False, saver: Any = None) -> None:
        """Adds another MetaGraphDef of the default graph, tagged ``tags``, over the variables
        saved by :meth:`add_meta_graph_and_variables`."""
        if self._saver is None:
            raise AssertionError("Graph state including variables and assets has not been "
                                 "saved yet. Please invoke `add_meta_graph_and_variables()` "
                                 "first.")
        self._add(None, tags, signature_def_map, assets_collection, main_op or legacy_init_op,
                  clear_devices, strip_default_attrs)

    def add_meta_graph_def(self, meta_graph_def: Any, assets_dir: str | None = None) -> None:
        """Adds a MetaGraphDef as it stands (another SavedModel's tag set, over the variables
        saved here: a gpugraph extension for re-exporting a trained model with all its tag
        sets); its asset files are copied from ``assets_dir``."""
        if self._saver is None:
            raise AssertionError("Graph state including variables and assets has not been "
                                 "saved yet. Please invoke `add_meta_graph_and_variables()` "
                                 "first.")
        for asset in meta_graph_def.asset_file_def:
            source = os.path.join(assets_dir or "", asset.filename)
            self._copy_asset(source, asset.filename, asset.tensor_info.name)
        self._model.meta_graphs.add().CopyFrom(meta_graph_def)

    def save(self, as_text: bool = False) -> str:
        """Writes ``saved_model.pb`` (``.pbtxt`` with ``as_text``); returns its path."""
        name = loader.PBTXT if as_text else loader.PB
        path = os.path.join(self._export_dir, name)
        data = text_format.MessageToString(self._model).encode() if as_text else \
            self._model.SerializeToString(deterministic=True)
        temporary = path + ".tmp"
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
        return path

    # -- internals --

    def _add(self, sess: Any, tags: Iterable[str], signatures: Mapping | None, assets: Any,
             main_op: Any, clear_devices: bool, strip_default_attrs: bool) -> None:
        graph = sess.graph if sess is not None else get_default_graph()
        with graph.as_default():
            if main_op is not None and main_op not in graph.get_collection(loader.MAIN_OP_KEY):
                graph.add_to_collection(loader.MAIN_OP_KEY, main_op)
            asset_defs = self._copy_assets(sess, graph, assets)
            meta = self._saver.export_meta_graph(clear_devices=clear_devices,
                                                 strip_default_attrs=strip_default_attrs)
        meta.meta_info_def.tags.extend(sorted(set(tags)) if not isinstance(tags, str) else [tags])
        for key, signature in (signatures or {}).items():
            meta.signature_def[key].CopyFrom(signature)
        if asset_defs:
            meta.asset_file_def.extend(asset_defs)
            listed = meta.collection_def[loader.ASSETS_KEY].any_list.value
            del listed[:]
            for asset in asset_defs:
                listed.add(type_url=_ASSET_TYPE_URL, value=asset.SerializeToString())
        self._model.meta_graphs.add().CopyFrom(meta)

    def _copy_assets(self, sess: Any, graph: Any, assets: Any) -> list:
        """Each asset tensor's file copied into ``assets/``, as an AssetFileDef."""
        tensors = list(assets) if assets is not None else list(
            graph.get_collection("asset_filepaths"))
        if not tensors:
            return []
        defs = []
        loaded = loader.asset_paths(graph)
        for tensor in tensors:
            source = loaded.get(tensor.name) or _asset_path(tensor, sess)
            name = os.path.basename(source)
            self._copy_asset(source, name, tensor.name)
            asset = pb.AssetFileDef(filename=name)
            asset.tensor_info.name = tensor.name
            defs.append(asset)
        return defs


    def _copy_asset(self, source: str, name: str, tensor_name: str) -> None:
        directory = os.path.join(self._export_dir, "assets")
        os.makedirs(directory, exist_ok=True)
        target = os.path.join(directory, name)
        if not os.path.exists(target):
            try:
                shutil.copyfile(source, target)
            except OSError as e:
                raise errors.NotFoundError(
                    None, None, f"Asset file {source} (tensor {tensor_name}) could not be "
                    f"copied into the SavedModel: {e.strerror}", {"file": source}) from None


def _asset_path(tensor: Any, sess: Any) -> str:
    # An asset tensor is a string Const holding the file's path (TF reads it the same way).
    from gpugraph.io.tensor import make_ndarray  # noqa: PLC0415  (only for assets)

    if tensor.op.type == "Const":
        value = make_ndarray(tensor.op.get_attr("value"))
    else:
        value = sess.run(tensor)
    item = np.asarray(value, dtype=object).reshape(-1)[0]
    return item.decode() if isinstance(item, bytes) else str(item)


def simple_save(session: Any, export_dir: str | os.PathLike, inputs: Mapping[str, Any],
                outputs: Mapping[str, Any], legacy_init_op: Any = None) -> None:
    """A serving SavedModel with one ``serving_default`` predict signature (TF's
    ``simple_save``)."""
    signature = predict_signature_def(inputs, outputs)
    builder = Builder(export_dir)
    builder.add_meta_graph_and_variables(
        session, [tag_constants.SERVING],
        {signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY: signature},
        main_op=legacy_init_op, clear_devices=True)
    builder.save()
