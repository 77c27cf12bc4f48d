"""`translandseg predict` on scenes georeferenced otherwise than by a CRS and transform (issue 22): ground control
points and RPCs are kept in every output raster and the polygons go through them, into the GCPs' CRS or EPSG:4326,
inside the scene's footprint; scenes without georeferencing (a PNG, a rotated grid without CRS) get no GeoJSON (which
would claim WGS 84) and a GeoPackage whose CRS is undefined. GDAL's command-line tools read every output.

The model is the pointwise stand-in `helpers.models.LocalModel` (the landslide logit follows the red band), so the scene's three
red landslides are found and the polygon checks are not vacuous."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from PIL import Image
from pyogrio import read_info
from pyogrio.raw import read as read_layer
from rasterio.crs import CRS
from rasterio.rpc import RPC
from rasterio.transform import Affine, GCPTransformer, RPCTransformer
from rasterio.warp import transform_geom

import translandseg_hf.inference.runner as runner
from translandseg_hf.cli import main

from helpers.models import LocalModel
from helpers.rasters import BLOB_HEIGHT as HEIGHT
from helpers.rasters import BLOB_WIDTH as WIDTH
from helpers.rasters import LANDSLIDE_PIXELS, ROTATED, blob_scene, check_gdal_reads, corner_gcps, write_blob_tif

UTM_48N = CRS.from_epsg(32648)


def simple_rpc() -> RPC:
    """An RPC that is affine in lon/lat: 0.0001 degree per pixel, around 105 E 27 N, north up."""
    zeros = [0.0] * 20
    return RPC(height_off=0, height_scale=500, lat_off=27.0, lat_scale=0.0001 * HEIGHT / 2, long_off=105.0,
               long_scale=0.0001 * WIDTH / 2, line_off=HEIGHT / 2, line_scale=HEIGHT / 2, samp_off=WIDTH / 2,
               samp_scale=WIDTH / 2, line_num_coeff=[0.0, 0.0, -1.0] + zeros[3:], line_den_coeff=[1.0] + zeros[1:],
               samp_num_coeff=[0.0, 1.0] + zeros[2:], samp_den_coeff=[1.0] + zeros[1:], err_bias=None,
               err_rand=None)


def rpc_numbers(rpc: RPC) -> list[float]:
    """Every offset, scale and coefficient of an RPC, for comparing one written with one read back."""
    return [float(number) for key, value in sorted(rpc.to_gdal().items()) if not key.startswith("ERR")
            for number in str(value).split()]


def write_scene(folder: Path, form: str) -> Path:
    """The blob scene in one of the forms: "gcps", "rpcs", "png", "rotated_no_crs"."""
    if form == "gcps":
        return write_blob_tif(folder / "gcps.tif", gcps=corner_gcps(), crs=UTM_48N)
    if form == "rpcs":
        return write_blob_tif(folder / "rpcs.tif", rpcs=simple_rpc())
    if form == "rotated_no_crs":
        return write_blob_tif(folder / "rotated_no_crs.tif", transform=ROTATED)
    path = folder / "png.png"
    Image.fromarray(blob_scene(HEIGHT, WIDTH).transpose(1, 2, 0)).save(path)
    return path


def predict(tmp_path: Path, form: str, monkeypatch, tiny_sam_folder: Path) -> tuple[Path, Path]:
    """`translandseg predict` on the scene (the pointwise model in place of the saved one); (input, output folder)."""
    monkeypatch.setattr(runner, "load_model", lambda model, backend="torch": LocalModel(image_size=32))
    scene = write_scene(tmp_path, form)
    output = tmp_path / "out"
    assert main(["predict", "--model", str(tiny_sam_folder), str(scene), "--output", str(output)]) == 0
    return scene, output


def footprint(form: str) -> tuple[CRS, shapely.Polygon]:
    """The scene's CRS and the bounding box of its corners mapped through its GCPs or RPCs."""
    rows, cols = [0, 0, HEIGHT, HEIGHT], [0, WIDTH, 0, WIDTH]
    if form == "gcps":
        with GCPTransformer(corner_gcps()) as transformer:
            xs, ys = transformer.xy(rows, cols, offset="ul")
        crs = UTM_48N
    else:
        with RPCTransformer(simple_rpc(), RPC_HEIGHT=0) as transformer:
            xs, ys = transformer.xy(rows, cols, offset="ul")
        crs = CRS.from_epsg(4326)
    return crs, shapely.box(min(xs), min(ys), max(xs), max(ys))


