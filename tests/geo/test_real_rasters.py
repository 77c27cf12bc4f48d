"""Rasters in the forms other projects publish them (issue 22): values beyond 8 bits, band numbers the file lacks,
one band, all nodata, GCPs and RPCs, two inputs with one stem.

Each case is a file written in that exact form; outputs are read back with GDAL's own gdalinfo where it is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.control import GroundControlPoint
from rasterio.rpc import RPC
from rasterio.transform import Affine

from translandseg_hf.cli import main
from translandseg_hf.inference import predict_files
from translandseg_hf.inference.reading import SceneReader
from translandseg_hf.inference.scene import output_paths

from helpers.rasters import write_raster as write_geotiff

UTM_48N = "EPSG:32648"


def eight_bit_scene(count: int = 3, height: int = 96, width: int = 80) -> np.ndarray:
    ramp = np.linspace(0, 255, height * width).reshape(height, width)
    return np.stack([ramp, ramp[::-1], ramp[:, ::-1]][:count]).round().astype(np.uint8)


def notes_under(summary: str, path: Path) -> list[str]:
    """The `    note:` lines under the input's `  done:` line of the summary."""
    lines = summary.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  done: {path}: "))
    notes = []
    for line in lines[start + 1:]:
        if not line.startswith("    note: "):
            break
        notes.append(line.removeprefix("    note: "))
    return notes


def sixteen_bit_scene(low: int = 69, high: int = 31_000) -> np.ndarray:
    """(3, 96, 80) uint16 from `low` to `high`, as a Landsat or orthophoto subset stores them."""
    ramp = np.linspace(low, high, 96 * 80).reshape(96, 80)
    return np.stack([ramp, ramp[::-1], ramp.T.reshape(96, 80)]).round().astype(np.uint16)


def predict(model: Path, scene: Path, output: Path, *extra: str) -> int:
    return main(["predict", "--model", str(model), str(scene), "--output", str(output), *extra])


def test_a_16_bit_scene_for_an_8_bit_model_is_refused_with_its_range_and_options(tiny_sam_folder, tmp_path, capsys):
    scene = write_geotiff(tmp_path / "landsat.tif", sixteen_bit_scene())
    assert predict(tiny_sam_folder, scene, tmp_path / "maps") == 1
    expected = (f"{scene}: the bands hold uint16 values from 69 to 31000, but the model reads 8-bit values (0-255) as "
                "they are (its contract's scale is none), so they would be clipped to white; pass --scale percentile")
    assert expected in capsys.readouterr().out
    assert not list((tmp_path / "maps").glob("landsat_*"))  # nothing written from a map that cannot be right


def test_the_16_bit_scene_maps_with_the_stretch_the_message_names(tiny_sam_folder, tmp_path, capsys):
    scene = write_geotiff(tmp_path / "landsat.tif", sixteen_bit_scene())
    assert predict(tiny_sam_folder, scene, tmp_path / "maps", "--scale", "percentile") == 0
    probability = tmp_path / "maps" / "landsat_probability.tif"
    with rasterio.open(probability) as dataset:
        values = dataset.read(1)
        assert dataset.crs == UTM_48N and values.shape == (96, 80) and np.isfinite(values).all()
    if shutil.which("gdalinfo"):
        info = subprocess.run(["gdalinfo", "-stats", str(probability)], capture_output=True, text=True)
        assert info.returncode == 0 and "ERROR" not in info.stderr, info.stderr


