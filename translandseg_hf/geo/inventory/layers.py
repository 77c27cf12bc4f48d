"""inventory.gpkg: the layer `landslides` (one MultiPolygon per landslide) and `landslide_points` (its centroid, for
catalogues that hold points), with the same attributes in the same order, and `unmapped` (one MultiPolygon per
reason the inventory could not look there: a landslide there is missing, not absent), written with pyogrio into a
temporary file beside the target and renamed into place whole (`io_utils.StagedFiles`): a failed write leaves any
earlier inventory as it was."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np
import shapely
from pyogrio.raw import write as write_layer

from ...io_utils import StagedFiles
from ..map_files.polygons import POLYGON_FILE_OPTIONS

PathLike = Union[str, os.PathLike]
LAYERS = {"landslides": "MultiPolygon", "landslide_points": "Point", "unmapped": "MultiPolygon"}
UNMAPPED_SCHEMA = {"reason": "str", "area_m2": "float", "share_of_aoi": "float"}  # with a `geometry` per row
DTYPES = {"int": np.int64, "float": np.float64, "bool": np.bool_, "str": object}  # a schema's kinds; None: null


def field_columns(rows: Sequence[Mapping], schema: Mapping[str, str]) -> list[np.ndarray]:
    """One array per field of `schema` (name -> 'int', 'float', 'bool' or 'str'), in its order; None in a float
    column is NaN (written as null), in a text column null."""
    columns = []
    for name, kind in schema.items():
        values = [row[name] for row in rows]
        if kind == "float":
            values = [np.nan if value is None else value for value in values]
        columns.append(np.array(values, dtype=DTYPES[kind]) if values else np.zeros(0, DTYPES[kind]))
    return columns


def write_inventory_layers(path: PathLike, polygons: np.ndarray, points: np.ndarray, rows: Sequence[Mapping], crs,
                           schema: Mapping[str, str], unmapped: Sequence[Mapping] = ()) -> Path:
    """Write the three layers to the GeoPackage `path` (replacing it whole): `polygons` and `points` (shapely, in
    `crs`) and `rows` (one dict per landslide, the fields of `schema`); `unmapped`: one dict per reason, its
    `geometry` (a (Multi)Polygon in `crs`) and the fields of UNMAPPED_SCHEMA (none: the layer without features)."""
    path = Path(path)
    if not len(polygons) == len(points) == len(rows):
        raise ValueError(f"{path}: {len(polygons)} polygons, {len(points)} points and {len(rows)} rows; one of each "
                         "per landslide.")
    geometries = {"landslides": as_multi(polygons), "landslide_points": list(points),
                  "unmapped": as_multi([area["geometry"] for area in unmapped])}
    columns = {"landslides": field_columns(rows, schema), "unmapped": field_columns(unmapped, UNMAPPED_SCHEMA)}
    columns["landslide_points"] = columns["landslides"]
    names = {"landslides": list(schema), "landslide_points": list(schema), "unmapped": list(UNMAPPED_SCHEMA)}
    crs_text = crs.to_wkt() if hasattr(crs, "to_wkt") else str(crs)
    staged = StagedFiles()
    temporary = staged.path_for(path)
    try:
        for layer, geometry_type in LAYERS.items():
            wkb = np.array([shapely.to_wkb(g) for g in geometries[layer]] or [], dtype=object)
            write_layer(str(temporary), wkb, columns[layer], names[layer], layer=layer, driver="GPKG",
                        geometry_type=geometry_type, crs=crs_text, **POLYGON_FILE_OPTIONS["GPKG"])
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    return path


def as_multi(polygons) -> list:
    """Polygons as MultiPolygons (a layer holds one geometry type)."""
    return [shapely.MultiPolygon([p]) if p.geom_type == "Polygon" else p for p in polygons]
