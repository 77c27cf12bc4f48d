"""Test-time augmentation over the 8 flips and 90-degree rotations of a square input (the dihedral group D4): the
mean logit, and the spread of the 8 probabilities as a per-pixel uncertainty. Landslides have no preferred
orientation in a nadir image, so a model's disagreement with itself under these symmetries flags doubtful pixels.

Used by `translandseg predict --tta` and `recipes/evaluate.py --tta`, so the map and the scores come from one code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..segmentation import SegmentationOutput

# (quarter turns, flip) of each D4 element; the inverse undoes the flip, then the turns.
D4 = [(turns, flip) for flip in (False, True) for turns in range(4)]


def d4_transform(images: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    """(..., H, W): a horizontal flip (if `flip`), then `turns` counter-clockwise quarter turns."""
    images = images.flip(-1) if flip else images
    return torch.rot90(images, turns, dims=(-2, -1))


def d4_inverse(images: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    images = torch.rot90(images, -turns, dims=(-2, -1))
    return images.flip(-1) if flip else images


@dataclass
class TTAOutput(SegmentationOutput):
    """
    logits (`torch.FloatTensor` of shape `(batch_size, 1, height, width)`): the mean of the 8 transformed logits.
    uncertainty (`torch.FloatTensor` of shape `(batch_size, 1, height, width)`): the standard deviation of the 8
        landslide probabilities (population std, 0 where every transform agrees).
    """

    uncertainty: Optional[torch.FloatTensor] = None


@torch.no_grad()
def d4_predict(model: nn.Module, pixel_values: torch.Tensor) -> TTAOutput:
    """Run `model` on the 8 D4 transforms of square `pixel_values` (B, C, S, S) and map each result back."""
    if pixel_values.shape[-1] != pixel_values.shape[-2]:
        raise ValueError(f"Test-time augmentation needs square inputs, got {tuple(pixel_values.shape[-2:])}.")
    logits = torch.stack([d4_inverse(model(d4_transform(pixel_values, turns, flip)).logits.float(), turns, flip)
                          for turns, flip in D4])  # (8, B, 1, S, S)
    probabilities = torch.sigmoid(logits)
    return TTAOutput(logits=logits.mean(0), uncertainty=probabilities.std(0, unbiased=False))


class TestTimeAugmentation(nn.Module):
    """A model whose forward is `d4_predict` of the wrapped one (for scoring with `evaluate_loader`)."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.image_size = getattr(model, "image_size", None)

    def forward(self, pixel_values: torch.Tensor) -> TTAOutput:
        return d4_predict(self.model, pixel_values)