def test_16_bit_values_within_0_255_read_as_the_same_8_bit_scene(tiny_sam_folder, tmp_path):
    eight = (sixteen_bit_scene(0, 255 * 100) // 100).astype(np.uint8)
    for folder, bands in (("a", eight), ("b", eight.astype(np.uint16))):
        (tmp_path / folder).mkdir()
        write_geotiff(tmp_path / folder / "scene.tif", bands)
    for folder in ("a", "b"):
        assert predict(tiny_sam_folder, tmp_path / folder / "scene.tif", tmp_path / folder / "maps") == 0
    maps = [rasterio.open(tmp_path / folder / "maps" / "scene_probability.tif") for folder in ("a", "b")]
    with maps[0], maps[1]:
        assert np.array_equal(maps[0].read(1), maps[1].read(1))


def test_a_single_band_scene_is_copied_into_rgb_and_says_so(tiny_sam_folder, tmp_path, capsys):
    scene = write_geotiff(tmp_path / "dem_shade.tif", eight_bit_scene(count=1))
    assert predict(tiny_sam_folder, scene, tmp_path / "maps") == 0
    captured = capsys.readouterr()
    assert captured.err.count("warning: ") == 1
    assert f"warning: {scene}: 1 band copied into the 3 RGB channels\n" in captured.err
    assert notes_under(captured.out, scene) == ["1 band copied into the 3 RGB channels"]


def test_a_grey_and_alpha_png_says_how_it_was_read_and_why_it_has_no_geojson(tiny_sam_folder, tmp_path, capsys):
    grey = eight_bit_scene(count=1)[0]
    alpha = np.full_like(grey, 255)
    alpha[:10] = 0
    scene = tmp_path / "photo.png"
    Image.fromarray(np.stack([grey, alpha], axis=-1), mode="LA").save(scene)
    assert predict(tiny_sam_folder, scene, tmp_path / "maps") == 0
    captured = capsys.readouterr()
    expected = ["band 1 of 2 copied into the 3 RGB channels; band 2 is its alpha (the valid pixels)",
                "no GeoJSON: the image has no georeferencing, so its polygons are in pixel coordinates, which GeoJSON "
                "cannot state; they are in photo_landslides.gpkg with an undefined CRS"]
    assert notes_under(captured.out, scene) == expected
    assert [line for line in captured.err.splitlines() if line.startswith("warning: ")] == [
        f"warning: {scene}: {note}" for note in expected]
    assert not (tmp_path / "maps" / "photo_landslides.geojson").exists()
    assert (tmp_path / "maps" / "photo_landslides.gpkg").exists() and (tmp_path / "maps" / "photo_mask.png").exists()


def test_an_all_nodata_scene_says_it_held_no_valid_pixels(tiny_sam_folder, tmp_path, capsys):
    scene = write_geotiff(tmp_path / "empty.tif", np.zeros((3, 40, 50), np.uint8), nodata=0)
    assert predict(tiny_sam_folder, scene, tmp_path / "maps") == 0
    captured = capsys.readouterr()
    assert notes_under(captured.out, scene) == ["no valid pixels: every pixel is nodata"]
    assert f"warning: {scene}: no valid pixels: every pixel is nodata\n" in captured.err
    with rasterio.open(tmp_path / "maps" / "empty_probability.tif") as probability:
        assert np.isnan(probability.read(1)).all()


def test_a_full_scene_has_no_notes(tiny_sam_folder, tmp_path, capsys):
    scene = write_geotiff(tmp_path / "rgb.tif", eight_bit_scene())
    assert predict(tiny_sam_folder, scene, tmp_path / "maps") == 0
    captured = capsys.readouterr()
    assert notes_under(captured.out, scene) == [] and "warning: " not in captured.err


def test_two_inputs_with_one_stem_fail_before_any_work_naming_both(tiny_sam_folder, tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    first = write_geotiff(tmp_path / "a" / "scene.tif", eight_bit_scene())
    second = tmp_path / "b" / "scene.png"
    Image.fromarray(eight_bit_scene().transpose(1, 2, 0)).save(second)
    expected = (f"{first} and {second} would write the same outputs (scene_probability.tif, ...), which are named by "
                "the input's file stem; predict them into separate --output folders, one run each, or rename one.")
    assert main(["predict", "--model", str(tiny_sam_folder), str(first), str(second),
                 "--output", str(tmp_path / "maps")]) == 1
    assert capsys.readouterr().err == f"error: {expected}\n"
    assert not (tmp_path / "maps").exists()
    # The library refuses them too, before loading the model (here one that does not exist).
    with pytest.raises(ValueError, match=re.escape(expected)):
        predict_files(tmp_path / "no-model", [tmp_path / "a", second], tmp_path / "maps")
    assert not (tmp_path / "maps").exists()


def test_one_file_given_twice_is_refused(tmp_path):
    scene = write_geotiff(tmp_path / "scene.tif", eight_bit_scene())
    with pytest.raises(ValueError, match=re.escape(f"{scene} is given twice")):
        predict_files(tmp_path / "no-model", [scene, tmp_path], tmp_path / "maps")


@pytest.mark.parametrize("georeferencing, expected", [
    ("transform", ["probability", "mask", "geojson", "gpkg", "quicklook"]),
    ("gcps", ["probability", "mask", "geojson", "gpkg", "quicklook"]),
    ("rpcs", ["probability", "mask", "geojson", "gpkg", "quicklook"]),
    ("pixels", ["probability", "mask", "gpkg", "quicklook", "mask_png"]),
    (True, ["probability", "mask", "geojson", "gpkg", "quicklook"]),  # the older spelling: georeferenced or not
    (False, ["probability", "mask", "gpkg", "quicklook", "mask_png"]),
])
def test_output_paths_for_each_georeferencing(georeferencing, expected, tmp_path):
    outputs = output_paths(Path("in/scene.tif"), tmp_path, georeferencing)
    assert list(outputs) == expected
    assert outputs["gpkg"] == tmp_path / "scene_landslides.gpkg"
    assert list(output_paths(Path("in/scene.tif"), tmp_path, georeferencing, tta=True)) == expected + ["uncertainty"]


def test_output_paths_refuses_an_unknown_georeferencing(tmp_path):
    with pytest.raises(ValueError, match="georeferencing must be one of transform, gcps, rpcs, pixels, got 'utm'"):
        output_paths(Path("scene.tif"), tmp_path, "utm")


def simple_rpc() -> RPC:
    """RPCs of a small scene near (105 E, 27 N): line and sample linear in latitude and longitude."""
    def linear(index: int) -> list[float]:
        return [0.0] * index + [1.0] + [0.0] * (19 - index)

    return RPC(height_off=0, height_scale=100, lat_off=27.0, lat_scale=0.01, line_den_coeff=linear(0),
               line_num_coeff=[0.0, 0.0, -1.0] + [0.0] * 17, line_off=48, line_scale=48, long_off=105.0,
               long_scale=0.01, samp_den_coeff=linear(0), samp_num_coeff=linear(1), samp_off=40, samp_scale=40)


def test_the_reader_names_each_kind_of_georeferencing(tmp_path):
    bands = eight_bit_scene()
    gcps = [GroundControlPoint(0, 0, 500_000, 3_000_000), GroundControlPoint(0, 80, 500_064, 3_000_000),
            GroundControlPoint(96, 0, 500_000, 2_999_923)]
    files = {
        "transform": write_geotiff(tmp_path / "grid.tif", bands),
        "gcps": write_geotiff(tmp_path / "gcps.tif", bands, gcps=gcps, crs=UTM_48N),
        "rpcs": write_geotiff(tmp_path / "rpcs.tif", bands, rpcs=simple_rpc()),
        "pixels": write_geotiff(tmp_path / "plain.tif", bands, crs=None),
        "rotated without a CRS": write_geotiff(tmp_path / "rotated.tif", bands,
                                               transform=Affine.rotation(30) @ Affine.scale(0.8, -0.8)),
    }
    found = {}
    for kind, path in files.items():
        with SceneReader(path) as reader:
            found[kind] = (reader.georeferencing, reader.georeferenced, reader.crs, reader.polygon_crs,
                           None if reader.gcps is None else (len(reader.gcps[0]), reader.gcps[1]),
                           reader.rpcs is not None)
    assert found == {
        "transform": ("transform", True, UTM_48N, UTM_48N, None, False),
        "gcps": ("gcps", True, None, UTM_48N, (3, UTM_48N), False),
        "rpcs": ("rpcs", True, None, "EPSG:4326", None, True),
        "pixels": ("pixels", False, None, None, None, False),
        "rotated without a CRS": ("pixels", False, None, None, None, False),
    }
