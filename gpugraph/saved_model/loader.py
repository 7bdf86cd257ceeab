"""Loading TF1 SavedModels (``tf.compat.v1.saved_model.loader``), with TF's steps.

A SavedModel directory holds ``saved_model.pb`` (or ``saved_model.pbtxt``): a ``SavedModel``
proto with one MetaGraphDef per tag set; ``variables/variables.{index,data-*}``, a V2
checkpoint of the variables; and ``assets/``, files the graph reads (vocabularies).
:func:`load` picks the MetaGraphDef whose tag set equals ``tags``, imports it, restores the
variables, then runs the init op (the ``__saved_model_init_op`` signature, else the
``saved_model_main_op`` collection, else ``legacy_init_op``) with each asset tensor fed the
path of its file under ``assets/``, as TF's loader does (saved_model/loader_impl.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from google.protobuf import text_format

from gpugraph import _proto as pb
from gpugraph import errors
from gpugraph.train import meta_graph as mg

_SavedModel = pb.message_class("tensorflow.SavedModel")
PB, PBTXT = "saved_model.pb", "saved_model.pbtxt"
INIT_OP_SIGNATURE_KEY = "__saved_model_init_op"
MAIN_OP_KEY = "saved_model_main_op"
LEGACY_INIT_OP_KEY = "legacy_init_op"
ASSETS_KEY = "saved_model_assets"


def contains_saved_model(export_dir: str | os.PathLike) -> bool:
    """Whether ``export_dir`` holds a ``saved_model.pb`` or ``saved_model.pbtxt``."""
    path = os.fspath(export_dir)
    return os.path.isfile(os.path.join(path, PB)) or os.path.isfile(os.path.join(path, PBTXT))


def read_saved_model(export_dir: str | os.PathLike) -> Any:
    """The ``SavedModel`` proto of ``export_dir`` (binary, else text).

    Raises:
        NotFoundError: no saved_model.pb(txt) in the directory.
        DataLossError: the file does not parse (truncated, corrupt); the message names it.
    """
    path = os.fspath(export_dir)
    binary, text = os.path.join(path, PB), os.path.join(path, PBTXT)
    model = _SavedModel()
    try:
        if os.path.isfile(binary):
            with open(binary, "rb") as f:
                model.ParseFromString(f.read())
        elif os.path.isfile(text):
            with open(text, encoding="utf-8") as f:
                text_format.Parse(f.read(), model)
        else:
            raise errors.NotFoundError(
                None, None, f"SavedModel file does not exist at: {path}{os.sep}"
                f"{{{PBTXT}|{PB}}}", {"export_dir": path})
    except errors.OpError:
        raise
    except Exception as e:  # noqa: BLE001  (protobuf's DecodeError, text ParseError)
        which = binary if os.path.isfile(binary) else text
        raise errors.DataLossError(None, None, f"Cannot parse file {which}: {e}",
                                   {"file": which}) from None
    return model


def load(sess: Any, tags: Iterable[str], export_dir: str | os.PathLike,
         import_scope: str | None = None, **saver_kwargs: Any) -> Any:
    """Loads the MetaGraphDef of tag set ``tags`` from ``export_dir`` into ``sess`` and
    returns it (its ``signature_def`` map names the inputs and outputs).

    Raises:
        NotFoundError: no SavedModel there, no MetaGraphDef with those tags (the message lists
            every tag set there is), or its variables are missing.
        DataLossError: a damaged saved_model.pb or checkpoint.
    """
    path = os.fspath(export_dir)
    model = read_saved_model(path)
    meta = _meta_graph(model, tags, path)
    graph = sess.graph
    with graph.as_default(), mg.malformed(os.path.join(path, PB)):
        saver = mg.import_meta_graph(meta, import_scope=import_scope, **saver_kwargs)
        known = dict(asset_paths(graph))
        known.update(_asset_feeds(meta, path, import_scope))
        graph._saved_model_asset_paths = known
        _restore(sess, saver, meta, path)
        _run_init_op(sess, graph, meta, path, import_scope)
    return meta


def _meta_graph(model: Any, tags: Iterable[str], path: str) -> Any:
    wanted = set(tags) if not isinstance(tags, str) else {tags}
    available = [sorted(m.meta_info_def.tags) for m in model.meta_graphs]
    for meta in model.meta_graphs:
        if set(meta.meta_info_def.tags) == wanted:
            return meta
    raise errors.NotFoundError(
        None, None, f"MetaGraphDef associated with tags {sorted(wanted)} could not be found in "
        f"SavedModel {path}; available tag sets: {available}",
        {"export_dir": path, "tags": sorted(wanted), "available": available})


def _restore(sess: Any, saver: Any, meta: Any, path: str) -> None:
    if saver is None:  # no variables: nothing to restore (TF skips it too)
        return
    prefix = os.path.join(path, "variables", "variables")
    if not os.path.exists(prefix + ".index"):
        raise errors.NotFoundError(
            None, None, f"The SavedModel {path} has variables but no checkpoint of them: "
            f"{prefix}.index does not exist", {"export_dir": path, "file": prefix + ".index"})
    saver.restore(sess, prefix)


def _asset_feeds(meta: Any, path: str, import_scope: str | None) -> dict[str, str]:
    """Each asset tensor's name -> the path of its file under ``assets/``."""
    feeds = {}
    assets = list(meta.asset_file_def)
    if ASSETS_KEY in meta.collection_def:  # (TF 1.x builders: Any-packed AssetFileDefs)
        for packed in meta.collection_def[ASSETS_KEY].any_list.value:
            asset = pb.AssetFileDef()
            packed.Unpack(asset)
            assets.append(asset)
    for asset in assets:
        name = asset.tensor_info.name
        if import_scope:
            name = f"{import_scope}/{name}"
        feeds[name] = os.path.join(path, "assets", asset.filename)
    return feeds


def _run_init_op(sess: Any, graph: Any, meta: Any, path: str, import_scope: str | None) -> None:
    op = None
    if INIT_OP_SIGNATURE_KEY in meta.signature_def:
        name = meta.signature_def[INIT_OP_SIGNATURE_KEY].outputs[INIT_OP_SIGNATURE_KEY].name
        op = graph.as_graph_element(f"{import_scope}/{name}" if import_scope else name)
    else:
        for key in (MAIN_OP_KEY, LEGACY_INIT_OP_KEY):
            found = graph.get_collection(key)
            if found:
                op = found[0]
                break
    if op is None:
        return
    feeds = _asset_feeds(meta, path, import_scope)
    sess.run(op, {graph.as_graph_element(k): v for k, v in feeds.items()} or None)


def asset_paths(graph: Any) -> dict[str, str]:
    """The files the asset tensors of SavedModels loaded into ``graph`` stand for (a saved
    asset's Const still holds the path it had when it was exported)."""
    return getattr(graph, "_saved_model_asset_paths", {})

