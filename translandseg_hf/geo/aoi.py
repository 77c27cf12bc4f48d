"""The area of interest of a search for imagery: every polygon of a GeoJSON or GPKG file (in any CRS), or a bounding
box W,S,E,N in WGS 84, as one (multi)polygon in WGS 84 longitude and latitude, which is what STAC APIs search by
(RFC 7946)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from pyogrio.raw import read as read_layer
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform_geom

WGS84 = "EPSG:4326"
# Edges are cut into this many pieces of the file's extent before reprojection: a straight edge in UTM is a curve in
# longitude and latitude, and reprojecting the corners alone would cut the AOI's edges short.
EDGE_PIECES = 64
NUMBER = r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*"
BBOX_TEXT = re.compile(",".join([NUMBER] * 4))


@dataclass(frozen=True)
class Aoi:
    """`geometry`: a shapely (Multi)Polygon in WGS 84; `described`: how messages and imagery.json name it."""

    geometry: object
    described: str

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return tuple(float(value) for value in self.geometry.bounds)

    @property
    def geojson(self) -> dict:
        return shapely.geometry.mapping(self.geometry)

    @classmethod
    def from_bbox(cls, bbox: Union[str, Sequence[float]]) -> "Aoi":
        """'W,S,E,N' (or four numbers) in WGS 84 degrees; a box across the antimeridian is refused (give two)."""
        try:
            values = tuple(float(part) for part in (bbox.split(",") if isinstance(bbox, str) else bbox))
        except (TypeError, ValueError):
            values = ()
        text = bbox if isinstance(bbox, str) else ",".join(map(str, bbox))
        if len(values) != 4:
            raise ValueError(f"bbox {text!r}: give W,S,E,N, four numbers in WGS 84 degrees.")
        west, south, east, north = values
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise ValueError(f"bbox {text!r}: W,S,E,N must be WGS 84 degrees with W < E (within -180..180) and "
                             "S < N (within -90..90); an area across the antimeridian is not supported.")
        return cls(shapely.box(west, south, east, north), f"bbox {west:g},{south:g},{east:g},{north:g}")

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike]) -> "Aoi":
        """Every polygon of every layer of a GeoJSON or GPKG, reprojected from the file's CRS to WGS 84 and merged."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"AOI file {path}: not found.")
        parts, kinds, crs = [], set(), None
        for layer in layer_names(path):
            polygons, found, crs = layer_polygons(path, layer)
            parts += polygons
            kinds |= found
        if not parts:
            found = f" (it has {', '.join(sorted(kinds))} only)" if kinds else " (it has no features)"
            raise ValueError(f"AOI file {path}: no polygons{found}; the area must be drawn as polygons.")
        geometry = shapely.make_valid(shapely.union_all(parts))
        west, south, east, north = geometry.bounds
        return cls(geometry, f"{path} ({len(parts)} polygon{'s' * (len(parts) > 1)} in {crs}; WGS 84 bounds "
                             f"{west:.5f},{south:.5f},{east:.5f},{north:.5f})")


def as_aoi(aoi) -> Aoi:
    """An Aoi as it is; four numbers, or a text 'W,S,E,N' that names no file, are a bbox in WGS 84; any other text
    or path names a GeoJSON or GPKG file."""
    if isinstance(aoi, Aoi):
        return aoi
    if isinstance(aoi, str) and BBOX_TEXT.fullmatch(aoi.strip()) and not Path(aoi).exists():
        return Aoi.from_bbox(aoi)
    if isinstance(aoi, (str, os.PathLike)):
        return Aoi.from_file(aoi)
    return Aoi.from_bbox(aoi)


def layer_names(path: Path) -> list[str]:
    try:
        return [str(name) for name, _ in pyogrio.list_layers(path)]
    except (DataSourceError, DataLayerError) as error:
        raise ValueError(f"AOI file {path}: not a vector file GDAL reads ({error}).") from None


def layer_polygons(path: Path, layer: str) -> tuple[list, set, str]:
    """The layer's polygons in WGS 84, the geometry types it holds that are not polygons, and its CRS's name."""
    try:
        meta, _, wkb, _ = read_layer(path, layer=layer, read_geometry=True, force_2d=True)
    except (DataSourceError, DataLayerError) as error:
        raise ValueError(f"AOI file {path}: layer {layer!r} cannot be read ({error}).") from None
    geometries = [g for g in shapely.from_wkb(wkb if wkb is not None else []) if g is not None and not g.is_empty]
    polygons = [part for g in geometries for part in shapely.get_parts(g) if part.geom_type == "Polygon"]
    others = {part.geom_type for g in geometries for part in shapely.get_parts(g) if part.geom_type != "Polygon"}
    if not polygons:
        return [], others, meta.get("crs") or "no CRS"
    if not meta.get("crs"):
        raise ValueError(f"AOI file {path}: layer {layer!r} states no CRS; save it with one (EPSG:4326 for "
                         "longitude and latitude).")
    return [to_wgs84(polygon, meta["crs"], path) for polygon in polygons], others, meta["crs"]


def to_wgs84(polygon, crs: str, path: Path):
    """One polygon from `crs` to WGS 84, its edges densified first (EDGE_PIECES)."""
    try:
        source = CRS.from_user_input(crs)
    except CRSError as error:
        raise ValueError(f"AOI file {path}: its CRS {crs!r} is not one GDAL knows ({error}).") from None
    if source.is_geographic and source.to_epsg() == 4326:
        return polygon
    west, south, east, north = polygon.bounds
    dense = shapely.segmentize(polygon, max(east - west, north - south) / EDGE_PIECES or 1.0)
    return shapely.geometry.shape(transform_geom(source, WGS84, shapely.geometry.mapping(dense)))
