"""Figures of predictions: rows of image | ground truth | prediction, as in the paper's Figures 7 and 8."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .image_processing import to_rgb_array

PREDICTION_COLOR = (255, 64, 64)


def _mask_tile(mask: np.ndarray, size: int) -> Image.Image:
    return Image.fromarray((np.asarray(mask) > 0).astype(np.uint8) * 255).convert("RGB").resize((size, size), Image.NEAREST)


def prediction_grid(
    images: Sequence, masks: Sequence[Optional[np.ndarray]], predictions: Sequence[np.ndarray],
    names: Optional[Sequence[str]] = None, tile: int = 192,
) -> Image.Image:
    """One row per sample: the image, its ground truth (white on black) and the prediction, each `tile` px wide."""
    headers = ["image", "ground truth", "prediction"]
    header_height, margin = 18, 4
    width = 3 * tile + 4 * margin
    grid = Image.new("RGB", (width, header_height + len(images) * (tile + margin) + margin), "white")
    draw = ImageDraw.Draw(grid)
    for column, header in enumerate(headers):
        draw.text((margin + column * (tile + margin) + 4, 3), header, fill="black")
    for row, (image, mask, prediction) in enumerate(zip(images, masks, predictions)):
        top = header_height + row * (tile + margin)
        tiles = [Image.fromarray(to_rgb_array(image).astype(np.uint8)).resize((tile, tile), Image.BILINEAR)]
        tiles.append(_mask_tile(mask, tile) if mask is not None else Image.new("RGB", (tile, tile), "gray"))
        tiles.append(_mask_tile(prediction, tile))
        for column, picture in enumerate(tiles):
            grid.paste(picture, (margin + column * (tile + margin), top))
        if names:
            draw.text((margin + 4, top + 4), str(names[row]), fill=PREDICTION_COLOR)
    return grid
