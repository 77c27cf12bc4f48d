"""All 14 Landslide4Sense bands into SAM: RGB through SAM's patch embedding, the others through a band embedding that
starts at zero, so a fresh multispectral model computes the RGB model; the same bands read the same way by predict."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from conftest import ROOT, load_recipe
from helpers.models import EXTRA, multispectral
from helpers.rasters import write_raster
from safetensors import safe_open

from translandseg_hf import TransLandSegModel
from translandseg_hf.atl import PRESETS
from translandseg_hf.cli import main
from translandseg_hf.parameter_table import count_parameters
from translandseg_hf.training import parse_config
from translandseg_hf.training.builders import build_datasets

@pytest.mark.parametrize("preset", list(PRESETS))
def test_a_fresh_multispectral_model_computes_the_rgb_model(tiny_sam, preset):
    rgb_model, model = multispectral(tiny_sam, preset, extra=0), multispectral(tiny_sam, preset)
    pixel_values = torch.randn(2, 3 + EXTRA, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(pixel_values).logits, rgb_model(pixel_values[:, :3]).logits)


def test_training_reaches_the_band_embedding(tiny_sam, labels):
    model = multispectral(tiny_sam).train()
    adapter = model.sam.vision_encoder.atl_adapters["default"]
    embed_before = adapter.band_embed.weight.detach().clone()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    pixel_values = torch.randn(2, 3 + EXTRA, 64, 64, generator=torch.Generator().manual_seed(2))
    for step in range(2):
        model(pixel_values, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step == 0:  # the zero projection learns first; through it, the band convolution
            assert adapter.band_project.weight.abs().sum() > 0
    assert not torch.equal(adapter.band_embed.weight, embed_before)


def test_the_band_embedding_saves_and_loads(tiny_sam, tmp_path):
    model = multispectral(tiny_sam).eval()
    torch.nn.init.normal_(model.sam.vision_encoder.atl_adapters["default"].band_project.weight, std=0.1)
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "adapter_model.safetensors"), framework="pt") as handle:
        assert any("band_embed" in key for key in handle.keys()) and any("band_project" in key for key in handle.keys())
    assert json.loads((tmp_path / "adapter_config.json").read_text())["extra_bands"] == EXTRA
    pixel_values = torch.randn(1, 3 + EXTRA, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(TransLandSegModel.from_pretrained(tmp_path)(pixel_values).logits,
                                   model(pixel_values).logits)


def test_a_wrong_band_count_names_both(tiny_sam):
    with pytest.raises(ValueError, match=r"pixel_values must have shape \(batch, 14, 64, 64\) for this model, got "
                                         r"\(1, 3, 64, 64\)"):
        multispectral(tiny_sam)(torch.zeros(1, 3, 64, 64))


def test_parameter_counts_add_the_band_embedding_only():
    rgb, bands = count_parameters("vit_l", "translandseg"), count_parameters("vit_l", "translandseg", extra_bands=EXTRA)
    d, hidden, patch = 32, 1024, 16
    assert bands["trainable"] - rgb["trainable"] == (EXTRA * d * patch * patch + d) + (d * hidden + hidden)
    assert bands["total"] - rgb["total"] == bands["trainable"] - rgb["trainable"]


@pytest.fixture
def l4s_root(tmp_path):
    """Two training patches and one validation patch of all 14 bands, in the published layout."""
    rng = np.random.default_rng(0)
    for folder, count in (("TrainData", 2), ("ValidData", 1)):
        for n in range(1, count + 1):
            patch = rng.gamma(2.0, 1.2, size=(128, 128, 14)).astype(np.float32)
            for sub, name, key, array in (("img", f"image_{n}.h5", "img", patch),
                                          ("mask", f"mask_{n}.h5", "mask", (patch[..., 3] > 2).astype(np.uint8))):
                (tmp_path / "l4s" / folder / sub).mkdir(parents=True, exist_ok=True)
                with h5py.File(tmp_path / "l4s" / folder / sub / name, "w") as handle:
                    handle.create_dataset(key, data=array)
    return tmp_path / "l4s"


def test_a_14_band_geotiff_maps_as_the_training_tensor(l4s_root, tiny_sam, tmp_path, capsys):
    config = parse_config(["--dataset", "landslide4sense", "--data_dir", str(l4s_root), "--bands", "all",
                           "--image_size", "64"])
    splits, transform = build_datasets(config)
    processor = transform.processor
    assert processor.bands == [4, 3, 2, 1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14] and processor.band_names[-2:] == [
        "slope", "DEM"]
    model = multispectral(tiny_sam)
    torch.nn.init.normal_(model.sam.vision_encoder.atl_adapters["default"].band_project.weight, std=0.2)
    model.set_image_processor(processor)
    model.eval().save_pretrained(tmp_path / "model")
    with torch.no_grad():
        logits = model(splits["validation"][0]["pixel_values"][None]).logits
    expected = torch.sigmoid(F.interpolate(logits, size=(128, 128), mode="bilinear", align_corners=False))[0, 0]

    with h5py.File(l4s_root / "ValidData" / "img" / "image_1.h5") as handle:
        patch = handle["img"][()]
    write_raster(tmp_path / "patch.tif", np.moveaxis(patch, -1, 0).astype(np.float32), pixel_size=10)
    assert main(["predict", "--model", str(tmp_path / "model"), str(tmp_path / "patch.tif"),
                 "--output", str(tmp_path / "maps")]) == 0
    with rasterio.open(tmp_path / "maps" / "patch_probability.tif") as dataset:
        np.testing.assert_allclose(dataset.read(1), expected.numpy(), atol=1e-4)

    write_raster(tmp_path / "rgb.tif", np.moveaxis(patch[..., :3], -1, 0).astype(np.float32), pixel_size=10)
    assert main(["predict", "--model", str(tmp_path / "model"), str(tmp_path / "rgb.tif"),
                 "--output", str(tmp_path / "maps")]) == 1
    assert ("rgb.tif: bands 4,5,6,7,8,9,10,11,12,13,14 are not in the file: the model reads bands "
            "4,3,2,1,5,6,7,8,9,10,11,12,13,14, and the file has 3 band(s)") in capsys.readouterr().out


def test_the_recipe_trains_14_bands_and_records_them(l4s_root, tmp_path):
    metrics = load_recipe("train").main([
        "--config", str(ROOT / "recipes" / "configs" / "landslide4sense-14band.yaml"), "--data_dir", str(l4s_root),
        "--base_model", "random", "--image_size", "64", "--random_sam_hidden_size", "32", "--epochs", "1",
        "--output_dir", str(tmp_path / "run"), "--split_file", "null"])
    assert metrics["input_channels"] == 14 and metrics["test"] is None
    contract = json.loads((tmp_path / "run" / "model" / "preprocessor_config.json").read_text())
    assert len(contract["bands"]) == 14 and len(contract["band_mean"]) == EXTRA and contract["tile_size"] == 128
    assert json.loads((tmp_path / "run" / "model" / "adapter_config.json").read_text())["extra_bands"] == EXTRA


def test_a_cnn_baseline_takes_every_band_through_its_first_convolution():
    pytest.importorskip("segmentation_models_pytorch", reason="the CNN baselines need segmentation-models-pytorch")
    from translandseg_hf.baselines import BaselineConfig, BaselineSegmentationModel

    model = BaselineSegmentationModel(BaselineConfig("unet", "resnet18", None, image_size=64, in_channels=14))
    assert model(torch.randn(1, 14, 64, 64)).logits.shape == (1, 1, 64, 64)
    assert len(model.image_processor.bands) == 14
