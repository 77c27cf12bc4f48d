"""Landslide polygons of a boolean pixel array, and the label array that says which polygon each pixel is in (for
the per-landslide statistics): rasterio.features.shapes (4-connected, as `predict`'s polygons) then rasterize; and
the areas the inventory could not map, dissolved into one MultiPolygon each."""

from __future__ import annotations

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.transform import Affine
from rasterio.warp import transform as transform_points

from ..map_files.polygons import PolygonCollector, to_map

WGS84 = CRS.from_epsg(4326)


def labelled_polygons(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) shapely polygons of the connected regions of `pixels` ((H, W) bool) in pixel coordinates (x: column,
    y: row), ordered from the top-left, and (H, W) int32 labels: 1..N for the polygon a pixel is in, 0 outside."""
    collector = PolygonCollector()
    collector.add(0, 0, pixels.astype(np.uint8))
    polygons = collector.pixel_polygons()
    if not len(polygons):
        return polygons, np.zeros(pixels.shape, np.int32)
    bounds = shapely.bounds(polygons)
    polygons = polygons[np.lexsort((bounds[:, 0], bounds[:, 1]))]  # by top row, then left column
    labels = rasterize(zip(polygons, range(1, len(polygons) + 1)), out_shape=pixels.shape, fill=0,
                       transform=Affine.identity(), dtype="int32")
    return polygons, labels


def dissolved(pixels: np.ndarray, transform):
    """The pixels ((H, W) bool) as one MultiPolygon in the grid's map coordinates (None where none is set): their
    4-connected regions (as `labelled_polygons`) unioned, so regions touching at a corner make one valid geometry."""
    collector = PolygonCollector()
    collector.add(0, 0, pixels.astype(np.uint8))
    pixel_polygons = collector.pixel_polygons()
    if not len(pixel_polygons):
        return None
    merged = shapely.union_all(map_coordinates(pixel_polygons, transform))
    parts = [part for part in shapely.get_parts(merged) if part.geom_type == "Polygon"]
    return shapely.MultiPolygon(parts)


def map_coordinates(pixel_polygons: np.ndarray, transform) -> np.ndarray:
    """Pixel-coordinate polygons in the grid's map coordinates."""
    return to_map(pixel_polygons, transform) if len(pixel_polygons) else pixel_polygons


def lon_lat(points: np.ndarray, crs) -> tuple[np.ndarray, np.ndarray]:
    """(N,) longitudes and latitudes (WGS 84) of shapely points in `crs`."""
    if not len(points):
        return np.zeros(0), np.zeros(0)
    lon, lat = transform_points(crs, WGS84, shapely.get_x(points).tolist(), shapely.get_y(points).tolist())
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def area_pixels(geometry_wgs84, crs, transform, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels whose centre is inside a (Multi)Polygon given in WGS 84 (an AOI), on a grid."""
    from rasterio.warp import transform_geom

    on_grid = transform_geom(WGS84, crs, shapely.geometry.mapping(geometry_wgs84))
    return rasterize([(on_grid, 1)], out_shape=shape, fill=0, transform=transform, dtype="uint8").astype(bool)
