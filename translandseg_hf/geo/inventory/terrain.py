"""Slope and elevation of a DEM on the post-event grid: `sentinel2.terrain`'s Horn slope (as `gdaldem slope`
computes it, with -compute_edges at the DEM's own edges), copied where the DEM is on that grid, else resampled
bilinearly by GDAL."""

from __future__ import annotations

import os
from typing import Union

import numpy as np
from rasterio.windows import Window

from ..georeferencing import georeferencing_of
from ..opening import open_raster
from ..sentinel2.terrain import terrain_on_grid
from .grid import Grid

PathLike = Union[str, os.PathLike]


def terrain_on(dem_path: PathLike, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Slope (degrees) and elevation (metres), each (H, W) float32 on `grid`, NaN where the DEM has no value."""
    with open_raster(dem_path) as dem:
        check_dem_placement(dem, dem_path)
        return terrain_on_grid(dem, grid.crs, grid.transform, Window(0, 0, grid.width, grid.height))


def check_dem_placement(dem, dem_path: PathLike) -> None:
    """A DEM must lie on a map grid (a CRS and a geotransform): slope is computed on the DEM's own pixels, which
    ground control points or RPCs do not make square metres of. ValueError naming it and the gdalwarp to run."""
    placed_by = georeferencing_of(dem)
    if placed_by == "transform":
        return
    how = {"gcps": "is placed by ground control points alone", "rpcs": "is placed by RPCs alone",
           "pixels": "has no CRS and geotransform"}[placed_by]
    raise ValueError(f"{dem_path}: the DEM {how}, not on a map grid, so its slope cannot be computed; warp it onto "
                     f"one first (gdalwarp -t_srs EPSG:<code> -r bilinear {dem_path} dem_on_grid.tif) and give that.")
