#!/usr/bin/env bash
# Set up (if needed) and run the test suite: tiny random SAMs, no network, a few minutes on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python -m pytest tests "$@"
