"""ATL as a PEFT method on a tiny SAM: every preset is a row of one table and every per-preset check runs on every row
through one tester (PEFT's `TEST_CASES` / `PeftCommonTester` style); the structure and refusal tests follow it."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from peft import PeftConfig, PeftModel, get_peft_model
from peft.tuners.tuners_utils import BaseTunerLayer
from peft.utils import ModulesToSaveWrapper
from transformers import SamModel
from transformers.models.sam.modeling_sam import SamVisionEncoder
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_PREFIX_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING
from safetensors import safe_open

import translandseg_hf  # noqa: F401  (registers ATL)
from helpers.models import tiny_atl

from translandseg_hf import PRESETS, ATLConfig, ATLModel, TransLandSegModel
from translandseg_hf.atl.layer import block_with_inside_atl, fft_high_pass
from translandseg_hf.sam_configs import tiny_sam_config

# The table: one row per ATL structure of the paper's Table IV and the released code (a new preset is a new row).
# Each row is a code path: MidLay_m / MidLay_c stacks, with or without the residual, before the block or inside it,
# and the patch-embedding input with the FFT branch. Every check of `TestEveryPreset` runs on every row.
TEST_CASES = [pytest.param(name, id=name) for name in PRESETS]
FLAGS = dict(output_hidden_states=True, output_attentions=True)
NO_IDENTITY = "without the residual (eq. 15) a fresh or zeroed ATL layer is not the identity"


def residual(preset: str) -> bool:
    return ATLConfig.from_preset(preset).residual


def sam_prompt_free_logits(sam, pixel_values):
    low_res = sam(pixel_values=pixel_values, multimask_output=False).pred_masks[:, 0]
    return F.interpolate(low_res, size=pixel_values.shape[-2:], mode="bilinear", align_corners=False)


def pred_masks(model, pixel_values):
    with torch.no_grad():
        return model(pixel_values=pixel_values, multimask_output=False).pred_masks


def perturb(peft_model, adapter_name):
    """A fresh residual ATL layer is the identity (L_up starts at zero): give this adapter's L_up some weights."""
    torch.nn.init.normal_(peft_model.get_base_model().vision_encoder.atl_adapters[adapter_name].up.weight, std=0.1)


def train_one_step(model, pixel_values, labels):
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(pixel_values, labels=labels).loss.backward()
    optimizer.step()
    return model.eval()


def fresh_tiny_sam():
    torch.manual_seed(0)  # the same random base as the fixture's
    return SamModel(tiny_sam_config()).eval()


@pytest.fixture
def eager_sam() -> SamModel:
    """Eager attention: SDPA attention returns no weights, in SAM's own encoder as in ours."""
    torch.manual_seed(0)
    return SamModel._from_config(tiny_sam_config(), attn_implementation="eager").eval()


def adapted(sam, preset, zero_up):
    model = TransLandSegModel.from_sam(copy.deepcopy(sam), tiny_atl(preset)).eval()
    adapter = model.sam.vision_encoder.atl_adapters["default"]
    with torch.no_grad():
        if zero_up:  # Omega(x) = x (or + 0): the adapted encoder computes SAM's
            adapter.up.weight.zero_(), adapter.up.bias.zero_()
        else:
            torch.manual_seed(3)
            adapter.up.weight.normal_(0, 0.1), adapter.up.bias.normal_(0, 0.1)
    return model


def test_atl_is_registered_in_peft_tables():
    # PEFT's register_peft_method refuses types outside its PeftType enum; ATL writes PEFT's string-keyed tables.
    # If a PEFT release changes these tables, this test (and everything after it) must fail loudly.
    assert PEFT_TYPE_TO_CONFIG_MAPPING["ATL"] is ATLConfig
    assert PEFT_TYPE_TO_TUNER_MAPPING["ATL"] is ATLModel
    assert PEFT_TYPE_TO_PREFIX_MAPPING["ATL"] == "atl_"


