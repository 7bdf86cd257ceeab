"""``tf.compat.v1.summary``: writing TensorBoard event files (:class:`FileWriter`)."""

from gpugraph.train.summary_writer import FileWriter as FileWriter
