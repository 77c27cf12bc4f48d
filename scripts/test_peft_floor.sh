#!/usr/bin/env bash
# The lowest peft that pyproject.toml allows, against the ATL tests: the suite runs on the newest peft pip picks, and
# this step checks the other end of the pin (peft installed into .peft-min, ahead of the venv's on PYTHONPATH).
set -euo pipefail
cd "$(dirname "$0")/.."
FLOOR=$(sed -n 's/.*"peft>=\([0-9.]*\),.*/\1/p' pyproject.toml)
[ -n "$FLOOR" ] || { echo "error: no peft>=X floor found in pyproject.toml" >&2; exit 1; }
rm -rf .peft-min
.venv/bin/python -m pip install --quiet --no-deps --target .peft-min "peft==${FLOOR}"
VERSION=$(PYTHONPATH=.peft-min .venv/bin/python -c "import peft; print(peft.__version__)")
echo "peft floor: testing ATL with peft ${VERSION} (pin floor ${FLOOR})"
PYTHONPATH=.peft-min HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/atl tests/test_modeling.py -q -p no:cacheprovider "$@"
