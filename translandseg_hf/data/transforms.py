"""Loader examples -> SAM inputs, lazily, with train-time augmentation of image and mask together.

The paper resized every image to 1024 x 1024 (no padding) and normalised with SAM's statistics;
its training code jittered colours. Its released loader also jittered validation images and
dropped its random flip; here augmentation is applied to train only, and flips really happen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from datasets import DatasetDict
from PIL import Image, ImageEnhance

from ..image_processing import TransLandSegImageProcessor


@dataclass(frozen=True)
class ColorJitter:
    """torchvision's ColorJitter without torchvision: brightness, contrast and saturation factors
    drawn from [1 - x, 1 + x], a hue shift from [-hue, hue] of a turn, applied in random order.
    The defaults are the authors' (0.4, 0.4, 0.4, 0.1)."""

    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1

    def __call__(self, image: Image.Image, rng: random.Random) -> Image.Image:
        operations = []
        enhancers = {ImageEnhance.Brightness: self.brightness, ImageEnhance.Contrast: self.contrast,
                     ImageEnhance.Color: self.saturation}  # fmt: skip
        for enhancer, strength in enhancers.items():
            if strength > 0:
                factor = rng.uniform(max(0.0, 1 - strength), 1 + strength)
                operations.append(partial(_enhance, enhancer, factor))
        if self.hue > 0:
            operations.append(partial(_shift_hue, shift=rng.uniform(-self.hue, self.hue)))
        rng.shuffle(operations)
        for operation in operations:
            image = operation(image)
        return image


def _enhance(enhancer: type, factor: float, image: Image.Image) -> Image.Image:
    return enhancer(image).enhance(factor)


def _shift_hue(image: Image.Image, shift: float) -> Image.Image:
    hsv = np.array(image.convert("HSV"))
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(shift * 256)) % 256  # PIL's hue: 0-255 is one turn
    return Image.fromarray(hsv, mode="HSV").convert("RGB")


