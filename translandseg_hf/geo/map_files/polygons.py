"""Landslide polygons from the mask GeoTIFF: one polygon per connected region, with its area, as GeoJSON and GPKG.

Polygons are found in scene pixel coordinates and mapped by the scene's georeferencing: its affine transform, or its
ground control points or RPCs (through GDAL's transformers, RPCs at a height of 0). The GeoPackage keeps that CRS;
the GeoJSON is RFC 7946 (WGS 84 longitude and latitude, no `crs` member), reprojected by GDAL. An image without
georeferencing has its polygons at x = column, y = -row, where QGIS places the image (`PIXEL_PLACEMENT`): in the
GeoPackage only, whose CRS is then undefined, as a GeoJSON would place them on the globe."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from pyogrio.raw import write as write_layer
from rasterio._err import CPLE_BaseError  # GDAL's and PROJ's errors, which rasterio.errors does not re-export
from rasterio.crs import CRS
from rasterio.features import shapes
from rasterio.transform import Affine, GCPTransformer, RPCTransformer
from rasterio.warp import transform as transform_points
from rasterio.windows import Window

from ..georeferencing import RPC_CRS, RPC_HEIGHT, placement
from ..opening import open_raster
from ..pixels import pixel_area
from ..strips import strips
from . import DEFAULT_MIN_PIXELS

POLYGON_ERRORS = (DataLayerError, DataSourceError)  # what pyogrio raises for a layer it cannot write
# GDAL's options for each polygon file: RFC 7946 GeoJSON (GDAL reprojects to WGS 84 and writes no `crs` member), and
# GeoPackage 1.2, which GDAL 3.6 (Debian 12) reads without a warning; its 1.4 default would warn "may only be
# partially supported". 1.2 is also what GDAL 2.3 to 3.6 write by default.
POLYGON_FILE_OPTIONS = {"GeoJSON": dict(layer_options={"RFC7946": "YES"}),
                        "GPKG": dict(dataset_options={"VERSION": "1.2"})}

# Rows of the mask polygonised at once: bounded memory on scenes of any height (a 2048-row strip of a 10,980 px wide
# uint8 mask is 22 MB, and few cuts between strips for the collector to union).
POLYGON_BLOCK_ROWS = 2048


def area_unit(crs) -> str:
    """'m2' for a metric projected CRS, the CRS's unit squared for another projected one, else 'pixels'."""
    if crs is None or not crs.is_projected:
        return "pixels"
    unit = (crs.linear_units or "").lower()
    return "m2" if unit in ("metre", "meter", "m") else f"{unit}^2"


def mask_polygons(mask_path: Path, block_rows: int = POLYGON_BLOCK_ROWS) -> np.ndarray:
    """(N,) shapely polygons of the pixels equal to 1 in a mask file, in its CRS (in `PIXEL_PLACEMENT` if it has
    no georeferencing), read in blocks of rows."""
    collector, _, transform = collect_mask_polygons(mask_path, block_rows)
    gcps, rpcs = file_points(mask_path)
    return map_polygons(collector.pixel_polygons(), placement(transform, gcps, rpcs), gcps, rpcs)


def collect_mask_polygons(mask_path: Path, block_rows: int = POLYGON_BLOCK_ROWS
                          ) -> tuple["PolygonCollector", object, Affine]:
    """A mask file's polygons, read in blocks of rows; and its CRS and transform."""
    collector = PolygonCollector()
    with open_raster(mask_path) as dataset:
        for top, rows in strips(dataset.height, block_rows):
            collector.add(top, 0, dataset.read(1, window=Window(0, top, dataset.width, rows)))
        return collector, dataset.crs, dataset.transform


def file_points(path: Path) -> tuple[Optional[tuple[list, CRS]], object]:
    """A raster's ground control points (`(points, their CRS)`, None without) and RPCs (None without)."""
    with open_raster(path) as dataset:
        points, crs = dataset.gcps
        return ((list(points), crs) if points else None), dataset.rpcs


def polygon_crs(crs, gcps=None, rpcs=None) -> Optional[CRS]:
    """The CRS polygons are written in: the GCPs' CRS, EPSG:4326 for RPCs, else the scene's (None: pixels)."""
    if gcps is not None:
        return gcps[1]
    return CRS.from_epsg(4326) if rpcs is not None else crs


class PolygonCollector:
    """Polygons of a mask handed over in blocks (as `translandseg predict` writes it, so the mask is never read
    back); pieces that share an edge across a cut between blocks are unioned, so a landslide split by a block
    boundary comes out whole. Blocks are polygonised in scene pixel coordinates, where the cuts are exact integers."""

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

    def pixel_polygons(self) -> np.ndarray:
        """(N,) shapely polygons of everything added, in scene pixel coordinates (x: column, y: row)."""
        polygons = np.concatenate(self.pieces) if self.pieces else np.zeros(0, dtype=object)
        if not self.cuts or not len(polygons):
            return polygons
        bounds = shapely.bounds(polygons)  # (N, 4): x_min, y_min, x_max, y_max
        on_cut = np.zeros(len(polygons), dtype=bool)
        for axis, position in self.cuts:
            on_cut |= (bounds[:, axis] == position) | (bounds[:, axis + 2] == position)
        return np.concatenate([polygons[~on_cut], union_touching(polygons[on_cut])])