@pytest.mark.parametrize("form", ["gcps", "rpcs"])
def test_gcps_and_rpcs_are_kept_and_the_polygons_follow_them(form, tmp_path, monkeypatch, tiny_sam_folder):
    scene, output = predict(tmp_path, form, monkeypatch, tiny_sam_folder)
    stem = scene.stem
    for layer in ("probability", "mask"):
        with rasterio.open(output / f"{stem}_{layer}.tif") as dataset:
            if form == "gcps":
                points, crs = dataset.gcps
                assert crs == UTM_48N and len(points) == 5
                assert np.allclose([(p.row, p.col, p.x, p.y) for p in points],
                                   [(p.row, p.col, p.x, p.y) for p in corner_gcps()], rtol=0, atol=1e-6)
            else:
                assert dataset.rpcs is not None
                assert rpc_numbers(dataset.rpcs) == pytest.approx(rpc_numbers(simple_rpc()))
            assert dataset.crs is None and dataset.transform.is_identity  # the points are the georeferencing
    assert not (output / f"{stem}_mask.png").exists()  # a georeferenced scene gets no plain-image mask
    scene_crs, scene_box = footprint(form)
    wgs84 = CRS.from_epsg(4326)  # the GeoJSON's (RFC 7946) whatever the scene's CRS, to 7 decimals
    in_wgs84 = shapely.geometry.shape(transform_geom(scene_crs, wgs84, shapely.geometry.mapping(scene_box)))
    for suffix in ("geojson", "gpkg"):
        meta, _, geometry, fields = read_layer(output / f"{stem}_landslides.{suffix}")
        crs, box = (wgs84, in_wgs84) if suffix == "geojson" else (scene_crs, scene_box)
        assert CRS.from_user_input(meta["crs"]) == crs
        polygons = shapely.from_wkb(geometry)
        assert len(polygons) == 3  # the three red landslides
        assert shapely.contains(box.buffer(1e-9 * box.length if suffix == "gpkg" else 1e-7), polygons).all()
        if form == "gcps":  # a 3 m grid: areas in m2, the mask's pixels times 9 m2
            assert set(fields[2]) == {"m2"}
            assert fields[1].sum() == pytest.approx(LANDSLIDE_PIXELS * 9.0, rel=1e-6)
        else:  # EPSG:4326 is not projected: areas in pixels
            assert set(fields[2]) == {"pixels"} and fields[1].sum() == pytest.approx(LANDSLIDE_PIXELS)
    check_gdal_reads(output)


