"""Issue 37 item 2, in a real QGIS (Debian's PyQGIS, headless): `translandseg predict` on a plain PNG (no
georeferencing), then the PNG and every output loaded as a user would, side by side. The polygons lie on the image
(inside its extent, each over the image's landslide pixels), and the mask and probability GeoTIFFs and the PNG mask
cover the image exactly.

The model is the pointwise stand-in `helpers.models.LocalModel` (the landslide logit follows the red band), so the
scene's three red landslides are found and the polygons are not vacuous."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import translandseg_hf.inference.runner as runner
from translandseg_hf.cli import main

from helpers.models import LocalModel
from helpers.qgis import requires_qgis, run_in_qgis
from helpers.rasters import BLOB_HEIGHT, BLOB_WIDTH, blob_scene

LANDSLIDE_RED = 200  # blob_scene's landslides; the ground is 50


def in_qgis_overlay(image, polygons, *rasters):
    """The extents QGIS gives the image, the polygon layer and each raster; and, at a point inside each polygon, the
    image's red and each raster's band 1."""
    from qgis.core import QgsApplication, QgsRasterLayer, QgsVectorLayer

    global QGIS_APP  # kept: QGIS ends when its application object goes (exitQgis with layers alive crashes)
    QGIS_APP = QgsApplication([], False)
    QGIS_APP.initQgis()

    def extent(layer):
        assert layer.isValid(), layer.source()
        box = layer.extent()
        return [box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()]

    picture, outlines = QgsRasterLayer(image, "image"), QgsVectorLayer(polygons, "polygons", "ogr")
    layers = {path: QgsRasterLayer(path, path) for path in rasters}
    result = {"image": extent(picture), "polygons": extent(outlines),
              "rasters": {path: extent(layer) for path, layer in layers.items()}, "under_polygons": []}
    for feature in outlines.getFeatures():
        point = feature.geometry().pointOnSurface().asPoint()
        values = [layer.dataProvider().sample(point, 1) for layer in (picture, *layers.values())]
        result["under_polygons"].append([value if found else None for value, found in values])
    return result


def within(inner, outer) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


@requires_qgis
def test_polygons_and_maps_of_a_png_overlay_the_png_in_qgis(tmp_path, monkeypatch, tiny_sam_folder):
    image = tmp_path / "photo.png"
    Image.fromarray(blob_scene(BLOB_HEIGHT, BLOB_WIDTH).transpose(1, 2, 0)).save(image)
    monkeypatch.setattr(runner, "load_model", lambda model, backend="torch": LocalModel(image_size=32))
    out = tmp_path / "maps"
    assert main(["predict", "--model", str(tiny_sam_folder), str(image), "--output", str(out)]) == 0
    rasters = [out / "photo_mask.tif", out / "photo_probability.tif", out / "photo_mask.png"]
    placed = run_in_qgis(in_qgis_overlay, image, out / "photo_landslides.gpkg", *rasters, home=tmp_path / "home")
    assert placed["image"] == [0.0, -BLOB_HEIGHT, BLOB_WIDTH, 0.0]  # QGIS: x the column, y minus the row
    assert within(placed["polygons"], placed["image"]), placed  # today: y 0..H, mirrored above the image
    for path in rasters:
        assert placed["rasters"][str(path)] == pytest.approx(placed["image"]), path.name
    assert len(placed["under_polygons"]) == 3
    for red, mask, probability, mask_png in placed["under_polygons"]:
        assert (red, mask, mask_png) == (LANDSLIDE_RED, 1, 255) and probability > 0.5, placed["under_polygons"]