def union_touching(polygons: np.ndarray) -> np.ndarray:
    """Union each group of polygons connected by shared edges (not mere corners); one union per group, as a single
    union of them all (GEOS's cascaded union) is slow on the many pieces of a noisy mask."""
    first, second = shapely.STRtree(polygons).query(polygons, predicate="intersects")
    pairs = first < second
    first, second = first[pairs], second[pairs]
    edge = shapely.length(shapely.intersection(polygons[first], polygons[second])) > 0
    labels = connected_labels(len(polygons), first[edge], second[edge])
    order = np.argsort(labels, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(labels[order])) + 1)
    singles = [group[0] for group in groups if len(group) == 1]
    merged = [shapely.get_parts(shapely.union_all(polygons[group])) for group in groups if len(group) > 1]
    return np.concatenate([polygons[singles], *merged])


def connected_labels(count: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(count,) the smallest member of each node's connected component, given edges first[i]-second[i]: label
    propagation with pointer jumping (scipy's connected_components would do; scipy is not a dependency)."""
    labels = np.arange(count)
    while True:
        low = np.minimum(labels[first], labels[second])
        updated = labels.copy()
        np.minimum.at(updated, first, low)
        np.minimum.at(updated, second, low)
        updated = updated[updated]  # jump to the label's label
        if np.array_equal(updated, labels):
            return labels
        labels = updated


def to_map(polygons: np.ndarray, transform: Affine) -> np.ndarray:
    """Pixel-coordinate polygons in the coordinates `transform` maps scene pixels to."""
    matrix = np.array([[transform.a, transform.d], [transform.b, transform.e]])  # (x, y) @ matrix + offset
    return shapely.transform(polygons, lambda xy: xy @ matrix + (transform.c, transform.f))


def map_polygons(polygons: np.ndarray, transform: Affine, gcps=None, rpcs=None) -> np.ndarray:
    """Pixel-coordinate polygons (x: column, y: row) in the coordinates the scene's GCPs or RPCs (at a height of 0)
    map its pixels to; by `transform` for a scene with neither."""
    if gcps is None and rpcs is None:
        return to_map(polygons, transform)
    if not len(polygons):
        return polygons
    transformer = GCPTransformer(gcps[0]) if gcps is not None else RPCTransformer(rpcs, RPC_HEIGHT=RPC_HEIGHT)
    with transformer:
        def points(xy: np.ndarray) -> np.ndarray:  # (P, 2) column, row -> (P, 2) x, y
            xs, ys = transformer.xy(xy[:, 1], xy[:, 0], offset="ul")
            return np.column_stack([np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)])
        return shapely.transform(polygons, points)


def unmap_polygons(polygons: np.ndarray, gcps=None, rpcs=None) -> np.ndarray:
    """`map_polygons`'s inverse for GCPs or RPCs: map-coordinate polygons back in scene pixel coordinates (x: column,
    y: row), as GDAL's transformer inverts them (for drawing polygons on the image)."""
    if not len(polygons):
        return polygons
    transformer = GCPTransformer(gcps[0]) if gcps is not None else RPCTransformer(rpcs, RPC_HEIGHT=RPC_HEIGHT)
    with transformer:
        def pixels(xy: np.ndarray) -> np.ndarray:  # (P, 2) x, y -> (P, 2) column, row
            rows, cols = transformer.rowcol(xy[:, 0], xy[:, 1], op=np.positive)  # a ufunc: the fractions kept
            return np.column_stack([np.asarray(cols, dtype=np.float64), np.asarray(rows, dtype=np.float64)])
        return shapely.transform(polygons, pixels)


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
        areas = areas / pixel_area(transform)
    return np.asarray(areas, dtype=np.float64), unit


def write_polygons(
    mask_path: Path, geojson_path: Optional[Path], gpkg_path: Path, min_area: Optional[float] = None,
    simplify: Optional[float] = None,
) -> int:
    """Write the landslide polygons of a mask file (mapped by its transform, GCPs or RPCs) to the files (see
    `save_polygons`); their count."""
    collector, crs, transform = collect_mask_polygons(mask_path)
    gcps, rpcs = file_points(mask_path)
    return save_polygons(collector.pixel_polygons(), crs, transform, geojson_path, gpkg_path, min_area, simplify,
                         gcps=gcps, rpcs=rpcs)


def save_polygons(
    pixel_polygons: np.ndarray, crs, transform, geojson_path: Optional[Path], gpkg_path: Path,
    min_area: Optional[float] = None, simplify: Optional[float] = None, gcps=None, rpcs=None,
) -> int:
    """Write the polygons (in scene pixel coordinates) with `area` >= min_area (in `area_unit`; None: the area of
    `DEFAULT_MIN_PIXELS` pixels), mapped by `transform` (or by `gcps`, `(points, their CRS)`, or `rpcs`), to the
    GPKG (in their CRS) and, unless `geojson_path` is None, the GeoJSON (WGS 84); their count. A scene with no
    georeferencing at all is mapped by `PIXEL_PLACEMENT`. `simplify`: a tolerance in map units (pixels for plain
    images). Polygons without a CRS are never written as GeoJSON, which would claim WGS 84."""
    transform = placement(transform, gcps, rpcs)
    if gcps is not None or rpcs is not None:
        polygons, areas, unit = mapped_by_points(pixel_polygons, min_area, simplify, gcps, rpcs)
    else:
        polygons, areas, unit = mapped_by_transform(pixel_polygons, crs, transform, min_area, simplify)
    crs = polygon_crs(crs, gcps, rpcs)
    if crs is None and geojson_path is not None:
        raise ValueError(f"{geojson_path}: polygons in pixel coordinates have no CRS, which GeoJSON cannot state "
                         "(it would read as WGS 84); they go to the GeoPackage only")
    if geojson_path is not None and not reaches_wgs84(crs):
        raise ValueError(f"{geojson_path}: the scene's CRS ({crs.to_string() or crs.to_wkt()[:60]}) has no "
                         "transformation to WGS 84, which a GeoJSON (RFC 7946) is in; reproject the scene to a "
                         "CRS with one (gdalwarp -t_srs) to map it")
    geometry = shapely.to_wkb(polygons) if len(polygons) else np.zeros(0, dtype=object)
    fields = ["id", "area", "area_unit"]
    field_data = [np.arange(1, len(polygons) + 1, dtype=np.int64), areas,
                  np.asarray([unit] * len(polygons), dtype=object)]
    crs_text: Optional[str] = crs.to_wkt() if crs is not None else None
    for path, driver in ((geojson_path, "GeoJSON"), (gpkg_path, "GPKG")):
        if path is None:
            continue
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "'crs' was not provided")  # plain images: pixel coordinates intended
            write_layer(
                str(path), geometry, field_data, fields, layer="landslides", driver=driver,
                geometry_type="Polygon", crs=crs_text, **POLYGON_FILE_OPTIONS[driver],
            )
    return len(polygons)


