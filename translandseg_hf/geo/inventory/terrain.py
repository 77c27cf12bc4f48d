"""Slope and elevation of a DEM on the post-event grid: `sentinel2.terrain`'s Horn slope (as `gdaldem slope`
computes it, with -compute_edges at the DEM's own edges), copied where the DEM is on that grid, else resampled
bilinearly by GDAL.

A DEM is a user's file like any other: one that misses the map is refused (every slope would be null, as if no DEM
had been given), one that covers only part of it is used with a warning saying how much, and the DEM pixels read
under the map are bounded as the map itself is (a 1 m DEM under a 50 km map would be billions of pixels)."""

from __future__ import annotations

import os
import warnings
from typing import Union

import numpy as np
import shapely
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from ..georeferencing import georeferencing_of
from ..opening import open_raster
from ..sentinel2.terrain import DENSIFY_POINTS, dem_window, terrain_on_grid
from .grid import MAX_GRID_PIXELS, Grid, check_overlap, own_grid

UNCOVERED_WARNING_SHARE = 0.001  # a DEM clipped to the map's bounds to rounding is not worth a warning

PathLike = Union[str, os.PathLike]


def terrain_on(dem_path: PathLike, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Slope (degrees) and elevation (metres), each (H, W) float32 on `grid`, NaN where the DEM has no value."""
    with open_raster(dem_path) as dem:
        check_dem_placement(dem, dem_path)
        check_overlap(dem_path, own_grid(dem, dem_path, "DEM"), grid, "DEM")
        check_dem_read(dem, dem_path, grid)
        warn_uncovered(dem, dem_path, grid)
        return terrain_on_grid(dem, grid.crs, grid.transform, Window(0, 0, grid.width, grid.height))


def check_dem_read(dem, dem_path: PathLike, grid: Grid) -> None:
    """ValueError naming the DEM where its pixels under the map (read whole, at the DEM's own resolution, for the
    slope) number more than MAX_GRID_PIXELS, with the gdalwarp that brings it to the map's resolution."""
    window = dem_window(dem, grid.crs, grid.bounds, grid.shape)
    pixels = 0 if window is None else int(window.width) * int(window.height)
    if pixels > MAX_GRID_PIXELS:
        raise ValueError(f"{dem_path}: the DEM's pixels under the map are {int(window.width):,} x "
                         f"{int(window.height):,} = {pixels:,}, over the inventory's limit of {MAX_GRID_PIXELS:,} "
                         f"(its slope is computed on them, in memory); resample it to about the map's "
                         f"{grid.resolution:g} {grid.crs.linear_units or 'units'} first (gdalwarp -tr "
                         f"{grid.resolution:g} {grid.resolution:g} -r average {dem_path} dem_coarser.tif) or map a "
                         "smaller area.")


def warn_uncovered(dem, dem_path: PathLike, grid: Grid) -> None:
    """A warning naming the DEM and the share of the map it does not reach (landslides there get null slope and
    elevation), measured on the footprints in the map's CRS."""
    footprint = shapely.box(*transform_bounds(dem.crs, grid.crs, *dem.bounds, densify_pts=DENSIFY_POINTS))
    area = shapely.box(*grid.bounds)
    uncovered = 1.0 - footprint.intersection(area).area / area.area
    if uncovered > UNCOVERED_WARNING_SHARE:
        warnings.warn(f"{dem_path}: the DEM covers {1 - uncovered:.1%} of the post-event map {grid.path}; the "
                      "landslides outside it get no slope or elevation (null).", stacklevel=3)


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
