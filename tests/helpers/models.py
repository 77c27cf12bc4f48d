"""The stand-ins for a trained model, each with the `image_size` / `forward(pixel_values).logits` interface of the
library's models, and the tiny real models built for tests.

The stand-ins' logits depend on each pixel (or its small neighbourhood) alone, so a tiled pass can be compared with a
whole-scene one exactly; `Graph` is a rule to export as a broken ONNX model.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import torch
from torch import nn

EXTRA = 11  # Landslide4Sense: 14 bands, of which B4, B3, B2 are RGB


class ConvModel(nn.Module):
    """Landslide logit = a fixed convolution of the normalised image (3 -> 1 channels, no bias)."""

    def __init__(self, weight: torch.Tensor, image_size: int = 32, padding_mode: str = "zeros"):
        super().__init__()
        self.image_size = image_size
        kernel_size = weight.shape[-1]
        self.conv = nn.Conv2d(3, 1, kernel_size, padding=kernel_size // 2, padding_mode=padding_mode, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(weight)

    def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.conv(pixel_values))  # (B, 1, S, S)


class LocalModel(ConvModel):
    """CNN-baseline stand-in: landslide logit = normalised red (1x1), or a fixed 3x3 filter of the image (reflected
    at the edges)."""

    def __init__(self, image_size: int = 32, kernel_size: int = 1):
        generator = torch.Generator().manual_seed(0)
        weight = 0.1 * torch.randn((1, 3, kernel_size, kernel_size), generator=generator)
        weight[0, 0, kernel_size // 2, kernel_size // 2] = 1.0  # mostly the red channel
        super().__init__(weight, image_size, padding_mode="reflect")


class KernelModel(ConvModel):
    """A random fixed convolution (zero-padded): D4-equivariant for a symmetric 1 x 1 kernel, not for an asymmetric
    3 x 3 one."""

    def __init__(self, image_size: int = 32, kernel_size: int = 1):
        generator = torch.Generator().manual_seed(0)
        super().__init__(torch.randn((1, 3, kernel_size, kernel_size), generator=generator), image_size)


class RedModel(nn.Module):
    """Landslide logit = the red channel as SAM normalises it: red 200 -> 1.31, background 50 -> -1.26; counts its
    calls."""

    image_size = 32

    def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        self.calls = getattr(self, "calls", 0) + 1
        return SimpleNamespace(logits=pixel_values[:, :1])  # (B, 1, S, S)


class PointwiseModel(nn.Module):
    """Logit = a fixed weighting of each normalised pixel's bands: tiling and blending give it back exactly."""

    def __init__(self, image_size: int):
        super().__init__()
        self.image_size = image_size
        self.register_buffer("weights", torch.tensor([0.02, -0.01, 0.005]).view(1, 3, 1, 1))

    def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=(pixel_values * self.weights).sum(1, keepdim=True))


class Graph(nn.Module):
    """(B, 3, S, S) normalised pixels -> (B, 1, S', S') logits by `rule`: a stand-in for a broken exported model."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def forward(self, pixel_values):
        return self.rule(pixel_values)


def tiny_atl(preset: str):
    """A preset with an 8-wide bottleneck: hidden 32 / 32 would give d = 1, where MidLay_c's LayerNorm is constant."""
    from translandseg_hf import ATLConfig

    return ATLConfig.from_preset(preset, bottleneck_dim=8)


def multispectral(sam, preset="translandseg", extra=EXTRA, seed=0):
    """A TransLandSeg model on a copy of `sam` with `extra` bands beside RGB (a fresh band embedding)."""
    from translandseg_hf import TransLandSegModel

    torch.manual_seed(seed)
    config = tiny_atl(preset)
    config.extra_bands = extra
    return TransLandSegModel.from_sam(copy.deepcopy(sam), config)
