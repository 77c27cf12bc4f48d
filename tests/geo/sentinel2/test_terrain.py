"""Slope and elevation for Landslide4Sense's last two channels (translandseg_hf/geo/sentinel2/terrain.py): Horn's slope
agrees with Debian's `gdaldem slope` (GDAL 3.6) on a real-shaped DEM in a projected and in a geographic CRS, edges
included; nodata propagates; the DEM goes onto a UTM 10 m grid from EPSG:4326 and from 30 m UTM, and a window of the
grid gets the values the whole grid has there."""

from __future__ import annotations

import math
import re
import shutil
import subprocess

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin
from rasterio.vrt import WarpedVRT
from rasterio.warp import Resampling, transform
from rasterio.windows import Window

from helpers.rasters import write_raster

from translandseg_hf.geo.sentinel2.terrain import (check_dem_covers, horn_slope, pixel_sizes_m, sphere_radius_m,
                                               terrain_on_grid)

GDALDEM = shutil.which("gdaldem")
needs_gdaldem = pytest.mark.skipif(GDALDEM is None, reason="needs gdaldem (Debian's gdal-bin, which .ci/run installs)")
UTM_45N = CRS.from_epsg(32645)
WGS84 = CRS.from_epsg(4326)
NODATA = -9999.0
ORIGIN = (330_000.0, 3_320_000.0)  # UTM 45N, about 85.3 E 30.0 N (the Himalaya)
ARC_SECOND = 1 / 3600
NODATA_PIXELS = ((40, 55), (41, 55), (90, 20), (12, 70))  # a few, inside; none touches an edge


def mountain(east: np.ndarray, north: np.ndarray) -> np.ndarray:
    """A real-shaped DEM (metres) at UTM 45N coordinates: a massif, a ridge and valleys, 0-3000 m."""
    x, y = east - ORIGIN[0], north - ORIGIN[1]
    massif = 2300 * np.exp(-((x - 1300) ** 2 + (y + 1400) ** 2) / (2 * 700.0 ** 2))
    ridges = 260 * np.sin(x / 520 + 0.4) * np.cos(y / 610) + 90 * np.sin((x + 2 * y) / 330)
    return np.clip(450 + massif + ridges + 0.05 * x, 0, 3000).astype(np.float32)


def utm_dem(height: int, width: int, pixel_m: float, origin=ORIGIN) -> tuple[np.ndarray, Affine]:
    grid = from_origin(origin[0], origin[1], pixel_m, pixel_m)
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    east, north = grid @ (cols, rows)
    return mountain(east, north), grid


def geographic_dem(height: int, width: int) -> tuple[np.ndarray, Affine]:
    """The same mountain in EPSG:4326, 1 arc second pixels, its corner at ORIGIN."""
    lon, lat = transform(UTM_45N, WGS84, [ORIGIN[0]], [ORIGIN[1]])
    grid = from_origin(lon[0], lat[0], ARC_SECOND, ARC_SECOND)
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    lons, lats = grid @ (cols, rows)
    east, north = transform(WGS84, UTM_45N, lons.ravel(), lats.ravel())
    return mountain(np.reshape(east, lons.shape), np.reshape(north, lats.shape)), grid


def with_nodata(dem: np.ndarray) -> np.ndarray:
    dem = dem.copy()
    for pixel in NODATA_PIXELS:
        dem[pixel] = np.nan
    return dem


def write_dem(path, dem: np.ndarray, crs, grid: Affine):
    return write_raster(path, np.where(np.isnan(dem), NODATA, dem).astype(np.float32), crs=crs, transform=grid,
                        nodata=NODATA)


def gdaldem_slope(dem_path, tmp_path, *options) -> np.ndarray:
    out = tmp_path / f"slope{len(list(tmp_path.iterdir()))}.tif"
    subprocess.run([GDALDEM, "slope", str(dem_path), str(out), "-q", *options], check=True)
    with rasterio.open(out) as slope:
        return slope.read(1, masked=True).astype(np.float32).filled(np.nan)


