"""Landslide polygons from the mask GeoTIFF: one polygon per connected region, with its area, as GeoJSON and GPKG."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import rasterio
import shapely
from pyogrio.raw import write as write_layer
from rasterio.features import shapes
from rasterio.windows import Window

from .reading import open_raster

POLYGON_BLOCK_ROWS = 2048  # rows of the mask polygonised at once: bounded memory on scenes of any height


def area_unit(crs) -> str:
    """'m2' for a metric projected CRS, the CRS's unit squared for another projected one, else 'pixels'."""
    if crs is None or not crs.is_projected:
        return "pixels"
    unit = (crs.linear_units or "").lower()
    return "m2" if unit in ("metre", "meter", "m") else f"{unit}^2"


def mask_polygons(mask_path: Path, block_rows: int = POLYGON_BLOCK_ROWS) -> list:
    """Shapely polygons of the pixels equal to 1, in the mask's CRS (pixel coordinates if it has none).

    The mask is polygonised in blocks of rows; polygons that touch a block's edge are unioned with their neighbours
    across it, so a landslide split by a block boundary comes out whole.
    """
    inner, crossing = [], []
    with open_raster(mask_path) as dataset:
        for top in range(0, dataset.height, block_rows):
            window = Window(0, top, dataset.width, min(block_rows, dataset.height - top))
            block = dataset.read(1, window=window)  # (h, W)
            transform = dataset.window_transform(window)
            cut_above, cut_below = top > 0, top + window.height < dataset.height
            for geometry, _ in shapes(block, mask=block == 1, transform=transform):
                polygon = shapely.geometry.shape(geometry)
                on_cut = (cut_above and _touches_row(polygon, transform, 0)) or (
                    cut_below and _touches_row(polygon, transform, window.height)
                )
                (crossing if on_cut else inner).append(polygon)
    if crossing:
        merged = shapely.union_all(crossing)
        inner.extend(shapely.get_parts(merged).tolist())
    return inner


def _touches_row(polygon, transform, row: int) -> bool:
    """Whether the polygon reaches the given pixel-row line of its block (its top edge at 0, bottom at height)."""
    _, y_top = transform * (0, row)
    y_min, y_max = polygon.bounds[1], polygon.bounds[3]
    return bool(np.isclose(y_min, y_top) or np.isclose(y_max, y_top))


def polygon_areas(polygons: list, crs, transform) -> tuple[np.ndarray, str]:
    """(N,) areas in the CRS's squared unit where projected, else in pixels; and that unit's name."""
    unit = area_unit(crs)
    areas = shapely.area(np.asarray(polygons, dtype=object)) if polygons else np.zeros(0)
    if unit == "pixels":
        areas = areas / abs(transform.a * transform.e - transform.b * transform.d)
    return np.asarray(areas, dtype=np.float64), unit


def write_polygons(
    mask_path: Path, geojson_path: Path, gpkg_path: Path, min_area: float = 0.0, crs=None, transform=None,
) -> int:
    """Write the mask's landslide polygons with `area` >= min_area (in `area_unit`) to both files; their count."""
    with open_raster(mask_path) as dataset:
        crs = dataset.crs if crs is None else crs
        transform = dataset.transform if transform is None else transform
    polygons = mask_polygons(mask_path)
    areas, unit = polygon_areas(polygons, crs, transform)
    keep = areas >= min_area
    polygons = [polygon for polygon, kept in zip(polygons, keep) if kept]
    areas = areas[keep]
    geometry = np.asarray([shapely.to_wkb(polygon) for polygon in polygons], dtype=object)
    fields = ["id", "area", "area_unit"]
    field_data = [np.arange(1, len(polygons) + 1, dtype=np.int64), areas, np.asarray([unit] * len(polygons), dtype=object)]
    crs_text: Optional[str] = crs.to_wkt() if crs is not None else None
    for path, driver in ((geojson_path, "GeoJSON"), (gpkg_path, "GPKG")):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "'crs' was not provided")  # plain images: pixel coordinates intended
            write_layer(
                str(path), geometry, field_data, fields, layer="landslides", driver=driver,
                geometry_type="Polygon", crs=crs_text,
            )
    return len(polygons)
