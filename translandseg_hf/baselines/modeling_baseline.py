"""BaselineSegmentationModel: a CNN baseline behind TransLandSegModel's interface, so the same recipes train, save,
load and score it."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Optional, Union

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..io_utils import move_files_into, staging_dir_for
from ..hub import push_saved_model, resolve_model_folder
from ..losses import LossConfig, loss_for_labels
from ..modeling_translandseg import TransLandSegModel, TransLandSegOutput
from .smp_models import BASELINE_MODELS, DISPLAY_NAMES, INPUT_MULTIPLE, build_network

BASELINE_FILES = {"config": "baseline_config.json", "weights": "model.safetensors", "card": "README.md"}


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


class BaselineSegmentationModel(nn.Module):
    """A CNN baseline (UNet, DeepLabv3+, PSPNet or CCNet) that trains and scores like `TransLandSegModel`."""

    def __init__(self, config: BaselineConfig, loss_config: Optional[LossConfig] = None, network: nn.Module = None):
        super().__init__()
        self.config = config
        self.network = network if network is not None else build_network(
            config.model, config.encoder_name, config.encoder_weights, config.in_channels)
        self.loss_config = loss_config or LossConfig()

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def display_name(self) -> str:
        return f"{DISPLAY_NAMES[self.config.model]} ({self.config.encoder_name})"

    def forward(self, pixel_values: torch.Tensor, labels: Optional[torch.Tensor] = None) -> TransLandSegOutput:
        """pixel_values (B, 3, S, S), SAM-normalised like TransLandSeg's; labels (B, 1, S, S) or (B, S, S) in {0, 1}."""
        size = self.image_size
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (self.config.in_channels, size, size):
            raise ValueError(f"pixel_values must have shape (batch, {self.config.in_channels}, {size}, {size}) "
                             f"for this {self.config.model}, got {tuple(pixel_values.shape)}.")
        logits = self.network(pixel_values)  # (B, 1, S, S)
        loss = None if labels is None else loss_for_labels(logits, labels, self.loss_config)
        return TransLandSegOutput(loss=loss, logits=logits)

    # The same resizing, normalisation and thresholding as TransLandSeg: one code path for both kinds.
    predict_proba = TransLandSegModel.predict_proba
    predict = TransLandSegModel.predict

    def parameter_counts(self) -> dict[str, int]:
        """Total and trainable parameters (every parameter trains: the baselines are fully fine-tuned)."""
        return {"total": sum(p.numel() for p in self.parameters()),
                "trainable": sum(p.numel() for p in self.parameters() if p.requires_grad)}

    # ----------------------------------------------------------------------------------------------------- saving
    def save_pretrained(self, save_directory: Union[str, os.PathLike], metrics: Optional[dict] = None,
                        datasets: Optional[list] = None, model_name: Optional[str] = None, **_ignored) -> None:
        """Write `baseline_config.json`, `model.safetensors` and a model card, each by an atomic rename."""
        staging = staging_dir_for(save_directory)
        try:
            state = {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}
            save_file(state, str(staging / BASELINE_FILES["weights"]), metadata={"format": "pt"})
            config = json.dumps(dataclasses.asdict(self.config), indent=2) + "\n"
            (staging / BASELINE_FILES["config"]).write_text(config, encoding="utf-8")
            card = self.model_card(metrics, datasets, model_name)
            (staging / BASELINE_FILES["card"]).write_text(card, encoding="utf-8")
            move_files_into(staging, save_directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def model_card(self, metrics: Optional[dict] = None, datasets: Optional[list] = None,
                   model_name: Optional[str] = None) -> str:
        counts = self.parameter_counts()
        lines = ["---", "library_name: translandseg-hf", "tags: [landslide, segmentation, baseline]"]
        lines += [f"datasets: {list(datasets)}"] if datasets else []
        lines += ["---", "", f"# {model_name or self.display_name}", "",
                  f"A {self.display_name} landslide-segmentation baseline, trained with the TransLandSeg recipe "
                  f"(same data, loss and metrics). Input {self.image_size} x {self.image_size}, "
                  f"{counts['total']:,} parameters, all trainable.", "",
                  "```python", "from translandseg_hf.auto import load_segmentation_model",
                  "model = load_segmentation_model(PATH_OR_REPO_ID)", "masks = model.predict(images)", "```"]
        for split, scores in (metrics or {}).items():
            if scores:
                lines += ["", f"{split}: " + ", ".join(f"{k} {100 * v:.2f}" for k, v in scores.items())]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_pretrained(cls, path_or_repo_id: Union[str, os.PathLike], revision: Optional[str] = None
                        ) -> "BaselineSegmentationModel":
        """A saved baseline from a local folder or a Hub repository; the encoder is not downloaded again."""
        folder = resolve_baseline_folder(path_or_repo_id, revision)
        values = json.loads((folder / BASELINE_FILES["config"]).read_text())
        unknown = set(values) - {f.name for f in dataclasses.fields(BaselineConfig)}
        if unknown:
            raise ValueError(f"{folder / BASELINE_FILES['config']} has unknown keys {sorted(unknown)}.")
        config = BaselineConfig(**values)
        network = build_network(config.model, config.encoder_name, None, config.in_channels)
        weights = folder / BASELINE_FILES["weights"]
        try:
            state = load_file(str(weights))
        except Exception as error:
            raise ValueError(f"{weights} is not a readable safetensors file (truncated?): {error}") from error
        network.load_state_dict(state)
        return cls(config, network=network).eval()

    def load_weights(self, folder: Union[str, os.PathLike]) -> None:
        """Load the weights saved in `folder` into this model (the training recipe reloads its best epoch)."""
        self.network.load_state_dict(load_file(str(Path(folder) / BASELINE_FILES["weights"])))

    def push_to_hub(self, repo_id: str, private: Optional[bool] = None, token: Optional[str] = None,
                    commit_message: str = "Upload landslide baseline", **card_fields) -> str:
        """Save to a temporary folder (weights, config, model card), create the repository if needed and upload it."""
        return push_saved_model(partial(self.save_pretrained, **card_fields), repo_id, private, token, commit_message)


def resolve_baseline_folder(path_or_repo_id: Union[str, os.PathLike], revision: Optional[str] = None) -> Path:
    """A local folder with a saved baseline, downloading a Hub repository if needed."""
    return resolve_model_folder(
        path_or_repo_id, (BASELINE_FILES["config"], BASELINE_FILES["weights"]), "baseline model", revision,
        extra_patterns=list(BASELINE_FILES.values()),
    )
