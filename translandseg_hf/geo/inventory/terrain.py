"""Slope and elevation of a DEM on the post-event grid: `sentinel2.terrain`'s Horn slope (as `gdaldem slope`
computes it, with -compute_edges at the DEM's own edges), copied where the DEM is on that grid, else resampled
bilinearly by GDAL."""

from __future__ import annotations

import os
from typing import Union

import numpy as np
from rasterio.windows import Window

from ..opening import open_raster
from ..sentinel2.terrain import terrain_on_grid
from .grid import Grid

PathLike = Union[str, os.PathLike]


def terrain_on(dem_path: PathLike, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Slope (degrees) and elevation (metres), each (H, W) float32 on `grid`, NaN where the DEM has no value."""
    with open_raster(dem_path) as dem:
        return terrain_on_grid(dem, grid.crs, grid.transform, Window(0, 0, grid.width, grid.height))
