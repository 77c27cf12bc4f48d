"""SAM's input preprocessing as the paper used it: resize to a square (no padding), normalise with SAM's statistics."""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

ImageLike = Union[Image.Image, np.ndarray]

# SamImageProcessor's normalisation, on 0-255 pixel values.
SAM_PIXEL_MEAN = torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1) * 255
SAM_PIXEL_STD = torch.tensor(IMAGENET_DEFAULT_STD).view(3, 1, 1) * 255


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """(H, W, 3) pixel values in 0-255 from a PIL image or an (H, W), (H, W, 3) or (H, W, 4) array: uint8 as given,
    or float32 for float images in [0, 1] (what matplotlib, scikit-image and `ToTensor` produce), scaled by 255."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"Expected an (H, W), (H, W, 3) or (H, W, 4) image, got an array of shape {array.shape}.")
    array = array[:, :, :3]
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if np.isfinite(low) and np.isfinite(high) and low >= 0.0 and high <= 1.0:
            return array.astype(np.float32) * 255.0
        raise ValueError(f"Expected uint8 values in 0-255 or float values in [0, 1], got {array.dtype} values in "
                         f"[{low:g}, {high:g}]; scale the image to one of these ranges first.")
    raise ValueError(f"Expected uint8 values in 0-255 or float values in [0, 1], got dtype {array.dtype}; "
                     "scale the image first.")


def normalize(images: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) float 0-255 -> SAM's normalised input."""
    return (images - SAM_PIXEL_MEAN.to(images.device)) / SAM_PIXEL_STD.to(images.device)


def pixel_values_from_images(images: Sequence[ImageLike], image_size: int) -> torch.Tensor:
    """(B, 3, S, S) SAM input from images of any size, resized bilinearly to S x S as in training."""
    return pixel_values_from_rgb([to_rgb_array(image) for image in images], image_size)


def pixel_values_from_rgb(arrays: Sequence[np.ndarray], image_size: int) -> torch.Tensor:
    """The same, from arrays `to_rgb_array` already made: (H, W, 3) pixel values in 0-255."""
    tensors = []
    for array in arrays:
        rgb = torch.from_numpy(np.array(array, dtype=np.float32)).permute(2, 0, 1)[None]  # (1, 3, H, W), a copy
        tensors.append(F.interpolate(rgb, size=(image_size, image_size), mode="bilinear", align_corners=False))
    return normalize(torch.cat(tensors))
