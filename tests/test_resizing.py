"""SAM at any input size: pretrained position tables resampled, nothing else touched, adapters reloaded the same way."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_atl
from transformers import SamModel

from translandseg_hf import TransLandSegModel
from translandseg_hf.atl import PRESETS
from translandseg_hf.parameter_table import count_parameters
from translandseg_hf.sam_configs import tiny_sam_config
from translandseg_hf.sam_resizing import resize_sam

GLOBAL_LAYER = 1  # tiny_sam_config: the last block attends globally, the first in 4 x 4 windows


@pytest.fixture
def sam_128() -> SamModel:
    """A tiny SAM at 128 px with 8 px patches (a 16 x 16 grid) and smooth position tables, as trained ones are."""
    torch.manual_seed(0)
    sam = SamModel(tiny_sam_config(image_size=128, patch_size=8)).eval()
    grid = torch.linspace(0, 1, 16)
    with torch.no_grad():
        ys, xs = torch.meshgrid(grid, grid, indexing="ij")
        channels = torch.arange(sam.config.vision_config.hidden_size) / 8
        sam.vision_encoder.pos_embed.copy_(torch.sin(3 * xs[..., None] + channels) * torch.cos(2 * ys[..., None]))
        for layer in sam.vision_encoder.layers:
            for table in (layer.attn.rel_pos_h, layer.attn.rel_pos_w):
                positions = torch.linspace(-1, 1, table.shape[0])[:, None]
                table.copy_(torch.cos(2 * positions + torch.arange(table.shape[1]) / 4))
    return sam


def test_half_size_and_back_recovers_the_tables_and_touches_nothing_else(sam_128):
    half = resize_sam(sam_128, 64)
    assert half.vision_encoder.pos_embed.shape == (1, 8, 8, 32)
    assert half.vision_encoder.layers[GLOBAL_LAYER].attn.rel_pos_h.shape == (15, 8)  # 2 * 8 - 1
    assert half.config.prompt_encoder_config.image_embedding_size == 8
    back = resize_sam(half, 128).state_dict()
    for key, original in sam_128.state_dict().items():
        if key == "vision_encoder.pos_embed" or (key.endswith(("rel_pos_h", "rel_pos_w")) and ".1." in key):
            # Down to half the grid and back loses little of a smooth table (values in [-1, 1]): within 0.05 for the
            # bicubic position embedding, 0.1 for the linear rel-pos tables (worst at their two ends).
            tolerance = 0.05 if key == "vision_encoder.pos_embed" else 0.1
            torch.testing.assert_close(back[key], original, atol=tolerance, rtol=0)
        else:
            assert torch.equal(back[key], original), key  # windowed blocks, neck, prompt encoder, mask decoder


def test_the_base_size_changes_nothing_bitwise(sam_128):
    assert resize_sam(sam_128, 128) is sam_128
    pixel_values = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = TransLandSegModel.from_sam(sam_128, tiny_atl("translandseg"))(pixel_values).logits
        same = TransLandSegModel.from_sam(sam_128, tiny_atl("translandseg"), image_size=128)(pixel_values).logits
    assert torch.equal(plain, same)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_runs_forward_and_backward_at_a_resampled_size(sam_128, preset):
    model = TransLandSegModel.from_sam(sam_128, tiny_atl(preset), image_size=64)
    labels = (torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(2)) > 0.7).float()
    output = model(torch.randn(2, 3, 64, 64), labels=labels)
    output.loss.backward()
    assert output.logits.shape == (2, 1, 64, 64) and model.image_size == 64
    gradients = [p.grad for n, p in model.named_parameters() if ".atl_adapters." in n and p.requires_grad]
    assert gradients and all(g is not None for g in gradients)


def test_adapter_saved_at_a_new_size_reloads_the_same_resampled_base(sam_128, tmp_path):
    sam_128.save_pretrained(tmp_path / "sam")
    model = TransLandSegModel.from_sam(str(tmp_path / "sam"), tiny_atl("translandseg-official"), image_size=64)
    torch.nn.init.normal_(model.sam.vision_encoder.atl_adapters["default"].up.weight, std=0.1)
    model.save_pretrained(tmp_path / "adapter")
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["image_size"] == 64
    assert not (tmp_path / "adapter" / "base_model").exists()  # adapter-only: the base is rebuilt from its path
    pixel_values = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(TransLandSegModel.from_pretrained(tmp_path / "adapter")(pixel_values).logits,
                                   model.eval()(pixel_values).logits)


@pytest.mark.parametrize("size", [100, 48, 0])
def test_sizes_sam_cannot_take_are_refused_by_value(sam_128, size):
    with pytest.raises(ValueError, match=rf"image_size must be a multiple of 16 \(and of the patch size 8\) of at "
                                         rf"least 64, got {size}\."):
        TransLandSegModel.from_sam(sam_128, image_size=size)


def test_table_iii_trainable_counts_do_not_depend_on_the_input_size():
    at_1024, at_256 = count_parameters("vit_b", "translandseg", 1024), count_parameters("vit_b", "translandseg", 256)
    assert at_1024["trainable"] == at_256["trainable"] > 3_500_000  # ViT-B: 3,551,416 since the unused decoder parts are frozen
    # Only the frozen position tables shrink: pos_embed (64 -> 16 grid) and 4 global blocks' rel-pos tables.
    head_dim = 768 // 12
    tables = (64 * 64 - 16 * 16) * 768 + 4 * 2 * ((2 * 64 - 1) - (2 * 16 - 1)) * head_dim
    assert at_1024["total"] - at_256["total"] == tables
