"""The paper's training loss: a weighted sum of binary cross-entropy and soft Dice on the landslide mask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F


@dataclass
class LossConfig:
    """Weights of `bce_weight * BCE + dice_weight * Dice`; 0.5 / 0.5 and no class weight, as the authors trained."""

    bce_weight: float = 0.5
    dice_weight: float = 0.5
    pos_weight: Optional[float] = None  # weight of landslide pixels in the BCE term, for rare landslides
    dice_smooth: float = 1.0  # keeps Dice defined (and zero) when an image and its prediction are both empty


def soft_dice_loss(logits: torch.Tensor, labels: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - (2|P*T| + s) / (|P| + |T| + s) per image, averaged over the batch; logits and labels are (B, 1, H, W)."""
    probabilities = torch.sigmoid(logits).flatten(1)
    labels = labels.flatten(1)
    overlap = (probabilities * labels).sum(1)
    dice = (2 * overlap + smooth) / (probabilities.sum(1) + labels.sum(1) + smooth)
    return (1 - dice).mean()


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, config: LossConfig = LossConfig()) -> torch.Tensor:
    """BCE + soft Dice (the paper's Section III-C); logits and labels are (B, 1, H, W), labels in {0, 1}."""
    labels = labels.to(logits.dtype)
    pos_weight = None if config.pos_weight is None else torch.tensor(config.pos_weight, device=logits.device)
    bce = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight)
    return config.bce_weight * bce + config.dice_weight * soft_dice_loss(logits, labels, config.dice_smooth)


def loss_for_labels(logits: torch.Tensor, labels: torch.Tensor, config: LossConfig) -> torch.Tensor:
    """The training loss of (B, 1, H, W) logits against labels given as (B, 1, H, W) or (B, H, W)."""
    labels = labels[:, None] if labels.ndim == 3 else labels
    if labels.shape != logits.shape:
        raise ValueError(f"labels must have shape {tuple(logits.shape)} or {tuple(logits.shape[:1] + logits.shape[2:])} "
                         f"to match the logits, got {tuple(labels.shape)}.")
    if ((labels != 0) & (labels != 1)).any():  # a 0/255 mask would give a negative loss, not an error
        found = torch.unique(labels)
        shown = ", ".join(f"{value:g}" for value in found[:8].tolist()) + (", ..." if len(found) > 8 else "")
        raise ValueError(f"labels must be 0 (background) or 1 (landslide), found values {shown}; "
                         "divide a 0/255 mask by 255 (the package's loaders give 0/1 masks).")
    return segmentation_loss(logits, labels, config)