@pytest.mark.parametrize("preset", TEST_CASES)
class TestEveryPreset:
    """One method per check; the class-level parametrize runs each on every row of `TEST_CASES`."""

    def test_trains_exactly_the_intended_parameters(self, preset, tiny_sam, pixel_values, labels):
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

    def test_fresh_residual_model_equals_plain_sam(self, preset, tiny_sam, pixel_values):
        if not residual(preset):
            pytest.skip(NO_IDENTITY)
        with torch.no_grad():
            expected = sam_prompt_free_logits(tiny_sam, pixel_values)
            logits = TransLandSegModel.from_sam(tiny_sam, tiny_atl(preset))(pixel_values).logits
        assert logits.shape == (2, 1, 64, 64)
        assert expected.std() > 0.1  # the tiny SAM's output depends on its input
        torch.testing.assert_close(logits, expected, rtol=0, atol=1e-6)

    def test_fresh_model_without_residual_is_not_identity(self, preset, tiny_sam, pixel_values):
        if residual(preset):
            pytest.skip("with the residual (eq. 7) a fresh ATL layer is the identity: checked above")
        with torch.no_grad():
            expected = sam_prompt_free_logits(tiny_sam, pixel_values)
            logits = TransLandSegModel.from_sam(tiny_sam, tiny_atl(preset))(pixel_values).logits
        assert (logits - expected).abs().max() > 1e-3

    def test_save_and_load_through_peft_round_trip(self, preset, tmp_path, tiny_sam, pixel_values):
        peft_model = get_peft_model(tiny_sam, tiny_atl(preset))
        torch.nn.init.normal_(peft_model.base_model.model.vision_encoder.atl_adapters["default"].up.weight, std=0.2)
        with torch.no_grad():
            expected = peft_model(pixel_values=pixel_values, multimask_output=False).pred_masks
        peft_model.save_pretrained(tmp_path)
        config = PeftConfig.from_pretrained(tmp_path)
        assert isinstance(config, ATLConfig) and config.middle_layers == PRESETS[preset]["middle_layers"]
        loaded = PeftModel.from_pretrained(fresh_tiny_sam(), tmp_path, adapter_name="bijie")  # any name loads
        with torch.no_grad():
            actual = loaded(pixel_values=pixel_values, multimask_output=False).pred_masks
        torch.testing.assert_close(actual, expected)

    def test_disable_adapter_gives_back_plain_sam(self, preset, tiny_sam, pixel_values):
        with torch.no_grad():
            expected = tiny_sam(pixel_values=pixel_values, multimask_output=False).pred_masks
        model = TransLandSegModel.from_sam(tiny_sam, tiny_atl(preset))
        torch.nn.init.normal_(model.sam.vision_encoder.atl_adapters["default"].up.weight, std=0.5)
        with torch.no_grad():
            adapted = model.sam(pixel_values=pixel_values, multimask_output=False).pred_masks
            with model.peft_model.disable_adapter():
                plain = model.sam(pixel_values=pixel_values, multimask_output=False).pred_masks
        assert (adapted - expected).abs().max() > 1e-3
        torch.testing.assert_close(plain, expected, rtol=0, atol=0)

    def test_gradient_checkpointing_gives_the_same_gradients(self, preset, pixel_values, labels):
        gradients = []
        for checkpointing in (False, True):
            torch.manual_seed(0)
            model = TransLandSegModel.from_sam(SamModel(tiny_sam_config()), tiny_atl(preset)).train()
            torch.nn.init.normal_(model.sam.vision_encoder.atl_adapters["default"].up.weight, std=0.1)
            if checkpointing:
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
                assert model.sam.vision_encoder.base_layer.layers[0].gradient_checkpointing
            model(pixel_values, labels=labels).loss.backward()
            gradients.append(model.sam.vision_encoder.atl_adapters["default"].down.weight.grad.clone())
        assert gradients[0].abs().sum() > 0
        torch.testing.assert_close(gradients[1], gradients[0], rtol=1e-5, atol=1e-7)

    def test_second_adapter_add_set_disable_delete(self, preset, tiny_sam, pixel_values):
        if not residual(preset):
            pytest.skip(NO_IDENTITY)
        expected = pred_masks(tiny_sam, pixel_values)  # plain SAM, before wrapping
        peft_model = get_peft_model(tiny_sam, tiny_atl(preset))
        peft_model.add_adapter("second", tiny_atl(preset))
        sam = peft_model.get_base_model()
        assert peft_model.active_adapters == ["default"]  # adding does not activate, as for LoRA
        assert set(sam.vision_encoder.atl_adapters) == {"default", "second"}
        decoders = sam.mask_decoder.modules_to_save
        assert set(decoders) == {"default", "second"} and decoders["default"] is not decoders["second"]
        assert set(sam.prompt_encoder.no_mask_embed.modules_to_save) == {"default", "second"}
        assert not any(p.requires_grad for name, p in peft_model.named_parameters() if ".second." in name)
        perturb(peft_model, "second")
        torch.testing.assert_close(pred_masks(peft_model, pixel_values), expected, rtol=0, atol=1e-6)  # fresh default

        peft_model.set_adapter("second")
        assert peft_model.active_adapters == ["second"]
        trainable = [name for name, p in peft_model.named_parameters() if p.requires_grad]
        assert trainable and all(".second." in name for name in trainable), trainable
        second = pred_masks(peft_model, pixel_values)
        assert (second - expected).abs().max() > 1e-3
        with peft_model.disable_adapter():
            torch.testing.assert_close(pred_masks(peft_model, pixel_values), expected, rtol=0, atol=0)
        torch.testing.assert_close(pred_masks(peft_model, pixel_values), second, rtol=0, atol=0)

        deleted_active = "Adapter second was active which is now deleted. Setting active adapter to default"
        with pytest.warns(UserWarning, match=deleted_active):
            peft_model.delete_adapter("second")
        assert peft_model.active_adapters == ["default"] and list(peft_model.peft_config) == ["default"]
        assert set(sam.vision_encoder.atl_adapters) == set(sam.vision_encoder.atl_configs) == {"default"}
        assert set(decoders) == set(sam.prompt_encoder.no_mask_embed.modules_to_save) == {"default"}
        torch.testing.assert_close(pred_masks(peft_model, pixel_values), expected, rtol=0, atol=1e-6)

    def test_each_adapter_trains_its_own_modules_to_save(self, preset, tiny_sam, pixel_values, labels):
        model = TransLandSegModel.from_sam(tiny_sam, tiny_atl("translandseg"))
        model.peft_model.add_adapter("second", tiny_atl(preset))  # the row's structure beside the default one
        model.peft_model.set_adapter("second")
        assert model.atl_config.middle_layers == PRESETS[preset]["middle_layers"]
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        train_one_step(model, pixel_values, labels)
        changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
        assert any(".atl_adapters.second." in name for name in changed)
        assert any(".mask_decoder.modules_to_save.second." in name for name in changed)
        assert any(".no_mask_embed.modules_to_save.second." in name for name in changed)
        assert all(".second." in name for name in changed), changed  # default's copies and SAM's originals stay

    def test_unload_gives_back_the_original_sam(self, preset, tiny_sam, pixel_values, labels):
        tiny_sam.prompt_encoder.mask_embed.requires_grad_(False)  # a user's own freezing survives wrapping, unloading
        original = copy.deepcopy(tiny_sam)
        expected = pred_masks(original, pixel_values)
        # With gradients on, autograd takes other kernels than under no_grad: the unloaded SAM must take the same ones.
        expected_with_grad = original(pixel_values=pixel_values, multimask_output=False).pred_masks.detach()
        model = TransLandSegModel.from_sam(tiny_sam, tiny_atl(preset))
        model.peft_model.add_adapter("second", tiny_atl(preset))
        perturb(model.peft_model, "default")
        train_one_step(model, pixel_values, labels)  # ATL layers and the decoder's copy move away from SAM
        assert (pred_masks(model.peft_model, pixel_values) - expected).abs().max() > 1e-3

        sam = model.peft_model.unload()
        assert type(sam) is SamModel and type(sam.vision_encoder) is SamVisionEncoder
        assert not any(isinstance(module, (BaseTunerLayer, ModulesToSaveWrapper)) for module in sam.modules())
        assert not hasattr(sam, "peft_config")
        state = sam.state_dict()
        assert state.keys() == original.state_dict().keys()
        for key, tensor in original.state_dict().items():
            assert torch.equal(state[key], tensor), key
        requires_grad = {name: p.requires_grad for name, p in sam.named_parameters()}
        assert requires_grad == {name: p.requires_grad for name, p in original.named_parameters()}
        assert not any(requires_grad[name] for name in requires_grad if ".mask_embed." in name)
        assert torch.equal(pred_masks(sam, pixel_values), expected)
        with_grad = sam(pixel_values=pixel_values, multimask_output=False).pred_masks.detach()
        assert torch.equal(with_grad, expected_with_grad)

    def test_zero_adapters_give_sams_own_hidden_states_attentions_and_logits(self, preset, eager_sam, pixel_values):
        if not residual(preset):
            pytest.skip(NO_IDENTITY)
        with torch.no_grad():
            plain = eager_sam(pixel_values=pixel_values, multimask_output=False, **FLAGS)
            model = adapted(eager_sam, preset, zero_up=True)
            output = model.sam(pixel_values=pixel_values, multimask_output=False, **FLAGS)
            bare = model.sam(pixel_values=pixel_values, multimask_output=False)
        layers = eager_sam.config.vision_config.num_hidden_layers
        assert len(output.vision_hidden_states) == layers + 1 == len(plain.vision_hidden_states)
        assert len(output.vision_attentions) == layers == len(plain.vision_attentions)
        for ours, sams in zip(output.vision_hidden_states + output.vision_attentions,
                              plain.vision_hidden_states + plain.vision_attentions):
            assert torch.equal(ours, sams)
        assert torch.equal(output.pred_masks, plain.pred_masks) and torch.equal(bare.pred_masks, plain.pred_masks)
        assert bare.vision_hidden_states is None and bare.vision_attentions is None

    def test_trained_adapters_record_per_block_outputs_without_changing_the_logits(
        self, preset, eager_sam, pixel_values
    ):
        model = adapted(eager_sam, preset, zero_up=False)
        with torch.no_grad():
            bare = model(pixel_values).logits
            output = model.sam(pixel_values=pixel_values, multimask_output=False, **FLAGS)
            again = model(pixel_values).logits
            plain = eager_sam(pixel_values=pixel_values, multimask_output=False, output_hidden_states=True)
        layers = eager_sam.config.vision_config.num_hidden_layers
        assert len(output.vision_hidden_states) == layers + 1 and len(output.vision_attentions) == layers
        assert not torch.equal(output.vision_hidden_states[-1], plain.vision_hidden_states[-1])  # the adapters acted
        assert torch.equal(bare, again)


