"""Areas on the ellipsoid (`translandseg_hf.geo.inventory.areas`) against the closed form of an ellipsoidal
quadrangle (between two meridians and two parallels), which Web Mercator and a geographic CRS draw as rectangles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform as transform_points

from translandseg_hf.geo.inventory.areas import geodesic_area_perimeter, pixel_areas_m2

WGS84_A, WGS84_F = 6378137.0, 1 / 298.257223563
WEB_MERCATOR, UTM_45N, GEOGRAPHIC = CRS.from_epsg(3857), CRS.from_epsg(32645), CRS.from_epsg(4326)
LON, LAT = 85.3, 27.6  # Nepal, where a Web Mercator map inflates areas by 1 / cos^2(27.6) = 1.27


def quadrangle_area(west: float, south: float, east: float, north: float) -> float:
    """m2 on WGS 84 between the meridians and parallels (degrees): b^2 dlambda / 2 [q(north) - q(south)], with
    q(phi) = sin phi / (1 - e^2 sin^2 phi) + ln((1 + e sin phi) / (1 - e sin phi)) / (2 e)."""
    b = WGS84_A * (1 - WGS84_F)
    e = math.sqrt(WGS84_F * (2 - WGS84_F))

    def q(phi):
        s = math.sin(math.radians(phi))
        return s / (1 - e * e * s * s) + math.log((1 + e * s) / (1 - e * s)) / (2 * e)

    return b * b * math.radians(east - west) / 2 * (q(north) - q(south))


def web_mercator_box(size_m: float):
    """A `size_m` square in Web Mercator with its south-west corner at LON, LAT, and its WGS 84 bounds."""
    (x,), (y,) = transform_points(GEOGRAPHIC, WEB_MERCATOR, [LON], [LAT])
    (west, east), (south, north) = transform_points(WEB_MERCATOR, GEOGRAPHIC, [x, x + size_m], [y, y + size_m])
    return shapely.box(x, y, x + size_m, y + size_m), (west, south, east, north)


def test_a_web_mercator_polygon_has_its_area_on_the_ellipsoid_not_on_the_map():
    box, bounds = web_mercator_box(1000.0)
    area, perimeter = geodesic_area_perimeter(np.array([box]), WEB_MERCATOR)
    truth = quadrangle_area(*bounds)
    assert area[0] == pytest.approx(truth, rel=1e-5)
    assert 1e6 / area[0] == pytest.approx(1 / math.cos(math.radians(LAT)) ** 2, rel=0.01)  # the map's inflation
    assert perimeter[0] == pytest.approx(4 * 1000 * math.cos(math.radians(LAT)), rel=0.01)


def test_utm_areas_agree_with_planar_ones_to_a_tenth_of_a_percent():
    (x,), (y,) = transform_points(GEOGRAPHIC, UTM_45N, [LON], [LAT])
    polygons = np.array([shapely.box(x, y, x + 80, y + 50), shapely.box(x, y, x + 10, y + 10).difference(
        shapely.box(x + 2, y + 2, x + 4, y + 4))])  # a hole is subtracted from the area, added to the perimeter
    areas, perimeters = geodesic_area_perimeter(polygons, UTM_45N)
    assert areas.tolist() == pytest.approx(shapely.area(polygons).tolist(), rel=1e-3)
    assert perimeters.tolist() == pytest.approx(shapely.length(polygons).tolist(), rel=1e-3)
    assert not np.allclose(areas, shapely.area(polygons), rtol=1e-7, atol=0)  # measured, not copied


def test_no_polygons_give_empty_areas():
    areas, perimeters = geodesic_area_perimeter(np.zeros(0, dtype=object), WEB_MERCATOR)
    assert areas.shape == perimeters.shape == (0,)


@pytest.mark.parametrize("shape", [(30, 40), (700, 300)])  # one pixel per lattice point, and cells of 3 x 3
def test_pixel_areas_of_a_web_mercator_grid_sum_to_its_footprint(shape):
    box, _ = web_mercator_box(1.0)
    x, y = box.bounds[0], box.bounds[3]
    transform = from_origin(x, y, 10.0, 10.0)
    pixels = pixel_areas_m2(WEB_MERCATOR, transform, shape)
    assert pixels.shape == shape
    (west, east), (north, south) = transform_points(WEB_MERCATOR, GEOGRAPHIC, [x, x + 10 * shape[1]],
                                                    [y, y - 10 * shape[0]])
    assert pixels.sum() == pytest.approx(quadrangle_area(west, south, east, north), rel=1e-4)
    assert pixels[-1, 0] > pixels[0, 0]  # further south, nearer the equator: a larger pixel on the ground


def test_pixel_areas_of_a_geographic_grid_are_in_square_metres():
    transform = from_origin(LON, LAT, 0.0001, 0.0001)
    pixels = pixel_areas_m2(GEOGRAPHIC, transform, (2, 2))
    assert pixels[0, 0] == pytest.approx(quadrangle_area(LON, LAT - 0.0001, LON + 0.0001, LAT), rel=1e-6)
