"""ATL as a PEFT method: every preset through one parametrised tester on a tiny SAM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from peft import PeftConfig, PeftModel, get_peft_model
from transformers import SamModel
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_PREFIX_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING

import translandseg_hf  # noqa: F401  (registers ATL)
from conftest import tiny_atl

from translandseg_hf import PRESETS, ATLConfig, ATLModel, TransLandSegModel
from translandseg_hf.atl.layer import block_with_inside_atl, fft_high_pass
from translandseg_hf.sam_configs import tiny_sam_config

RESIDUAL_PRESETS = [name for name in PRESETS if ATLConfig.from_preset(name).residual]
NO_RESIDUAL_PRESETS = [name for name in PRESETS if not ATLConfig.from_preset(name).residual]


def sam_prompt_free_logits(sam, pixel_values):
    low_res = sam(pixel_values=pixel_values, multimask_output=False).pred_masks[:, 0]
    return F.interpolate(low_res, size=pixel_values.shape[-2:], mode="bilinear", align_corners=False)


def test_atl_is_registered_in_peft_tables():
    # PEFT's register_peft_method refuses types outside its PeftType enum; ATL writes PEFT's string-keyed tables.
    # If a PEFT release changes these tables, this test (and everything after it) must fail loudly.
    assert PEFT_TYPE_TO_CONFIG_MAPPING["ATL"] is ATLConfig
    assert PEFT_TYPE_TO_TUNER_MAPPING["ATL"] is ATLModel
    assert PEFT_TYPE_TO_PREFIX_MAPPING["ATL"] == "atl_"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_trains_exactly_the_intended_parameters(preset, tiny_sam, pixel_values, labels):
    model = TransLandSegModel.from_sam(tiny_sam, tiny_atl(preset)).train()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    for name in trainable:
        assert ".atl_adapters." in name or ".modules_to_save." in name, name
    assert any(".atl_adapters." in name for name in trainable)
    assert any("mask_decoder.modules_to_save." in name for name in trainable)
    assert any("no_mask_embed.modules_to_save." in name for name in trainable)
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    assert any("vision_encoder.base_layer.patch_embed" in name for name in frozen)
    assert any("vision_encoder.base_layer.layers.0.attn.qkv" in name for name in frozen)

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model(pixel_values, labels=labels).loss
    loss.backward()
    for name, p in model.named_parameters():
        if p.requires_grad and "iou_prediction_head" not in name and "iou_token" not in name:
            assert p.grad is not None, f"{name} got no gradient"
    optimizer.step()
    for name, p in model.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), f"frozen {name} changed"
    assert torch.isfinite(loss)


@pytest.mark.parametrize("preset", RESIDUAL_PRESETS)
def test_fresh_residual_model_equals_plain_sam(preset, tiny_sam, pixel_values):
    with torch.no_grad():
        expected = sam_prompt_free_logits(tiny_sam, pixel_values)
        logits = TransLandSegModel.from_sam(tiny_sam, tiny_atl(preset))(pixel_values).logits
    assert logits.shape == (2, 1, 64, 64)
    assert expected.std() > 0.1  # the tiny SAM's output depends on its input
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("preset", NO_RESIDUAL_PRESETS)
def test_fresh_model_without_residual_is_not_identity(preset, tiny_sam, pixel_values):
    with torch.no_grad():
        expected = sam_prompt_free_logits(tiny_sam, pixel_values)
        logits = TransLandSegModel.from_sam(tiny_sam, tiny_atl(preset))(pixel_values).logits
    assert (logits - expected).abs().max() > 1e-3


def _capture_middle_inputs(adapter):
    captured = {}
    for index, stack in enumerate(adapter.middle):
        stack.register_forward_hook(lambda module, inputs, output, i=index: captured.__setitem__(i, inputs[0]))
    return captured


def test_equation_structure_reads_previous_block_output(tiny_sam, pixel_values):
    model = TransLandSegModel.from_sam(tiny_sam, tiny_atl("translandseg")).eval()
    adapter = model.sam.vision_encoder.atl_adapters["default"]
    torch.nn.init.normal_(adapter.up.weight, std=0.5)  # make the adapters change the features
    captured = _capture_middle_inputs(adapter)
    block_outputs = {}
    encoder = model.sam.vision_encoder.base_layer
    for index, block in enumerate(encoder.layers):
        block.register_forward_hook(lambda module, inputs, output, i=index: block_outputs.__setitem__(i, output))
    with torch.no_grad():
        model(pixel_values)
        first_input = encoder.patch_embed(pixel_values) + encoder.pos_embed
        torch.testing.assert_close(captured[0], adapter.down(first_input))
        torch.testing.assert_close(captured[1], adapter.down(block_outputs[0]))  # Omega_2 reads Phi_1 (eq. 8)


def test_official_structure_reads_patch_embedding_and_fft(tiny_sam, pixel_values):
    model = TransLandSegModel.from_sam(tiny_sam, tiny_atl("translandseg-official")).eval()
    adapter = model.sam.vision_encoder.atl_adapters["default"]
    torch.nn.init.normal_(adapter.up.weight, std=0.5)
    captured = _capture_middle_inputs(adapter)
    encoder = model.sam.vision_encoder.base_layer
    with torch.no_grad():
        model(pixel_values)
        tokens = encoder.patch_embed(pixel_values)  # before pos_embed, as in the released code
        handcrafted = adapter.fft_embed(fft_high_pass(pixel_values, 0.25)).permute(0, 2, 3, 1)
        expected = adapter.down(tokens) + handcrafted
    for index in range(len(adapter.middle)):
        torch.testing.assert_close(captured[index], expected)


def test_fft_high_pass_zeroes_the_centred_square():
    images = torch.ones(1, 3, 16, 16) * 5  # a constant image is all DC: nothing passes
    assert fft_high_pass(images).abs().max() < 1e-5
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2  # Nyquist frequency passes unchanged
    images = checker.float().expand(1, 3, 16, 16) - 0.5
    torch.testing.assert_close(fft_high_pass(images), images.abs(), rtol=0, atol=1e-5)


def test_inside_block_with_identity_reproduces_sam_block(tiny_sam):
    generator = torch.Generator().manual_seed(3)
    for block in tiny_sam.vision_encoder.layers:  # one windowed and one global block
        tokens = torch.randn(2, 16, 16, 32, generator=generator)
        with torch.no_grad():
            torch.testing.assert_close(block_with_inside_atl(block, tokens, lambda x: x), block(tokens))


def test_peft_api_round_trip(tmp_path, tiny_sam, pixel_values):
    peft_model = get_peft_model(tiny_sam, tiny_atl("translandseg-4"))
    torch.nn.init.normal_(peft_model.base_model.model.vision_encoder.atl_adapters["default"].up.weight, std=0.2)
    with torch.no_grad():
        expected = peft_model(pixel_values=pixel_values, multimask_output=False).pred_masks
    peft_model.save_pretrained(tmp_path)
    config = PeftConfig.from_pretrained(tmp_path)
    assert isinstance(config, ATLConfig) and config.middle_layers == ["m", "m"]
    torch.manual_seed(0)  # the same random base as the fixture's
    fresh_base = SamModel(tiny_sam_config()).eval()
    loaded = PeftModel.from_pretrained(fresh_base, tmp_path, adapter_name="bijie")  # any adapter name loads
    with torch.no_grad():
        actual = loaded(pixel_values=pixel_values, multimask_output=False).pred_masks
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(middle_layers=["x"]), "Unknown middle layer"),
        (dict(middle_layers=[]), "at least one"),
        (dict(placement="between"), "Unknown placement"),
        (dict(adapter_input="patch_embedding", placement="inside"), "placement='outside'"),
        (dict(fft_branch=True), "adapter_input='patch_embedding'"),
        (dict(bottleneck_dim=0), "bottleneck_dim"),
    ],
)
def test_invalid_config_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        ATLConfig(**overrides)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="translandseg-official") as error:
        ATLConfig.from_preset("translandseg-9")
    assert "translandseg-9" in str(error.value)


@pytest.mark.parametrize("preset", ["translandseg", "translandseg-8", "translandseg-official"])
def test_gradient_checkpointing_gives_the_same_gradients(preset, pixel_values, labels):
    gradients = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = TransLandSegModel.from_sam(SamModel(tiny_sam_config()), tiny_atl(preset)).train()
        torch.nn.init.normal_(model.sam.vision_encoder.atl_adapters["default"].up.weight, std=0.1)
        if checkpointing:
            model.sam.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            assert model.sam.vision_encoder.base_layer.layers[0].gradient_checkpointing
        model(pixel_values, labels=labels).loss.backward()
        gradients.append(model.sam.vision_encoder.atl_adapters["default"].down.weight.grad.clone())
    assert gradients[0].abs().sum() > 0
    torch.testing.assert_close(gradients[1], gradients[0], rtol=1e-5, atol=1e-7)


def test_disable_adapter_gives_back_plain_sam(tiny_sam, pixel_values, labels):
    with torch.no_grad():
        expected = tiny_sam(pixel_values=pixel_values, multimask_output=False).pred_masks
    model = TransLandSegModel.from_sam(tiny_sam, tiny_atl("translandseg-5"))
    torch.nn.init.normal_(model.sam.vision_encoder.atl_adapters["default"].up.weight, std=0.5)
    with torch.no_grad():
        adapted = model.sam(pixel_values=pixel_values, multimask_output=False).pred_masks
        with model.peft_model.disable_adapter():
            plain = model.sam(pixel_values=pixel_values, multimask_output=False).pred_masks
    assert (adapted - expected).abs().max() > 1e-3
    torch.testing.assert_close(plain, expected, rtol=0, atol=0)
