#!/usr/bin/env bash
# Create .venv (if missing) and install translandseg-hf with the baselines, zero-shot, app, onnx and test extras.
# Safe to rerun: nothing is reinstalled while pyproject.toml is unchanged (the package is installed editable, so code
# changes count).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
STAMP=.venv/.translandseg-installed
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
WANTED="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANTED" ]; then
  exit 0
fi
python -m pip install --quiet --upgrade pip
# torch and torchvision as a matching pair (segmentation-models-pytorch needs torchvision; a bare `torch`
# requirement could pull an unmatched build). On CPU-only machines this CUDA build runs on the CPU.
if ! python -c "import torch, torchvision" 2>/dev/null; then
  echo "setup: installing torch 2.14.1 + torchvision 0.29.1 (a CUDA build that also runs on CPUs: about 5.5 GB in .venv)"
  python -m pip install --progress-bar on "torch==2.14.1" "torchvision==0.29.1"
fi
echo "setup: installing translandseg-hf (editable) with transformers, peft, accelerate, datasets, rasterio, smp, ..."
python -m pip install --progress-bar on -e ".[dev,baselines,zero-shot,app,onnx,imagery,inventory,docs]"
echo "$WANTED" > "$STAMP"
echo "setup: done ($(du -sh .venv | cut -f1) in .venv)"
