"""TransLandSegModel: prompt-free SAM with ATL adapters, saved and shared as adapter-only Hub files."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from peft import PeftConfig, PeftModel, get_peft_model
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import SamModel
from transformers.utils import ModelOutput

from .atl import ATL_PEFT_TYPE, ATLConfig
from .hub import ADAPTER_FILES, BASE_MODEL_SUBFOLDER, push_saved_model, resolve_adapter_folder
from .image_processing import ImageLike, pixel_values_from_images, to_rgb_array
from .io_utils import move_files_into, staging_dir_for
from .losses import LossConfig, loss_for_labels
from .model_card import render_model_card
from .sam_loading import SamSource, load_sam


@dataclass
class TransLandSegOutput(ModelOutput):
    """
    loss (`torch.FloatTensor` of shape `()`, *optional*): BCE + Dice loss, when `labels` were given.
    logits (`torch.FloatTensor` of shape `(batch_size, 1, height, width)`): landslide logits at the input's size.
    low_res_logits (`torch.FloatTensor` of shape `(batch_size, 1, height / 4, width / 4)`): the mask decoder's output.
    iou_scores (`torch.FloatTensor` of shape `(batch_size, 1)`): SAM's mask-quality estimate (untrained here).
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    low_res_logits: Optional[torch.FloatTensor] = None
    iou_scores: Optional[torch.FloatTensor] = None


class TransLandSegModel(nn.Module):
    """
    SAM with ATL adapters (Hou et al. 2024), run prompt-free: no points, boxes or masks; one landslide mask.

    Trainable: the ATL layers, the mask decoder (all of it; the IoU head gets no gradient from the prompt-free loss, so
    distributed training needs `find_unused_parameters=True`) and the prompt encoder's no-mask embedding.
    """

    def __init__(
        self, peft_model: PeftModel, base_model_name_or_path: Optional[str] = None, loss_config: LossConfig = None
    ):
        super().__init__()
        self.peft_model = peft_model
        self.base_model_name_or_path = base_model_name_or_path
        self.loss_config = loss_config or LossConfig()

    # ----------------------------------------------------------------------------------------------------- building
    @classmethod
    def from_sam(
        cls, base: SamSource, atl_config: Optional[ATLConfig] = None, revision: Optional[str] = None
    ) -> "TransLandSegModel":
        """Add fresh ATL adapters to `base`: a Hub id, a local folder, a `SamModel` or an original `.pth` file."""
        sam, base_name = load_sam(base, revision=revision)
        atl_config = atl_config or ATLConfig.from_preset("translandseg")
        atl_config.base_model_name_or_path = base_name
        atl_config.revision = revision
        return cls(get_peft_model(sam, atl_config), base_name)

    @property
    def sam(self) -> SamModel:
        return self.peft_model.get_base_model()

    @property
    def atl_config(self) -> ATLConfig:
        return self.peft_model.peft_config[self.peft_model.active_adapter]

    @property
    def image_size(self) -> int:
        return self.sam.config.vision_config.image_size

    # ----------------------------------------------------------------------------------------------------- running
    def forward(self, pixel_values: torch.Tensor, labels: Optional[torch.Tensor] = None) -> TransLandSegOutput:
        """pixel_values (B, 3, S, S) normalised as SAM expects; labels (B, 1, S, S) or (B, S, S) in {0, 1}."""
        size = self.image_size
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (3, size, size):
            raise ValueError(
                f"pixel_values must have shape (batch, 3, {size}, {size}) for this SAM, got {tuple(pixel_values.shape)}."
            )
        outputs = self.peft_model(pixel_values=pixel_values, multimask_output=False)
        low_res_logits = outputs.pred_masks[:, 0]  # (B, 1, S/4, S/4)
        logits = F.interpolate(low_res_logits, size=(size, size), mode="bilinear", align_corners=False)
        loss = None if labels is None else loss_for_labels(logits, labels, self.loss_config)
        return TransLandSegOutput(
            loss=loss, logits=logits, low_res_logits=low_res_logits, iou_scores=outputs.iou_scores[:, 0]
        )

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
            pixel_values = pixel_values_from_images(chunk, self.image_size).to(device)
            logits = self(pixel_values).logits.float()
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

    # ----------------------------------------------------------------------------------------------------- counting
    def parameter_counts(self) -> dict[str, int]:
        """Parameters as the model computes: base SAM + ATL (PEFT's frozen originals of trained copies excluded)."""
        counted = [(n, p) for n, p in self.peft_model.named_parameters() if ".original_module." not in n]
        return {
            "total": sum(p.numel() for _, p in counted),
            "trainable": sum(p.numel() for _, p in counted if p.requires_grad),
            "base": sum(p.numel() for n, p in counted if ".atl_adapters." not in n),
        }

    # ----------------------------------------------------------------------------------------------------- saving
    def save_pretrained(
        self, save_directory: Union[str, os.PathLike], save_base: Optional[bool] = None, **card_fields
    ) -> None:
        """Write `adapter_config.json`, `adapter_model.safetensors` (trainable tensors only) and a model card.

        A model made from an in-memory `SamModel` has no name to reload its base by: `save_base=True` (the default
        for such a model) writes the base beside the adapter, under `base_model/`.
        """
        save_directory = Path(save_directory)
        if save_base is None:
            save_base = self.base_model_name_or_path is None
        staging = staging_dir_for(save_directory)
        try:
            base_name = BASE_MODEL_SUBFOLDER if save_base else self.base_model_name_or_path
            config = self.atl_config
            previous = config.base_model_name_or_path
            config.base_model_name_or_path = base_name
            try:
                self.peft_model.save_pretrained(str(staging))
            finally:
                config.base_model_name_or_path = previous
            if save_base:
                save_base_sam(self.peft_model, staging / BASE_MODEL_SUBFOLDER)
            card = render_model_card(
                base_model=base_name or "unknown",
                atl_config=config,
                trainable=self.parameter_counts()["trainable"],
                **card_fields,
            )
            (staging / "README.md").write_text(card, encoding="utf-8")
            move_files_into(staging, save_directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo_id: Union[str, os.PathLike],
        base_model: Optional[SamSource] = None,
        revision: Optional[str] = None,
        is_trainable: bool = False,
    ) -> "TransLandSegModel":
        """Base SAM + a saved ATL adapter, from a local folder or a Hub repository (`user/repo`)."""
        folder = resolve_adapter_folder(path_or_repo_id, revision=revision)
        config = PeftConfig.from_pretrained(str(folder))
        if config.peft_type != ATL_PEFT_TYPE:
            raise ValueError(f"{folder} holds a {config.peft_type} adapter, not an ATL adapter.")
        base = base_model if base_model is not None else config.base_model_name_or_path
        if base is None:
            raise ValueError(
                f"The adapter in {folder} was made from an in-memory SamModel and names no base: pass base_model=."
            )
        if base == BASE_MODEL_SUBFOLDER and base_model is None:
            base = folder / BASE_MODEL_SUBFOLDER
        sam, base_name = load_sam(base, revision=None if base_model is not None else config.revision)
        check_adapter_matches_base(folder / ADAPTER_FILES["weights"], sam)
        peft_model = PeftModel.from_pretrained(sam, str(folder), is_trainable=is_trainable)
        model = cls(peft_model, base_name if base != folder / BASE_MODEL_SUBFOLDER else None)
        return model.eval()

    def push_to_hub(
        self,
        repo_id: str,
        private: Optional[bool] = None,
        token: Optional[str] = None,
        commit_message: str = "Upload TransLandSeg adapter",
        **card_fields,
    ) -> str:
        """Save to a temporary folder (adapter, model card), create the repository if needed and upload it."""
        save = partial(self.save_pretrained, repo_id=repo_id, **card_fields)
        return push_saved_model(save, repo_id, private, token, commit_message)


