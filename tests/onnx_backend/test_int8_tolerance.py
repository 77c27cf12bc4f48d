"""int8 exports are checked like fp32 ones (issue 37, item 5): on synthetic landslide scenes made by the model's own
contract, the largest probability difference and the share of pixels that change class are measured, written to
onnx_config.json, and an export over int8's tolerance is refused unless its error is accepted (then a warning, at
export and when the folder is loaded); one within it passes quietly."""

from __future__ import annotations

import copy
import json
import re
import warnings

import numpy as np
import pytest
import torch
from conftest import tiny_atl
from helpers.models import multispectral
from helpers.sentinel2 import l4s_contract
from torch import nn
from transformers import SamModel

from translandseg_hf import TransLandSegModel
from translandseg_hf.cli import main
from translandseg_hf.data.synthetic import make_synthetic_scene
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.onnx_backend import ONNX_CONFIG, OnnxSegmentationModel, export_onnx
from translandseg_hf.onnx_backend.agreement import INT8_TOLERANCE, SCENE_SEED, THRESHOLD, contract_batch
from translandseg_hf.sam_configs import tiny_sam_config
from translandseg_hf.segmentation import SegmentationOutput

pytest.importorskip("onnxruntime")
OVER = r"int8 quantisation changes the model's map beyond its tolerance \(.*\) on \d+ synthetic landslide scenes"


def tiny_model(weight_noise: float = 0.0) -> TransLandSegModel:
    """A fresh tiny TransLandSeg (64 px), its linear and convolution weights moved by N(0, weight_noise) draws (a
    wider initializer range: larger activations, and int8 steps to match)."""
    torch.manual_seed(0)
    model = TransLandSegModel.from_sam(SamModel(tiny_sam_config()), tiny_atl("translandseg"))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if weight_noise and isinstance(module, (nn.Linear, nn.Conv2d)):
                module.weight.add_(torch.randn(module.weight.shape, generator=generator) * weight_noise)
    model.set_image_processor(TransLandSegImageProcessor(input_size=64))
    return model.eval()


