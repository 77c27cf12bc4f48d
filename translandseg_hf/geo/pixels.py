"""The size of a pixel, projected or geographic, from a CRS and an affine transform."""

from __future__ import annotations

from typing import Optional

import numpy as np


def pixel_area(transform) -> float:
    """The area of one pixel in the CRS's units squared (a rotated or sheared grid included)."""
    return abs(transform.a * transform.e - transform.b * transform.d)


def pixel_size_m(crs, transform) -> Optional[float]:
    """Metres per pixel side in a projected CRS; None for plain images and geographic (degree) coordinates."""
    if crs is None or not crs.is_projected:
        return None
    return float(np.sqrt(pixel_area(transform))) * crs.linear_units_factor[1]


def ground_pixel_size_m(crs, transform, shape: tuple[int, int]) -> Optional[float]:
    """Metres per pixel side for planning tiles and checking a scene's scale against the training imagery's:
    `pixel_size_m` in a projected CRS; in a geographic one, an estimate at the scene's centre, the geometric mean of
    the geodesic lengths of one pixel step along a row and down a column on the CRS's ellipsoid (a degree of
    longitude shrinks with latitude). None without a CRS or grid. Areas keep `pixel_size_m`: a geographic scene's
    polygons are measured in pixels, not by this estimate."""
    if crs is None or transform.is_identity:
        return None
    if crs.is_projected:
        return pixel_size_m(crs, transform)
    if not crs.is_geographic:
        return None
    from .inventory.areas import geod_of  # pyproj: only for scenes in degrees

    degrees = np.degrees(crs.units_factor[1])  # degrees per unit of the CRS's axes (1 for degrees)
    height, width = shape
    x, y = (value * degrees for value in transform @ (width / 2, height / 2))
    steps = [(transform.a * degrees, transform.d * degrees), (transform.b * degrees, transform.e * degrees)]
    if not all(abs(lat) <= 90 for lat in [y, *(y + dy for _, dy in steps)]):
        return None  # not a grid on the Earth: its size is unknown, as in a plain image
    geod = geod_of(crs)
    lengths = [geod.inv(x, y, x + dx, y + dy)[2] for dx, dy in steps]
    size = float(np.sqrt(lengths[0] * lengths[1]))
    return size if size > 0 else None  # at a pole a degree of longitude has no length