def save_base_sam(peft_model: PeftModel, folder: Path) -> None:
    """Save the frozen base SAM under transformers' own names, without the adapters PEFT put into it."""
    state_dict = {}
    for key, tensor in peft_model.get_base_model().state_dict().items():
        if ".atl_adapters." in key or ".modules_to_save." in key:
            continue
        state_dict[key.replace(".base_layer.", ".").replace(".original_module.", ".")] = tensor.detach().clone()
    for tied_key in SamModel._tied_weights_keys:  # transformers ties these again on load
        state_dict.pop(tied_key, None)
    folder.mkdir(parents=True, exist_ok=True)
    peft_model.get_base_model().config.save_pretrained(str(folder))
    save_file(state_dict, str(folder / "model.safetensors"), metadata={"format": "pt"})


def check_adapter_matches_base(weights_file: Path, sam: SamModel) -> None:
    """A clear error for a truncated adapter file or one saved for another SAM architecture."""
    try:
        with safe_open(str(weights_file), framework="pt") as handle:
            shapes = {key: handle.get_slice(key).get_shape() for key in handle.keys()}
    except Exception as error:
        raise ValueError(f"{weights_file} is not a readable safetensors file (truncated or corrupt?): {error}") from error
    hidden_size = sam.config.vision_config.hidden_size
    for key, shape in shapes.items():
        if key.endswith("atl_adapters.down.weight") and shape[1] != hidden_size:
            raise ValueError(
                f"{weights_file} was saved for a SAM image encoder of hidden size {shape[1]}, but the base model "
                f"has hidden size {hidden_size}: load it on the base it was trained on."
            )
    channels = sam.config.mask_decoder_config.hidden_size
    for key, shape in shapes.items():
        if key.endswith("mask_decoder.iou_token.weight") and shape[1] != channels:
            raise ValueError(
                f"{weights_file} holds a mask decoder of hidden size {shape[1]}, the base model's has {channels}."
            )

