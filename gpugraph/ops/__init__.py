"""Kernels: one registered builder per TF op type, grouped by family.

Importing this package registers every family (the generic bodies, written once against
``xp``), then each backend's own kernels (``ops/cpu``, ``ops/cuda``), which override them on
their device kind; :mod:`gpugraph.ops.registry` is the lookup.
"""

from gpugraph.ops import (  # noqa: F401  (imported for their registrations)
    array_ops,
    control_ops,
    conv3d_ops,
    conv_ops,
    core_ops,
    ctc_ops,
    dataset_ops,
    detection_ops,
    example_ops,
    fft_ops,
    functional_ops,
    image_ops,
    io_ops,
    layout_ops,
    linalg_ops,
    loop_ops,
    lookup_ops,
    math_ops,
    nn_ops,
    queue_ops,
    random_ops,
    reduction_ops,
    rnn_block_ops,
    sampling_ops,
    segment_ops,
    set_ops,
    sparse_ops,
    sparse_tensor_ops,
    state_ops,
    string_ops,
    summary_ops,
    tensor_array_ops,
    tensor_list_ops,
    training_ops,
)
from gpugraph.ops import cpu, cuda  # noqa: E402, F401, I001  (backend kernels, after the generic ones)
