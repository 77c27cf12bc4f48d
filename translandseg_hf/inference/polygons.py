"""Landslide polygons from the mask GeoTIFF: one polygon per connected region, with its area, as GeoJSON and GPKG."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import shapely
from pyogrio.raw import write as write_layer
from rasterio.features import shapes
from rasterio.transform import Affine
from rasterio.windows import Window

from .reading import open_raster

POLYGON_BLOCK_ROWS = 2048  # rows of the mask polygonised at once: bounded memory on scenes of any height


def area_unit(crs) -> str:
    """'m2' for a metric projected CRS, the CRS's unit squared for another projected one, else 'pixels'."""
    if crs is None or not crs.is_projected:
        return "pixels"
    unit = (crs.linear_units or "").lower()
    return "m2" if unit in ("metre", "meter", "m") else f"{unit}^2"


def mask_polygons(mask_path: Path, block_rows: int = POLYGON_BLOCK_ROWS) -> np.ndarray:
    """(N,) shapely polygons of the pixels equal to 1 in a mask file, in its CRS (pixel coordinates if it has none),
    read in blocks of rows."""
    collector = PolygonCollector()
    with open_raster(mask_path) as dataset:
        for top in range(0, dataset.height, block_rows):
            collector.add(top, 0, dataset.read(1, window=Window(0, top, dataset.width,
                                                                 min(block_rows, dataset.height - top))))
        return collector.polygons(dataset.transform)


class PolygonCollector:
    """Polygons of a mask handed over in blocks (as `translandseg predict` writes it, so the mask is never read
    back); those touching a cut between blocks are unioned with their neighbours across it, so a landslide split by a
    block boundary comes out whole. Blocks are polygonised in scene pixel coordinates, where the cuts are exact
    integers, and mapped to the CRS once at the end."""

    def __init__(self):
        self.pieces: list[np.ndarray] = []
        self.cuts: set[tuple[int, int]] = set()  # (0, column) of a vertical cut, (1, row) of a horizontal one

    def add(self, top: int, left: int, block: np.ndarray) -> None:
        """(h, w) mask values whose top-left pixel is scene (top, left)."""
        self.cuts.update(([(1, top)] if top > 0 else []) + ([(0, left)] if left > 0 else []))
        landslide = block == 1
        if landslide.any():  # GDAL's polygonize walks every pixel even when none is marked
            pixels = Affine.translation(left, top)
            self.pieces.append(_polygons_from_shapes(shapes(block, mask=landslide, transform=pixels)))

    def polygons(self, transform: Affine) -> np.ndarray:
        """(N,) shapely polygons of everything added, in the coordinates `transform` maps scene pixels to."""
        polygons = np.concatenate(self.pieces) if self.pieces else np.zeros(0, dtype=object)
        if self.cuts and len(polygons):
            bounds = shapely.bounds(polygons)  # (N, 4): x_min, y_min, x_max, y_max, in pixels
            on_cut = np.zeros(len(polygons), dtype=bool)
            for axis, position in self.cuts:
                on_cut |= (bounds[:, axis] == position) | (bounds[:, axis + 2] == position)
            polygons = np.concatenate([polygons[~on_cut], shapely.get_parts(shapely.union_all(polygons[on_cut]))])
        matrix = np.array([[transform.a, transform.d], [transform.b, transform.e]])  # (x, y) @ matrix + offset
        return shapely.transform(polygons, lambda xy: xy @ matrix + (transform.c, transform.f))


def _polygons_from_shapes(features) -> np.ndarray:
    """GeoJSON-like polygons from rasterio.features.shapes -> (N,) shapely polygons, built in one vectorised call."""
    coordinates, ring_sizes, ring_owner = [], [], []
    for index, (geometry, _) in enumerate(features):
        for ring in geometry["coordinates"]:  # shell first, then holes
            coordinates.append(np.asarray(ring, dtype=np.float64))
            ring_sizes.append(len(ring))
            ring_owner.append(index)
    if not coordinates:
        return np.zeros(0, dtype=object)
    points = np.concatenate(coordinates)  # (P, 2)
    rings = shapely.linearrings(points, indices=np.repeat(np.arange(len(ring_sizes)), ring_sizes))
    return shapely.polygons(rings, indices=np.asarray(ring_owner))


def polygon_areas(polygons: np.ndarray, crs, transform) -> tuple[np.ndarray, str]:
    """(N,) areas in the CRS's squared unit where projected, else in pixels; and that unit's name."""
    unit = area_unit(crs)
    areas = shapely.area(polygons) if len(polygons) else np.zeros(0)
    if unit == "pixels":
        areas = areas / abs(transform.a * transform.e - transform.b * transform.d)
    return np.asarray(areas, dtype=np.float64), unit


DEFAULT_MIN_PIXELS = 4  # a landslide mapped from fewer pixels is noise at any resolution the model was trained at


def write_polygons(
    mask_path: Path, geojson_path: Path, gpkg_path: Path, min_area: Optional[float] = None,
    simplify: Optional[float] = None,
) -> int:
    """Write the landslide polygons of a mask file to both files (see `save_polygons`); their count."""
    with open_raster(mask_path) as dataset:
        crs, transform = dataset.crs, dataset.transform
    return save_polygons(mask_polygons(mask_path), crs, transform, geojson_path, gpkg_path, min_area, simplify)


def save_polygons(
    polygons: np.ndarray, crs, transform, geojson_path: Path, gpkg_path: Path, min_area: Optional[float] = None,
    simplify: Optional[float] = None,
) -> int:
    """Write the polygons with `area` >= min_area (in `area_unit`; None: the area of `DEFAULT_MIN_PIXELS` pixels)
    to both files; their count. `simplify`: a tolerance in map units (pixels for plain images)."""
    if simplify:  # topology kept, so rings stay valid
        polygons = shapely.simplify(polygons, simplify, preserve_topology=True)
    areas, unit = polygon_areas(polygons, crs, transform)
    if min_area is None:
        pixel_area = 1.0 if unit == "pixels" else abs(transform.a * transform.e - transform.b * transform.d)
        min_area = DEFAULT_MIN_PIXELS * pixel_area
    keep = areas >= min_area
    polygons, areas = polygons[keep], areas[keep]
    geometry = shapely.to_wkb(polygons) if len(polygons) else np.zeros(0, dtype=object)
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
