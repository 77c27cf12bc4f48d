"""Model logits over a whole scene: resized like training when it fits one input, blended tiles when it does not.

Works for any model with `image_size` and `forward(pixel_values).logits` of shape (B, 1, S, S): TransLandSeg or a
future CNN baseline.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..image_processing import normalize
from .reading import SceneReader
from .tiling import StripBlender

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TileRunner:
    """Batches of (3, S, S) 0-255 tiles -> (B, S, S) float32 logits on the model's device and precision."""

    def __init__(self, model: torch.nn.Module, device: torch.device, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}.")
        self.model, self.device, self.precision = model, torch.device(device), precision
        self.image_size = int(model.image_size)
        self.seconds_in_model = 0.0  # for the benchmark: the share of time spent outside the model

    @torch.no_grad()
    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        pixel_values = normalize(torch.from_numpy(tiles).to(self.device))  # (B, 3, S, S)
        dtype = PRECISIONS[self.precision]
        autocast = torch.autocast(self.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with autocast:
            logits = self.model(pixel_values).logits  # (B, 1, S, S)
        result = logits[:, 0].float().cpu().numpy()  # (B, S, S)
        self.seconds_in_model += time.perf_counter() - start
        return result


def predict_small_scene(reader: SceneReader, run: TileRunner) -> np.ndarray:
    """(H, W) logits of a scene no larger than one input: resized to S x S (bilinear) and back, as in training."""
    size = run.image_size
    rgb = torch.from_numpy(reader.read_rgb())[None]  # (1, 3, H, W)
    resized = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False)
    logits = torch.from_numpy(run(resized.numpy()))[:, None]  # (1, 1, S, S)
    back = F.interpolate(logits, size=(reader.height, reader.width), mode="bilinear", align_corners=False)
    return back[0, 0].numpy()


def predict_scene_strips(
    reader: SceneReader,
    run: TileRunner,
    overlap: int,
    batch_size: int = 4,
    on_tiles: Optional[Callable[[int], None]] = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first row, (h, W) float32 logits) strips covering the scene top to bottom, holding one strip in memory.

    `on_tiles(n)` is called after each batch of n tiles (a progress bar's update).
    """
    size = run.image_size
    if reader.height <= size and reader.width <= size:
        yield 0, predict_small_scene(reader, run)
        if on_tiles:
            on_tiles(1)
        return
    blender = StripBlender(reader.height, reader.width, size, overlap)
    rows = blender.row_origins
    first_col, last_col = blender.col_origins[0], blender.col_origins[-1] + size
    for index, row in enumerate(rows):
        strip = reader.read_padded_rgb(row, first_col, size, last_col - first_col)  # (3, S, W')
        cols = blender.col_origins
        for start in range(0, len(cols), batch_size):
            chunk = cols[start : start + batch_size]
            tiles = np.stack([strip[:, :, col - first_col : col - first_col + size] for col in chunk])  # (B, 3, S, S)
            for col, logits in zip(chunk, run(tiles)):
                blender.add(row, col, logits)
            if on_tiles:
                on_tiles(len(chunk))
        yield blender.finish_row(rows[index + 1] if index + 1 < len(rows) else None)


def tile_count(height: int, width: int, image_size: int, overlap: int) -> int:
    if height <= image_size and width <= image_size:
        return 1
    return StripBlender(height, width, image_size, overlap).tile_count