class SamTransform:
    """Batch transform for `Dataset.with_transform`: {"image", "mask", "id"} lists -> SAM inputs.

    Returns "pixel_values" (3, S, S) float32, "labels" (1, S, S) float32 0/1 when the batch has
    masks, and "id". RGB images are resized and normalised by the model's image processor (the
    same code `translandseg predict` runs); float arrays (H, W, C), such as Landslide4Sense band
    lists, are already normalised and are only resized. Masks are resized nearest-neighbour.

    With `train=True`: colour jitter (RGB only), then horizontal and vertical flips and a
    90-degree rotation, each with the same draw for image and mask. With `seed`, each example's
    draws come from `random.Random("seed:epoch:id")`: the same for a sample in a given epoch
    whatever the batch order, worker, process or resumption (call `set_epoch` each epoch);
    without, from the `random` module, which a torch DataLoader reseeds in each worker.
    """

    def __init__(
        self,
        processor: TransLandSegImageProcessor | int = 1024,
        train: bool = False,
        flips: bool = True,
        rotations: bool = True,
        color_jitter: ColorJitter | None = ColorJitter(),
        seed: int | None = None,
    ):
        if isinstance(processor, int):  # an input side: the default contract at that size
            if processor < 1:
                raise ValueError(f"image_size must be positive, got {processor}")
            processor = TransLandSegImageProcessor(input_size=processor)
        self.processor = processor
        self.image_size = processor.input_size
        self.train = train
        self.flips = flips
        self.rotations = rotations
        self.color_jitter = color_jitter
        self.seed = seed
        self.epoch = 0
        self._rng = random

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's augmentations (with a seed, they depend on the epoch and the sample only)."""
        self.epoch = epoch

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        masks = batch.get("mask")
        output: dict[str, list] = {"pixel_values": []}
        if masks is not None:
            output["labels"] = []
        ids = batch.get("id")
        for index, image in enumerate(batch["image"]):
            if self.seed is not None:
                sample = ids[index] if ids is not None else index
                self._rng = random.Random(f"{self.seed}:{self.epoch}:{sample}")
            pixel_values, labels = self.transform_example(image, None if masks is None else masks[index])
            output["pixel_values"].append(pixel_values)
            if masks is not None:
                output["labels"].append(labels)
        if "id" in batch:
            output["id"] = list(batch["id"])
        return output

    def transform_example(self, image: Any, mask: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One image (PIL RGB or (H, W, C) float array) and optional mask -> (pixel_values, labels)."""
        is_rgb = isinstance(image, Image.Image)
        if is_rgb:
            image = image.convert("RGB")
            if self.train and self.color_jitter is not None:
                image = self.color_jitter(image, self._rng)
        array = np.asarray(image, dtype=np.float32)  # (H, W, C)
        if array.ndim != 3:
            raise ValueError(f"expected a PIL image or an (H, W, C) array, got shape {array.shape}")
        if not is_rgb:  # raw bands in the contract's order: made into pixels exactly as a scene's bands are read
            if array.shape[2] != len(self.processor.bands):
                raise ValueError(
                    f"the processor expects {len(self.processor.bands)} bands, got an array with {array.shape[2]} "
                    f"(shape {array.shape})"
                )
            array = self.processor.pixels_from_bands(np.moveaxis(array, -1, 0)).transpose(1, 2, 0)
        mask_array = None if mask is None else (np.asarray(mask) != 0).astype(np.float32)  # (H, W)
        if mask_array is not None and mask_array.shape != array.shape[:2]:
            raise ValueError(f"mask shape {mask_array.shape} differs from image shape {array.shape[:2]}")
        if self.train:
            array, mask_array = self._flip_and_rotate(array, mask_array)

        pixel_values = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)  # (C, H, W)
        pixel_values = self.processor.resize_to_input(pixel_values[None])[0]
        pixel_values = self.processor.normalize_pixels(pixel_values)
        labels = None
        if mask_array is not None:
            labels = self._resize(torch.from_numpy(np.ascontiguousarray(mask_array))[None], "nearest-exact")
        return pixel_values.contiguous(), labels

    def _flip_and_rotate(self, image: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        arrays = [image] if mask is None else [image, mask]
        if self.flips and self._rng.random() < 0.5:
            arrays = [np.flip(a, axis=1) for a in arrays]  # horizontal
        if self.flips and self._rng.random() < 0.5:
            arrays = [np.flip(a, axis=0) for a in arrays]  # vertical
        if self.rotations:
            quarter_turns = self._rng.randrange(4)
            arrays = [np.rot90(a, k=quarter_turns, axes=(0, 1)) for a in arrays]
        return arrays[0], (arrays[1] if mask is not None else None)

    def _resize(self, tensor: torch.Tensor, mode: str) -> torch.Tensor:
        """(C, H, W) mask -> (C, S, S), nearest (images go through the processor's bilinear resize)."""
        if tensor.shape[-2:] == (self.image_size, self.image_size):
            return tensor
        return F.interpolate(tensor[None], size=(self.image_size, self.image_size), mode=mode)[0]


def collate_fn(examples: Sequence[dict]) -> dict:
    """Stack `SamTransform` outputs into a batch for a torch DataLoader."""
    batch: dict[str, Any] = {"pixel_values": torch.stack([example["pixel_values"] for example in examples])}
    if "labels" in examples[0]:
        batch["labels"] = torch.stack([example["labels"] for example in examples])
    if "id" in examples[0]:
        batch["id"] = [example["id"] for example in examples]
    return batch


def prepare_dataset(
    dataset_dict: DatasetDict,
    processor: TransLandSegImageProcessor | int = 1024,
    augment_train: bool = True,
    seed: int | None = None,
    *,
    image_size: int | None = None,
) -> DatasetDict:
    """Attach `SamTransform` lazily to every split: augmented for "train" (if `augment_train`),
    plain for the others. Nothing is resized until an example is read. `processor` is the input contract (an
    int: the default contract at that side); `image_size=` is the older spelling of an int `processor`."""
    if image_size is not None:
        processor = image_size
    return DatasetDict(
        {
            name: split.with_transform(SamTransform(processor, train=augment_train and name == "train", seed=seed))
            for name, split in dataset_dict.items()
        }
    )


def transform_of(split) -> SamTransform:
    """The `SamTransform` that `prepare_dataset` attached to `split` (the trainer sets its epoch)."""
    return split.format["format_kwargs"]["transform"]
