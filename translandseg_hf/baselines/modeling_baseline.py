"""BaselineSegmentationModel: a CNN baseline behind the shared segmentation interface, so the same recipes train,
save, load and score it."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..cards import CardDetails, baseline_details
from ..hub import read_json_config
from ..model_kinds import BASELINE_MODELS, DISPLAY_NAMES, SAVED_FORMATS
from ..losses import LossConfig
from ..segmentation import SegmentationModel, SegmentationOutput
from .smp_models import INPUT_MULTIPLE, build_network

BASELINE_CONFIG = SAVED_FORMATS["baseline"].identifying_file  # baseline_config.json
BASELINE_WEIGHTS = "model.safetensors"


@dataclass
class BaselineConfig:
    """What rebuilds a baseline: architecture, encoder and input size (the weights file holds the rest)."""

    model: str = "unet"  # unet | deeplabv3plus | pspnet | ccnet
    encoder_name: str = "resnet50"  # a ResNet encoder as in the paper's baselines
    encoder_weights: Optional[str] = None  # where the encoder started (e.g. "imagenet"); reloading never downloads
    image_size: int = 1024  # square input, the same as TransLandSeg's runs
    in_channels: int = 3

    def __post_init__(self):
        if self.model not in BASELINE_MODELS:
            raise ValueError(f"Unknown baseline model {self.model!r}; valid ones are {list(BASELINE_MODELS)}.")
        if self.image_size < INPUT_MULTIPLE or self.image_size % INPUT_MULTIPLE:
            raise ValueError(f"image_size must be a multiple of {INPUT_MULTIPLE} for model {self.model!r} "
                             f"(a ResNet encoder downsamples 32 times), got {self.image_size}.")


class BaselineSegmentationModel(SegmentationModel):
    """A CNN baseline (UNet, DeepLabv3+, PSPNet or CCNet), fully fine-tuned, with TransLandSeg's loss and input."""

    saved_files = (BASELINE_CONFIG, BASELINE_WEIGHTS)

    def __init__(self, config: BaselineConfig, loss_config: Optional[LossConfig] = None, network: nn.Module = None):
        super().__init__()
        self.config = config
        self.network = network if network is not None else build_network(
            config.model, config.encoder_name, config.encoder_weights, config.in_channels)
        self.loss_config = loss_config or LossConfig()
        self.set_image_processor()

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def input_channels(self) -> int:
        return self.config.in_channels

    @property
    def display_name(self) -> str:
        return f"{DISPLAY_NAMES[self.config.model]} ({self.config.encoder_name})"

    def forward(self, pixel_values: torch.Tensor, labels: Optional[torch.Tensor] = None) -> SegmentationOutput:
        """pixel_values (B, C, S, S), SAM-normalised like TransLandSeg's; labels (B, 1, S, S) or (B, S, S) in {0, 1}."""
        size = self.image_size
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (self.config.in_channels, size, size):
            raise ValueError(f"pixel_values must have shape (batch, {self.config.in_channels}, {size}, {size}) "
                             f"for this {self.config.model}, got {tuple(pixel_values.shape)}.")
        logits = self.network(pixel_values)  # (B, 1, S, S)
        return SegmentationOutput(loss=self.compute_loss(logits, labels), logits=logits)

    def parameter_counts(self) -> dict[str, int]:
        """Total and trainable parameters (every parameter trains: the baselines are fully fine-tuned)."""
        return {"total": sum(p.numel() for p in self.parameters()),
                "trainable": sum(p.numel() for p in self.parameters() if p.requires_grad)}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor of the network, BatchNorm statistics included: a resumed run needs them too."""
        return {name: t.detach().cpu().contiguous() for name, t in self.state_dict().items()}

    def load_weights(self, folder: Union[str, os.PathLike]) -> None:
        self.network.load_state_dict(read_weights(Path(folder) / BASELINE_WEIGHTS))

    def describe(self) -> dict[str, Any]:
        return {"model": self.config.model, "preset": None, "encoder_name": self.config.encoder_name,
                "input_channels": self.input_channels}

    def card_details(self) -> CardDetails:
        return baseline_details(self.display_name, DISPLAY_NAMES[self.config.model], self.config.encoder_name,
                                self.config.encoder_weights, self.image_size, self.config.in_channels)

    def _save_pretrained(self, save_directory: Path) -> None:
        """`baseline_config.json` and `model.safetensors` (the whole network)."""
        state = {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}
        save_file(state, str(save_directory / BASELINE_WEIGHTS), metadata={"format": "pt"})
        config = json.dumps(dataclasses.asdict(self.config), indent=2) + "\n"
        (save_directory / BASELINE_CONFIG).write_text(config, encoding="utf-8")

    @classmethod
    def _from_folder(cls, folder: Path, revision: Optional[str] = None) -> "BaselineSegmentationModel":
        """The encoder is rebuilt without weights (no download); the saved file holds all of them."""
        values = read_json_config(folder / BASELINE_CONFIG)
        unknown = set(values) - {f.name for f in dataclasses.fields(BaselineConfig)}
        if unknown:
            raise ValueError(f"{folder / BASELINE_CONFIG} has unknown keys {sorted(unknown)}.")
        config = BaselineConfig(**values)
        network = build_network(config.model, config.encoder_name, None, config.in_channels)
        network.load_state_dict(read_weights(folder / BASELINE_WEIGHTS))
        return cls(config, network=network).eval()


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as error:
        raise ValueError(f"{path} is not a readable safetensors file (truncated?): {error}") from error
