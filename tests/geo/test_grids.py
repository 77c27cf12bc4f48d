"""Grids other projects publish besides north-up UTM (issue 22): a south-up grid (positive pixel height), a
geographic grid in degrees (EPSG:4326) and a rotated grid with a CRS. Each keeps its CRS and transform in the
outputs and the GeoPackage (the GeoJSON is WGS 84, as RFC 7946 has it), its polygons fall inside the scene's
footprint, and the areas are in the unit the CRS has (m2 or pixels).

The model is the pointwise stand-in (helpers.models.LocalModel), so the blob scene's three landslides are found."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely
from pyogrio import read_info
from pyogrio.raw import read as read_layer
from rasterio.crs import CRS
from rasterio.transform import Affine

import translandseg_hf.inference.runner as runner
from translandseg_hf.cli import main

from helpers.models import LocalModel
from helpers.rasters import BLOB_HEIGHT as HEIGHT
from helpers.rasters import BLOB_WIDTH as WIDTH
from helpers.rasters import LANDSLIDE_PIXELS, check_gdal_reads, write_blob_tif

GRIDS = {
    "south_up": (CRS.from_epsg(32648), Affine(2.0, 0.0, 500_000.0, 0.0, 2.0, 3_000_000.0), "m2"),
    "geographic": (CRS.from_epsg(4326), Affine(0.0001, 0.0, 105.0, 0.0, -0.0001, 27.0), "pixels"),
    "rotated": (CRS.from_epsg(32648), Affine.translation(500_000.0, 3_000_000.0) @ Affine.rotation(-7.0)
                @ Affine.scale(3.0, -3.0), "m2"),
}


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_a_grid_keeps_its_crs_and_its_polygons_lie_inside_its_footprint(grid, tmp_path, monkeypatch,
                                                                         tiny_sam_folder):
    crs, transform, unit = GRIDS[grid]
    scene = write_blob_tif(tmp_path / f"{grid}.tif", crs=crs, transform=transform)
    monkeypatch.setattr(runner, "load_model", lambda model, backend="torch": LocalModel(image_size=32))
    assert main(["predict", "--model", str(tiny_sam_folder), str(scene), "--output", str(tmp_path / "out")]) == 0
    for layer in ("probability", "mask"):
        with rasterio.open(tmp_path / "out" / f"{grid}_{layer}.tif") as dataset:
            assert (dataset.crs, dataset.transform, dataset.shape) == (crs, transform, (HEIGHT, WIDTH))
    gpkg, geojson = (tmp_path / "out" / f"{grid}_landslides.{suffix}" for suffix in ("gpkg", "geojson"))
    assert CRS.from_user_input(read_info(gpkg)["crs"]) == crs  # the GeoPackage keeps the scene's CRS
    assert CRS.from_user_input(read_info(geojson)["crs"]) == CRS.from_epsg(4326)  # RFC 7946 GeoJSON: WGS 84
    _, _, geometry, fields = read_layer(gpkg)
    assert [list(values) for values in read_layer(geojson, read_geometry=False)[3]] == [list(v) for v in fields]
    polygons = shapely.from_wkb(geometry)
    corners = np.array([transform @ (col, row) for row, col in ((0, 0), (0, WIDTH), (HEIGHT, 0), (HEIGHT, WIDTH))])
    area = shapely.convex_hull(shapely.multipoints(corners))
    assert len(polygons) == 3 and all(area.buffer(1e-9).contains(polygon) for polygon in polygons)
    one_pixel = abs(transform.a * transform.e - transform.b * transform.d)
    areas, units = fields[1], set(fields[2])
    expected = LANDSLIDE_PIXELS * (one_pixel if unit == "m2" else 1.0)
    assert units == {unit} and np.isclose(areas.sum(), expected, rtol=1e-6)
    check_gdal_reads(tmp_path / "out")
