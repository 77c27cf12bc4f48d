"""Issue 37 items 2 and 12: every output of one scene lines up with the others and with the input, in the coordinates
each file states.

- Item 2: an image without georeferencing (a PNG, a JPEG, a TIFF with no grid) is placed by QGIS at x = column,
  y = -row (GDAL has no transform for it; QGIS turns its default y-down grid right side up). Its outputs state that
  transform, so GDAL and QGIS place them where QGIS places the image, and its polygons are in those coordinates.
  A grid without a CRS keeps its own transform, as before. (tests/qgis_plugin/test_plain_image_overlay.py loads the
  same files in QGIS.)
- Item 12: the GeoJSON is RFC 7946: WGS 84 longitude/latitude, no `crs` member; the GeoPackage keeps the polygons'
  CRS, at the GeoPackage version Debian 12's GDAL 3.6 reads without a warning.

The model is the pointwise stand-in `helpers.models.LocalModel` (the landslide logit follows the red band), so the
scene's three red landslides are found and the checks are not vacuous."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from PIL import Image
from pyogrio.raw import read as read_layer
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.transform import Affine, from_origin
from rasterio.warp import transform_geom

import translandseg_hf.inference.runner as runner
from translandseg_hf.cli import main

from helpers.models import LocalModel
from helpers.rasters import BLOB_HEIGHT as HEIGHT
from helpers.rasters import BLOB_WIDTH as WIDTH
from helpers.rasters import ROTATED, blob_scene, corner_gcps, write_raster

QGIS_PLACEMENT = Affine(1.0, 0.0, 0.0, 0.0, -1.0, 0.0)  # where QGIS puts an image with no geotransform
GPKG_USER_VERSION = 10200  # GeoPackage 1.2: what Debian 12's GDAL 3.6 writes, and reads without a warning


def write_plain(path: Path) -> Path:
    """The blob scene as a plain image, written as the datasets' PNGs and JPEGs are (PIL: no georeferencing)."""
    image = Image.fromarray(blob_scene(HEIGHT, WIDTH).transpose(1, 2, 0))
    image.save(path, **({"quality": 95} if path.suffix == ".jpg" else {}))
    return path


SCENES = {  # form -> (write the scene, the transform its outputs state)
    "png": (lambda folder: write_plain(folder / "photo.png"), QGIS_PLACEMENT),
    "jpeg": (lambda folder: write_plain(folder / "photo.jpg"), QGIS_PLACEMENT),
    "tif_without_grid": (lambda folder: write_raster(folder / "plain.tif", blob_scene(), crs=None), QGIS_PLACEMENT),
    "grid_without_crs": (lambda folder: write_raster(folder / "grid.tif", blob_scene(), transform=ROTATED), ROTATED),
}


def predict(tmp_path: Path, scene: Path, monkeypatch, model: Path) -> Path:
    """`translandseg predict` on `scene` with the pointwise model in place of the saved one; the output folder."""
    monkeypatch.setattr(runner, "load_model", lambda model, backend="torch": LocalModel(image_size=32))
    output = tmp_path / "out"
    assert main(["predict", "--model", str(model), str(scene), "--output", str(output)]) == 0
    return output


def polygons_of(path: Path) -> tuple[dict, np.ndarray]:
    meta, _, geometry, _ = read_layer(path)
    return meta, shapely.from_wkb(geometry)


@pytest.mark.parametrize("form", SCENES)
def test_plain_image_outputs_and_polygons_share_the_placement_qgis_gives_the_image(form, tmp_path, monkeypatch,
                                                                                 tiny_sam_folder):
    write, placement = SCENES[form]
    scene = write(tmp_path)
    output = predict(tmp_path, scene, monkeypatch, tiny_sam_folder)
    for layer in ("mask", "probability"):
        with rasterio.open(output / f"{scene.stem}_{layer}.tif") as dataset:
            assert dataset.transform.almost_equals(placement), (layer, dataset.transform)
            assert dataset.crs is None
            if layer == "mask":
                mask, bounds = dataset.read(1), shapely.box(*dataset.bounds)
    _, polygons = polygons_of(output / f"{scene.stem}_landslides.gpkg")
    assert len(polygons) == 3
    assert shapely.contains(bounds.buffer(1e-9), polygons).all()  # inside the image, not mirrored beside it
    burnt = rasterize(polygons, out_shape=mask.shape, transform=placement)  # the polygons cover the mask's pixels
    np.testing.assert_array_equal(burnt == 1, mask == 1)
    if form != "grid_without_crs":  # the PNG mask has no georeferencing, as its input: placed as the input is
        mask_png = np.asarray(Image.open(output / f"{scene.stem}_mask.png"))
        np.testing.assert_array_equal(mask_png == 255, mask == 1)