def near_nodata(dem: np.ndarray) -> np.ndarray:
    """Pixels with nodata in their 3x3 window, where gdaldem -compute_edges substitutes the centre's value."""
    padded = np.pad(np.isnan(dem), 1)
    return np.any([padded[r:r + dem.shape[0], c:c + dem.shape[1]] for r in range(3) for c in range(3)], axis=0)


def whole_grid_slope(path):
    with rasterio.open(path) as dem:
        return terrain_on_grid(dem, dem.crs, dem.transform, Window(0, 0, dem.width, dem.height))[0]


@needs_gdaldem
@pytest.mark.parametrize("pixel_m", [10.0, 30.0])
def test_slope_is_gdaldems_in_a_projected_crs(tmp_path, pixel_m):
    dem, grid = utm_dem(110, 130, pixel_m)
    dem = with_nodata(dem)
    path = write_dem(tmp_path / "dem.tif", dem, UTM_45N, grid)
    interior = gdaldem_slope(path, tmp_path)[1:-1, 1:-1]
    ours = horn_slope(dem, pixel_m, pixel_m)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(interior))
    np.testing.assert_allclose(ours, interior, atol=1e-3, rtol=0)
    assert np.nanmax(ours) > 30 and np.isnan(ours).sum() > 9  # steep ground; nodata propagated
    # With -compute_edges, gdaldem fills nodata neighbours with the centre's value; ours keeps them NaN.
    edges = gdaldem_slope(path, tmp_path, "-compute_edges")
    ours = whole_grid_slope(path)
    valid = ~near_nodata(dem)
    assert np.isfinite(ours[valid]).all() and np.isnan(ours[~valid]).all()
    np.testing.assert_allclose(ours[valid], edges[valid], atol=1e-3, rtol=0)


@needs_gdaldem
def test_slope_is_gdaldems_in_a_geographic_crs(tmp_path):
    """GDAL 3.6's gdaldem has one `-s` (metres per degree) for both axes and all rows. It gets a copy whose x pixel
    size is the DEM's times cos(latitude) of the DEM's centre, and `-s` for our sphere, so its x distances are ours
    at the centre row. Ours use each row's cos(latitude): rows apart by d radians of latitude differ in x size by the
    factor eps = max |cos(lat) / cos(lat0) - 1| (about tan(lat0) * d), and a relative change eps of one gradient
    component changes the slope by at most eps / 2 radians (d atan(g) <= eps * g / (1 + g^2)): the tolerance."""
    dem, grid = geographic_dem(100, 110)
    dem = with_nodata(dem)
    path = write_dem(tmp_path / "dem.tif", dem, WGS84, grid)
    radius = sphere_radius_m(WGS84)
    latitudes = np.radians(grid.f + grid.e * (np.arange(dem.shape[0]) + 0.5))
    centre = np.radians(grid.f + grid.e * dem.shape[0] / 2)
    copy = grid @ Affine.scale(math.cos(centre), 1.0)
    scaled = write_dem(tmp_path / "scaled.tif", dem, WGS84, copy)
    options = ["-s", repr(radius * math.pi / 180)]
    eps = np.max(np.abs(np.cos(latitudes) / math.cos(centre) - 1))
    tolerance = math.degrees(eps / 2) + 1e-5
    assert 1e-3 < tolerance < 0.01  # cos(lat) varies, a little, across a 3 km DEM at 30 N

    x_sizes, y_size = pixel_sizes_m(WGS84, grid, np.arange(1, dem.shape[0] - 1))
    interior = gdaldem_slope(scaled, tmp_path, *options)[1:-1, 1:-1]
    ours = horn_slope(dem, x_sizes, y_size)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(interior))
    np.testing.assert_allclose(ours, interior, atol=tolerance, rtol=0)
    assert np.nanmax(ours) > 30
    edges = gdaldem_slope(scaled, tmp_path, "-compute_edges", *options)
    ours, valid = whole_grid_slope(path), ~near_nodata(dem)
    np.testing.assert_allclose(ours[valid], edges[valid], atol=tolerance, rtol=0)


