"""Rasters read onto one grid: the post-event probability's. A raster on that grid is read as it is; one on another
grid (a pre-event composite made for another AOI, a DEM) is warped onto it by GDAL, with the resampling its values
need (`RESAMPLING`). Every array comes back float32 with NaN where the raster has no value.

A map placed by ground control points or RPCs alone (what `predict` writes for such a scene: its pixels are the
scene's) has no grid of its own: its grid is the north-up one GDAL's warper makes for it (gdalwarp's default: the
GCPs' CRS where it is projected, else the UTM zone of the scene's centre; RPCs at `RPC_HEIGHT`), and every such raster
is warped onto the inventory's grid through its points, never read as if its pixels were on it.

An inventory holds its grid's layers whole (probabilities, NDVI, slope, labels, ...): `grid_of` refuses a grid of more
than MAX_GRID_PIXELS pixels before anything is read, so an AOI too large fails at once, with what to do, instead of
running out of memory part way."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform, reproject, transform_bounds
from rasterio.warp import transform as transform_points

from ..georeferencing import RPC_CRS, RPC_HEIGHT, coordinates_text, georeferencing_of
from ..grid import Grid, utm_crs
from ..opening import open_raster
from ..sentinel2.terrain import DENSIFY_POINTS, WARP_TOLERANCE_PX

PathLike = Union[str, os.PathLike]
# Values (probabilities, reflectances) are interpolated; classes (source.tif's scene indices, masks) never are.
RESAMPLING = {"values": Resampling.bilinear, "classes": Resampling.nearest}
# Peak memory of `build_inventory` per pixel of the post-event grid, measured with both dates, NDVI of both, a DEM
# and TTA's uncertainty (tracemalloc, 1000^2 and 2000^2 px grids: 137-155 bytes): the limit keeps that under 4 GB.
BYTES_PER_PIXEL = 150
MAX_GRID_PIXELS = 25_000_000  # 5,000 x 5,000 px: 2,500 km2 at Sentinel-2's 10 m; about 3.75 GB held


def grid_of(path: PathLike, max_pixels: Optional[int] = None) -> Grid:
    """The grid of a raster file, from its header; a raster without a CRS is refused (an inventory is in map
    coordinates), and so is one of more than `max_pixels` pixels (None: MAX_GRID_PIXELS; 0: no limit)."""
    with open_raster(path) as dataset:
        grid = own_grid(dataset, path)
    check_size(grid, MAX_GRID_PIXELS if max_pixels is None else max_pixels)
    return grid


def own_grid(dataset, path: PathLike, what: str = "raster") -> Grid:
    """An open raster's map grid: its CRS and transform, or for one placed by GCPs or RPCs alone, the grid GDAL's
    warper makes for it (the module docstring); a raster with none of these is refused."""
    placed_by = georeferencing_of(dataset)
    if placed_by == "transform":
        return Grid(dataset.crs, dataset.transform, dataset.width, dataset.height, str(path))
    if placed_by == "pixels":
        raise ValueError(f"{path}: the {what} has no map placement (no CRS with a geotransform, nor ground control "
                         "points or RPCs); an inventory is made in map coordinates: map a georeferenced GeoTIFF or "
                         "a composite.")
    source_crs, options = placement_of(dataset)
    target_crs = source_crs if source_crs.is_projected else utm_crs(*centre_lon_lat(dataset))
    transform, width, height = calculate_default_transform(source_crs, target_crs, dataset.width, dataset.height,
                                                           **options)
    return Grid(target_crs, transform, width, height, str(path))


def placement_of(dataset) -> tuple:
    """(CRS, GDAL transformer options) of a raster placed by GCPs or RPCs: what GDAL's warper is given for it."""
    points, points_crs = dataset.gcps
    if georeferencing_of(dataset) == "gcps":
        return points_crs, {"gcps": points}
    return RPC_CRS, {"rpcs": dataset.rpcs, "RPC_HEIGHT": RPC_HEIGHT}


def centre_lon_lat(dataset) -> tuple[float, float]:
    """Longitude and latitude of a GCP- or RPC-placed raster's middle: its RPCs' offsets, or its points' mean."""
    if georeferencing_of(dataset) == "rpcs":
        return float(dataset.rpcs.long_off), float(dataset.rpcs.lat_off)
    points, points_crs = dataset.gcps
    xs, ys = [point.x for point in points], [point.y for point in points]
    (longitude,), (latitude,) = transform_points(points_crs, RPC_CRS, [float(np.mean(xs))], [float(np.mean(ys))])
    return longitude, latitude


def check_size(grid: Grid, max_pixels: int) -> None:
    """ValueError naming the raster, its size and the limit where the grid has more than `max_pixels` pixels (0: no
    limit): the inventory holds about BYTES_PER_PIXEL bytes per pixel in memory at once."""
    pixels = grid.width * grid.height
    if max_pixels and pixels > max_pixels:
        raise ValueError(f"{grid.path}: the map is {grid.width:,} x {grid.height:,} = {pixels:,} pixels, over the "
                         f"inventory's limit of {max_pixels:,} pixels (it holds about {BYTES_PER_PIXEL} bytes a pixel "
                         f"in memory, {pixels * BYTES_PER_PIXEL / 1e9:.1f} GB here); map a smaller AOI (a smaller "
                         "--aoi for `translandseg event`, or predict on a clip of the raster: gdal_translate "
                         "-projwin), or split the area and build one inventory per part.")


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
        own = own_grid(dataset, path, what)
        if georeferencing_of(dataset) != "transform":
            check_overlap(path, own, grid, what)
            return _through_points(dataset, path, grid, bands, kind)
        if own.same_as(grid):
            return _filled(dataset.read(bands, masked=True))
        check_overlap(path, own, grid, what)
        nodata = dataset.nodata if dataset.nodata is not None else (np.nan if dataset.dtypes[0].startswith("float")
                                                                    else None)
        with WarpedVRT(dataset, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                       resampling=RESAMPLING[kind], tolerance=WARP_TOLERANCE_PX, src_nodata=nodata,
                       nodata=nodata, add_alpha=nodata is None) as vrt:
            return _filled(vrt.read(bands, masked=True))


def _through_points(dataset, path: PathLike, grid: Grid, bands: list[int], kind: str) -> np.ndarray:
    """`bands` of a GCP- or RPC-placed raster warped onto `grid` through its points (GDAL's warper, as gdalwarp):
    read whole, so its own size is bounded as a grid's is."""
    check_size(Grid(grid.crs, grid.transform, dataset.width, dataset.height, str(path)), MAX_GRID_PIXELS)
    source_crs, options = placement_of(dataset)
    out = np.full((len(bands), grid.height, grid.width), np.nan, dtype=np.float32)
    reproject(_filled(dataset.read(bands, masked=True)), out, src_crs=source_crs, src_nodata=np.nan,
              dst_crs=grid.crs, dst_transform=grid.transform, dst_nodata=np.nan, resampling=RESAMPLING[kind],
              tolerance=WARP_TOLERANCE_PX, **options)
    return out


def _filled(values: np.ma.MaskedArray) -> np.ndarray:
    out = np.ma.filled(values.astype(np.float32), np.nan)
    out[~np.isfinite(out)] = np.nan
    return out


def band_names(path: PathLike) -> tuple[tuple[str, ...], dict]:
    """A raster's band descriptions ('' where a band has none) and its dataset tags."""
    with open_raster(path) as dataset:
        return tuple(name or "" for name in dataset.descriptions), dict(dataset.tags())
