"""SavedModels (``tf.compat.v1.saved_model``): loading a TF1 SavedModel's tag set into a
session (:func:`load`, also ``loader.load``), writing one (:class:`Builder`, :func:`simple_save`,
``signature_def_utils``), with TF's tag and signature constants."""

import types as _types

from gpugraph.saved_model import loader as loader
from gpugraph.saved_model import signature_constants as signature_constants
from gpugraph.saved_model import tag_constants as tag_constants
from gpugraph.saved_model.loader import contains_saved_model as contains_saved_model
from gpugraph.saved_model.loader import load as load
from gpugraph.saved_model.builder import Builder as Builder
from gpugraph.saved_model.builder import simple_save as simple_save
from gpugraph.saved_model import builder as _builder

SavedModelBuilder = Builder
builder = _types.SimpleNamespace(SavedModelBuilder=Builder)
signature_def_utils = _types.SimpleNamespace(
    build_signature_def=_builder.build_signature_def,
    predict_signature_def=_builder.predict_signature_def)
utils = _types.SimpleNamespace(build_tensor_info=_builder.build_tensor_info)
