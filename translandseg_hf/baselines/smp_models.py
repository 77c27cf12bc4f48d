"""The paper's CNN baselines by name: UNet, DeepLabv3+ and PSPNet from segmentation-models-pytorch, and CCNet (each
network class is named in `model_kinds.KINDS`)."""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import nn

from ..model_kinds import BASELINE_MODELS, import_named, model_kind

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
    require_smp()  # CCNet too takes its encoder from segmentation-models-pytorch
    architecture = import_named(model_kind(model).network)
    return allow_batches_of_one(
        architecture(encoder_name=encoder_name, encoder_weights=encoder_weights, in_channels=in_channels, classes=1))


class BatchNormAllowingOneValue(nn.BatchNorm2d):
    """BatchNorm that uses its running statistics for a training batch of one value per channel, where plain
    BatchNorm raises: DeepLabv3+'s image-pooling branch on the last batch of an odd training split in batches of 2.
    Same parameters and buffers, so saved weights are plain BatchNorm weights."""

    def forward(self, x):
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def allow_batches_of_one(network: nn.Module) -> nn.Module:
    for module in network.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = BatchNormAllowingOneValue
    return network
