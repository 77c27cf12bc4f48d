"""What every landslide segmentation model of this package shares: its output, prediction, Hub files and card.

`TransLandSegModel` (SAM + ATL adapters) and `BaselineSegmentationModel` (the paper's CNNs) implement this
interface side by side, so training, evaluation, scene mapping and the Hub treat them alike.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import ModelCard, ModelCardData, ModelHubMixin
from PIL import Image
from torch import nn
from transformers.utils import ModelOutput

from .hub import PathOrRepoId, resolve_model_folder
from .image_processing import PREPROCESSOR_CONFIG, ImageLike, TransLandSegImageProcessor, to_rgb_array
from .io_utils import move_files_into, staging_dir_for
from .losses import LossConfig, loss_for_labels
from .metrics import table_header, table_row

PAPER_URL = "https://arxiv.org/abs/2403.10127"
CARD_METRICS = ["precision", "recall", "f1", "accuracy", "mean_iou"]


@dataclass
class SegmentationOutput(ModelOutput):
    """
    loss (`torch.FloatTensor` of shape `()`, *optional*): 0.5 BCE + 0.5 Dice (by default), when `labels` were given.
    logits (`torch.FloatTensor` of shape `(batch_size, 1, height, width)`): landslide logits at the input's size.
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None


@dataclass
class CardDetails:
    """What a model kind says about itself on its model card."""

    model_name: str
    summary: str  # one paragraph: what the model is and where its weights come from
    structure: list[str] = field(default_factory=list)  # one Markdown line per structural fact
    base_model: Optional[str] = None  # a Hub id only: the card's `base_model` metadata links to it
    tags: list[str] = field(default_factory=list)


