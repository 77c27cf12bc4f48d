"""The model carries its input contract: no skew between training and `translandseg predict`, tiles at the training
scale, and the contract round-tripped through save/load and the Hub cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from conftest import put_in_hub_cache, tiny_atl
from PIL import Image

from translandseg_hf import TransLandSegModel
from translandseg_hf.cli import main
from translandseg_hf.data import SamTransform, load_landslide4sense
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.inference import predict_file
from translandseg_hf.inference.contract import plan_tiles
from translandseg_hf.inference.contract import with_overrides as contract_with_overrides
from translandseg_hf.training import parse_config
from translandseg_hf.training.builders import build_image_processor, median_image_side

from helpers.rasters import write_raster


def write_l4s_patch(root, patch: np.ndarray):
    """One labelled training patch in the published layout (TrainData/img/image_1.h5, TrainData/mask/mask_1.h5)."""
    for folder, name, key, array in (("img", "image_1.h5", "img", patch),
                                     ("mask", "mask_1.h5", "mask", (patch[..., 0] > 1.5).astype(np.uint8))):
        (root / "TrainData" / folder).mkdir(parents=True, exist_ok=True)
        with h5py.File(root / "TrainData" / folder / name, "w") as handle:
            handle.create_dataset(key, data=array)
    return root


def input_dependent(model: TransLandSegModel) -> TransLandSegModel:
    """A fresh residual ATL is the identity; give it weights so that its output depends on its input."""
    torch.manual_seed(3)
    torch.nn.init.normal_(model.sam.vision_encoder.atl_adapters["default"].up.weight, std=0.2)
    return model.eval()


@pytest.fixture
def l4s_model(tmp_path, tiny_sam):
    """A TransLandSeg model with the contract training on Landslide4Sense RGB writes, saved, and the patch."""
    patch = np.random.default_rng(0).gamma(2.0, 1.2, size=(128, 128, 14)).astype(np.float32)  # some above 10
    root = write_l4s_patch(tmp_path / "l4s", patch)
    splits = load_landslide4sense(root, cache_dir=tmp_path / "cache")
    config = parse_config(["--dataset", "landslide4sense", "--data_dir", str(root), "--image_size", "64"])
    processor = build_image_processor(config, splits["train"])
    model = input_dependent(TransLandSegModel.from_sam(tiny_sam, tiny_atl("translandseg")))
    model.set_image_processor(processor)
    model.save_pretrained(tmp_path / "model")
    return model, splits, patch


def test_training_records_the_landslide4sense_contract(l4s_model):
    processor = l4s_model[0].image_processor
    assert (processor.bands, processor.scale, processor.divisor) == ([4, 3, 2], "divisor", 10.0)
    assert (processor.tile_size, processor.ground_resolution, processor.input_size) == (128, 10.0, 64)


def test_a_patch_and_its_geotiff_give_the_same_probabilities(l4s_model, tmp_path, capsys):
    """No skew: the evaluation tensor of an h5 patch, and the same 14 bands as a float GeoTIFF through `translandseg
    predict` with no flags, give the same map."""
    model, splits, patch = l4s_model
    pixel_values = splits["train"].with_transform(SamTransform(model.image_processor))[0]["pixel_values"]
    with torch.no_grad():
        logits = model(pixel_values[None]).logits  # (1, 1, 64, 64)
    expected = torch.sigmoid(F.interpolate(logits, size=(128, 128), mode="bilinear", align_corners=False))[0, 0]
    scene = write_raster(tmp_path / "patch.tif", np.moveaxis(patch, -1, 0), pixel_size=10.0)
    assert main(["predict", "--model", str(tmp_path / "model"), str(scene), "--output", str(tmp_path / "maps")]) == 0
    with rasterio.open(tmp_path / "maps" / "patch_probability.tif") as dataset:
        probability = dataset.read(1)
    np.testing.assert_allclose(probability, expected.numpy(), atol=1e-4)
    assert expected.std() > 1e-3  # the map varies with the input, so equality means the inputs were equal
    output = capsys.readouterr()
    assert "1 tile(s) of 128 px (training tiles of 128 px at 10 m; scene at 10 m" in output.out
    assert "warning" not in output.err


@pytest.mark.parametrize("resolution, side, tile", [(10.0, 512, 128), (5.0, 1024, 256)], ids=["10m", "5m"])
def test_tiles_cover_the_ground_one_training_input_covered(l4s_model, tmp_path, resolution, side, tile):
    """The same 5.12 km square at 10 m and at 5 m: 128 px and 256 px tiles, each resized to the input."""
    bands = np.random.default_rng(1).uniform(0, 8, size=(4, side, side)).astype(np.float32)
    scene = write_raster(tmp_path / "scene.tif", bands, pixel_size=resolution)
    result = predict_file(l4s_model[0], scene, tmp_path / "maps")
    assert (result.status, result.tile_size, result.tiles) == ("done", tile, 25)  # 5 x 5 at overlap tile / 8
    assert f"scene at {resolution:g} m" in result.tile_reason


def test_the_tile_side_falls_back_and_can_be_overridden():
    contract = TransLandSegImageProcessor(input_size=64, tile_size=300, ground_resolution=0.8)
    assert plan_tiles(contract, 0.4).size == 600
    assert plan_tiles(contract, None).reason == "the training tile size (the scene's resolution is unknown)"
    assert plan_tiles(contract, 0.4, resolution=1.6).size == 150
    assert plan_tiles(contract, 0.4, tile_size=96).size == 96
    unknown = TransLandSegImageProcessor(input_size=64, tile_size=300)
    assert (plan_tiles(unknown, 0.4).size, plan_tiles(unknown, 0.4).reason) == (
        300, "the training tile size (the training resolution is unknown)")


def test_overrides_apply_and_are_named_once(l4s_model, tmp_path, capsys):
    processor, notes = contract_with_overrides(l4s_model[0].image_processor, bands=(1, 2, 3), divisor=10)
    assert processor.bands == [1, 2, 3] and l4s_model[0].image_processor.bands == [4, 3, 2]
    assert notes == ["--bands 1,2,3 overrides the model's bands (4,3,2)"]  # divisor 10 is the model's own
    scene = write_raster(tmp_path / "scene.tif", np.ones((4, 40, 40), np.float32), pixel_size=10.0)
    main(["predict", "--model", str(tmp_path / "model"), str(scene), "--output", str(tmp_path / "maps"),
          "--bands", "1,2,3", "--scale", "percentile"])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: --bands 1,2,3 overrides the model's bands (4,3,2)",
                        "warning: --scale percentile overrides the model's scale (divisor)"]


def test_too_few_bands_name_the_file_and_both_band_lists(l4s_model, tmp_path, capsys):
    scene = write_raster(tmp_path / "rgb.tif", np.ones((3, 40, 40), np.uint8), pixel_size=10.0)
    assert main(["predict", "--model", str(tmp_path / "model"), str(scene), "--output", str(tmp_path / "o")]) == 1
    message = "rgb.tif: band 4 is not in the file: the model reads bands 4,3,2, and the file has 3 band(s): 1, 2, 3."
    assert message in capsys.readouterr().out


def test_contract_round_trips_through_save_load_and_the_hub_cache(l4s_model, tmp_path):
    saved = json.loads((tmp_path / "model" / "preprocessor_config.json").read_text())
    assert saved["image_processor_type"] == "TransLandSegImageProcessor" and saved["tile_size"] == 128
    loaded = TransLandSegModel.from_pretrained(tmp_path / "model")
    assert loaded.image_processor.to_dict() == l4s_model[0].image_processor.to_dict()
    card = (tmp_path / "model" / "README.md").read_text()
    assert "Bands (1-based, in channel order): 4, 3, 2" in card and "`value / 10 * 255`, clipped" in card
    assert "Tile size: 128 px of the scene" in card and "10 m per pixel" in card

    hf_home = tmp_path / "hf_home"
    put_in_hub_cache(hf_home / "hub", "landslide-lab/l4s", tmp_path / "model")
    script = textwrap.dedent("""
        from translandseg_hf import load_segmentation_model
        processor = load_segmentation_model("landslide-lab/l4s").image_processor
        print(processor.bands, processor.scale, processor.divisor, processor.tile_size, processor.ground_resolution)
        """)
    environment = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    environment.pop("HF_HUB_CACHE", None)
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert result.stdout.strip() == "[4, 3, 2] divisor 10.0 128 10.0", result.stderr[-2000:]


def test_a_model_saved_before_contracts_loads_with_rgb_and_one_warning(tmp_path, tiny_sam):
    TransLandSegModel.from_sam(tiny_sam).save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").unlink()
    with pytest.warns(UserWarning, match=r"has no preprocessor_config\.json \(saved before models recorded their "
                                         r"input\): assuming bands 1,2,3 as 8-bit RGB and tiles of 64 px") as caught:
        model = TransLandSegModel.from_pretrained(tmp_path)
    assert len([w for w in caught if "preprocessor_config" in str(w.message)]) == 1
    processor = model.image_processor
    assert (processor.bands, processor.scale, processor.tile_size, processor.input_size) == ([1, 2, 3], "none", 64, 64)


def test_the_training_tile_is_the_median_image_side(tmp_path):
    from datasets import Dataset, Features
    from datasets import Image as ImageFeature

    paths = []
    for index, (width, height) in enumerate([(40, 40), (60, 80), (100, 100)]):
        paths.append(str(tmp_path / f"{index}.png"))
        Image.new("RGB", (width, height)).save(paths[-1])
    split = Dataset.from_dict({"image": paths}, features=Features({"image": ImageFeature()}))
    assert median_image_side(split) == 70


def test_processor_preprocess_matches_the_training_transform():
    processor = TransLandSegImageProcessor(input_size=32)
    image = np.random.default_rng(2).integers(0, 256, (45, 61, 3), dtype=np.uint8)
    from_processor = processor(image).pixel_values[0]
    from_training = SamTransform(processor)({"image": [Image.fromarray(image)]})["pixel_values"][0]
    assert torch.equal(from_processor, from_training)


@pytest.mark.parametrize("field, value, message", [
    ("bands", [4, 3], r"bands must be three or more 1-based band numbers \(R, G, B first\), got \[4, 3\]"),
    ("band_mean", [0.5], r"band_mean and band_std need one value per extra band \(0\), with std > 0; got 1 and 0"),
    ("scale", "auto", r"scale must be one of \('none', 'divisor', 'percentile'\), got 'auto'"),
    ("ground_resolution", -1.0, "ground_resolution must be positive metres per pixel, got -1.0"),
])
def test_invalid_contracts_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        TransLandSegImageProcessor(**{field: value})