def test_nodata_makes_its_3x3_neighbourhood_nodata():
    dem, _ = utm_dem(20, 24, 10.0)
    dem[7, 9] = np.nan
    slope = horn_slope(dem, 10.0, 10.0)
    assert slope.shape == (18, 22) and slope.dtype == np.float32
    expected = np.zeros(slope.shape, dtype=bool)
    expected[5:8, 7:10] = True  # output (r, c) is dem (r + 1, c + 1)
    np.testing.assert_array_equal(np.isnan(slope), expected)


def test_horn_slope_of_a_plane_is_its_angle():
    rows, cols = np.mgrid[0:5, 0:6].astype(np.float64)
    plane = 30.0 * cols * math.tan(math.radians(25))  # 30 m pixels, rising 25 degrees eastwards
    np.testing.assert_allclose(horn_slope(plane, 30.0, 30.0), 25.0, atol=1e-4)
    with pytest.raises(ValueError, match=r"horn_slope needs a \(h \+ 2, w \+ 2\) DEM with a 1-pixel halo"):
        horn_slope(np.zeros((2, 5)), 30.0, 30.0)


def test_pixel_sizes_in_a_projected_crs():
    x, y = pixel_sizes_m(UTM_45N, from_origin(*ORIGIN, 10, 10), [0, 5, 9])
    np.testing.assert_array_equal(x, [10.0, 10.0, 10.0])
    assert y == 10.0
    feet = CRS.from_epsg(2227)  # California zone 3, US survey feet
    x, y = pixel_sizes_m(feet, from_origin(6e6, 2e6, 100, 100), [0])
    np.testing.assert_allclose([x[0], y], 100 * 1200 / 3937)


def test_pixel_sizes_in_a_geographic_crs():
    radius = sphere_radius_m(WGS84)
    assert radius == pytest.approx(6_371_008.771, abs=1e-3)  # WGS 84's mean radius (2a + b) / 3
    assert sphere_radius_m(CRS.from_proj4("+proj=longlat +R=6371000 +no_defs")) == 6_371_000.0
    degree_m = math.pi / 180 * radius
    at_60n = from_origin(85.0, 60.0 + 0.5 * ARC_SECOND, ARC_SECOND, ARC_SECOND)  # row 0's centre at 60 N
    x, y = pixel_sizes_m(WGS84, at_60n, [0, 3600])  # 60 N and 59 N
    assert y == pytest.approx(degree_m / 3600, rel=1e-12)
    np.testing.assert_allclose(x, y * np.cos(np.radians([60.0, 59.0])), rtol=1e-12)
    x, y = pixel_sizes_m(WGS84, from_origin(0, 0.5, 1.0, 1.0), [0])  # the equator
    assert x[0] == pytest.approx(y, rel=1e-12) and y == pytest.approx(degree_m, rel=1e-12)


GRID = from_origin(ORIGIN[0] + 253.7, ORIGIN[1] - 311.2, 10.0, 10.0)  # UTM 10 m, not on the DEMs' pixel edges
GRID_SHAPE = (150, 170)


def dem_datasets(tmp_path):
    utm = write_dem(tmp_path / "utm30.tif", with_nodata(utm_dem(100, 110, 30.0)[0]), UTM_45N, utm_dem(1, 1, 30.0)[1])
    geographic = write_dem(tmp_path / "wgs84.tif", *[with_nodata(geographic_dem(110, 120)[0]), WGS84,
                                                     geographic_dem(1, 1)[1]])
    return {"UTM 30 m": utm, "EPSG:4326": geographic}


