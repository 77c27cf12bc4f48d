"""A quicklook PNG: the scene, decimated to at most ~2048 px, with the predicted landslides outlined in red."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from PIL import Image, ImageFilter

from .reading import SceneReader, open_raster

QUICKLOOK_SIDE = 2048
OUTLINE_COLOR = (255, 0, 0)


def quicklook_shape(height: int, width: int, side: int = QUICKLOOK_SIDE) -> tuple[int, int]:
    factor = max(1.0, max(height, width) / side)
    return max(1, round(height / factor)), max(1, round(width / factor))


def outline(mask: np.ndarray) -> np.ndarray:
    """(h, w) bool edge pixels of the mask: inside it, next to a pixel outside it."""
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    eroded = np.asarray(image.filter(ImageFilter.MinFilter(3))) > 0
    return mask & ~eroded


def write_quicklook(reader: SceneReader, mask_path: Path, path: Path) -> None:
    """Decimated reads of the image and mask (never the full scene), outline drawn, saved as PNG at `path`."""
    shape = quicklook_shape(reader.height, reader.width)
    rgb = reader.read_rgb(out_shape=shape).transpose(1, 2, 0).astype(np.uint8)  # (h, w, 3)
    with open_raster(mask_path) as dataset:
        mask = dataset.read(1, out_shape=shape, resampling=rasterio.enums.Resampling.nearest) == 1  # (h, w)
    rgb[outline(mask)] = OUTLINE_COLOR
    Image.fromarray(rgb).save(path, format="PNG", compress_level=1)  # a preview: speed over size


def write_mask_png(mask_path: Path, path: Path) -> None:
    """The mask of a plain image as a PNG like the datasets' ground truth: 255 landslide, 0 background or nodata."""
    with open_raster(mask_path) as dataset:
        mask = dataset.read(1)  # (H, W): plain images are small enough to hold
    Image.fromarray(np.where(mask == 1, 255, 0).astype(np.uint8)).save(path, format="PNG")
