"""The CUDA backend's own kernels for TF ops (``@op(..., device="cuda")``), built on
:mod:`gpugraph.devices.cuda`.  Importing them never imports CuPy."""

from gpugraph.ops.cuda import conv, math, training  # noqa: F401  (registrations)
