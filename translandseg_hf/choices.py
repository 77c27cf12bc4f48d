"""The names a configuration or a command can choose from, kept free of heavy imports so that `--help` and
config parsing stay fast: datasets and split schemes, and the model kinds (named from their table in
`model_kinds.py`; the ATL presets live with ATL, in `atl/presets.py`)."""

from .model_kinds import BASELINE_MODELS, DISPLAY_NAMES, MODEL_KINDS  # noqa: F401  (re-exported: config choices)

DATASET_NAMES = ("bijie", "landslide4sense", "folder", "synthetic")
SPLIT_SCHEMES = ("train", "default", "translandseg")
