"""What every landslide segmentation model of this package shares: its output, prediction, Hub files and card.

`TransLandSegModel` (SAM + ATL adapters) and `BaselineSegmentationModel` (the paper's CNNs) implement this
interface side by side, so training, evaluation, scene mapping and the Hub treat them alike.
"""

from __future__ import annotations

import inspect
import os
import shutil
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import ModelCard, ModelHubMixin
from PIL import Image
from torch import nn
from transformers.utils import ModelOutput

from .cards import CARD_TEMPLATE, PAPER_URL, CardDetails, model_card
from .hub import PathOrRepoId, read_json_config, resolve_model_folder
from .contract_fields import PREPROCESSOR_CONFIG
from .configuration_translandseg import TransLandSegConfig
from .image_processing import ImageLike, TransLandSegImageProcessor
from .io_utils import move_files_into, staging_dir_for
from .losses import LossConfig, loss_for_labels
from .model_kinds import SAVED_CONFIG_CLASSES, import_named
from .saved_contract import load_contract

@dataclass
class SegmentationOutput(ModelOutput):
    """
    loss (`torch.FloatTensor` of shape `()`, *optional*): 0.5 BCE + 0.5 Dice (by default), when `labels` were given.
    logits (`torch.FloatTensor` of shape `(batch_size, 1, height, width)`): landslide logits at the input's size.
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None


class SegmentationModel(
    nn.Module,
    ModelHubMixin,
    library_name="translandseg-hf",
    license="apache-2.0",
    pipeline_tag="image-segmentation",
    tags=["landslide", "remote-sensing", "segmentation", "translandseg"],
    paper_url=PAPER_URL,
    model_card_template=CARD_TEMPLATE,
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
    # What code written for transformers' `PreTrainedModel`s reads (pipelines, Trainer, notebooks).
    @property
    def device(self) -> torch.device:
        """Where the parameters are (the first one's device, as `PreTrainedModel.device`)."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point type of the parameters (the first floating one's, as `PreTrainedModel.dtype`)."""
        return next((p.dtype for p in self.parameters() if p.is_floating_point()), torch.get_default_dtype())

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """`parameter_counts()`' `trainable` or `total`, as `PreTrainedModel.num_parameters` (embeddings are not
        told apart: `exclude_embeddings` is accepted for its signature and changes nothing)."""
        return self.parameter_counts()["trainable" if only_trainable else "total"]

    def can_generate(self) -> bool:
        """A segmentation model generates no text (transformers' pipelines ask)."""
        return False

    input_modalities = ("image",)

    def transformers_config(self) -> TransLandSegConfig:
        """The `config.json` saved beside the model's files, by which transformers' Auto classes know the folder."""
        return TransLandSegConfig(image_size=self.image_size, num_channels=self.input_channels,
                                  architectures=[type(self).__name__])

    def compute_loss(self, logits: torch.Tensor, labels: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        return None if labels is None else loss_for_labels(logits, labels, self.loss_config)

    @torch.no_grad()
    def predict_proba(self, images: Sequence[ImageLike], batch_size: int = 4) -> list[np.ndarray]:
        """Landslide probabilities (float32, H x W) at each image's own size, for PIL images or arrays of any size,
        scaled as the contract says (`rgb_pixels`), as `translandseg predict` reads the same image saved as a file."""
        was_training = self.training
        self.eval()
        device, dtype = self.device, self.dtype  # inputs in the model's dtype: a bf16 or fp16 model takes them so
        rgb_images = [self.image_processor.rgb_pixels(image) for image in images]
        probabilities = []
        for start in range(0, len(rgb_images), batch_size):
            chunk = rgb_images[start : start + batch_size]
            logits = self(self.image_processor.pixel_values_from_rgb(chunk).to(device, dtype)).logits.float()
            probabilities.extend(probability_map(image_logits, image.shape[:2])
                                 for image, image_logits in zip(chunk, logits))
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
            self.transformers_config().save_pretrained(str(staging))  # config.json: for transformers' Auto classes
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
        have; `token`, `cache_dir`, `force_download` and `local_files_only` go to `snapshot_download`, the rest to the
        kind's `_from_folder` (TransLandSeg: `base_model`, `is_trainable`, `dtype`/`torch_dtype`, `device_map`,
        `attn_implementation`, as transformers' `from_pretrained` takes them).
        """
        check_loading_kwargs(cls, kwargs)
        download = {k: kwargs.pop(k) for k in DOWNLOAD_KWARGS if k in kwargs}
        folder = resolve_model_folder(
            pretrained_model_name_or_path, f"a saved {cls.__name__}", cls.saved_files,
            cls.optional_files, revision, **download,
        )
        check_saved_configs(folder, [name for name in cls.saved_files if name.endswith(".json")])
        try:
            model = cls._from_folder(folder, revision=revision, **kwargs)
        except (KeyError, TypeError, AttributeError, IndexError, RuntimeError) as error:  # the folder's, unnamed
            raise ValueError(unloadable(folder, cls, error)) from error
        model.set_image_processor(TransLandSegImageProcessor(**load_contract(folder, input_size=model.image_size)))
        model.name_or_path = str(pretrained_model_name_or_path)  # how errors about its maps name it
        return model

    def push_to_hub(self, repo_id: str, *, model_card_kwargs: Optional[dict] = None, **kwargs) -> str:
        """`ModelHubMixin.push_to_hub` (save to a temporary folder, create the repository, upload), with a card
        whose usage lines name the repository."""
        return super().push_to_hub(repo_id, model_card_kwargs={"repo_id": repo_id, **(model_card_kwargs or {})}, **kwargs)

    def generate_model_card(self, **card_kwargs) -> ModelCard:
        """The one model-card template of every kind (`cards.model_card`); `ModelHubMixin` calls this."""
        return model_card(self, **card_kwargs)


DOWNLOAD_KWARGS = ("token", "cache_dir", "force_download", "local_files_only")  # `snapshot_download`'s


def check_loading_kwargs(cls: type, kwargs: dict[str, Any]) -> None:
    """Refuse a `from_pretrained` option the kind does not take, by name: left to `_from_folder`, its TypeError
    would read as a corrupt folder (`unloadable`)."""
    parameters = inspect.signature(cls._from_folder).parameters
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    taken = [name for name, p in parameters.items() if p.kind in kinds and name not in ("folder", "revision")]
    unknown = sorted(set(kwargs) - set(taken) - set(DOWNLOAD_KWARGS))
    if unknown:
        raise TypeError(f"{cls.__name__}.from_pretrained() got unexpected keyword argument(s) {', '.join(unknown)}: "
                        f"it takes revision, {', '.join(taken + list(DOWNLOAD_KWARGS))}.")


def probability_map(image_logits: torch.Tensor, size: Sequence[int]) -> np.ndarray:
    """(1, S, S) logits of one image -> (H, W) float32 landslide probabilities at the image's `size` (bilinear, as
    `predict` and the `image-segmentation` pipeline both resize)."""
    resized = F.interpolate(image_logits[None].float(), size=tuple(size), mode="bilinear", align_corners=False)
    return torch.sigmoid(resized)[0, 0].cpu().numpy()


def check_saved_configs(folder: Path, names: Sequence[str]) -> None:
    """Each saved JSON file of a model folder: readable without bombs (`hub.read_json_config`), its known fields of
    the types its dataclass declares, and `peft_type` one PEFT knows. Errors read "FOLDER/FILE: field X: problem"."""
    for name in names:
        path = folder / name
        if not path.is_file():
            continue
        values = read_json_config(path)
        # The dataclass the file is read into (imported when a folder is checked), so a field of the wrong type is
        # refused by file and field before PEFT or a kind's loader trips on it without naming either.
        config_class = SAVED_CONFIG_CLASSES.get(name)
        hints = field_types(import_named(config_class)) if config_class else {}
        for field_name, value in values.items():
            problem = json_type_problem(value, hints[field_name]) if field_name in hints else None
            if field_name == "peft_type" and problem is None:
                problem = unknown_peft_type(value)
            if problem:
                raise ValueError(f"{path}: field {field_name}: {problem}, got {value!r}.")


def field_types(config_class: type) -> dict[str, Any]:
    """A dataclass's field annotations, resolved; none where they cannot be (the values are then PEFT's to check)."""
    try:
        return typing.get_type_hints(config_class)
    except Exception:  # noqa: BLE001 - an annotation this Python cannot resolve: no type check rather than a crash
        return {}


JSON_TYPES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", type(None): "null"}


def json_type_problem(value: Any, hint: Any) -> Optional[str]:
    """What is wrong with a JSON `value` for a field annotated `hint` ("expected ..."), or None. Annotations this
    does not model (enums, classes, Any) accept anything."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        problems = [json_type_problem(value, arg) for arg in args]
        return None if None in problems else "expected " + " or ".join(p.removeprefix("expected ") for p in problems)
    if hint in JSON_TYPES:
        fits = isinstance(value, hint) and not (hint in (int, float) and isinstance(value, bool))
        fits = fits or (hint is float and isinstance(value, int) and not isinstance(value, bool))
        return None if fits else f"expected {JSON_TYPES[hint]}"
    if origin in (list, tuple, Sequence, typing.Sequence) or hint in (list, tuple):
        if not isinstance(value, list):
            return "expected a list"
        items = [json_type_problem(item, args[0]) for item in value] if args and args[0] is not Ellipsis else []
        return next((f"expected a list of {p.removeprefix('expected ')}s" for p in items if p), None)
    if origin is dict or hint is dict:
        return None if isinstance(value, dict) else "expected an object"
    return None


def unknown_peft_type(value: Any) -> Optional[str]:
    """PEFT picks the config class by `peft_type` and fails with a bare KeyError on one it does not know."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING  # PEFT's own types and ATL (`atl.registration`)

    return None if value in PEFT_TYPE_TO_CONFIG_MAPPING else "expected an adapter type PEFT knows, such as 'ATL'"


def unloadable(folder: Path, cls: type, error: BaseException) -> str:
    """An error from deep inside PEFT, transformers or torch, said by folder and file: a KeyError with a tensor's
    dotted name is a tensor the weights file lacks."""
    key = error.args[0] if isinstance(error, KeyError) and error.args else None
    weights = [name for name in cls.saved_files if name.endswith(".safetensors")]
    if isinstance(key, str) and "." in key and weights:
        return (f"{folder / weights[0]}: tensor {key!r} is missing: the file is incomplete or was saved for another "
                "model; save or download the model again.")
    return (f"{folder}: cannot load it as a saved {cls.__name__} ({type(error).__name__}: {error}); its files are "
            "incomplete or corrupt: save or download the model again.")
