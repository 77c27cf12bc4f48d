#!/usr/bin/env bash
# Create .venv (if missing) and install translandseg-hf with the baselines, zero-shot and test extras. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch and torchvision as a matching pair (segmentation-models-pytorch needs torchvision; a bare `torch`
# requirement could pull an unmatched build). On CPU-only machines this CUDA build runs on the CPU.
python -c "import torch, torchvision" 2>/dev/null || python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
python -m pip install --quiet -e ".[dev,baselines,zero-shot]"