@pytest.mark.parametrize("source", ["UTM 30 m", "EPSG:4326"])
def test_terrain_onto_a_utm_10m_grid(tmp_path, source):
    """Elevation is GDAL's bilinear reprojection of the DEM, exact (a WarpedVRT with no approximation to speak of;
    rasterio's reproject approximates to 0.125 pixel, 0.2 m of elevation here). Slope and elevation in 4 windows are
    those of the whole."""
    path = dem_datasets(tmp_path)[source]
    whole = Window(0, 0, GRID_SHAPE[1], GRID_SHAPE[0])
    parts = [Window(0, 0, 67, 71), Window(67, 0, 103, 71), Window(0, 71, 67, 79), Window(67, 71, 103, 79)]
    with rasterio.open(path) as dem:
        slope, elevation = terrain_on_grid(dem, UTM_45N, GRID, whole)
        with WarpedVRT(dem, crs=UTM_45N, transform=GRID, width=GRID_SHAPE[1], height=GRID_SHAPE[0],
                       resampling=Resampling.bilinear, tolerance=1e-6) as exact:
            expected = exact.read(1, masked=True).astype(np.float32).filled(np.nan)
        tiled = np.full((2, *GRID_SHAPE), np.nan, dtype=np.float32)
        for part in parts:
            tiled[(slice(None), *part.toslices())] = terrain_on_grid(dem, UTM_45N, GRID, part)
    assert slope.shape == elevation.shape == GRID_SHAPE and slope.dtype == elevation.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(elevation), np.isnan(expected))
    np.testing.assert_allclose(elevation, expected, atol=1e-3, rtol=0)
    assert np.isnan(elevation).any() and np.isfinite(elevation).mean() > 0.9  # the DEM's nodata came through
    assert 20 < np.nanmax(slope) < 90
    for values, window_values in zip((slope, elevation), tiled):
        np.testing.assert_array_equal(np.isnan(window_values), np.isnan(values))
        np.testing.assert_allclose(window_values, values, atol=1e-5, rtol=0)


def test_a_decimated_read_is_window_independent(tmp_path):
    """Overviews: a 10 m DEM onto a 40 m grid over the same bounds. GDAL widens the bilinear kernel 4 times; the
    halves agree with the whole."""
    path = write_dem(tmp_path / "utm10.tif", utm_dem(260, 280, 10.0)[0], UTM_45N, utm_dem(1, 1, 10.0)[1])
    with rasterio.open(path) as dem:
        whole = terrain_on_grid(dem, UTM_45N, GRID, Window(0, 0, 160, 120), out_shape=(30, 40))
        left = terrain_on_grid(dem, UTM_45N, GRID, Window(0, 0, 80, 120), out_shape=(30, 20))
        right = terrain_on_grid(dem, UTM_45N, GRID, Window(80, 0, 80, 120), out_shape=(30, 20))
    for values, halves in zip(whole, zip(left, right)):
        assert values.shape == (30, 40) and np.isfinite(values).all()
        np.testing.assert_allclose(np.hstack(halves), values, atol=1e-5, rtol=0)


def test_check_dem_covers(tmp_path):
    paths = dem_datasets(tmp_path)
    for path in paths.values():
        with rasterio.open(path) as dem:
            check_dem_covers(dem, path, UTM_45N, GRID, GRID_SHAPE[1], GRID_SHAPE[0], "S2A_TEST.SAFE")
            beyond = GRID @ Affine.translation(-300, 0)  # 3 km west: off the DEM
            message = (rf"^{re.escape(str(path))}: the DEM does not cover S2A_TEST\.SAFE: its footprint is "
                       r"\(3\d{5}(\.\d\d?)?, .*\) and the product's grid \(3\d{5}(\.\d\d?)?, .*\) "
                       r"\(left, bottom, right, top in EPSG:32645\); pass a DEM that covers the whole product")
            with pytest.raises(ValueError, match=message):
                check_dem_covers(dem, path, UTM_45N, beyond, GRID_SHAPE[1], GRID_SHAPE[0], "S2A_TEST.SAFE")