UTM_45N = CRS.from_epsg(32645)
GEOREFERENCED = {  # form -> the scene's keyword arguments for write_raster
    "utm": dict(crs=UTM_45N, transform=from_origin(300_000.0, 3_100_000.0, 0.8, 0.8)),
    "gcps": dict(gcps=corner_gcps(), crs=CRS.from_epsg(32648)),
}


@pytest.mark.parametrize("form", GEOREFERENCED)
def test_geojson_is_rfc_7946_lon_lat_and_the_geopackage_keeps_the_scene_crs(form, tmp_path, monkeypatch,
                                                                          tiny_sam_folder):
    scene = write_raster(tmp_path / f"{form}.tif", blob_scene(), **GEOREFERENCED[form])
    output = predict(tmp_path, scene, monkeypatch, tiny_sam_folder)
    geojson, gpkg = output / f"{form}_landslides.geojson", output / f"{form}_landslides.gpkg"
    document = json.loads(geojson.read_text())
    assert "crs" not in document  # RFC 7946: WGS 84 by definition, no legacy `crs` member
    meta, in_scene_crs = polygons_of(gpkg)
    assert CRS.from_user_input(meta["crs"]) == GEOREFERENCED[form]["crs"]  # the GeoPackage keeps the scene's CRS
    expected = [shapely.geometry.shape(transform_geom(meta["crs"], "EPSG:4326", shapely.geometry.mapping(polygon)))
                for polygon in in_scene_crs]
    found = [shapely.geometry.shape(feature["geometry"]) for feature in document["features"]]
    assert len(found) == len(expected) == 3
    for polygon, reprojected in zip(found, expected):
        lon, lat = polygon.centroid.x, polygon.centroid.y
        assert 80 < lon < 110 and 20 < lat < 30  # lon/lat order, not metres nor lat/lon
        assert shapely.hausdorff_distance(polygon, reprojected) < 1e-6  # degrees: about 0.1 m (7 digits written)


def test_the_geopackage_is_a_version_debian_12s_gdal_reads_without_a_warning(tmp_path, monkeypatch,
                                                                            tiny_sam_folder):
    scene = write_raster(tmp_path / "utm.tif", blob_scene(), **GEOREFERENCED["utm"])
    gpkg = predict(tmp_path, scene, monkeypatch, tiny_sam_folder) / "utm_landslides.gpkg"
    with sqlite3.connect(gpkg) as database:
        assert database.execute("PRAGMA user_version").fetchone()[0] == GPKG_USER_VERSION
    if shutil.which("ogrinfo") is None:
        pytest.skip("ogrinfo (Debian's gdal-bin) is not installed")
    done = subprocess.run(["ogrinfo", "-so", str(gpkg), "landslides"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Feature Count: 3" in done.stdout, done.stdout + done.stderr
    assert "may only be partially supported" not in done.stdout + done.stderr, done.stderr


def test_polygons_in_a_crs_without_a_way_to_wgs_84_are_refused_for_geojson_by_name(tmp_path):
    """A local engineering CRS has no transformation to WGS 84: said, naming the file, not GDAL's NULL pointer."""
    from translandseg_hf.geo.map_files.polygons import save_polygons

    local = CRS.from_wkt('LOCAL_CS["site grid",UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH]]')
    with pytest.raises(ValueError, match=r"site_landslides\.geojson: the scene's CRS \(.*site grid.*\) has no "
                                         r"transformation to WGS 84, which a GeoJSON \(RFC 7946\) is in"):
        save_polygons(np.array([shapely.box(0, 0, 4, 4)]), local, from_origin(0, 100, 1, 1),
                      tmp_path / "site_landslides.geojson", tmp_path / "site_landslides.gpkg")
    assert not list(tmp_path.iterdir())
