#!/usr/bin/env bash
# Everything a GPU machine must show, in one call of under 8 minutes:
#   scripts/device_check.sh OUT_DIR [WHEELHOUSE]
# installs gpugraph (and any wheels in WHEELHOUSE: that machine has no package index), runs the
# GPU test suite (continuation fixtures on GPU:0 included) with CUDA graphs on and off, and
# scripts/bench_gpu.py --quick; logs and JSON go to OUT_DIR.  The cuDNN frontend travels as a
# wheel (Python 3.12 there):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 -d .whl nvidia-cudnn-frontend==1.22.1
set -uo pipefail
out="${1:?usage: scripts/device_check.sh OUT_DIR [WHEELHOUSE]}"
wheels="${2:-}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
python3 -m venv --system-site-packages .venv-gpu >/dev/null
if [ -n "$wheels" ]; then
    .venv-gpu/bin/pip install -q --no-index --no-deps "$wheels"/*.whl >"$out/pip.log" 2>&1
fi
.venv-gpu/bin/pip install -q --no-deps --no-build-isolation -e . >>"$out/pip.log" 2>&1
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
run() {  # name, timeout seconds, command...
    local name=$1 limit=$2
    shift 2
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    echo "$name: exit $?" | tee -a "$out/summary.txt"
}
# Which libraries serve the GPU kernels (cuDNN for convolutions, or why not).
run libraries 60 .venv-gpu/bin/python - <<'PY'
import numpy as np
from gpugraph.devices import discover
gpu = [d for d in discover().gpus if d.kind == "cuda"][0]
x = gpu.to_device(np.ones((2, 8, 8, 3), np.float32))
w = gpu.to_device(np.ones((3, 3, 3, 4), np.float32))
y = gpu.convolutions().forward(x, w, ((1, 1), (1, 1)), (1, 1), (1, 1))
print("cuDNN:", "serves" if y is not None else gpu.convolutions().unavailable,
      None if y is None else float(y.sum()))
a = gpu.to_device(np.ones((64, 32), np.float32))
print("cuBLAS direct:", float(gpu.blas().matmul(a, a.T).sum()), "(want", 64 * 64 * 32, ")")
PY
# tests/gpu holds the continuation fixtures on GPU:0: with CUDA graphs (the default), then without.
run gpu-tests-graphs 150 .venv-gpu/bin/python -m pytest -q tests/gpu
GPUGRAPH_CUDA_GRAPHS=0 run gpu-tests-eager 120 .venv-gpu/bin/python -m pytest -q tests/gpu
run bench-gpu 150 .venv-gpu/bin/python scripts/bench_gpu.py --quick --json "$out/bench_gpu.json"
