"""Slope and elevation from a DEM, on a Sentinel-2 product's grid: Landslide4Sense's last two channels.

Slope is Horn's (1981) method exactly as `gdaldem slope` computes it (degrees; its sums in float32, as gdaldem reads
every DEM), on the DEM's own grid, where the DEM's neighbours are; then slope and elevation are resampled
bilinearly onto the product's grid with GDAL (a rasterio WarpedVRT). A window of the product's grid gets the values
the whole grid would have there (the DEM read has a margin wider than the resampling kernel), so a scene processed
window by window is the scene processed whole.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
from rasterio import windows
from rasterio.crs import CRS
from rasterio.errors import WindowError
from rasterio.transform import Affine
from rasterio.io import MemoryFile
from rasterio.vrt import WarpedVRT
from rasterio.warp import Resampling, transform_bounds
from rasterio.windows import Window

from ..georeferencing import coordinates_text

# A CRS without an ellipsoid in its PROJJSON (rare) is taken to be on WGS 84's.
WGS84_AXES = (6378137.0, 298.257223563)  # semi-major axis (m), inverse flattening
DENSIFY_POINTS = 21  # points per edge when transforming bounds between CRSs (curved edges)
COVER_TOLERANCE_PX = 0.01  # of a DEM pixel: bounds that match to rounding still cover
# rasterio's reproject always approximates the transformation between CRSs to 0.125 pixel (GDAL's approximate
# transformer, interpolating along each line of the destination): 3 m for a 30 m DEM, 0.2 m of elevation, and a
# pixel's value depends on the window's lines. A WarpedVRT takes a tolerance: this one is exact to rounding.
WARP_TOLERANCE_PX = 1e-9


def horn_slope(dem: np.ndarray, x_size_m, y_size_m: float) -> np.ndarray:
    """Slope in degrees of the interior of `dem` ((h + 2, w + 2) elevations in metres, NaN = nodata) -> (h, w)
    float32, by Horn's (1981) 3x3 weights as `gdaldem slope` computes them: the weighted sums of the west, east,
    north and south neighbours in float32 (gdaldem's arithmetic; exact for integer DEMs), the rest in float64.
    `x_size_m` is one float or one per output row (a geographic CRS's pixels narrow towards the poles). NaN where
    the centre or any neighbour is NaN (gdaldem's rule without -compute_edges)."""
    z = np.asarray(dem, dtype=np.float32)
    if z.ndim != 2 or z.shape[0] < 3 or z.shape[1] < 3:
        raise ValueError(f"horn_slope needs a (h + 2, w + 2) DEM with a 1-pixel halo, not shape {z.shape}.")
    rows = z.shape[0] - 2
    x_size = np.abs(np.broadcast_to(np.asarray(x_size_m, dtype=np.float64), (rows,)))[:, None]
    # gdaldem: ((w0 + w3 + w3 + w6) - (w2 + w5 + w5 + w8)) / ewres and the same north to south, in float32.
    west = z[:-2, :-2] + z[1:-1, :-2] + z[1:-1, :-2] + z[2:, :-2]
    east = z[:-2, 2:] + z[1:-1, 2:] + z[1:-1, 2:] + z[2:, 2:]
    south = z[2:, :-2] + z[2:, 1:-1] + z[2:, 1:-1] + z[2:, 2:]
    north = z[:-2, :-2] + z[:-2, 1:-1] + z[:-2, 1:-1] + z[:-2, 2:]
    dx = (west - east).astype(np.float64) / x_size
    dy = (south - north).astype(np.float64) / abs(float(y_size_m))
    slope = np.degrees(np.arctan(np.sqrt(dx * dx + dy * dy) / 8.0)).astype(np.float32)
    slope[np.isnan(z[1:-1, 1:-1])] = np.nan
    return slope


def sphere_radius_m(crs) -> float:
    """The radius of the sphere a geographic CRS's degrees are converted on: its ellipsoid's mean radius
    (2a + b) / 3 (IUGG's R1; 6,371,008.8 m on WGS 84), which is within 0.5 % of the ellipsoid's true radii of
    curvature everywhere, north-south and east-west alike, so slope (its tangent) is off by less than that. gdaldem's
    `-s 111120` is the sphere of radius 111120 * 180 / pi = 6,366,707 m (a nautical mile per arc minute)."""
    datum = crs.to_dict(projjson=True)
    datum = datum.get("datum") or datum.get("datum_ensemble") or {}
    ellipsoid = datum.get("ellipsoid", {})
    if "radius" in ellipsoid:
        return float(ellipsoid["radius"])
    major = float(ellipsoid.get("semi_major_axis", WGS84_AXES[0]))
    if "semi_minor_axis" in ellipsoid:
        minor = float(ellipsoid["semi_minor_axis"])
    else:
        inverse_flattening = float(ellipsoid.get("inverse_flattening", WGS84_AXES[1]))
        minor = major * (1.0 - 1.0 / inverse_flattening) if inverse_flattening else major
    return (2.0 * major + minor) / 3.0


def pixel_sizes_m(crs, transform, rows) -> tuple[np.ndarray, float]:
    """Metres per pixel in x, one per row of `rows` (the row's centre), and in y. A projected CRS: the transform's
    sizes times its linear unit. A geographic CRS (north-up grids): degrees on the sphere of `sphere_radius_m`,
    x = deg * pi / 180 * R * cos(latitude), y = deg * pi / 180 * R."""
    crs = CRS.from_user_input(crs)
    rows = np.asarray(rows, dtype=np.float64).reshape(-1)
    x_size, y_size = math.hypot(transform.a, transform.d), math.hypot(transform.b, transform.e)
    if crs.is_projected:
        metres = crs.linear_units_factor[1]
        return np.full(rows.shape, x_size * metres), y_size * metres
    if not crs.is_geographic:
        raise ValueError(f"pixel_sizes_m needs a projected or geographic CRS, not {crs}.")
    radians = crs.units_factor[1]  # per degree (or the CRS's angular unit)
    radius = sphere_radius_m(crs)
    latitude = (transform.f + transform.e * (rows + 0.5)) * radians
    return x_size * radians * radius * np.cos(latitude), y_size * radians * radius


def _past_edges(block: np.ndarray, top: bool, bottom: bool, left: bool, right: bool) -> np.ndarray:
    """`block` with a halo row or column added on each side that lies past the DEM's edge, valued as gdaldem's
    -compute_edges does: 2 * edge - next (linear extrapolation, in float32), NaN next to nodata (where gdaldem
    would use the centre's value) and where the DEM is one pixel wide."""
    def extended(array, axis, first):
        if array.shape[axis] < 2:
            edge = np.full_like(np.take(array, [0], axis=axis), np.nan)
        else:
            inner, outer = ([0], [1]) if first else ([-1], [-2])
            edge = 2 * np.take(array, inner, axis=axis) - np.take(array, outer, axis=axis)
        return np.concatenate([edge, array] if first else [array, edge], axis=axis)

    block = block.astype(np.float32, copy=False)
    for past, axis, first in ((left, 1, True), (right, 1, False), (top, 0, True), (bottom, 0, False)):
        if past:
            block = extended(block, axis, first)
    return block


def _corner_slopes(slope, halo, corners, x_sizes, y_size) -> None:
    """gdaldem's first and last lines take the column past a corner of the DEM to be the corner's own column (its
    `jmin = j` / `jmax = j`), where the other edges extrapolate: the four corner pixels, recomputed that way."""
    for row, col in corners:
        window = halo[row:row + 3, col:col + 3].copy()
        window[:, 0 if col == 0 else 2] = window[:, 1]
        slope[row, col] = horn_slope(window, x_sizes[row:row + 1], y_size)[0, 0]


def dem_slope(dem, window: Optional[Window] = None) -> tuple[np.ndarray, np.ndarray]:
    """Slope (degrees) and elevation (metres) on the DEM's own grid for `window` of it (default: all of it), float32,
    NaN for nodata: Horn's slope with the DEM's neighbours of the window as its halo and, at the DEM's own outer
    edges, `gdaldem slope -compute_edges`' rule (see `_past_edges` and `_corner_slopes`)."""
    full = Window(0, 0, dem.width, dem.height)
    window = full if window is None else window.intersection(full)
    row0, col0 = int(window.row_off), int(window.col_off)
    height, width = int(window.height), int(window.width)
    top, left = row0 == 0, col0 == 0
    bottom, right = row0 + height == dem.height, col0 + width == dem.width
    read = Window(col0 - 1 + left, row0 - 1 + top, width + 2 - left - right, height + 2 - top - bottom)
    block = dem.read(1, window=read, masked=True).astype(np.float32).filled(np.nan)
    halo = _past_edges(block, top, bottom, left, right)
    x_sizes, y_size = pixel_sizes_m(_dem_crs(dem), dem.transform, np.arange(row0, row0 + height))
    slope = horn_slope(halo, x_sizes, y_size)
    corners = [(row, col) for at_row, row in ((top, 0), (bottom, height - 1))
               for at_col, col in ((left, 0), (right, width - 1)) if at_row and at_col]
    if dem.height >= 2 and dem.width >= 2:
        _corner_slopes(slope, halo, corners, x_sizes, y_size)
    return slope, np.ascontiguousarray(halo[1:-1, 1:-1])


def terrain_on_grid(dem, crs, transform, window: Window, out_shape=None) -> tuple[np.ndarray, np.ndarray]:
    """Slope (degrees) and elevation (metres) of an open DEM (any CRS) on `window` of the grid (`crs`,
    `transform`), each (h, w) float32, NaN where there is no DEM: `dem_slope` on the DEM's own grid over the window
    and a margin, both resampled bilinearly onto the window with GDAL. `out_shape` (h, w) reads the window decimated
    (overviews): a coarser grid over the same bounds. Windows of a grid agree with the grid computed whole."""
    height, width = out_shape if out_shape is not None else (round(window.height), round(window.width))
    decimation = (window.height / height, window.width / width)
    terrain = np.full((2, height, width), np.nan, dtype=np.float32)
    on_dem = _on_dem_pixels(dem, crs, transform, window) if out_shape is None else None
    if on_dem is not None:
        return _copied(dem, on_dem, terrain)
    source = dem_window(dem, crs, windows.bounds(window, transform), (height, width))
    if source is None:
        return terrain[0], terrain[1]
    values = np.stack(dem_slope(dem, source))
    target = windows.transform(window, transform) @ Affine.scale(decimation[1], decimation[0])
    scales = _kernel_scales(dem, crs, transform, decimation)
    with MemoryFile() as memory:
        with memory.open(driver="GTiff", width=values.shape[2], height=values.shape[1], count=2, dtype="float32",
                         crs=dem.crs, transform=windows.transform(source, dem.transform), nodata=np.nan) as on_dem:
            on_dem.write(values)
        with memory.open() as on_dem, WarpedVRT(on_dem, crs=crs, transform=target, width=width, height=height,
                                                 resampling=Resampling.bilinear, tolerance=WARP_TOLERANCE_PX,
                                                 nodata=np.nan, **scales) as vrt:
            terrain = vrt.read()
    return terrain[0], terrain[1]


def _on_dem_pixels(dem, crs, transform, window: Window) -> Optional[Window]:
    """The DEM's window whose pixels are those of `window` (a DEM already on the grid: same CRS, pixel size and
    pixel edges), or None. Its values are copied, not resampled: GDAL's bilinear at a pixel's centre, within
    rounding of it, can take NaN from a neighbour whose weight is 1e-10."""
    if not _whole_pixels(window) or _dem_crs(dem) != CRS.from_user_input(crs):
        return None
    sizes = [(grid.a, grid.b, grid.d, grid.e) for grid in (transform, dem.transform)]
    if not np.allclose(*sizes, rtol=1e-9, atol=0):
        return None
    col, row = ~dem.transform @ (transform @ (window.col_off, window.row_off))
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return Window(round(col), round(row), int(window.width), int(window.height))


def _copied(dem, on_dem: Window, terrain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        part = on_dem.intersection(Window(0, 0, dem.width, dem.height))
    except WindowError:
        return terrain[0], terrain[1]
    into = Window(part.col_off - on_dem.col_off, part.row_off - on_dem.row_off, part.width, part.height)
    terrain[(slice(None), *into.toslices())] = dem_slope(dem, part)
    return terrain[0], terrain[1]


def _whole_pixels(window: Window) -> bool:
    return all(float(value).is_integer() for value in (window.col_off, window.row_off, window.width, window.height))


def _dem_crs(dem) -> CRS:
    if dem.crs is None:
        raise ValueError(f"{dem.name}: the DEM has no CRS; pass a georeferenced DEM (a GeoTIFF with its CRS).")
    return dem.crs


def dem_window(dem, crs, bounds, shape) -> Optional[Window]:
    """The DEM pixels under `bounds` (in `crs`) and a margin beyond the bilinear kernel (which widens by the
    decimation when the target is coarser than the DEM), cut to the DEM; None where none are."""
    left, bottom, right, top = transform_bounds(crs, _dem_crs(dem), *bounds, densify_pts=DENSIFY_POINTS)
    under = windows.from_bounds(left, bottom, right, top, transform=dem.transform)
    col0, row0 = math.floor(under.col_off), math.floor(under.row_off)
    col1, row1 = math.ceil(under.col_off + under.width), math.ceil(under.row_off + under.height)
    ratio = max((row1 - row0) / shape[0], (col1 - col0) / shape[1], 1.0)  # DEM pixels per target pixel
    margin = 2 + math.ceil(2 * ratio)
    wide = Window(col0 - margin, row0 - margin, col1 - col0 + 2 * margin, row1 - row0 + 2 * margin)
    try:
        return wide.intersection(Window(0, 0, dem.width, dem.height))
    except WindowError:  # the window is off the DEM
        return None


def _kernel_scales(dem, crs, transform, decimation) -> dict:
    """GDAL widens the bilinear kernel by the target's pixels per DEM pixel when that is below 1, and computes it
    per warp chunk from the rounded source window, so windows of a grid would differ by it: fixed here, from the
    pixel sizes in metres (the DEM's at its centre row, the grid's at its row 0)."""
    dem_x, dem_y = pixel_sizes_m(_dem_crs(dem), dem.transform, [dem.height // 2])
    grid_x, grid_y = pixel_sizes_m(crs, transform, [0])
    return dict(xscale=min(1.0, dem_x[0] / (grid_x[0] * decimation[1])),
                yscale=min(1.0, dem_y / (grid_y * decimation[0])))


def check_dem_covers(dem, dem_path, crs, transform, width, height, product) -> None:
    """ValueError, before any work, where the DEM's footprint does not contain the grid's bounds. Decided in the
    DEM's CRS, where its footprint is exactly its bounds (the grid's bounds transformed with densified edges);
    the message gives both in the grid's CRS."""
    grid = windows.bounds(Window(0, 0, width, height), transform)
    left, bottom, right, top = transform_bounds(crs, _dem_crs(dem), *grid, densify_pts=DENSIFY_POINTS)
    slack_x, slack_y = (COVER_TOLERANCE_PX * abs(size) for size in (dem.transform.a, dem.transform.e))
    dem_left, dem_bottom, dem_right, dem_top = dem.bounds
    if (left >= dem_left - slack_x and right <= dem_right + slack_x
            and bottom >= dem_bottom - slack_y and top <= dem_top + slack_y):
        return
    footprint = transform_bounds(dem.crs, crs, *dem.bounds, densify_pts=DENSIFY_POINTS)
    raise ValueError(
        f"{dem_path}: the DEM does not cover {product}: its footprint is ({coordinates_text(footprint)}) and the "
        f"product's grid ({coordinates_text(grid)}) (left, bottom, right, top in "
        f"{CRS.from_user_input(crs).to_string()});"
        " pass a DEM that covers the whole product, or cut the product to the DEM with --bounds.")