class Sure(nn.Module):
    """A model sure that no scene here holds a landslide (the tiny model's logits - 8): int8's error moves its
    probabilities, never its map."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.image_processor, self.image_size, self.input_channels = (model.image_processor, model.image_size,
                                                                      model.input_channels)

    def describe(self) -> dict:
        return {**self.model.describe(), "logit_offset": -8}

    def forward(self, pixel_values: torch.Tensor) -> SegmentationOutput:
        return SegmentationOutput(logits=self.model(pixel_values).logits - 8.0)


CASES = [  # name, model, the bounds int8 goes over (none: within its tolerance)
    ("a fresh tiny SAM, probabilities near 0.5", tiny_model, ["of pixels flip class"]),
    ("weights drawn wide, confident answers reversed", lambda: tiny_model(weight_noise=0.6),
     ["max |probability difference|", "of pixels flip class"]),
    ("sure of background everywhere", lambda: Sure(tiny_model()), []),
]


def probabilities(model, pixel_values: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.sigmoid(model(pixel_values).logits).numpy()


def measured_again(model, folder) -> tuple[float, float]:
    """The recorded figures, measured again here: torch against the written folder on the recorded batch."""
    config = json.loads((folder / ONNX_CONFIG).read_text())
    count = int(config["difference_measured_on"].split(" ")[0])
    pixel_values = contract_batch(model, count)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an accepted export warns when loaded (tested below)
        exported = OnnxSegmentationModel(folder)
    expected, got = probabilities(model, pixel_values), probabilities(exported, pixel_values)
    return float(np.abs(got - expected).max()), float(np.mean((got > THRESHOLD) != (expected > THRESHOLD)))


@pytest.mark.parametrize("name, build, over", CASES, ids=[case[0] for case in CASES])
def test_int8_is_checked_against_its_tolerance_on_scenes(tmp_path, name, build, over):
    model, output = build(), tmp_path / "int8"
    if over:
        with pytest.raises(ValueError, match=OVER + r".*Export in fp32 \(leave out --quantize\), or pass "
                                                    r"--allow_quantization_error to write it anyway") as refused:
            export_onnx(model, output, quantize="int8")
        bounds = str(refused.value).split("tolerance (")[1].split(") on ")[0]
        assert [bound for bound in ("max |probability difference|", "of pixels flip class") if bound in bounds] == over
        assert not output.exists()
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_onnx(model, output, quantize="int8")
        OnnxSegmentationModel(output)
    assert not [str(w.message) for w in caught if "tolerance" in str(w.message)]
    config = json.loads((output / ONNX_CONFIG).read_text())
    assert config["within_tolerance"] is True and config["tolerance"] == INT8_TOLERANCE.as_dict()
    difference, flipped = measured_again(model, output)
    assert config["max_probability_difference"] == pytest.approx(difference, abs=1e-5)
    assert config["flipped_pixel_share"] == pytest.approx(flipped, abs=1e-3)
    assert 0 < difference <= INT8_TOLERANCE.max_probability_difference
    assert flipped <= INT8_TOLERANCE.flipped_pixel_share


def test_the_command_refuses_an_int8_error_unless_it_is_accepted_then_warns(tmp_path, capsys):
    model = CASES[0][1]()
    model.save_pretrained(tmp_path / "torch")
    command = ["export", "--model", str(tmp_path / "torch"), "--output", str(tmp_path / "int8"), "--quantize", "int8"]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and re.search(OVER, err), err
    assert not (tmp_path / "int8").exists()
    output = tmp_path / "int8"
    with pytest.warns(UserWarning, match=OVER + r".*written as --allow_quantization_error asks"):
        assert main([*command, "--allow_quantization_error"]) == 0
    out = capsys.readouterr().out
    assert "of pixels of another class at 0.5 (OVER its tolerance, accepted) on 16 synthetic landslide scenes" in out
    config = json.loads((output / ONNX_CONFIG).read_text())
    difference, flipped = measured_again(model, output)
    assert config["within_tolerance"] is False and config["quantization"] == "int8"
    assert config["max_probability_difference"] == pytest.approx(difference, abs=1e-5)
    assert config["flipped_pixel_share"] == pytest.approx(flipped, abs=1e-3)
    assert flipped > INT8_TOLERANCE.flipped_pixel_share
    assert config["flip_threshold"] == THRESHOLD and config["tolerance"] == {"max_probability_difference": 0.5,
                                                                            "flipped_pixel_share": 0.005}
    assert config["difference_measured_on"].startswith(f"16 synthetic landslide scenes (data.synthetic, seeds "
                                                       f"({SCENE_SEED}, i)) of 64 px")
    with pytest.warns(UserWarning, match=r"int8 was exported int8 beyond its tolerance \(max \|probability "
                                         r"difference\| .* of pixels of another class"):
        OnnxSegmentationModel(output)


def test_fp32_keeps_its_check_on_noise_and_records_the_same_fields(tmp_path):
    config = json.loads((export_onnx(tiny_model(), tmp_path / "fp32") / ONNX_CONFIG).read_text())
    assert config["within_tolerance"] is True and config["tolerance"] == {"max_probability_difference": 1e-3,
                                                                          "flipped_pixel_share": None}
    assert config["difference_measured_on"].startswith("a seeded batch of 2 standard-normal pixel_values")
    assert config["max_probability_difference"] <= 1e-3 and 0 <= config["flipped_pixel_share"] <= 1


@pytest.mark.parametrize("contract", ["rgb", "landslide4sense 14 bands"])
def test_the_check_batch_is_scenes_through_the_models_contract(tiny_sam, contract):
    """The scenes' RGB comes back exactly through the contract's scaling (8-bit, or Landslide4Sense's divisor 10),
    then SAM's normalisation; extra bands are standardised at the contract's band_mean / band_std."""
    if contract == "rgb":
        model = tiny_model()
    else:
        model = multispectral(copy.deepcopy(tiny_sam))
        model.set_image_processor(l4s_contract(tuple(range(14))[3:0:-1] + (0,) + tuple(range(4, 14))))
    scenes = [make_synthetic_scene(64, seed=(SCENE_SEED, index))[0] for index in range(3)]
    batch = contract_batch(model, 3)
    assert batch.shape == (3, model.input_channels, 64, 64)
    pixels = torch.from_numpy(np.stack(scenes).astype(np.float32)).permute(0, 3, 1, 2)  # (B, 3, S, S) in 0-255
    assert torch.allclose(batch[:, :3], model.image_processor.normalize_pixels(pixels), atol=1e-5)
    extra = batch[:, 3:].numpy()
    assert np.allclose(extra.mean(axis=(2, 3)), 0, atol=1e-4) and np.allclose(extra.std(axis=(2, 3)), 1, atol=1e-3)


def test_the_flip_threshold_is_predicts_default():
    from translandseg_hf.inference.options import DEFAULT_THRESHOLD

    assert THRESHOLD == DEFAULT_THRESHOLD
