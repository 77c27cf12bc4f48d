"""Maps placed by ground control points or RPCs alone (what `predict` writes for such scenes) read onto the
inventory's grid: the north-up grid GDAL's warper makes for them, each raster warped through its points (never read
as if its pixels were on that grid), landslides kept where and as large as they are."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.rasters import BLOB_HEIGHT, BLOB_WIDTH, LANDSLIDE_PIXELS, ROTATED, affine_rpc, blob_scene, corner_gcps
from helpers.rasters import write_raster
from pyproj import Geod
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.transform import from_origin

from translandseg_hf.geo.inventory import grid as inventory_grid
from translandseg_hf.geo.inventory.grid import grid_of, read_on_grid
from translandseg_hf.geo.inventory.terrain import terrain_on

UTM_48N = CRS.from_epsg(32648)
NORTH_UP = from_origin(500_000.0, 3_000_000.0, 3.0, 3.0)
DEGREES = 0.0001  # the RPC scene's pixel


def ramp(height: int, width: int) -> np.ndarray:
    """(1, H, W) float32 values in 0-1 that differ from pixel to pixel."""
    return (np.add.outer(np.arange(height), 2 * np.arange(width)) / (height + 2 * width)).astype(np.float32)[None]


def points_of(transform, height: int, width: int) -> list[GroundControlPoint]:
    """GCPs at a grid's corners and middle: the grid's placement, given as points."""
    pixels = [(0, 0), (0, width), (height, 0), (height, width), (height / 2, width / 2)]
    return [GroundControlPoint(row, col, *(transform @ (col, row)), id=str(i)) for i, (row, col) in enumerate(pixels)]


def landslide_mask() -> np.ndarray:
    """(1, H, W) uint8: the blob scene's three landslides as 1, ground as 0."""
    return (blob_scene()[0] == 200).astype(np.uint8)[None]


def centre_of(mask: np.ndarray, transform) -> tuple[float, float]:
    """The map coordinates of the middle of a mask's pixels of 1 (pixel centres through `transform`)."""
    rows, cols = np.nonzero(mask == 1)
    return transform @ (float(cols.mean()) + 0.5, float(rows.mean()) + 0.5)


def test_a_map_placed_by_points_gets_the_grid_they_give_and_the_same_values(tmp_path):
    values = ramp(60, 80)
    on_grid = write_raster(tmp_path / "grid.tif", values, crs=UTM_48N, transform=NORTH_UP)
    by_points = write_raster(tmp_path / "points.tif", values, crs=UTM_48N, gcps=points_of(NORTH_UP, 60, 80))
    grid, placed = grid_of(on_grid), grid_of(by_points)
    assert placed.crs == UTM_48N and placed.shape == grid.shape
    assert np.allclose(tuple(placed.transform)[:6], tuple(grid.transform)[:6], rtol=0, atol=1e-6)
    read = read_on_grid(by_points, grid)[0]
    assert np.nanmax(np.abs(read[1:-1, 1:-1] - values[0, 1:-1, 1:-1])) < 1e-4


def test_a_rotated_scene_placed_by_points_keeps_its_landslides_place_and_area(tmp_path):
    path = write_raster(tmp_path / "mask.tif", landslide_mask(), nodata=255, gcps=corner_gcps(), crs=UTM_48N)
    grid = grid_of(path)
    assert grid.crs == UTM_48N and grid.transform.b == 0 and grid.transform.d == 0  # north up, in the GCPs' CRS
    read = read_on_grid(path, grid, kind="classes")[0]
    assert np.isnan(read[0, 0]) and np.isnan(read[-1, -1])  # the box's corners lie outside the turned scene
    assert (read == 1).sum() * grid.transform.a * -grid.transform.e == pytest.approx(LANDSLIDE_PIXELS * 9.0, rel=0.03)
    x, y = centre_of(read, grid.transform)
    x_true, y_true = centre_of(landslide_mask()[0], ROTATED)
    assert np.hypot(x - x_true, y - y_true) < 3.0  # within a pixel: not mirrored, not shifted


def test_an_rpc_scene_is_mapped_in_the_utm_zone_of_its_middle_with_its_landslides_place_and_area(tmp_path):
    path = write_raster(tmp_path / "rpc.tif", landslide_mask(), nodata=255, rpcs=affine_rpc(BLOB_HEIGHT, BLOB_WIDTH))
    grid = grid_of(path)
    assert grid.crs == UTM_48N  # 105 E, 27 N
    read = read_on_grid(path, grid, kind="classes")[0]
    pixel_m2 = abs(Geod(ellps="WGS84").polygon_area_perimeter([105, 105 + DEGREES, 105 + DEGREES, 105],
                                                              [27, 27, 27 + DEGREES, 27 + DEGREES])[0])
    assert (read == 1).sum() * grid.transform.a * -grid.transform.e == pytest.approx(LANDSLIDE_PIXELS * pixel_m2,
                                                                                     rel=0.03)
    rows, cols = np.nonzero(landslide_mask()[0] == 1)
    lon_true = 105 + (cols.mean() + 0.5 - BLOB_WIDTH / 2) * DEGREES
    lat_true = 27 - (rows.mean() + 0.5 - BLOB_HEIGHT / 2) * DEGREES
    x, y = centre_of(read, grid.transform)
    (lon,), (lat,) = inventory_grid.transform_points(UTM_48N, "EPSG:4326", [x], [y])
    assert abs(lon - lon_true) < DEGREES and abs(lat - lat_true) < DEGREES


def test_a_raster_without_any_placement_is_refused(tmp_path):
    path = write_raster(tmp_path / "plain.tif", ramp(20, 20), crs=None)
    with pytest.raises(ValueError, match=r"plain\.tif: the raster has no map placement \(no CRS with a geotransform, "
                                         r"nor ground control points or RPCs\)"):
        grid_of(path)


def test_a_dem_placed_by_points_is_refused_with_the_warp_to_run(tmp_path):
    grid = grid_of(write_raster(tmp_path / "grid.tif", ramp(60, 80), crs=UTM_48N, transform=NORTH_UP))
    dem = write_raster(tmp_path / "dem.tif", 200 + 100 * ramp(60, 80), crs=UTM_48N, gcps=points_of(NORTH_UP, 60, 80))
    with pytest.raises(ValueError, match=r"dem\.tif: the DEM is placed by ground control points alone, not on a map "
                                         r"grid, .*gdalwarp -t_srs EPSG:<code> -r bilinear"):
        terrain_on(dem, grid)


def test_a_raster_placed_by_points_is_read_whole_only_within_the_size_limit(tmp_path, monkeypatch):
    grid = grid_of(write_raster(tmp_path / "grid.tif", ramp(60, 80), crs=UTM_48N, transform=NORTH_UP))
    by_points = write_raster(tmp_path / "points.tif", ramp(60, 80), crs=UTM_48N, gcps=points_of(NORTH_UP, 60, 80))
    monkeypatch.setattr(inventory_grid, "MAX_GRID_PIXELS", 1000)
    with pytest.raises(ValueError, match=r"points\.tif: the map is 80 x 60 = 4,800 pixels, over the inventory's "
                                         r"limit of 1,000 pixels"):
        read_on_grid(by_points, grid)
