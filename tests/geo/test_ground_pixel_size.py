"""A scene in degrees gets a ground pixel size for its tile plan and scale check (issue 37's "far coarser than
training" refusal skipped EPSG:4326 scenes): the geodesic lengths of one pixel step at the scene's centre, checked
here against the ellipsoid's radii of curvature (an independent formula); areas keep `pixel_size_m`, None in degrees."""

from __future__ import annotations

import math

import pytest
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin

from translandseg_hf.geo import ground_pixel_size_m, pixel_size_m

WGS84 = CRS.from_epsg(4326)
A, F = 6378137.0, 1 / 298.257223563  # WGS 84's ellipsoid


def by_radii(latitude: float, step_x: float, step_y: float) -> float:
    """sqrt(east-west x north-south metres) of a step_x x step_y degree pixel at `latitude`, from the prime vertical
    and meridional radii of curvature."""
    e2 = F * (2 - F)
    phi = math.radians(latitude)
    w = 1 - e2 * math.sin(phi) ** 2
    prime_vertical, meridional = A / math.sqrt(w), A * (1 - e2) / w ** 1.5
    return math.sqrt(prime_vertical * math.cos(phi) * math.radians(step_x) * meridional * math.radians(step_y))


@pytest.mark.parametrize("latitude", [0.0, 27.7, -45.0, 60.0])
@pytest.mark.parametrize("degrees", [0.0000072, 0.0027])
def test_a_geographic_pixel_measures_as_the_ellipsoid_says_at_the_centre(latitude, degrees):
    shape = (200, 100)  # (rows, columns): the centre is 100 rows below the top edge
    transform = from_origin(85.0, latitude + 100 * degrees, degrees, degrees)
    expected = by_radii(latitude, degrees, degrees)
    assert ground_pixel_size_m(WGS84, transform, shape) == pytest.approx(expected, rel=1e-5)
    assert pixel_size_m(WGS84, transform) is None  # areas of geographic scenes stay in pixels


def test_projected_and_ungridded_scenes():
    utm = CRS.from_epsg(32645)
    assert ground_pixel_size_m(utm, from_origin(500000, 3000000, 0.8, 0.8), (10, 10)) == pixel_size_m(
        utm, from_origin(500000, 3000000, 0.8, 0.8)) == pytest.approx(0.8)
    assert ground_pixel_size_m(None, from_origin(0, 0, 1, 1), (10, 10)) is None
    assert ground_pixel_size_m(WGS84, Affine.identity(), (10, 10)) is None  # a CRS without a grid: pixels
    assert ground_pixel_size_m(WGS84, from_origin(0, 100, 1, 1), (10, 10)) is None  # not a grid on the Earth
    assert ground_pixel_size_m(WGS84, from_origin(0, 95, 1, 1), (10, 10)) is None  # centred on the pole
