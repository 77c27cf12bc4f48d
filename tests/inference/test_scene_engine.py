"""One scene-mapping engine: `predictor.scene_blocks` is the only driver of `StripBlender`, and both the strips a
script iterates over (`predict_scene_strips`) and the maps `translandseg predict` writes come from it, bitwise alike;
the batch runner's on_error vocabulary and its summary of the contract."""

from __future__ import annotations

import re
from functools import partial
import warnings

import numpy as np
import pytest
import rasterio
import torch
from conftest import ROOT
from helpers.rasters import blob_scene, write_raster

from translandseg_hf import TransLandSegModel
from translandseg_hf.cards import describe_contract
from translandseg_hf.cli import main
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.inference import (
    PredictionOptions, SceneReader, StripBlender, TileRunner, predict_file, predict_files, predict_scene_strips,
    summary, tile_count,
)
from translandseg_hf.inference.tiling import grid_tile_count

write_geotiff = partial(write_raster, pixel_size=3.0)  # the 3 m grid of the inference tests


@pytest.fixture(scope="module")
def model() -> TransLandSegModel:
    from transformers import SamModel

    from translandseg_hf.sam_configs import tiny_sam_config

    torch.manual_seed(0)
    model = TransLandSegModel.from_sam(SamModel(tiny_sam_config()))
    torch.nn.init.normal_(model.sam.vision_encoder.atl_adapters["default"].up.weight, std=0.2)  # input-dependent
    model.set_image_processor(TransLandSegImageProcessor(input_size=64, tile_size=48))
    return model.eval()


def test_strip_blender_is_built_in_one_place_only():
    sources = {path.relative_to(ROOT): path.read_text() for path in (ROOT / "translandseg_hf").rglob("*.py")}
    builders = {str(path): len(re.findall(r"StripBlender\(", text)) for path, text in sources.items()}
    assert {path: count for path, count in builders.items() if count} == {"translandseg_hf/inference/predictor.py": 1}


@pytest.mark.parametrize("height, width, tiles", [(130, 150, 16), (40, 44, 1)])
def test_strips_equal_the_written_probabilities_bitwise(model, tmp_path, height, width, tiles):
    path = write_geotiff(tmp_path / "scene.tif", blob_scene(height, width))
    result = predict_file(model, path, tmp_path / "maps", PredictionOptions(batch_size=3))
    assert (result.status, result.tiles) == ("done", tiles)
    with rasterio.open(result.outputs["probability"]) as dataset:
        written = dataset.read(1)
    processor = model.image_processor
    with SceneReader(path, processor) as reader:
        run = TileRunner(model, "cpu", processor=processor)
        strips = list(predict_scene_strips(reader, run, overlap=48 // 8, batch_size=3, tile_size=48))
    logits = np.concatenate([maps for _, maps in strips], axis=1)[0]  # (H, W)
    assert [row for row, _ in strips][0] == 0 and logits.shape == (height, width)
    expected = (1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))).astype(np.float32)
    assert np.array_equal(written, expected)


def test_on_error_raise_stops_and_stop_is_its_old_spelling(model, tmp_path):
    broken = tmp_path / "a_broken.tif"
    broken.write_bytes(b"not a tiff")
    good = write_geotiff(tmp_path / "b_good.tif", blob_scene(40, 44))
    with pytest.raises(ValueError, match="a_broken.tif"):
        predict_files(model, [broken, good], tmp_path / "raise", on_error="raise", show_progress=False)
    assert not (tmp_path / "raise" / "b_good_mask.tif").exists()
    with pytest.warns(FutureWarning, match=r'on_error="stop" is the old spelling of "raise"'):
        with pytest.raises(ValueError, match="a_broken.tif"):
            predict_files(model, [broken, good], tmp_path / "stop", on_error="stop", show_progress=False)
    with pytest.raises(ValueError, match=r"on_error must be one of \('raise', 'skip'\), got 'ignore'"):
        predict_files(model, [good], tmp_path / "bad", on_error="ignore", show_progress=False)


def test_cli_on_error_raise_exits_with_the_first_failure(model, tmp_path, capsys):
    model.save_pretrained(tmp_path / "model")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a_broken.tif").write_bytes(b"not a tiff")
    write_geotiff(tmp_path / "in" / "b_good.tif", blob_scene(40, 44))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # `raise` is the current spelling: no FutureWarning
        code = main(["predict", "--model", str(tmp_path / "model"), str(tmp_path / "in"), "--output",
                     str(tmp_path / "out"), "--on_error", "raise"])
    assert code == 1 and "error: " in capsys.readouterr().err
    assert not (tmp_path / "out" / "b_good_mask.tif").exists()


def test_summary_states_each_contract_once(model, tmp_path):
    paths = [write_geotiff(tmp_path / f"{name}.tif", blob_scene(40, 44)) for name in ("a", "b")]
    results = predict_files(model, paths, tmp_path / "maps", show_progress=False)
    text = summary(results)
    contract = describe_contract(model.image_processor)
    assert text.splitlines()[:2] == ["2 done, 0 skipped, 0 failed", f"  contract: {contract}"]
    assert text.count("contract:") == 1 and contract.startswith("bands 1,2,3, ")


@pytest.mark.parametrize("height, width, tile, overlap", [(130, 150, 48, 6), (48, 49, 48, 0), (1, 500, 64, 63)])
def test_the_tile_count_is_the_blenders_grid_without_building_one(height, width, tile, overlap):
    blender = StripBlender(height, width, tile, overlap)
    count = len(blender.row_origins) * len(blender.col_origins)
    assert grid_tile_count(height, width, tile, overlap) == blender.tile_count == count
    assert tile_count(height, width, tile, overlap) == count
