"""``tf.compat.v1.summary``: writing TensorBoard event files (:class:`FileWriter`), with the
``Event``, ``SessionLog`` and ``Summary`` protos (TF's ``tf.compat.v1.Summary`` and friends)."""

from gpugraph.train.summary_writer import Event as Event
from gpugraph.train.summary_writer import FileWriter as FileWriter
from gpugraph.train.summary_writer import SessionLog as SessionLog
from gpugraph.train.summary_writer import Summary as Summary
from gpugraph.train.summary_writer import scalar_summary as scalar_summary
