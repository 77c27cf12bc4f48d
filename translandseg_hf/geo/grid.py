"""A raster grid: CRS, affine transform and size. One class for the grid a composite is built on
(`sentinel2.composite`) and the grid an inventory's rasters are read onto (`inventory.grid`); `utm_crs`, the map CRS
both choose where the area is given in degrees."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rasterio.crs import CRS
from rasterio.windows import Window, bounds as window_bounds


@dataclass(frozen=True)
class Grid:
    """A grid: CRS, affine transform, width and height; `path` names it in messages."""

    crs: CRS
    transform: object
    width: int
    height: int
    path: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return window_bounds(Window(0, 0, self.width, self.height), self.transform)

    @property
    def resolution(self) -> float:
        """The pixel's width in the CRS's units (the length of a column step: right for rotated grids too)."""
        return float(math.hypot(self.transform.a, self.transform.d))

    def same_as(self, other: "Grid") -> bool:
        return (self.crs == other.crs and self.shape == other.shape
                and np.allclose(tuple(self.transform)[:6], tuple(other.transform)[:6], rtol=0, atol=1e-9))

    def record(self) -> dict:
        """The grid as JSON (imagery.json's "grid")."""
        return {"crs": self.crs.to_string(), "resolution": self.resolution, "width": self.width,
                "height": self.height, "transform": list(self.transform)[:6], "bounds": list(self.bounds)}


def utm_crs(longitude: float, latitude: float) -> CRS:
    """WGS 84 / UTM of the zone holding the point (EPSG 326zz north of the equator, 327zz south)."""
    zone = min(60, int(math.floor((longitude + 180.0) / 6.0)) + 1)
    return CRS.from_epsg((32600 if latitude >= 0 else 32700) + zone)
