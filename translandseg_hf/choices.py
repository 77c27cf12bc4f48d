"""The names a configuration or a command can choose from, kept free of heavy imports so that `--help` and
config parsing stay fast: model kinds, datasets and split schemes."""

BASELINE_MODELS = ("unet", "deeplabv3plus", "pspnet", "ccnet")
MODEL_KINDS = ("translandseg", *BASELINE_MODELS)
DISPLAY_NAMES = {"translandseg": "TransLandSeg", "unet": "UNet", "deeplabv3plus": "DeepLabv3+", "pspnet": "PSPNet",
                 "ccnet": "CCNet"}

DATASET_NAMES = ("bijie", "landslide4sense", "folder", "synthetic")
SPLIT_SCHEMES = ("train", "default", "translandseg")

# The ATL structures live with ATL (`atl/presets.py`); these names still load from here until every caller imports
# them from there.
_MOVED_TO_ATL_PRESETS = ("MIDDLE_LAYER_KINDS", "PLACEMENTS", "ADAPTER_INPUTS", "PRESETS")


def __getattr__(name: str):
    if name not in _MOVED_TO_ATL_PRESETS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module("translandseg_hf.atl.presets"), name)
