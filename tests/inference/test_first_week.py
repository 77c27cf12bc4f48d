"""Issue 37, a newcomer's first week: what a user tripped over with their own data, one row per case."""

from __future__ import annotations

import pytest
import torch
from helpers.rasters import random_rgb, write_raster
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
