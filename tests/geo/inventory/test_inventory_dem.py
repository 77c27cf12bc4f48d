"""The inventory's DEM is a user's file: one that misses the map is refused (every slope would be null, as without a
DEM), one that reaches part of it is used with a warning saying how much, and its pixels under the map are bounded."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers.rasters import write_raster
from rasterio.transform import from_origin

from translandseg_hf.geo.inventory import terrain
from translandseg_hf.geo.inventory.grid import grid_of
from translandseg_hf.geo.inventory.terrain import terrain_on

UTM_48N = "EPSG:32648"
ORIGIN = (500_000.0, 3_000_000.0)


def map_grid(tmp_path):
    """The post-event map: 40 x 40 px at 10 m."""
    return grid_of(write_raster(tmp_path / "map_probability.tif", np.full((40, 40), 0.2, np.float32), crs=UTM_48N,
                                transform=from_origin(*ORIGIN, 10.0, 10.0)))


def write_dem(tmp_path, name: str, west: float, columns: int, pixel: float = 10.0):
    """A tilted surface `columns` pixels wide from `west`, as tall as the map."""
    rows, cols = np.mgrid[0:int(400 / pixel), 0:columns].astype(np.float32)
    return write_raster(tmp_path / name, 200 + 0.5 * pixel * cols + 0.2 * pixel * rows, crs=UTM_48N,
                        transform=from_origin(west, ORIGIN[1], pixel, pixel), nodata=-9999.0)


def test_a_dem_that_misses_the_map_is_refused(tmp_path):
    dem = write_dem(tmp_path, "far_dem.tif", ORIGIN[0] + 100_000, 40)
    with pytest.raises(ValueError, match=r"far_dem\.tif: the DEM does not overlap the post-event grid of "
                                         r".*map_probability\.tif"):
        terrain_on(dem, map_grid(tmp_path))


def test_a_dem_over_half_the_map_is_used_with_a_warning_saying_how_much(tmp_path):
    dem = write_dem(tmp_path, "half_dem.tif", ORIGIN[0], 20)
    with pytest.warns(UserWarning, match=r"half_dem\.tif: the DEM covers 50\.0% of the post-event map .*"
                                         r"map_probability\.tif; the landslides outside it get no slope"):
        slope, elevation = terrain_on(dem, map_grid(tmp_path))
    assert np.isfinite(elevation[:, :19]).all() and np.isnan(elevation[:, 21:]).all()


def test_a_dem_over_the_whole_map_gives_no_warning(tmp_path):
    dem = write_dem(tmp_path, "dem.tif", ORIGIN[0] - 50, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # rasterio's own deprecation notes aside
        slope, elevation = terrain_on(dem, map_grid(tmp_path))
    assert np.isfinite(slope).all() and np.isfinite(elevation).all()


def test_a_dem_too_fine_to_read_under_the_map_is_refused_with_the_resampling_to_run(tmp_path, monkeypatch):
    dem = write_dem(tmp_path, "fine_dem.tif", ORIGIN[0], 400, pixel=1.0)  # 1 m under a 10 m map
    monkeypatch.setattr(terrain, "MAX_GRID_PIXELS", 100_000)
    with pytest.raises(ValueError, match=r"fine_dem\.tif: the DEM's pixels under the map are .* over the "
                                         r"inventory's limit of 100,000 .*gdalwarp -tr 10 10 -r average"):
        terrain_on(dem, map_grid(tmp_path))