class SegmentationModel(
    nn.Module,
    ModelHubMixin,
    library_name="translandseg-hf",
    license="apache-2.0",
    pipeline_tag="image-segmentation",
    tags=["landslide", "remote-sensing", "segmentation", "translandseg"],
    paper_url=PAPER_URL,
    model_card_template=resources.files(__package__).joinpath("model_card.md").read_text(encoding="utf-8"),
):
    """Images in, one landslide logit map out: `forward`, `predict`, and Hub files through `ModelHubMixin`.

    A kind implements `image_size`, `input_channels`, `forward`, `parameter_counts`, `trainable_state_dict`,
    `load_weights`, `_save_pretrained`, `_from_folder`, `card_details` and `describe`, and names its files in
    `saved_files`. `predict` takes RGB images; a multispectral model reads its bands from rasters (`translandseg
    predict`), as its contract says.
    """

    saved_files: ClassVar[tuple[str, ...]] = ()  # the files a saved folder must hold; the first identifies the kind
    optional_files: ClassVar[tuple[str, ...]] = ("README.md", PREPROCESSOR_CONFIG)  # also fetched from the Hub (globs)
    loss_config: LossConfig
    image_processor: TransLandSegImageProcessor  # the input contract: bands, scaling, input and tile size

    def set_image_processor(self, image_processor: Optional[TransLandSegImageProcessor] = None) -> None:
        """Attach the input contract (by default 8-bit RGB, extra bands as they are, tiles of the input side)."""
        extra = self.input_channels - 3
        image_processor = image_processor or TransLandSegImageProcessor(
            bands=range(1, 4 + extra), band_mean=[0.0] * extra, band_std=[1.0] * extra, input_size=self.image_size)
        if image_processor.input_size != self.image_size:
            raise ValueError(f"The image processor's input_size is {image_processor.input_size}, but the model takes "
                             f"{self.image_size} x {self.image_size} inputs.")
        if len(image_processor.bands) != self.input_channels:
            raise ValueError(f"The image processor reads {len(image_processor.bands)} bands, but the model takes "
                             f"{self.input_channels} input channels.")
        self.image_processor = image_processor

    # ------------------------------------------------------------------------------------------ for each kind
    @property
    def image_size(self) -> int:
        """Side of the square input the model takes."""
        raise NotImplementedError

    @property
    def input_channels(self) -> int:
        """Channels of `pixel_values`: 3 (RGB), plus any extra bands."""
        raise NotImplementedError

    def parameter_counts(self) -> dict[str, int]:
        """`total` and `trainable` parameters, as the model computes."""
        raise NotImplementedError

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors training changes (what checkpoints hold), by the names of `self.state_dict()`."""
        raise NotImplementedError

    def load_weights(self, folder: Union[str, os.PathLike]) -> None:
        """Put the trained tensors of a folder written by `save_pretrained` into this live model."""
        raise NotImplementedError

    def _save_pretrained(self, save_directory: Path) -> None:
        raise NotImplementedError

    @classmethod
    def _from_folder(cls, folder: Path, **kwargs) -> "SegmentationModel":
        raise NotImplementedError

    def card_details(self) -> CardDetails:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What tables of runs show: `model` (the kind's name) and its structure (`preset` for TransLandSeg)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ shared
    def compute_loss(self, logits: torch.Tensor, labels: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        return None if labels is None else loss_for_labels(logits, labels, self.loss_config)

    @torch.no_grad()
    def predict_proba(self, images: Sequence[ImageLike], batch_size: int = 4) -> list[np.ndarray]:
        """Landslide probabilities (float32, H x W) at each image's own size, for PIL images or arrays of any size."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        rgb_images = [to_rgb_array(image) for image in images]
        probabilities = []
        for start in range(0, len(rgb_images), batch_size):
            chunk = rgb_images[start : start + batch_size]
            logits = self(self.image_processor.pixel_values_from_rgb(chunk).to(device)).logits.float()
            for image, image_logits in zip(chunk, logits):
                resized = F.interpolate(image_logits[None], size=image.shape[:2], mode="bilinear", align_corners=False)
                probabilities.append(torch.sigmoid(resized)[0, 0].cpu().numpy())
        self.train(was_training)
        return probabilities

    def predict(self, images: Sequence[ImageLike], threshold: float = 0.5, batch_size: int = 4) -> list[np.ndarray]:
        """Binary landslide masks (uint8 0/1, H x W) at each image's own size."""
        if isinstance(images, Image.Image) or (isinstance(images, np.ndarray) and images.ndim < 4):
            images = [images]
        return [(p > threshold).astype(np.uint8) for p in self.predict_proba(images, batch_size=batch_size)]

    def save_pretrained(
        self, save_directory: Union[str, os.PathLike], *, model_card_kwargs: Optional[dict] = None, **_mixin_kwargs
    ) -> None:
        """Write the kind's files and a model card; each file appears by an atomic rename once all are written.

        `model_card_kwargs` fill the card: `repo_id`, `model_name`, `datasets`, `metrics` ({split: scores}),
        `split_sizes` ({split: samples}) and `best_epoch`. (`ModelHubMixin.push_to_hub` saves through here.)
        """
        staging = staging_dir_for(save_directory)
        try:
            self._save_pretrained(staging)
            self.image_processor.save_pretrained(str(staging))
            self.generate_model_card(**(model_card_kwargs or {})).save(staging / "README.md")
            move_files_into(staging, save_directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: PathOrRepoId, *, revision: Optional[str] = None, **kwargs
    ) -> "SegmentationModel":
        """A saved model from a local folder or a Hub repository (read from the cache when offline).

        Overrides `ModelHubMixin.from_pretrained`, which reads a `config.json` that a PEFT adapter folder does not
        have; `token`, `cache_dir`, `force_download` and `local_files_only` go to `snapshot_download`.
        """
        download = {k: kwargs.pop(k) for k in ("token", "cache_dir", "force_download", "local_files_only") if k in kwargs}
        folder = resolve_model_folder(
            pretrained_model_name_or_path, f"a saved {cls.__name__}", cls.saved_files,
            cls.optional_files, revision, **download,
        )
        model = cls._from_folder(folder, revision=revision, **kwargs)
        if (folder / PREPROCESSOR_CONFIG).is_file():
            model.set_image_processor(TransLandSegImageProcessor.from_pretrained(str(folder)))
        else:
            model.set_image_processor(TransLandSegImageProcessor.legacy(model.image_size, folder))
        return model

    def push_to_hub(self, repo_id: str, *, model_card_kwargs: Optional[dict] = None, **kwargs) -> str:
        """`ModelHubMixin.push_to_hub` (save to a temporary folder, create the repository, upload), with a card
        whose usage lines name the repository."""
        return super().push_to_hub(repo_id, model_card_kwargs={"repo_id": repo_id, **(model_card_kwargs or {})}, **kwargs)

    def generate_model_card(
        self,
        repo_id: str = "path/to/this/folder",
        model_name: Optional[str] = None,
        datasets: Optional[Sequence[str]] = None,
        metrics: Optional[dict] = None,
        split_sizes: Optional[dict] = None,
        best_epoch: Optional[int] = None,
    ) -> ModelCard:
        """The one model-card template of every kind, filled with its own details and the run's scores."""
        details = self.card_details()
        info = self._hub_mixin_info
        data = ModelCardData(**info.model_card_data.to_dict())
        data.tags = sorted(set((data.tags or []) + details.tags) - {"model_hub_mixin"})
        data.base_model = details.base_model
        data.datasets = list(datasets) if datasets else None
        data.metrics = CARD_METRICS
        counts = self.parameter_counts()
        return ModelCard.from_template(
            data, template_str=info.model_card_template, model_name=model_name or details.model_name,
            summary=details.summary, structure=details.structure, repo_id=repo_id, paper_url=info.paper_url,
            total=f"{counts['total']:,}", trainable=f"{counts['trainable']:,}",
            metrics=scores_table(metrics, split_sizes, best_epoch), contract=contract_lines(self.image_processor),
        )


def contract_lines(processor: TransLandSegImageProcessor) -> list[str]:
    """The card's input section: what `translandseg predict` will read and how, from the saved image processor."""
    scaling = {"none": "none (8-bit values as they are)", "divisor": f"`value / {processor.divisor:g} * 255`, clipped",
               "percentile": f"a per-scene {processor.percentiles[0]:g}-{processor.percentiles[1]:g} percentile stretch"}
    ground = f"{processor.ground_resolution:g} m per pixel" if processor.ground_resolution else "unknown"
    return [f"Bands (1-based, in channel order): {', '.join(map(str, processor.bands))}",
            f"Scaling to 0-255: {scaling[processor.scale]}",
            f"Tile size: {processor.tile_size} px of the scene per model input, resized to {processor.input_size} px",
            f"Ground resolution of the training imagery: {ground}"]


def scores_table(metrics: Optional[dict], split_sizes: Optional[dict] = None, best_epoch: Optional[int] = None) -> str:
    """The card's scores section: the paper's columns per split, with split sizes and the epoch they come from."""
    metrics = {split: scores for split, scores in (metrics or {}).items() if scores}
    if not metrics:
        return "No evaluation was recorded with this model."
    sizes = split_sizes or {}
    rows = [table_row(f"{split} (n={sizes[split]})" if split in sizes else split, s) for split, s in metrics.items()]
    epoch = f" The weights are those of epoch {best_epoch}, the best by validation landslide IoU." if best_epoch else ""
    return (
        f"Scores in percent (P, REC and F1 are means over background and landslide).{epoch}\n\n"
        f"{table_header('split')}\n" + "\n".join(rows)
    )
