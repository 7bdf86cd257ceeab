"""The CPU backend: numpy, gpugraph's thread crew, numba loops and the LLVM convolution kernel.

Nothing above the device layer imports this package; the plan reaches it through
:class:`~gpugraph.devices.cpu.device.CpuDevice`'s hooks, and the CPU's op overrides
(``gpugraph/ops/cpu``) register against the ``"cpu"`` device kind.
"""
