"""Virtual GPUs: numpy-backed stand-ins whose arrays are bound to their device, which refuse
what CuPy refuses, so that CI on a machine without CUDA catches what a real GPU would."""
