"""Model logits over a whole scene, at the scale the model was trained at: tiles of the contract's tile side (in
scene pixels) are resized to the model input as training images were, and their logits resized back and blended; a
scene no larger than one tile is resized whole, as in training.

Works for any model with `image_size`, `image_processor` and `forward(pixel_values).logits` of shape (B, 1, S, S).
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..geo.strips import strips
from ..image_processing import TransLandSegImageProcessor
from .contract import contract_of
from .reading import SceneReader
from .stages import StageClock
from .tiling import COLUMN_BLOCK, StripBlender, grid_tile_count
from .tta import d4_predict

OnRead = Callable[[int, int, np.ndarray], None]  # (top row, left column, (C, h, w) pixels read there)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TileRunner:
    """Batches of (C, T, T) tiles -> (B, K, T, T) float32 maps: resized to the model input by the contract's
    processor, run on the model's device and precision, resized back to the tile. K is 1 (logits), or 2 with
    test-time augmentation (the D4-mean logits and the probabilities' standard deviation). `clock` times the scene's
    stages (`stages.STAGES`): the drivers below time reading, scaling and blending on it too."""

    def __init__(self, model: torch.nn.Module, device: torch.device, precision: str = "fp32",
                 processor: Optional[TransLandSegImageProcessor] = None, tta: bool = False,
                 clock: Optional[StageClock] = None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}.")
        self.model, self.device, self.precision, self.tta = model, torch.device(device), precision, tta
        self.processor = processor or contract_of(model)
        self.image_size = int(model.image_size)
        self.channels = 2 if tta else 1
        self.clock = clock or StageClock()

    @property
    def seconds_in_model(self) -> float:
        """Seconds in the model's calls (resizing and normalising included), for the benchmark's share outside it."""
        return self.clock.seconds["model"]

    @torch.no_grad()
    def __call__(self, tiles: np.ndarray, owned: bool = False) -> np.ndarray:
        """`owned`: the float32 tiles are the runner's to overwrite (normalised in place: a batch-sized copy less)."""
        with self.clock("model"):
            return self._run(tiles, owned)

    def _run(self, tiles: np.ndarray, owned: bool) -> np.ndarray:
        tiles = torch.from_numpy(tiles).to(self.device)  # (B, C, T, T)
        pixel_values = self.processor.normalize_pixels(self.processor.resize_to_input(tiles), in_place=owned)
        dtype = PRECISIONS[self.precision]
        autocast = torch.autocast(self.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with autocast:
            if self.tta:
                output = d4_predict(self.model, pixel_values)
                maps = torch.cat([output.logits, output.uncertainty], dim=1)  # (B, 2, S, S)
            else:
                maps = self.model(pixel_values).logits.float()  # (B, 1, S, S)
        if maps.shape[-2:] != tiles.shape[-2:]:
            maps = F.interpolate(maps, size=tiles.shape[-2:], mode="bilinear", align_corners=False)
        return maps.cpu().numpy()  # (B, K, T, T)


def fits_one_tile(height: int, width: int, tile_size: int) -> bool:
    """A scene no larger than one tile is mapped whole (`predict_small_scene`), not tiled."""
    return height <= tile_size and width <= tile_size


def predict_small_scene(reader: SceneReader, run: TileRunner, on_read: Optional[OnRead] = None,
                        on_tiles: Optional[Callable[[int], None]] = None) -> np.ndarray:
    """(K, H, W) maps of a scene no larger than one tile: resized to the input and back, as in training."""
    with run.clock("read"):
        raw = reader.read_raw()
        valid = reader.read_valid(raw=raw)
    with run.clock("scale"):
        pixels = reader.pixels_from_raw(raw, valid)
    if on_read:
        on_read(0, 0, pixels)
    with run.clock("scale"):
        reader.fill_nodata(pixels[None], valid[None])  # after the quicklook saw nodata as black
    maps = run(pixels[None], owned=True)[0]
    if on_tiles:
        on_tiles(1)
    return maps


Block = tuple[int, int, np.ndarray]  # (first scene row, first scene column, (K, h, w) maps)


def scene_blocks(
    reader: SceneReader,
    run: TileRunner,
    tile_size: int,
    overlap: int,
    batch_size: int = 4,
    on_tiles: Optional[Callable[[int], None]] = None,
    prefetch: bool = True,
    on_read: Optional[OnRead] = None,
) -> Iterator[Callable[[], list[Block]]]:
    """The one driver of tiled prediction: yields, after each model call, a function that blends what it gave and
    returns the column blocks that are then final, in order. The caller runs these one at a time, in order, where it
    likes (`translandseg predict`: in its writer thread, overlapping the next model call). A scene no larger than a
    tile is one model call, cut into column blocks."""
    if fits_one_tile(reader.height, reader.width, tile_size):
        maps = predict_small_scene(reader, run, on_read, on_tiles)
        yield lambda: list(column_blocks(maps))
        return
    blender = StripBlender(reader.height, reader.width, tile_size, overlap, channels=run.channels)
    for row, cols, maps, weights in predict_tile_batches(reader, run, blender, batch_size, on_tiles, prefetch,
                                                         on_read):
        yield partial(blend_batch, blender, row, cols, maps, run.clock, weights)


def blend_batch(blender: StripBlender, row: int, cols: list[int], maps: np.ndarray,
                clock: StageClock, weights: np.ndarray) -> list[Block]:
    """Add a batch's (B, K, T, T) maps to `blender`, each tile weighted by `weights` (B,); the column blocks they
    made final."""
    with clock("blend"):
        return [block for col, tile_maps, weight in zip(cols, maps, weights)
                for block in blender.add(row, col, tile_maps, float(weight))]


def column_blocks(maps: np.ndarray, row: int = 0) -> Iterator[Block]:
    """(row, col, (K, h, w)) blocks of (K, h, W) maps, as `StripBlender.add` gives them."""
    for col, width in strips(maps.shape[2], COLUMN_BLOCK):
        yield row, col, maps[:, :, col : col + width]


def predict_scene_strips(
    reader: SceneReader,
    run: TileRunner,
    overlap: int,
    batch_size: int = 4,
    on_tiles: Optional[Callable[[int], None]] = None,
    tile_size: Optional[int] = None,
    prefetch: bool = True,
    on_read: Optional[OnRead] = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first row, (K, h, W) float32 maps) strips covering the scene top to bottom: the blocks of
    `scene_blocks` (see there and `predict_tile_batches` for the arguments), joined into full-width strips."""
    blocks: list[Block] = []
    for blend in scene_blocks(reader, run, tile_size or run.image_size, overlap, batch_size, on_tiles, prefetch,
                              on_read):
        blocks += blend()
        if blocks and blocks[-1][1] + blocks[-1][2].shape[2] == reader.width:  # the strip's last block: complete
            yield blocks[0][0], np.concatenate([values for _, _, values in blocks], axis=2)
            blocks = []


def predict_tile_batches(
    reader: SceneReader,
    run: TileRunner,
    blender: StripBlender,
    batch_size: int = 4,
    on_tiles: Optional[Callable[[int], None]] = None,
    prefetch: bool = True,
    on_read: Optional[OnRead] = None,
) -> Iterator[tuple[int, list[int], np.ndarray]]:
    """Yield (tile row origin, tile column origins, (B, K, T, T) float32 maps, (B,) blending weights) for every batch
    of `blender`'s tile grid, top to bottom. With `prefetch`, the next batch is read in a background thread while the
    model runs on this one (GDAL releases the GIL while it reads and decompresses). Nodata is filled for the model
    (`SceneReader.fill_nodata`) and each tile weighted by its share of valid pixels (`blend_weights`).

    `on_tiles(n)` is called after each batch of n tiles (a progress bar's update); `on_read(top, left, pixels)` sees
    every tile read (a quicklook's samples).
    """
    size, cols = blender.tile, blender.col_origins
    batches = [(row, cols[start : start + batch_size]) for row in blender.row_origins
               for start in range(0, len(cols), batch_size)]

    def read(batch):  # one batch of tiles: a window as wide as the batch, so memory does not grow with the scene
        row, chunk = batch
        with run.clock("read"):
            raw, valid = reader.read_padded_raw(row, chunk[0], size, chunk[-1] + size - chunk[0])  # (C, T, w), (T, w)
        with run.clock("scale"):
            tiles, valid = cut_and_scale(chunk, raw, valid)
        if on_read:
            for col, tile in zip(chunk, tiles):
                on_read(row, col, tile)
        with run.clock("scale"):
            reader.fill_nodata(tiles, valid)  # after the quicklook saw nodata as black
        return tiles, blend_weights(valid, row, chunk, reader.height, reader.width)

    def cut_and_scale(chunk, raw, valid):  # (C, T, w) raw and (T, w) validity -> (B, C, T, T) tiles, (B, T, T)
        cuts = [slice(col - chunk[0], col - chunk[0] + size) for col in chunk]
        raw = np.stack([raw[:, :, cut] for cut in cuts], axis=1)  # (C, B, T, T): cut before scaling, in raw bytes
        valid = np.stack([valid[:, cut] for cut in cuts])  # (B, T, T)
        pixels = reader.pixels_from_raw(raw.reshape(len(raw), -1, size), valid.reshape(-1, size))  # (C, B*T, T)
        return pixels.reshape(len(raw), len(chunk), size, size).transpose(1, 0, 2, 3), valid  # (B, C, T, T): a view

    with ThreadPoolExecutor(1) if prefetch else contextlib.nullcontext() as pool:
        pending = pool.submit(read, batches[0]) if pool else None
        for index, (row, chunk) in enumerate(batches):
            tiles, weights = pending.result() if pool else read((row, chunk))
            if pool and index + 1 < len(batches):
                pending = pool.submit(read, batches[index + 1])
            maps = run(tiles, owned=True)  # read for this call alone
            if on_tiles:
                on_tiles(len(chunk))
            yield row, chunk, maps, weights


def blend_weights(valid: np.ndarray, row: int, cols: list[int], height: int, width: int) -> np.ndarray:
    """(B, T, T) validity of the tiles at (row, cols) -> (B,) their weights in the blend: each tile's share of the
    scene's valid pixels, so that a tile which saw mostly made-up pixels (nodata filled, or the padding beyond the
    scene's border, filled alike) hardly counts beside one that saw the data. Never 0: a pixel seen by such tiles
    alone still gets a value (it is nodata in the outputs)."""
    size = valid.shape[-1]
    rows_inside = (0 <= row + np.arange(size)) & (row + np.arange(size) < height)  # (T,)
    cols_inside = np.array([(0 <= col + np.arange(size)) & (col + np.arange(size) < width) for col in cols])  # (B, T)
    seen = valid & rows_inside[None, :, None] & cols_inside[:, None, :]  # (B, T, T)
    return np.maximum(seen.mean(axis=(1, 2)), 1e-3)


def tile_count(height: int, width: int, tile_size: int, overlap: int) -> int:
    """Model inputs a scene takes: one if it fits a tile, else its tile grid."""
    if fits_one_tile(height, width, tile_size):
        return 1
    return grid_tile_count(height, width, tile_size, overlap)
