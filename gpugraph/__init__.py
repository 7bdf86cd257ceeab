"""gpugraph: continue TensorFlow 1.x training runs (``.meta`` + V2 checkpoints) without TensorFlow.

The public names mirror ``tf.compat.v1``::

    import gpugraph as gg
    saver = gg.train.import_meta_graph("run/model-10000.meta")
    train_op = gg.get_collection("train_op")[0]
    with gg.Session() as sess:
        saver.restore(sess, "run/model-10000")
        sess.run(train_op, feed_dict={"x:0": xb, "y:0": yb})
"""

from gpugraph import dtypes as dtypes
from gpugraph import errors as errors
from gpugraph import saved_model as saved_model
from gpugraph import distributed as distributed
from gpugraph import summary as summary
from gpugraph._proto import GraphDef as GraphDef
from gpugraph.train import graph_util as graph_util
from gpugraph import train as train
from gpugraph.dtypes import *  # noqa: F403  (tf.float32, tf.int64, ... at the top level, as TF)
from gpugraph.dtypes import DType as DType, as_dtype as as_dtype
from gpugraph.framework.builders import (
    constant as constant,
    group as group,
    identity as identity,
    no_op as no_op,
    placeholder as placeholder,
)
from gpugraph.framework.device_spec import DeviceSpec as DeviceSpec
from gpugraph.framework.graph import (
    Graph as Graph,
    add_to_collection as add_to_collection,
    add_to_collections as add_to_collections,
    colocate_with as colocate_with,
    control_dependencies as control_dependencies,
    device as device,
    get_collection as get_collection,
    get_collection_ref as get_collection_ref,
    get_default_graph as get_default_graph,
    name_scope as name_scope,
    reset_default_graph as reset_default_graph,
)
from gpugraph.framework.graph_keys import GraphKeys as GraphKeys
from gpugraph.framework.importer import import_graph_def_v1 as import_graph_def  # noqa: F401
from gpugraph.framework.ops import Operation as Operation, Tensor as Tensor
from gpugraph.framework.tensor_shape import TensorShape as TensorShape
from gpugraph.framework.variable_ops import (
    global_variables as global_variables,
    global_variables_initializer as global_variables_initializer,
    is_variable_initialized as is_variable_initialized,
    local_variables as local_variables,
    local_variables_initializer as local_variables_initializer,
    model_variables as model_variables,
    report_uninitialized_variables as report_uninitialized_variables,
    trainable_variables as trainable_variables,
    variables_initializer as variables_initializer,
)
from gpugraph.framework.variables import Variable as Variable
from gpugraph.session import Session as Session, get_default_session as get_default_session

__version__ = "0.1.0"


def get_all_collection_keys() -> list[str]:
    """Collection keys of the default graph (``tf.compat.v1.get_all_collection_keys``)."""
    return get_default_graph().get_all_collection_keys()
