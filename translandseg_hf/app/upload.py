"""What an upload is, read from its header before any model work: a supported image, not too many pixels, and the
bands the model's contract reads. Each problem is a ValueError naming the file, shown in the page as it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rasterio.errors import RasterioIOError

from ..image_processing import TransLandSegImageProcessor
from ..inference import SceneReader, tile_count
from ..inference.options import PredictionOptions
from ..rasters import RASTER_SUFFIXES, RemotePath, as_input, is_remote, open_raster, remote_failure
from . import DEFAULT_MAX_PIXELS


@dataclass
class SceneHeader:
    """An accepted upload: its size, whether it is georeferenced, and the tiles `predict_file` will run."""

    path: "Path | RemotePath"  # a local file, or a URL read in windows
    height: int
    width: int
    bands: int
    georeferenced: bool
    tiles: int
    tile_size: int


def check_upload(
    path, contract: TransLandSegImageProcessor, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS
) -> SceneHeader:
    """The upload's header, or a ValueError saying, by file name, why the model cannot map it. `path` may be a URL
    (https://, s3://, ...): it is read in windows, as `translandseg predict` reads one."""
    path = as_input(path)
    if path.suffix.lower() not in RASTER_SUFFIXES:
        raise ValueError(f"{path.name}: not an image; upload a PNG, JPEG or (Geo)TIFF.")
    try:
        with open_raster(path) as dataset:
            height, width, bands = dataset.height, dataset.width, dataset.count
    except RasterioIOError as error:
        if is_remote(path):
            raise ValueError(f"{path}: {remote_failure(path, error)}") from None
        raise ValueError(f"{path.name}: not a readable image or raster.") from None
    if max_pixels and height * width > max_pixels:  # None or 0: no limit
        raise ValueError(f"{path.name}: {width} x {height} px is {height * width:,} pixels, more than this app's "
                         f"limit of {max_pixels:,}; map it with `translandseg predict` instead.")
    try:
        with SceneReader(path, contract) as reader:  # checks the contract's bands against the file
            plan = contract.plan_tiles(reader.resolution)
            georeferenced = reader.georeferenced
    except ValueError as error:
        raise by_name(error, path) from None
    tiles = tile_count(height, width, plan.size, PredictionOptions().overlap_for(plan.size))
    return SceneHeader(path, height, width, bands, georeferenced, tiles, plan.size)


def by_name(error: Exception, path) -> Exception:
    """The error with the upload's temporary path shortened to its file name, as the page shows it (a URL is shown
    whole: it is what the user typed, less any query string)."""
    return error if is_remote(path) else type(error)(str(error).replace(str(path), path.name))
