#!/usr/bin/env bash
# The prepared GPU check (issue 16), under 8 minutes on one GPU:
#   benchmarks/gpu_check.sh               # on a GPU machine: results/gpu_check/gpu_check.json
#   benchmarks/gpu_check.sh --cpu-smoke   # a quick dry run of this script on a CPU machine
# It builds or loads nerfacc's CUDA extension, runs `pytest -m gpu`, runs the smoke preset end to end
# on CUDA, and times one RGB and one latent fit of the default preset's first held-out scene and one
# paper-preset IG-AE step (128x128, f8 / 16-channel AE of the paper's shape, random init).
# See benchmarks/gpu_check.py for the steps and options (--out, --work, --budget, --method).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || { echo "gpu_check: $PY not found: run 'make setup' first (or set PYTHON)" >&2; exit 2; }
# nerfacc JIT-builds into $TORCH_EXTENSIONS_DIR; one shared folder per machine (or cluster file system).
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$HOME/.cache/torch_extensions}"
export DVC_NO_ANALYTICS=1
exec "$PY" benchmarks/gpu_check.py "$@"
