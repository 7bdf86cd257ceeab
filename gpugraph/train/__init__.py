"""``gpugraph.train``: the ``tf.compat.v1.train`` names gpugraph provides."""

from gpugraph.train.checkpoint_management import (
    CheckpointNotFoundError as CheckpointNotFoundError,
    checkpoint_exists as checkpoint_exists,
    get_checkpoint_state as get_checkpoint_state,
    latest_checkpoint as latest_checkpoint,
    remove_checkpoint as remove_checkpoint,
    update_checkpoint_state as update_checkpoint_state,
)
from gpugraph.train.checkpoint_utils import (
    CheckpointReader as CheckpointReader,
    NewCheckpointReader as NewCheckpointReader,
    list_variables as list_variables,
    load_checkpoint as load_checkpoint,
    load_variable as load_variable,
)
from gpugraph.train.meta_graph import (
    export_meta_graph as export_meta_graph,
    import_meta_graph as import_meta_graph,
)
from gpugraph.train.queue_runner import Coordinator as Coordinator
from gpugraph.train.queue_runner import QueueRunner as QueueRunner
from gpugraph.train.queue_runner import add_queue_runner as add_queue_runner
from gpugraph.train.queue_runner import start_queue_runners as start_queue_runners
from gpugraph.train.saver import Saver as Saver
