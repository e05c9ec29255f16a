#!/usr/bin/env bash
# The CUDA tests and the CUDA benchmark groups in one command (under 5 minutes on one GPU),
# ending with pytest-benchmark's table and the ratio table of the run.
#
#   scripts/cuda_check.sh            # from the repository root or anywhere; PYTHON=... to override
#
# 1. every test marked `cuda` (backends, diagnose on a CUDA model), run once;
# 2. the training-loop groups with the torch-cuda parameter beside numpy, torch-cpu and the two
#    references, and the watch-overhead groups with bare-cuda and watched-cuda
#    (watch() on a CUDA model, issue 21), timed; then the ratios of the fastest rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" - <<'PYEOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("cuda_check: torch.cuda.is_available() is False: no CUDA device (or a CPU build of "
             f"torch {torch.__version__}); nothing to measure")
print("cuda_check:", torch.cuda.get_device_name(0), "torch", torch.__version__)
PYEOF
timeout 120 "$PY" -m pytest tests -m cuda -q -rs -p no:cacheprovider
timeout 240 "$PY" -m pytest tests/test_benchmarks.py -q -rP -p no:cacheprovider \
    -k "training_loop or watch_overhead or ratio_target" \
    --benchmark-enable --benchmark-min-rounds=5 --benchmark-max-time=0.5 \
    --benchmark-columns=min,median,iqr,rounds --benchmark-sort=name
