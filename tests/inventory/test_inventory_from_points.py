"""An inventory of a scene placed by ground control points or RPCs alone: `translandseg predict` keeps the scene's
points in its maps, and `translandseg inventory` maps them on the north-up grid GDAL's warper gives them; its
landslides are predict's own, where predict put them, with their areas on the ground."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from helpers.models import LocalModel
from helpers.rasters import BLOB_HEIGHT, BLOB_WIDTH, LANDSLIDE_PIXELS, affine_rpc, corner_gcps, write_blob_tif
from pyogrio.raw import read as read_layer
from pyproj import Geod
from rasterio.crs import CRS
from rasterio.warp import transform_geom

import translandseg_hf.inference.runner as runner
from translandseg_hf.cli import main

UTM_48N = CRS.from_epsg(32648)
RPC_DEGREES = 0.0001


def scene_of(folder: Path, form: str) -> Path:
    if form == "gcps":
        return write_blob_tif(folder / "gcps.tif", gcps=corner_gcps(), crs=UTM_48N)
    return write_blob_tif(folder / "rpcs.tif", rpcs=affine_rpc(BLOB_HEIGHT, BLOB_WIDTH, RPC_DEGREES))


def landslides(path: Path) -> tuple[CRS, np.ndarray, list]:
    meta, _, geometry, fields = read_layer(path, layer="landslides")
    return CRS.from_user_input(meta["crs"]), shapely.from_wkb(geometry), dict(zip(meta["fields"], fields))


@pytest.mark.parametrize("form", ["gcps", "rpcs"])
def test_an_inventory_of_a_scene_placed_by_points_holds_predicts_landslides_where_predict_put_them(
        form, tmp_path, monkeypatch, tiny_sam_folder):
    monkeypatch.setattr(runner, "load_model", lambda model, backend="torch": LocalModel(image_size=32))
    scene, mapped, inventory = scene_of(tmp_path, form), tmp_path / "mapped", tmp_path / "inventory"
    assert main(["predict", "--model", str(tiny_sam_folder), str(scene), "--output", str(mapped)]) == 0
    assert main(["inventory", "--predictions", str(mapped), "--post_date", "2024-08-20", "--change", "none",
                 "--output", str(inventory)]) == 0

    crs, polygons, fields = landslides(inventory / "inventory.gpkg")
    assert crs == UTM_48N and len(polygons) == 3  # the UTM zone of 105 E for the RPCs; the GCPs' own CRS
    predicted_crs, predicted, _ = landslides(mapped / f"{scene.stem}_landslides.gpkg")
    in_utm = [shapely.geometry.shape(transform_geom(predicted_crs, UTM_48N, shapely.geometry.mapping(polygon)))
              for polygon in predicted]
    union, truth = shapely.union_all(polygons), shapely.union_all(in_utm)
    assert union.intersection(truth).area / union.union(truth).area > 0.9
    pixel_m2 = 9.0 if form == "gcps" else abs(Geod(ellps="WGS84").polygon_area_perimeter(
        [105, 105 + RPC_DEGREES, 105 + RPC_DEGREES, 105], [27, 27, 27 + RPC_DEGREES, 27 + RPC_DEGREES])[0])
    assert fields["area_m2"].sum() == pytest.approx(LANDSLIDE_PIXELS * pixel_m2, rel=0.03)
