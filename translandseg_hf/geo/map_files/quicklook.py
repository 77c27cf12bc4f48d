"""A quicklook PNG: the scene, decimated to at most ~2048 px, with the predicted landslides outlined in red."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ..opening import open_raster

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


class QuicklookCanvas:
    """The quicklook, filled while the scene streams past: nearest-neighbour samples of the pixels as they are read
    for the model and of the mask as it is written, so neither the scene nor the mask is read a second time."""

    def __init__(self, height: int, width: int, side: int = QUICKLOOK_SIDE):
        shape = quicklook_shape(height, width, side)
        self.rows = sample_centres(height, shape[0])  # (h,) scene row of each quicklook row
        self.cols = sample_centres(width, shape[1])  # (w,)
        self.rgb = np.zeros((*shape, 3), dtype=np.uint8)
        self.mask = np.zeros(shape, dtype=bool)

    def _samples(self, top: int, left: int, height: int, width: int):
        """(quicklook rows, block rows, quicklook cols, block cols) of the samples inside a block at (top, left)."""
        r0, r1 = np.searchsorted(self.rows, [top, top + height])
        c0, c1 = np.searchsorted(self.cols, [left, left + width])
        return slice(r0, r1), self.rows[r0:r1] - top, slice(c0, c1), self.cols[c0:c1] - left

    def add_pixels(self, top: int, left: int, pixels: np.ndarray) -> None:
        """(C, h, w) model pixels (RGB 0-255 first) whose top-left is scene pixel (top, left), which may be outside
        the scene (a padded tile)."""
        rows, block_rows, cols, block_cols = self._samples(top, left, *pixels.shape[1:])
        self.rgb[rows, cols] = pixels[:3][:, block_rows][:, :, block_cols].transpose(1, 2, 0)

    def add_mask(self, top: int, left: int, mask: np.ndarray) -> None:
        """(h, w) uint8 mask (1 landslide) whose top-left is scene pixel (top, left)."""
        rows, block_rows, cols, block_cols = self._samples(top, left, *mask.shape)
        self.mask[rows, cols] = mask[block_rows][:, block_cols] == 1

    def save(self, path: Path) -> None:
        """The scene with the landslides outlined in red, as PNG."""
        rgb = self.rgb.copy()
        rgb[outline(self.mask)] = OUTLINE_COLOR
        Image.fromarray(rgb).save(path, format="PNG", compress_level=1)  # a preview: speed over size


def sample_centres(length: int, samples: int) -> np.ndarray:
    """(samples,) the pixel under each decimated pixel's centre, as GDAL's nearest-neighbour decimation picks."""
    return np.minimum(((np.arange(samples) + 0.5) * length / samples).astype(np.int64), length - 1)


def write_mask_png(mask_path: Path, path: Path) -> None:
    """The mask of a plain image as a PNG like the datasets' ground truth: 255 landslide, 0 background or nodata."""
    with open_raster(mask_path) as dataset:
        mask = dataset.read(1)  # (H, W): plain images are small enough to hold
    Image.fromarray(np.where(mask == 1, 255, 0).astype(np.uint8)).save(path, format="PNG")
