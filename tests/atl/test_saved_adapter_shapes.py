"""A saved adapter's `adapter_config.json` is held to the tensor shapes in its `adapter_model.safetensors` header before
any adapter is built (a stranger's `bottleneck_dim: 1280` beside small weights would allocate the width squared per
middle layer per block first), through PEFT's `PeftModel.from_pretrained` and the package's own loader alike; the
fields the adapters' size follows are bounded in the config itself."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from peft import PeftModel
from transformers import SamModel

from translandseg_hf import ATLConfig, TransLandSegModel
from translandseg_hf.atl import layer
from translandseg_hf.sam_configs import tiny_sam_config

from helpers.models import tiny_atl


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny model with Table IV's deepest stack (2 x m + 3 x c, kernel 3, d = 8), saved with its base."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("atl-5")
    TransLandSegModel.from_sam(SamModel(tiny_sam_config()), tiny_atl("translandseg-5")).save_pretrained(folder)
    return folder


def edited(saved, tmp_path, **fields):
    folder = tmp_path / "edited"
    shutil.copytree(saved, folder)
    path = folder / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))
    return folder


@pytest.fixture
def adapters_built(monkeypatch):
    """How many ATL adapters get built (each allocates its layers)."""
    built = []
    original = layer.ATLAdapter

    def counting(*args, **kwargs):
        built.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(layer, "ATLAdapter", counting)
    return built


DISAGREEING = [
    (dict(bottleneck_dim=30), "bottleneck_dim is 30 in adapter_config.json but 8 in the weights"),
    (dict(bottleneck_dim=1280), "bottleneck_dim is 1280 in adapter_config.json but 8 in the weights"),
    (dict(middle_layers=["m", "m", "c"]),
     "middle_layers is ['m', 'm', 'c'] in adapter_config.json but ['m', 'm', 'c', 'c', 'c'] in the weights"),
    (dict(conv_kernel_size=7), "conv_kernel_size is 7 in adapter_config.json but 3 in the weights"),
    (dict(extra_bands=11), "extra_bands is 11 in adapter_config.json but 0 in the weights"),
]


@pytest.mark.parametrize("fields, message", DISAGREEING, ids=[next(iter(f)) + str(i) for i, (f, _) in
                                                               enumerate(DISAGREEING)])
def test_a_config_that_disagrees_with_its_weights_is_refused_before_any_adapter_is_built(
        saved, tmp_path, adapters_built, fields, message):
    folder = edited(saved, tmp_path, **fields)
    expected = re.escape(f"{folder / 'adapter_model.safetensors'}: {message}")
    with pytest.raises(ValueError, match=expected):
        TransLandSegModel.from_pretrained(folder)
    base = SamModel.from_pretrained(saved / "base_model")
    with pytest.raises(ValueError, match=expected):
        PeftModel.from_pretrained(base, str(folder))  # PEFT's own loader passes the same check
    assert adapters_built == []


OUT_OF_BOUNDS = [
    (dict(bottleneck_dim=6000), "bottleneck_dim must be from 1 to 1280"),
    (dict(bottleneck_dim=8.5), "bottleneck_dim must be a whole number, got 8.5"),
    (dict(reduction_factor=0), "reduction_factor must be from 1 to 1280, got 0"),
    (dict(middle_layers=["m"] * 11), "middle_layers holds 11 layers; at most 10"),
    (dict(conv_kernel_size=4), "conv_kernel_size must be odd, from 1 to 7"),
    (dict(conv_kernel_size=9), "conv_kernel_size must be odd, from 1 to 7"),
    (dict(extra_bands=1000), "extra_bands must be from 0 to 64, got 1000"),
]


@pytest.mark.parametrize("fields, message", OUT_OF_BOUNDS, ids=[str(i) for i in range(len(OUT_OF_BOUNDS))])
def test_sizes_out_of_bounds_are_refused_by_the_config_and_in_a_folder_with_its_file(
        saved, tmp_path, adapters_built, fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ATLConfig(**fields)
    folder = edited(saved, tmp_path, **fields)
    field = next(iter(fields))  # a wrong type is refused by the folder's first read, in its own words
    with pytest.raises(ValueError, match=re.escape(f"{folder / 'adapter_config.json'}: ") + f".*{field}"):
        TransLandSegModel.from_pretrained(folder)
    assert adapters_built == []


def test_a_bottleneck_wider_than_the_encoder_is_refused():
    with pytest.raises(ValueError, match="bottleneck_dim 64 is wider than the encoder's hidden size 32"):
        TransLandSegModel.from_sam(SamModel(tiny_sam_config()), ATLConfig(bottleneck_dim=64))


def test_a_folder_saved_by_the_package_loads_by_both_paths(saved, adapters_built):
    model = TransLandSegModel.from_pretrained(saved)
    assert model.atl_config.middle_layers == ["m", "m", "c", "c", "c"] and model.atl_config.bottleneck_dim == 8
    peft_model = PeftModel.from_pretrained(SamModel.from_pretrained(saved / "base_model"), str(saved))
    assert len(adapters_built) == 2
    pixels = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(peft_model(pixel_values=pixels, multimask_output=False).pred_masks[:, 0],
                                   model(pixels).low_res_logits)
