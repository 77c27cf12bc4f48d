"""The names a configuration or a command can choose from, kept free of heavy imports so that `--help` and
config parsing stay fast: model kinds, datasets and split schemes (the ATL presets
live with ATL, in `atl/presets.py`)."""

BASELINE_MODELS = ("unet", "deeplabv3plus", "pspnet", "ccnet")
MODEL_KINDS = ("translandseg", *BASELINE_MODELS)
DISPLAY_NAMES = {"translandseg": "TransLandSeg", "unet": "UNet", "deeplabv3plus": "DeepLabv3+", "pspnet": "PSPNet",
                 "ccnet": "CCNet"}

DATASET_NAMES = ("bijie", "landslide4sense", "folder", "synthetic")
SPLIT_SCHEMES = ("train", "default", "translandseg")
