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