@pytest.mark.parametrize("form", ["png", "rotated_no_crs"])
def test_pixel_coordinates_get_no_geojson_and_an_undefined_crs(form, tmp_path, monkeypatch, tiny_sam_folder):
    scene, output = predict(tmp_path, form, monkeypatch, tiny_sam_folder)
    stem = scene.stem
    assert not (output / f"{stem}_landslides.geojson").exists()  # GeoJSON without a CRS would mean WGS 84
    gpkg = output / f"{stem}_landslides.gpkg"
    info = read_info(gpkg)
    assert info["features"] == 3
    assert info["crs"] is None or not CRS.from_user_input(info["crs"]).is_geographic, info["crs"]
    _, _, geometry, fields = read_layer(gpkg)
    assert set(fields[2]) == {"pixels"} and fields[1].sum() == pytest.approx(LANDSLIDE_PIXELS)
    if form == "png":  # pixel coordinates where QGIS places the image: x the column, y minus the row
        assert shapely.contains(shapely.box(0, -HEIGHT, WIDTH, 0), shapely.from_wkb(geometry)).all()
    if shutil.which("ogrinfo") is not None:
        done = subprocess.run(["ogrinfo", "-so", str(gpkg), "landslides"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "WGS 84" not in done.stdout, done.stdout
    check_gdal_reads(output)


def test_polygons_through_gcps_match_the_affine_they_sample():
    """The GCP path of `save_polygons` on an exact affine gives the polygons the affine itself gives."""
    from translandseg_hf.geo.map_files.polygons import map_polygons, to_map

    square = shapely.box(10, 20, 14, 25)
    through_gcps = map_polygons(np.array([square]), Affine.identity(), gcps=(corner_gcps(), UTM_48N))[0]
    by_affine = to_map(np.array([square]), ROTATED)[0]
    assert shapely.equals_exact(shapely.normalize(through_gcps), shapely.normalize(by_affine), tolerance=1e-6)
    assert shapely.area(through_gcps) == pytest.approx(20 * 9.0)


@pytest.mark.parametrize("form", ["gcps", "rpcs"])
def test_the_overviews_vrt_keeps_the_points(form, tmp_path):
    """A scene over one 256 px block gets overview levels, which GDAL takes through a VRT: it must carry them too."""
    from translandseg_hf.io_utils import StagedFiles
    from translandseg_hf.geo.map_files.writing import PredictionRasters

    staged, height, width = StagedFiles(), 600, 700
    targets = {name: tmp_path / f"scene_{name}.tif" for name in ("probability", "mask", "uncertainty")}
    points = dict(gcps=(corner_gcps(), UTM_48N)) if form == "gcps" else dict(rpcs=simple_rpc())
    rasters = PredictionRasters(staged, targets, height, width, None, Affine.identity(), **points)
    assert all(rasters.overviews[name].paths for name in targets)  # the VRT path
    probability = np.random.default_rng(0).random((height, width)).astype(np.float32)
    rasters.write_block(0, probability, np.ones((height, width), bool), 0.5, uncertainty=probability)
    rasters.close()
    rasters.to_cogs()
    staged.commit()
    for path in targets.values():
        with rasterio.open(path) as dataset:
            assert dataset.overviews(1) == [2, 4]
            if form == "gcps":
                assert dataset.gcps[1] == UTM_48N and len(dataset.gcps[0]) == 5
            else:
                assert rpc_numbers(dataset.rpcs) == pytest.approx(rpc_numbers(simple_rpc()))


def test_polygons_in_pixel_coordinates_are_never_written_as_geojson(tmp_path):
    from translandseg_hf.geo.map_files.polygons import save_polygons

    with pytest.raises(ValueError, match=r"scene_landslides\.geojson: polygons in pixel coordinates have no CRS, "
                                         r"which GeoJSON cannot state \(it would read as WGS 84\)"):
        save_polygons(np.array([shapely.box(0, 0, 4, 4)]), None, Affine.identity(),
                      tmp_path / "scene_landslides.geojson", tmp_path / "scene_landslides.gpkg")
    assert not list(tmp_path.iterdir())


def test_a_minimum_area_in_square_metres_through_gcps(tmp_path):
    """With GCPs in a metric CRS, --min_area is in m2, measured on the mapped polygons; the default is 4 pixels."""
    from translandseg_hf.geo.map_files.polygons import save_polygons

    pixel_polygons = np.array([shapely.box(0, 0, 10, 10), shapely.box(20, 20, 25, 25), shapely.box(40, 40, 41, 42)])
    gcps = (corner_gcps(), UTM_48N)
    path = tmp_path / "scene.gpkg"
    assert save_polygons(pixel_polygons, None, Affine.identity(), None, path, gcps=gcps) == 2  # 2 px: under 4
    assert save_polygons(pixel_polygons, None, Affine.identity(), None, path, min_area=300.0, gcps=gcps) == 1
    _, _, _, fields = read_layer(path)
    assert fields[1] == pytest.approx([900.0]) and list(fields[2]) == ["m2"]  # 100 px of 9 m2
