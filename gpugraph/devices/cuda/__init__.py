"""The CUDA backend: CuPy arrays, hand-written kernels (``kernels/*.cu``, package data) loaded
as RawModules, and the elementwise fusion emitter.

CuPy is imported only when a CUDA device is looked for (``gpugraph.devices.discover``).
"""
