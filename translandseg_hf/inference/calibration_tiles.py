"""The tiles `export --quantize int8 --calibration DATA` fits int8's ranges on: DATA is a dataset by name (its
training split, `onnx_backend.calibration.dataset_tiles`), a scene (PNG, JPEG, TIFF, GeoTIFF, a Sentinel-2 product)
or a folder of them. A scene is read, scaled and tiled as `predict` maps it (`SceneReader`, `plan_tiles`, the tile
grid, nodata filled) and its tiles made into pixel_values by the contract's resizing and normalisation, as
`TileRunner` makes them: the int8 ranges are those of the inputs the model will map.

Bounded: at most `max_tiles` calibration tiles (plus the held-back ones), spread evenly over the scenes and over each
scene's grid of non-overlapping tiles, so held-back tiles show other ground than the calibration tiles."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..choices import DATASET_NAMES
from ..image_processing import TransLandSegImageProcessor
from ..onnx_backend import MAX_CALIBRATION_TILES
from ..onnx_backend.calibration import CalibrationTiles, dataset_tiles, evenly_spaced, tile_budget
from .contract import plan_tiles
from .reading import SceneReader
from .runner import collect_inputs
from .tiling import tile_origins


def calibration_tiles(data: str, processor: TransLandSegImageProcessor, data_dir: Optional[str] = None,
                      max_tiles: int = MAX_CALIBRATION_TILES) -> CalibrationTiles:
    """DATA (a dataset name, a scene or a folder of scenes) as calibration tiles for the model of `processor`."""
    if data in DATASET_NAMES:
        return dataset_tiles(processor, data, data_dir, max_tiles)
    if data_dir is not None:
        raise ValueError(f"--calibration_data_dir is the folder of a dataset named by --calibration "
                         f"({', '.join(DATASET_NAMES)}); --calibration {data} is a scene or a folder.")
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"--calibration {data}: no such file or folder, nor a dataset name "
                                f"({', '.join(DATASET_NAMES)}).")
    scenes = collect_inputs([path])
    if not scenes:
        raise ValueError(f"{path}: holds no images (PNG, JPEG, TIFF, GeoTIFF) to calibrate on.")
    budget = tile_budget(max_tiles)
    scenes = [scenes[index] for index in evenly_spaced(len(scenes), budget)]
    tiles = []
    for order, scene in enumerate(scenes):  # each scene's share of what is left of the budget
        share = -(-(budget - len(tiles)) // (len(scenes) - order))
        tiles.extend(scene_tiles(scene, processor, share))
    if not tiles:
        raise ValueError(f"{path}: no tile of it holds a valid (not nodata) pixel to calibrate on.")
    pixel_values = torch.cat(tiles).numpy()
    what = f"scene {path}" if len(scenes) == 1 and path.is_file() else f"{len(scenes)} scene(s) in {path}"
    return CalibrationTiles(pixel_values, f"{len(pixel_values)} tiles of {what}, as predict tiles them")


def scene_tiles(scene, processor: TransLandSegImageProcessor, count: int) -> list[torch.Tensor]:
    """Up to `count` (1, C, S, S) pixel_values of one scene's grid of non-overlapping tiles, evenly spread, row by
    row; tiles without a valid pixel are skipped."""
    made = []
    with SceneReader(scene, processor) as reader:
        size = plan_tiles(processor, reader.resolution).size
        rows, cols = tile_origins(reader.height, size, 0), tile_origins(reader.width, size, 0)
        grid = [(row, col) for row in rows for col in cols]
        for index in evenly_spaced(len(grid), count):
            raw, valid = reader.read_padded_raw(*grid[index], size, size)
            if not valid.any():
                continue
            pixels = reader.pixels_from_raw(raw, valid)[None]  # (1, C, T, T)
            reader.fill_nodata(pixels, valid[None])
            made.append(processor.normalize_pixels(processor.resize_to_input(torch.from_numpy(pixels))))
    return made
