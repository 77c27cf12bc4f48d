"""Model logits over a whole scene, at the scale the model was trained at: tiles of the contract's tile side (in
scene pixels) are resized to the model input as training images were, and their logits resized back and blended; a
scene no larger than one tile is resized whole, as in training.

Works for any model with `image_size`, `image_processor` and `forward(pixel_values).logits` of shape (B, 1, S, S).
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..image_processing import TransLandSegImageProcessor
from .reading import SceneReader
from .tiling import StripBlender

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TileRunner:
    """Batches of (3, T, T) 0-255 tiles -> (B, T, T) float32 logits: resized to the model input by the contract's
    processor, run on the model's device and precision, and resized back to the tile."""

    def __init__(self, model: torch.nn.Module, device: torch.device, precision: str = "fp32",
                 processor: Optional[TransLandSegImageProcessor] = None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}.")
        self.model, self.device, self.precision = model, torch.device(device), precision
        self.processor = processor or getattr(model, "image_processor", None) or TransLandSegImageProcessor(
            input_size=int(model.image_size))
        self.image_size = int(model.image_size)
        self.seconds_in_model = 0.0  # for the benchmark: the share of time spent outside the model

    @torch.no_grad()
    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        tiles = torch.from_numpy(tiles).to(self.device)  # (B, C, T, T)
        pixel_values = self.processor.normalize_pixels(self.processor.resize_to_input(tiles))  # (B, C, S, S)
        dtype = PRECISIONS[self.precision]
        autocast = torch.autocast(self.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with autocast:
            logits = self.model(pixel_values).logits.float()  # (B, 1, S, S)
        if logits.shape[-2:] != tiles.shape[-2:]:
            logits = F.interpolate(logits, size=tiles.shape[-2:], mode="bilinear", align_corners=False)
        result = logits[:, 0].cpu().numpy()  # (B, T, T)
        self.seconds_in_model += time.perf_counter() - start
        return result


def predict_small_scene(reader: SceneReader, run: TileRunner) -> np.ndarray:
    """(H, W) logits of a scene no larger than one tile: resized to the input and back, as in training."""
    return run(reader.read_pixels()[None])[0]


def predict_scene_strips(
    reader: SceneReader,
    run: TileRunner,
    overlap: int,
    batch_size: int = 4,
    on_tiles: Optional[Callable[[int], None]] = None,
    tile_size: Optional[int] = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first row, (h, W) float32 logits) strips covering the scene top to bottom, holding one strip in memory.

    Tiles are `tile_size` scene pixels square (default: the model input). `on_tiles(n)` is called after each batch
    of n tiles (a progress bar's update).
    """
    size = tile_size or run.image_size
    if reader.height <= size and reader.width <= size:
        yield 0, predict_small_scene(reader, run)
        if on_tiles:
            on_tiles(1)
        return
    blender = StripBlender(reader.height, reader.width, size, overlap)
    rows = blender.row_origins
    first_col, last_col = blender.col_origins[0], blender.col_origins[-1] + size
    for index, row in enumerate(rows):
        strip = reader.read_padded_pixels(row, first_col, size, last_col - first_col)  # (C, T, W')
        cols = blender.col_origins
        for start in range(0, len(cols), batch_size):
            chunk = cols[start : start + batch_size]
            tiles = np.stack([strip[:, :, col - first_col : col - first_col + size] for col in chunk])  # (B, 3, T, T)
            for col, logits in zip(chunk, run(tiles)):
                blender.add(row, col, logits)
            if on_tiles:
                on_tiles(len(chunk))
        yield blender.finish_row(rows[index + 1] if index + 1 < len(rows) else None)


def tile_count(height: int, width: int, tile_size: int, overlap: int) -> int:
    if height <= tile_size and width <= tile_size:
        return 1
    return StripBlender(height, width, tile_size, overlap).tile_count
