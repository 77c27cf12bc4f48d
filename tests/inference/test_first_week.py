"""Issue 37, a newcomer's first week: what a user tripped over with their own data, one row per case."""

from __future__ import annotations

import re

import pytest
import torch
from helpers.rasters import random_rgb, write_raster
from rasterio.transform import from_origin
from transformers import SamModel

from translandseg_hf import TransLandSegModel
from translandseg_hf.cli import main
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.sam_configs import tiny_sam_config


@pytest.fixture(scope="module")
def bijie_like_model(tmp_path_factory):
    """A tiny model whose contract says what a Bijie model's does: 532 px training tiles at 0.8 m."""
    torch.manual_seed(0)
    model = TransLandSegModel.from_sam(SamModel(tiny_sam_config()))
    model.set_image_processor(TransLandSegImageProcessor(input_size=64, tile_size=532, ground_resolution=0.8))
    folder = tmp_path_factory.mktemp("bijie-like")
    model.save_pretrained(folder)
    return folder


COARSE_SCENES = [  # (the scene's metres per pixel, extra predict arguments, exit status, what stderr/stdout says)
    (300.0, [], 1, "the scene is at 300 m per pixel and the model was trained at 0.8 m, so one training tile of "
                   "532 px covers 1 px of the scene, under 32 px"),
    (30.0, [], 1, "covers 14 px of the scene, under 32 px"),
    (300.0, ["--tile_size", "60"], 0, "1 done"),  # the user's choice: mapped
    (10.0, [], 0, "1 done"),  # a Bijie model on Sentinel-2's 10 m: 43 px tiles, mapped as before
]


@pytest.mark.parametrize("metres, extra, status, said", COARSE_SCENES)
def test_a_scene_far_coarser_than_the_training_imagery_is_refused_before_any_work(
        bijie_like_model, tmp_path, capsys, metres, extra, status, said):
    scene = write_raster(tmp_path / "coarse.tif", random_rgb(60), pixel_size=metres)
    code = main(["predict", str(scene), "--model", str(bijie_like_model), "--output", str(tmp_path / "maps"),
                 "--device", "cpu", *extra])
    captured = capsys.readouterr()
    assert code == status and said in captured.out + captured.err
    if status:
        assert "--tile_size (scene px) or --resolution (metres per pixel) to map it anyway" in captured.out + \
            captured.err
        assert not (tmp_path / "maps" / "coarse_probability.tif").exists()


def in_degrees(step: float) -> dict:
    """write_raster's georeferencing for a grid in EPSG:4326 just north of the equator, `step` degrees a pixel."""
    return {"crs": "EPSG:4326", "transform": from_origin(105.0, 0.05, step, step)}


COARSE = (r"the scene is at (?P<metres>[\d.]+) m per pixel and the model was trained at 0\.8 m, so one training tile "
          r"of 532 px covers 1 px of the scene, under 32 px")


@pytest.mark.parametrize("georeferencing", [{"pixel_size": 300.0}, in_degrees(0.0027)], ids=["UTM", "EPSG:4326"])
def test_the_scale_check_measures_a_scene_in_degrees_too(bijie_like_model, tmp_path, capsys, georeferencing):
    """0.0027 degrees is about 300 m on the ground: refused as the same scene in UTM is, in the same words."""
    scene = write_raster(tmp_path / "coarse.tif", random_rgb(60), **georeferencing)
    code = main(["predict", str(scene), "--model", str(bijie_like_model), "--output", str(tmp_path / "maps"),
                 "--device", "cpu"])
    said = "".join(capsys.readouterr())
    found = re.search(COARSE, said)
    assert code == 1 and found, said
    assert float(found["metres"]) == pytest.approx(300, rel=0.01)
    assert not (tmp_path / "maps" / "coarse_probability.tif").exists()


def test_a_scene_in_degrees_gets_the_tiles_of_the_same_scene_in_metres(bijie_like_model, tmp_path, capsys):
    """0.0000072 degrees at the equator is 0.8 m: tiles of the training's 532 px, as at 0.8 m in UTM (within a px)."""
    sides = []
    for name, georeferencing in {"metres": {"pixel_size": 0.8}, "degrees": in_degrees(0.0000072)}.items():
        scene = write_raster(tmp_path / f"{name}.tif", random_rgb(60), **georeferencing)
        code = main(["predict", str(scene), "--model", str(bijie_like_model), "--output", str(tmp_path / "maps"),
                     "--device", "cpu"])
        out = capsys.readouterr().out
        assert code == 0, out
        sides.append(int(re.search(rf"{name}\.tif: 1 tile\(s\) of (\d+) px \(training tiles of 532 px", out)[1]))
    assert sides[0] == 532 and abs(sides[1] - sides[0]) <= 1, sides
