"""ONNX export and the onnxruntime backend: the exported graph computes the torch model's probabilities (fp32, within
1e-4) for RGB, 14-band and resampled SAMs and a CNN baseline; `translandseg predict --backend onnxruntime` and the
exported folder itself write torch's maps; int8's difference is measured; broken inputs are refused by name."""

from __future__ import annotations

import copy
import importlib.util
import json

import numpy as np
import pytest
import rasterio
import torch
from conftest import tiny_atl
from helpers.models import multispectral
from helpers.rasters import blob_scene, write_raster

from translandseg_hf import TransLandSegModel
from translandseg_hf.auto import load_segmentation_model
from translandseg_hf.cli import main
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.inference import TileRunner
from translandseg_hf.onnx_backend import ONNX_CONFIG, ONNX_MODEL, OnnxSegmentationModel, export_onnx

pytest.importorskip("onnxruntime")
TOLERANCE = 1e-4  # in probability, fp32
INT8_BOUND = 0.5  # dynamic int8 on random tiny weights: far off is possible, broken (NaN, inverted) is not


def with_random_adapters(model: TransLandSegModel, seed: int = 0) -> TransLandSegModel:
    """Adapters whose zero-initialised projections (up, band projection) are random: a fresh model's ATL and band
    embedding add nothing, and a graph that dropped them would still match."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return model.eval()


def probabilities(model, pixel_values: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.sigmoid(model(pixel_values).logits).numpy()


def vit_b(image_size=None) -> TransLandSegModel:
    """SAM ViT-B's shape (12 blocks of 768, 4 of them global) with random weights: its config's initializer range
    (1e-10) would make an encoder whose output ignores the image, so its layers are drawn again at 0.02."""
    from transformers import SamModel

    from translandseg_hf.sam_configs import sam_config

    torch.manual_seed(0)
    sam = SamModel(sam_config("vit_b"))
    with torch.no_grad():
        for module in sam.vision_encoder.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                torch.nn.init.normal_(module.weight, std=0.02)
    return with_random_adapters(TransLandSegModel.from_sam(sam, image_size=image_size))


def random_pixels(model, batch: int = 3, seed: int = 1) -> torch.Tensor:
    size = model.image_size
    return torch.randn(batch, model.input_channels, size, size, generator=torch.Generator().manual_seed(seed))


def rgb_model(sam):
    return with_random_adapters(TransLandSegModel.from_sam(copy.deepcopy(sam), tiny_atl("translandseg")))


def band_model(sam):
    return with_random_adapters(multispectral(sam))


def resampled_model(sam):
    return with_random_adapters(TransLandSegModel.from_sam(copy.deepcopy(sam), tiny_atl("translandseg"),
                                                           image_size=96))


@pytest.mark.parametrize("build, channels, size", [(rgb_model, 3, 64), (band_model, 14, 64),
                                                   (resampled_model, 3, 96)])
def test_onnxruntime_probabilities_equal_torchs(tiny_sam, tmp_path, build, channels, size):
    model = build(tiny_sam)
    folder = export_onnx(model, tmp_path / "onnx")
    exported = OnnxSegmentationModel(folder)
    assert (exported.input_channels, exported.image_size) == (channels, size) == (model.input_channels,
                                                                                  model.image_size)
    pixel_values = random_pixels(model)  # a batch of 3: the graph was traced on 1 and checked on 2
    expected, got = probabilities(model, pixel_values), probabilities(exported, pixel_values)
    assert got.shape == expected.shape == (3, 1, size, size)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert np.abs(expected - probabilities(model, random_pixels(model, seed=2))).max() > 10 * TOLERANCE  # not constant
    config = json.loads((folder / ONNX_CONFIG).read_text())
    assert config["quantization"] is None and config["max_probability_difference"] <= TOLERANCE
    assert (config["image_size"], config["input_channels"], config["opset"]) == (size, channels, 17)
    assert config["model"] == model.describe() and config["torch_version"] == torch.__version__
    assert TransLandSegImageProcessor.from_pretrained(str(folder)).to_dict() == model.image_processor.to_dict()


@pytest.fixture(scope="module")
def exported_rgb(tmp_path_factory):
    from transformers import SamModel

    from translandseg_hf.sam_configs import tiny_sam_config

    torch.manual_seed(0)
    model = rgb_model(SamModel(tiny_sam_config()))
    model.set_image_processor(TransLandSegImageProcessor(input_size=64, tile_size=48))
    folder = tmp_path_factory.mktemp("models")
    model.save_pretrained(folder / "torch")
    return model, folder / "torch", export_onnx(folder / "torch", folder / "onnx")


def test_the_exported_folder_loads_as_a_model_the_scene_engine_runs(exported_rgb):
    model, _, folder = exported_rgb
    exported = load_segmentation_model(folder)
    assert isinstance(exported, OnnxSegmentationModel) and exported.providers == ["CPUExecutionProvider"]
    assert exported.to("cpu") is exported and exported.eval() is exported and not exported.training
    run = TileRunner(exported, torch.device("cpu"), precision="bf16")  # autocast leaves the fp32 graph as it is
    tiles = np.random.default_rng(0).uniform(0, 255, (2, 3, 48, 48)).astype(np.float32)
    expected = TileRunner(model, torch.device("cpu"))(tiles.copy())
    got = run(tiles.copy())
    assert got.shape == expected.shape == (2, 1, 48, 48)
    assert np.abs(1 / (1 + np.exp(-got)) - 1 / (1 + np.exp(-expected))).max() <= TOLERANCE
    with pytest.raises(ValueError, match=r"pixel_values must have shape \(batch, 3, 64, 64\) for this model"):
        exported(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="only predicts; train the torch model it came from"):
        exported.train()


def read_maps(folder, stem="scene"):
    with rasterio.open(folder / f"{stem}_probability.tif") as dataset:
        return dataset.read(1)


def test_predict_with_onnxruntime_writes_torchs_maps(exported_rgb, tmp_path, capsys):
    _, torch_folder, onnx_folder = exported_rgb
    scene = write_raster(tmp_path / "scene.tif", blob_scene(130, 150), pixel_size=3.0)
    runs = {"torch": ["--model", str(torch_folder)],
            "exported": ["--model", str(torch_folder), "--backend", "onnxruntime"],
            "folder": ["--model", str(onnx_folder)]}
    for name, arguments in runs.items():
        assert main(["predict", str(scene), "--output", str(tmp_path / name), "--device", "cpu", *arguments]) == 0
    assert "exporting the model to ONNX for --backend onnxruntime" in capsys.readouterr().err
    expected = read_maps(tmp_path / "torch")
    for name in ("exported", "folder"):
        got = read_maps(tmp_path / name)
        assert got.shape == expected.shape == (130, 150)
        assert np.abs(got - expected).max() <= TOLERANCE


def test_int8_runs_and_its_difference_is_measured(exported_rgb, tmp_path, capsys):
    model, torch_folder, _ = exported_rgb
    assert main(["export", "--model", str(torch_folder), "--output", str(tmp_path / "int8"), "--quantize",
                 "int8"]) == 0
    assert "max |probability difference| from torch" in capsys.readouterr().out
    exported = load_segmentation_model(tmp_path / "int8")
    pixel_values = random_pixels(model)
    difference = float(np.abs(probabilities(exported, pixel_values) - probabilities(model, pixel_values)).max())
    print(f"int8 dynamic quantisation: max |probability difference| from torch fp32 = {difference:.4g}")
    assert np.isfinite(difference) and difference < INT8_BOUND
    config = json.loads((tmp_path / "int8" / ONNX_CONFIG).read_text())
    assert config["quantization"] == "int8" and 0 < config["max_probability_difference"] < INT8_BOUND
    assert sorted(path.name for path in (tmp_path / "int8").iterdir()) == [ONNX_MODEL, ONNX_CONFIG,
                                                                           "preprocessor_config.json"]


@pytest.mark.skipif(importlib.util.find_spec("segmentation_models_pytorch") is None,
                    reason="segmentation_models_pytorch is not installed (the baselines extra)")
def test_a_cnn_baseline_exports_the_same_way(tmp_path):
    from translandseg_hf.baselines import BaselineConfig, BaselineSegmentationModel

    torch.manual_seed(0)
    model = BaselineSegmentationModel(BaselineConfig("unet", "resnet18", None, image_size=64)).eval()
    model.save_pretrained(tmp_path / "unet")
    assert main(["export", "--model", str(tmp_path / "unet"), "--output", str(tmp_path / "onnx")]) == 0
    exported = load_segmentation_model(tmp_path / "onnx")
    pixel_values = random_pixels(model)
    assert np.abs(probabilities(exported, pixel_values) - probabilities(model, pixel_values)).max() <= TOLERANCE
    assert exported.describe()["model"] == "unet"


def test_export_refuses_a_non_empty_folder_without_overwrite(exported_rgb, tmp_path, capsys):
    model, torch_folder, _ = exported_rgb
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"out is not empty; choose a new folder or pass --overwrite"):
        export_onnx(model, tmp_path / "out")
    assert main(["export", "--model", str(torch_folder), "--output", str(tmp_path / "out")]) == 2
    assert "is not empty; choose a new folder or pass --overwrite" in capsys.readouterr().err
    assert main(["export", "--model", str(torch_folder), "--output", str(tmp_path / "out"), "--overwrite"]) == 0
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [ONNX_MODEL, ONNX_CONFIG,
                                                                          "preprocessor_config.json"]
    with pytest.raises(ValueError, match=r"holds the model being exported"):
        export_onnx(torch_folder, torch_folder.parent, overwrite=True)
    with pytest.raises(ValueError, match=r"is already an exported ONNX model; export the torch model it came from"):
        export_onnx(tmp_path / "out", tmp_path / "again")
    with pytest.raises(ValueError, match=r"quantize must be one of \['int8'\] or None, got 'int4'"):
        export_onnx(model, tmp_path / "int4", quantize="int4")


def test_a_broken_model_onnx_is_refused_by_name(exported_rgb, tmp_path):
    _, _, folder = exported_rgb
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in (ONNX_CONFIG, "preprocessor_config.json"):
        (broken / name).write_bytes((folder / name).read_bytes())
    (broken / ONNX_MODEL).write_bytes(b"not an onnx graph")
    with pytest.raises(ValueError, match=r"broken/model.onnx: onnxruntime cannot load it .*export the model again"):
        load_segmentation_model(broken)
    (broken / ONNX_CONFIG).write_text("{}")
    with pytest.raises(ValueError, match=r"onnx_config.json lacks \['input_name', 'output_name', 'image_size'"):
        load_segmentation_model(broken)
    (broken / ONNX_CONFIG).unlink()
    with pytest.raises(FileNotFoundError, match=r"broken has no onnx_config.json"):
        load_segmentation_model(broken)


def test_vit_b_sized_random_weights_match_at_a_small_input(tmp_path):
    model = vit_b(image_size=128)  # resampled from 1024 px
    exported = OnnxSegmentationModel(export_onnx(model, tmp_path / "vit_b"))
    pixel_values = random_pixels(model, batch=2)
    expected = probabilities(model, pixel_values)
    assert np.abs(probabilities(exported, pixel_values) - expected).max() <= TOLERANCE
    assert np.abs(expected[0] - expected[1]).max() > 10 * TOLERANCE  # the random encoder sees the image


@pytest.mark.slow
def test_vit_b_sized_random_weights_match_at_1024_px(tmp_path):
    model = vit_b()
    exported = OnnxSegmentationModel(export_onnx(model, tmp_path / "vit_b"))
    pixel_values = random_pixels(model, batch=1)
    assert np.abs(probabilities(exported, pixel_values) - probabilities(model, pixel_values)).max() <= TOLERANCE
