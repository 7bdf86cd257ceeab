"""SavedModels (``tf.compat.v1.saved_model``): loading a TF1 SavedModel's tag set into a
session (:func:`load`, also ``loader.load``), with TF's tag and signature constants."""

from gpugraph.saved_model import loader as loader
from gpugraph.saved_model import signature_constants as signature_constants
from gpugraph.saved_model import tag_constants as tag_constants
from gpugraph.saved_model.loader import contains_saved_model as contains_saved_model
from gpugraph.saved_model.loader import load as load
