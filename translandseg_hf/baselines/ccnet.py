"""CCNet (Huang et al. 2019, "CCNet: Criss-Cross Attention for Semantic Segmentation"): a dilated ResNet and a
recurrent criss-cross attention (RCCA) head, written compactly after the authors' released code, since no maintained
implementation installs from PyPI."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class CrissCrossAttention(nn.Module):
    """Each position attends to the positions of its own row and column only (Sec. 3.2 of the CCNet paper).

    Queries and keys are reduced to C/8 channels, as in the paper; `gamma` starts at zero, so a fresh module is the
    identity and learns how much context to add.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.query = nn.Conv2d(channels, max(channels // 8, 1), 1)
        self.key = nn.Conv2d(channels, max(channels // 8, 1), 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, height, width = x.shape
        query, key, value = self.query(x), self.key(x), self.value(x)
        energy_column = torch.einsum("bchw,bcgw->bhwg", query, key)  # (B, H, W, H): (i, j) against (g, j)
        energy_row = torch.einsum("bchw,bchg->bhwg", query, key)  # (B, H, W, W): (i, j) against (i, g)
        self_in_column = torch.eye(height, dtype=torch.bool, device=x.device)[:, None, :]  # (i, j) is in both sets
        energy_column = energy_column.masked_fill(self_in_column, float("-inf"))  # count it once, in the row
        attention = torch.softmax(torch.cat([energy_column, energy_row], dim=-1), dim=-1)  # eq. 1 of the paper
        out_column = torch.einsum("bhwg,bcgw->bchw", attention[..., :height], value)
        out_row = torch.einsum("bhwg,bchg->bchw", attention[..., height:], value)
        return self.gamma * (out_column + out_row) + x  # eq. 2


class RCCAHead(nn.Module):
    """Reduce, apply criss-cross attention `recurrence` times (R=2 reaches every position), fuse with the input."""

    def __init__(self, in_channels: int, num_classes: int = 1, recurrence: int = 2, head_channels: int = 512):
        super().__init__()
        inner = in_channels // 4  # the authors' reduction before attention
        self.recurrence = recurrence
        self.reduce = conv_bn_relu(in_channels, inner)
        self.attention = CrissCrossAttention(inner)  # shared across recurrences, as in the paper
        self.after = conv_bn_relu(inner, inner)
        self.bottleneck = nn.Sequential(conv_bn_relu(in_channels + inner, head_channels), nn.Dropout2d(0.1))
        self.classifier = nn.Conv2d(head_channels, num_classes, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        context = self.reduce(features)
        for _ in range(self.recurrence):
            context = self.attention(context)
        context = self.after(context)
        return self.classifier(self.bottleneck(torch.cat([features, context], dim=1)))


class CCNet(nn.Module):
    """A ResNet encoder (smp's, dilated to output stride 8 as in the paper) + RCCA head; logits at the input size."""

    def __init__(self, encoder_name: str = "resnet50", encoder_weights=None, in_channels: int = 3, classes: int = 1,
                 recurrence: int = 2):
        super().__init__()
        from segmentation_models_pytorch.encoders import get_encoder

        self.encoder = get_encoder(encoder_name, in_channels=in_channels, depth=5, weights=encoder_weights,
                                   output_stride=8)
        self.head = RCCAHead(self.encoder.out_channels[-1], classes, recurrence)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.encoder(x)[-1])  # (B, classes, H/8, W/8)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
