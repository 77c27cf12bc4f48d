"""The paper's CNN baselines by name: UNet, DeepLabv3+ and PSPNet from segmentation-models-pytorch, and CCNet."""

from __future__ import annotations

from typing import Optional

from torch import nn

BASELINE_MODELS = ("unet", "deeplabv3plus", "pspnet", "ccnet")
DISPLAY_NAMES = {"unet": "UNet", "deeplabv3plus": "DeepLabv3+", "pspnet": "PSPNet", "ccnet": "CCNet"}
INPUT_MULTIPLE = 32  # a ResNet halves the input five times; UNet's skips need sizes that divide evenly


def require_smp():
    """segmentation-models-pytorch, or an ImportError that says how to install it."""
    try:
        import segmentation_models_pytorch
    except ImportError as error:  # torchvision is missing too on a CPU-only torch without a matching build
        raise ImportError(
            "The CNN baselines need segmentation-models-pytorch (and torchvision): "
            "pip install segmentation-models-pytorch"
        ) from error
    return segmentation_models_pytorch


def build_network(model: str, encoder_name: str = "resnet50", encoder_weights: Optional[str] = None,
                  in_channels: int = 3) -> nn.Module:
    """A one-class segmentation network whose forward maps (B, C, H, W) images to (B, 1, H, W) logits."""
    if model not in BASELINE_MODELS:
        raise ValueError(f"Unknown baseline model {model!r}; valid ones are {list(BASELINE_MODELS)}.")
    smp = require_smp()
    if model == "ccnet":
        from .ccnet import CCNet

        return CCNet(encoder_name, encoder_weights, in_channels=in_channels, classes=1)
    architecture = {"unet": smp.Unet, "deeplabv3plus": smp.DeepLabV3Plus, "pspnet": smp.PSPNet}[model]
    return architecture(encoder_name=encoder_name, encoder_weights=encoder_weights, in_channels=in_channels, classes=1)
