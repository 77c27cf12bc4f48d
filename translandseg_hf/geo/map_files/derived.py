"""What the app derives from a map already written: another threshold's mask (on the probabilities' grid), the
polygons' count and area, and display-sized reads of a band and of the polygons."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import rasterio
import shapely
from pyogrio.raw import read as read_layer
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.transform import Affine
from rasterio.windows import Window

from ..opening import open_raster, plain_images
from ..strips import strips
from .polygons import file_points, unmap_polygons
from .writing import work_profile


def write_derived_mask(probability: Path, work: Path, to_mask: Callable[[np.ndarray], np.ndarray], nodata: int,
                       rows: int) -> None:
    """A uint8 GeoTIFF at `work` with `probability`'s georeferencing (CRS and transform, GCPs or RPCs): band 1 of
    `probability` passed through `to_mask`, `rows` rows at a time."""
    with open_raster(probability) as source:
        points, points_crs = source.gcps
        profile = work_profile(source.height, source.width, source.crs, source.transform, "uint8", nodata,
                               gcps=(points, points_crs) if points else None, rpcs=source.rpcs)
        with plain_images():
            mask = rasterio.open(work, "w", **profile)
        with mask:
            for top, height in strips(source.height, rows):
                window = Window(0, top, source.width, height)
                mask.write(to_mask(source.read(1, window=window)), 1, window=window)


def polygon_summary(polygons: Path) -> tuple[int, float]:
    """The number of polygons in a GeoJSON or GPKG and the sum of their `area` field."""
    _, _, _, fields = read_layer(polygons, columns=["area"], read_geometry=False)
    areas = fields[0] if fields else np.zeros(0)
    return len(areas), float(np.sum(areas))


def raster_crs(path: Path):
    """The CRS a raster file states (None for none)."""
    with open_raster(path) as dataset:
        return dataset.crs


def decimated_band(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) of band 1 read at `shape`, nearest neighbour: NaN (no data) stays NaN."""
    with open_raster(path) as dataset:
        return dataset.read(1, out_shape=shape, resampling=Resampling.nearest)


def polygons_raster(polygons_path: Path, mask_path: Path, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: the counted polygons (those the minimum area kept) burnt in at `shape`, every touched pixel,
    so that a landslide smaller than a display pixel still shows."""
    _, _, geometry, _ = read_layer(polygons_path, columns=[])
    if geometry is None or len(geometry) == 0:
        return np.zeros(shape, dtype=bool)
    polygons = shapely.from_wkb(geometry)
    with open_raster(mask_path) as dataset:  # the polygons are in the mask's coordinates, or its GCPs' or RPCs'
        to_display = Affine.scale(dataset.width / shape[1], dataset.height / shape[0])
        display = dataset.transform @ to_display
    gcps, rpcs = file_points(mask_path)
    if gcps is not None or rpcs is not None:
        polygons, display = unmap_polygons(polygons, gcps, rpcs), to_display
    return rasterize(polygons, out_shape=shape, transform=display, all_touched=True) > 0
