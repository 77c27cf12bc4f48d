#!/usr/bin/env bash
# The main job on a fresh machine: set up, train demo.yaml (small random SAM, synthetic scenes, offline),
# evaluate on the test split, and write metrics.json and the prediction grid under runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-runs/demo}
# A rerun replaces the previous demo run (evaluation included) once its training completes; a resume continues it.
case " $* " in
  *" --resume_from_checkpoint"*) REPLACE=() ;;
  *) REPLACE=(--overwrite_output_dir true) ;;
esac
python recipes/train.py --config recipes/configs/demo.yaml --output_dir "$OUT" ${REPLACE[@]+"${REPLACE[@]}"} "$@"
python recipes/evaluate.py --model "$OUT/model" --config recipes/configs/demo.yaml --split test --save_predictions "$OUT/predictions" --output_json "$OUT/evaluation.json"
echo "Model: $OUT/model  metrics: $OUT/metrics.json  evaluation: $OUT/evaluation.json  figure: $OUT/predictions/grid.png"
