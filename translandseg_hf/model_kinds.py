"""The model kinds a run can train, named once (imports nothing heavy, so configs and `--help` stay fast)."""

BASELINE_MODELS = ("unet", "deeplabv3plus", "pspnet", "ccnet")
MODEL_KINDS = ("translandseg", *BASELINE_MODELS)
DISPLAY_NAMES = {"translandseg": "TransLandSeg", "unet": "UNet", "deeplabv3plus": "DeepLabv3+", "pspnet": "PSPNet",
                 "ccnet": "CCNet"}
