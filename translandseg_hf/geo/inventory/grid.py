"""Rasters read onto one grid: the post-event probability's. A raster on that grid is read as it is; one on another
grid (a pre-event composite made for another AOI, a DEM) is warped onto it by GDAL, with the resampling its values
need (`RESAMPLING`). Every array comes back float32 with NaN where the raster has no value."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window, bounds as window_bounds

from ..georeferencing import coordinates_text
from ..opening import open_raster
from ..sentinel2.terrain import DENSIFY_POINTS, WARP_TOLERANCE_PX

PathLike = Union[str, os.PathLike]
# Values (probabilities, reflectances) are interpolated; classes (source.tif's scene indices, masks) never are.
RESAMPLING = {"values": Resampling.bilinear, "classes": Resampling.nearest}


@dataclass(frozen=True)
class Grid:
    """A raster's grid: CRS, affine transform, width and height; `path` names it in messages."""

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

    def same_as(self, other: "Grid") -> bool:
        return (self.crs == other.crs and self.shape == other.shape
                and np.allclose(tuple(self.transform)[:6], tuple(other.transform)[:6], rtol=0, atol=1e-9))


def grid_of(path: PathLike) -> Grid:
    """The grid of a raster file; a raster without a CRS is refused (an inventory is in map coordinates)."""
    with open_raster(path) as dataset:
        if dataset.crs is None:
            raise ValueError(f"{path}: the raster has no CRS; an inventory needs georeferenced maps (map a "
                             "GeoTIFF or a composite).")
        return Grid(dataset.crs, dataset.transform, dataset.width, dataset.height, str(path))


def metre_factor(grid: Grid) -> float:
    """Metres per unit of the grid's CRS; a geographic CRS is refused: areas and perimeters are planar, in metres."""
    if not grid.crs.is_projected:
        raise ValueError(f"{grid.path}: its CRS ({grid.crs.to_string()}) is geographic, and inventory areas and "
                         "perimeters are planar, in metres on the map's CRS; reproject it to a UTM CRS first "
                         "(gdalwarp -t_srs EPSG:326zz), as `translandseg imagery` composites are.")
    return float(grid.crs.linear_units_factor[1])


def check_overlap(path: PathLike, source: Grid, grid: Grid, what: str) -> None:
    """ValueError where `source`'s footprint misses `grid`'s: both named, with their bounds in `grid`'s CRS."""
    left, bottom, right, top = transform_bounds(source.crs, grid.crs, *source.bounds, densify_pts=DENSIFY_POINTS)
    g_left, g_bottom, g_right, g_top = grid.bounds
    if left < g_right and right > g_left and bottom < g_top and top > g_bottom:
        return
    raise ValueError(f"{path}: the {what} does not overlap the post-event grid of {grid.path}: its bounds are "
                     f"({coordinates_text((left, bottom, right, top))}) and the grid's "
                     f"({coordinates_text(grid.bounds)}) (left, bottom, right, top in {grid.crs.to_string()}); "
                     "map the same area before and after the event.")


def read_on_grid(path: PathLike, grid: Grid, bands: Sequence[int] = (1,), kind: str = "values",
                 what: str = "raster") -> np.ndarray:
    """(C, H, W) float32 of `bands` (1-based) of `path` on `grid`, NaN where there is no value: read as it is on
    that very grid, else warped (`RESAMPLING[kind]`), after checking that the footprints overlap."""
    bands = [int(band) for band in bands]
    with open_raster(path) as dataset:
        own = Grid(dataset.crs, dataset.transform, dataset.width, dataset.height, str(path))
        if own.crs is None:
            raise ValueError(f"{path}: the {what} has no CRS, so it cannot be put on the post-event grid.")
        if own.same_as(grid):
            return _filled(dataset.read(bands, masked=True))
        check_overlap(path, own, grid, what)
        nodata = dataset.nodata if dataset.nodata is not None else (np.nan if dataset.dtypes[0].startswith("float")
                                                                    else None)
        with WarpedVRT(dataset, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                       resampling=RESAMPLING[kind], tolerance=WARP_TOLERANCE_PX, src_nodata=nodata,
                       nodata=nodata, add_alpha=nodata is None) as vrt:
            return _filled(vrt.read(bands, masked=True))


def _filled(values: np.ma.MaskedArray) -> np.ndarray:
    out = np.ma.filled(values.astype(np.float32), np.nan)
    out[~np.isfinite(out)] = np.nan
    return out


def band_names(path: PathLike) -> tuple[tuple[str, ...], dict]:
    """A raster's band descriptions ('' where a band has none) and its dataset tags."""
    with open_raster(path) as dataset:
        return tuple(name or "" for name in dataset.descriptions), dict(dataset.tags())