# ------------------------------------------------------------------ structure, refusals and the two-adapter folder


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


def test_merge_is_refused_and_leaves_the_model_as_it_was(tiny_sam, pixel_values):
    peft_model = get_peft_model(tiny_sam, tiny_atl("translandseg"))
    perturb(peft_model, "default")
    adapted = pred_masks(peft_model, pixel_values)
    for merge in (peft_model.merge_and_unload, peft_model.merge_adapter):
        with pytest.raises(NotImplementedError, match="non-linear bottlenecks and cannot be merged into SAM's weights"):
            merge()
    assert isinstance(peft_model.get_base_model().vision_encoder, BaseTunerLayer)
    torch.testing.assert_close(pred_masks(peft_model, pixel_values), adapted, rtol=0, atol=0)


@pytest.mark.parametrize("low_cpu_mem_usage", [False, True])
def test_two_named_adapters_save_and_load_in_one_folder(tmp_path, low_cpu_mem_usage, tiny_sam, pixel_values, labels):
    model = TransLandSegModel.from_sam(tiny_sam, tiny_atl("translandseg-6"))
    model.peft_model.add_adapter("second", tiny_atl("translandseg-official"))
    expected = {}
    for name in ("default", "second"):
        model.peft_model.set_adapter(name)
        perturb(model.peft_model, name)
        train_one_step(model, pixel_values, labels)
        expected[name] = pred_masks(model.peft_model, pixel_values)
    assert (expected["default"] - expected["second"]).abs().max() > 1e-3
    model.peft_model.save_pretrained(str(tmp_path))  # PEFT's layout: "default" at the top, "second" in second/

    assert json.loads((tmp_path / "adapter_config.json").read_text())["placement"] == "inside"
    assert json.loads((tmp_path / "second" / "adapter_config.json").read_text())["fft_branch"] is True
    with safe_open(str(tmp_path / "second" / "adapter_model.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
    assert "base_model.model.vision_encoder.atl_adapters.fft_embed.weight" in keys  # no adapter name in the file
    assert "base_model.model.mask_decoder.iou_token.weight" in keys  # the adapter's own trained decoder

    loaded = PeftModel.from_pretrained(fresh_tiny_sam(), str(tmp_path), low_cpu_mem_usage=low_cpu_mem_usage)
    loaded.load_adapter(str(tmp_path), adapter_name="second", subfolder="second", low_cpu_mem_usage=low_cpu_mem_usage)
    assert loaded.active_adapters == ["default"]
    for name in ("default", "second"):
        loaded.set_adapter(name)
        torch.testing.assert_close(pred_masks(loaded, pixel_values), expected[name], rtol=0, atol=1e-6)

    second = PeftModel.from_pretrained(fresh_tiny_sam(), str(tmp_path), subfolder="second", adapter_name="second")
    assert second.active_adapters == ["second"]
    torch.testing.assert_close(pred_masks(second, pixel_values), expected["second"], rtol=0, atol=1e-6)

    through_model = TransLandSegModel.from_pretrained(tmp_path, base_model=fresh_tiny_sam())
    through_model.peft_model.load_adapter(str(tmp_path / "second"), adapter_name="second")
    through_model.peft_model.set_adapter("second")
    actual = pred_masks(through_model.peft_model, pixel_values)
    torch.testing.assert_close(actual, expected["second"], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "enable, disable, kwargs_name",
    [
        ("activation_checkpointing_enable", "activation_checkpointing_disable", "activation_checkpointing_kwargs"),
        ("gradient_checkpointing_enable", "gradient_checkpointing_disable", "gradient_checkpointing_kwargs"),
    ],
)
def test_activation_checkpointing_flips_sam_flags_without_warnings(enable, disable, kwargs_name, tiny_sam):
    model = TransLandSegModel.from_sam(tiny_sam, tiny_atl("translandseg"))
    layers = model.sam.vision_encoder.base_layer.layers
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(model, enable)(**{kwargs_name: {"use_reentrant": True}})
        assert all(layer.gradient_checkpointing for layer in layers) and model.is_activation_checkpointing
        assert layers[0]._gradient_checkpointing_func.keywords == {"use_reentrant": True}  # the kwargs reach torch
        getattr(model, disable)()
        assert not any(layer.gradient_checkpointing for layer in layers) and not model.is_activation_checkpointing
    assert [str(warning.message) for warning in caught] == []  # transformers' own gradient_* names warn