def reaches_wgs84(crs: CRS) -> bool:
    """Whether PROJ can take coordinates in `crs` to WGS 84 (not from a local engineering CRS)."""
    try:
        transform_points(crs, RPC_CRS, [0.0], [0.0])
    except CPLE_BaseError:
        return False
    return True


def mapped_by_transform(pixel_polygons: np.ndarray, crs, transform, min_area: Optional[float],
                        simplify: Optional[float]) -> tuple[np.ndarray, np.ndarray, str]:
    """The polygons of at least `min_area` mapped by an affine transform, their areas and the areas' unit."""
    unit = area_unit(crs)
    one_pixel = 1.0 if unit == "pixels" else pixel_area(transform)
    min_area = DEFAULT_MIN_PIXELS * one_pixel if min_area is None else min_area
    if simplify:  # topology kept, so rings stay valid
        polygons = shapely.simplify(to_map(pixel_polygons, transform), simplify, preserve_topology=True)
    else:  # dropping the small ones first spares mapping them (most of a noisy mask's pieces)
        polygons = to_map(pixel_polygons[shapely.area(pixel_polygons) * one_pixel >= min_area], transform)
    areas, unit = polygon_areas(polygons, crs, transform)
    keep = areas >= min_area
    return polygons[keep], areas[keep], unit


def mapped_by_points(pixel_polygons: np.ndarray, min_area: Optional[float], simplify: Optional[float], gcps,
                     rpcs) -> tuple[np.ndarray, np.ndarray, str]:
    """As `mapped_by_transform`, through GCPs or RPCs, whose pixels differ in size across the scene: the default
    minimum (DEFAULT_MIN_PIXELS) is measured in pixels; areas are in m2 where the polygons' CRS is projected metric,
    else in pixels (of the polygons as found, before any simplification)."""
    unit = area_unit(polygon_crs(None, gcps, rpcs))
    pixel_areas = shapely.area(pixel_polygons) if len(pixel_polygons) else np.zeros(0)
    in_pixels = min_area is None or unit == "pixels"  # else the minimum is in m2, measured once mapped
    keep = pixel_areas >= (DEFAULT_MIN_PIXELS if min_area is None else min_area) if in_pixels else slice(None)
    polygons = map_polygons(pixel_polygons[keep], Affine.identity(), gcps, rpcs)
    if simplify:
        polygons = shapely.simplify(polygons, simplify, preserve_topology=True)
    areas = np.asarray(pixel_areas[keep] if unit == "pixels" else shapely.area(polygons), dtype=np.float64)
    if not in_pixels:
        polygons, areas = polygons[areas >= min_area], areas[areas >= min_area]
    return polygons, areas, unit
