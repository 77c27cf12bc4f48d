"""`output_hidden_states` / `output_attentions` reach through the ATL encoder as through SAM's own, for every
placement, without changing the logits."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import tiny_atl

from transformers import SamModel

from translandseg_hf import TransLandSegModel
from translandseg_hf.sam_configs import tiny_sam_config

PRESETS = ["translandseg", "translandseg-6", "translandseg-official"]
FLAGS = dict(output_hidden_states=True, output_attentions=True)


@pytest.fixture
def tiny_sam() -> SamModel:
    """Eager attention: SDPA attention returns no weights, in SAM's own encoder as in ours."""
    torch.manual_seed(0)
    return SamModel._from_config(tiny_sam_config(), attn_implementation="eager").eval()


def adapted(tiny_sam, preset, zero_up):
    model = TransLandSegModel.from_sam(copy.deepcopy(tiny_sam), tiny_atl(preset)).eval()
    adapter = model.sam.vision_encoder.atl_adapters["default"]
    with torch.no_grad():
        if zero_up:  # Omega(x) = x (or + 0): the adapted encoder computes SAM's
            adapter.up.weight.zero_(), adapter.up.bias.zero_()
        else:
            torch.manual_seed(3)
            adapter.up.weight.normal_(0, 0.1), adapter.up.bias.normal_(0, 0.1)
    return model


@pytest.mark.parametrize("preset", PRESETS)
def test_zero_adapters_give_sams_own_hidden_states_attentions_and_logits(tiny_sam, pixel_values, preset):
    with torch.no_grad():
        plain = tiny_sam(pixel_values=pixel_values, multimask_output=False, **FLAGS)
        model = adapted(tiny_sam, preset, zero_up=True)
        output = model.sam(pixel_values=pixel_values, multimask_output=False, **FLAGS)
        bare = model.sam(pixel_values=pixel_values, multimask_output=False)
    layers = tiny_sam.config.vision_config.num_hidden_layers
    assert len(output.vision_hidden_states) == layers + 1 == len(plain.vision_hidden_states)
    assert len(output.vision_attentions) == layers == len(plain.vision_attentions)
    for ours, sams in zip(output.vision_hidden_states + output.vision_attentions,
                          plain.vision_hidden_states + plain.vision_attentions):
        assert torch.equal(ours, sams)
    assert torch.equal(output.pred_masks, plain.pred_masks) and torch.equal(bare.pred_masks, plain.pred_masks)
    assert bare.vision_hidden_states is None and bare.vision_attentions is None


@pytest.mark.parametrize("preset", PRESETS)
def test_trained_adapters_record_per_block_outputs_without_changing_the_logits(tiny_sam, pixel_values, preset):
    model = adapted(tiny_sam, preset, zero_up=False)
    with torch.no_grad():
        bare = model(pixel_values).logits
        output = model.sam(pixel_values=pixel_values, multimask_output=False, **FLAGS)
        again = model(pixel_values).logits
        plain = tiny_sam(pixel_values=pixel_values, multimask_output=False, output_hidden_states=True)
    layers = tiny_sam.config.vision_config.num_hidden_layers
    assert len(output.vision_hidden_states) == layers + 1 and len(output.vision_attentions) == layers
    assert not torch.equal(output.vision_hidden_states[-1], plain.vision_hidden_states[-1])  # the adapters acted
    assert torch.equal(bare, again)
