"""The CPU's own kernels for TF ops (``@op(..., device="cpu")``) and its fused chains
(``@fused(..., device="cpu")``), built on :mod:`gpugraph.devices.cpu`.

Each gives the generic body's bits and runs that body where it does not serve the values.
"""

from gpugraph.ops.cpu import conv, math, nn, training  # noqa: F401  (registrations)
