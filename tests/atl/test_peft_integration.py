"""Issue 38 section 3, PEFT integration details: ATL's `PeftType` member (mixed models, hotswapping and the model
status answer as for PEFT's own methods), the tuner layer's `in_features`/`out_features` and `unmerge`, a bundled
base that `AutoPeftModel` finds from any working directory, and no trainable parameter that prompt-free SAM never
trains."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from peft import AutoPeftModel, PeftConfig, PeftType, get_model_status, get_peft_model
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_PREFIX_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING
from peft.utils.hotswap import hotswap_adapter
from transformers import SamModel

import translandseg_hf  # noqa: F401  (registers ATL)
from helpers.models import tiny_atl
from translandseg_hf import ATLConfig, ATLModel, TransLandSegModel
from translandseg_hf.atl.layer import ATLEncoderLayer
from translandseg_hf.sam_configs import tiny_sam_config


def test_atl_is_a_peft_type_registered_through_peft(tmp_path, tiny_sam):
    assert ATLConfig().peft_type is PeftType.ATL and PeftType.ATL.value == "ATL" and "ATL" in list(PeftType)
    assert PEFT_TYPE_TO_CONFIG_MAPPING[PeftType.ATL] is ATLConfig and PEFT_TYPE_TO_TUNER_MAPPING["ATL"] is ATLModel
    assert PEFT_TYPE_TO_PREFIX_MAPPING[PeftType.ATL] == ATLModel.prefix == "atl_"
    get_peft_model(tiny_sam, ATLConfig()).save_pretrained(str(tmp_path))
    assert json.loads((tmp_path / "adapter_config.json").read_text())["peft_type"] == "ATL"  # files are unchanged
    assert PeftConfig.from_pretrained(str(tmp_path)).peft_type is PeftType.ATL


def mixed(sam, folder):
    get_peft_model(sam, ATLConfig(), mixed=True)


def hotswap(sam, folder):
    model = get_peft_model(sam, tiny_atl("translandseg"))
    model.save_pretrained(str(folder))
    hotswap_adapter(model, str(folder), adapter_name="default", torch_device="cpu")


# (PEFT route, PEFT's own refusal for a method it does not support there; today: "'str' object has no attribute")
PEFT_REFUSALS = [
    (mixed, r"The provided `peft_type` 'ATL' is not compatible with the `PeftMixedModel`"),
    (hotswap, r"Hotswapping only supports LORA but ATL was passed"),
]


@pytest.mark.parametrize("route, message", PEFT_REFUSALS, ids=[route.__name__ for route, _ in PEFT_REFUSALS])
def test_peft_routes_refuse_atl_with_their_own_message(route, message, tmp_path, tiny_sam):
    with pytest.raises(ValueError, match=message):
        route(tiny_sam, tmp_path)


def test_model_status_names_the_atl_type(tiny_sam):
    model = get_peft_model(tiny_sam, tiny_atl("translandseg"))
    model.add_adapter("second", tiny_atl("translandseg-2"))
    assert get_model_status(model).peft_types == {"default": "ATL", "second": "ATL"}  # today: {"default": ""}


def test_tuner_layer_reports_its_base_layers_in_and_out_features(tiny_sam, pixel_values):
    model = get_peft_model(tiny_sam, tiny_atl("translandseg"))
    layer = model.get_base_model().vision_encoder
    assert isinstance(layer, ATLEncoderLayer)
    with torch.no_grad():
        embeddings = layer(pixel_values).last_hidden_state  # (B, out_features, H, W)
    assert (layer.in_features, layer.out_features) == (pixel_values.shape[1], embeddings.shape[1])


def test_unmerge_adapter_warns_as_peft_non_merged_layers_do(tiny_sam, pixel_values):
    model = get_peft_model(tiny_sam, tiny_atl("translandseg")).eval()
    with torch.no_grad():
        before = model(pixel_values=pixel_values, multimask_output=False).pred_masks
        with pytest.warns(UserWarning, match="Already unmerged. Nothing to do: ATL adapters are never merged"):
            model.base_model.unmerge_adapter()
        after = model(pixel_values=pixel_values, multimask_output=False).pred_masks
    assert torch.equal(before, after)


def test_bundled_base_loads_with_auto_peft_model_from_another_directory(tmp_path, tiny_sam, pixel_values, monkeypatch):
    model = TransLandSegModel.from_sam(tiny_sam).eval()  # an in-memory base: bundled under base_model/
    model.save_pretrained(tmp_path / "adapter")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    peft_model = AutoPeftModel.from_pretrained(str(tmp_path / "adapter")).eval()  # today: "base_model" not found
    with torch.no_grad():
        expected = model.peft_model(pixel_values=pixel_values, multimask_output=False).pred_masks
        loaded = peft_model(pixel_values=pixel_values, multimask_output=False).pred_masks
    torch.testing.assert_close(loaded, expected)


def test_a_moved_bundled_folder_still_loads_its_own_base(tmp_path, tiny_sam, pixel_values):
    model = TransLandSegModel.from_sam(tiny_sam).eval()
    model.save_pretrained(tmp_path / "adapter")
    shutil.move(tmp_path / "adapter", tmp_path / "moved")
    loaded = TransLandSegModel.from_pretrained(tmp_path / "moved")
    assert loaded.bundle_base and loaded.base_model_name_or_path is None
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values).logits, model(pixel_values).logits)


def test_prompt_free_model_trains_only_parameters_that_get_a_gradient(tmp_path, tiny_sam, pixel_values, labels):
    """The IoU head and the hypernetwork MLPs of mask tokens 1-3 never change the prompt-free loss: frozen, so every
    trainable parameter gets a non-zero gradient (no `find_unused_parameters`), after building and after loading."""
    built = TransLandSegModel.from_sam(tiny_sam, tiny_atl("translandseg"))
    with torch.no_grad():  # L_up starts at zero, so L_down and the middle layers get zero gradients on a fresh model
        torch.nn.init.normal_(built.sam.vision_encoder.atl_adapters["default"].up.weight, std=0.1)
    built.save_pretrained(tmp_path)
    loaded = TransLandSegModel.from_pretrained(tmp_path, is_trainable=True)
    for model in (built, loaded):
        model.train()
        model(pixel_values, labels=labels).loss.backward()
        trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
        starved = [name for name, p in trainable.items() if p.grad is None or not p.grad.any()]
        assert not starved, starved
        frozen_decoder = [name for name, p in model.named_parameters()
                          if ".modules_to_save." in name and not p.requires_grad]
        assert any(".iou_prediction_head." in name for name in frozen_decoder)
        assert any(".output_hypernetworks_mlps.3." in name for name in frozen_decoder)
        assert not any(".output_hypernetworks_mlps.0." in name for name in frozen_decoder)


def test_parameter_counts_leave_out_the_frozen_decoder_parts(tiny_sam):
    model = TransLandSegModel.from_sam(tiny_sam)
    decoder = model.sam.mask_decoder.original_module  # SAM's own decoder, frozen by PEFT
    unused = sum(p.numel() for p in decoder.iou_prediction_head.parameters()) + sum(
        p.numel() for mlp in decoder.output_hypernetworks_mlps[1:] for p in mlp.parameters())
    whole = sum(p.numel() for p in decoder.parameters())
    atl = sum(p.numel() for p in model.sam.vision_encoder.atl_adapters.parameters())
    no_mask = model.sam.prompt_encoder.no_mask_embed.original_module.weight.numel()
    assert model.parameter_counts()["trainable"] == atl + whole - unused + no_mask


def test_sam_without_translandseg_keeps_its_whole_decoder_trainable():
    """Freezing is TransLandSeg's prompt-free choice, not ATL's: PEFT's own route (prompts allowed) trains it all."""
    torch.manual_seed(0)
    model = get_peft_model(SamModel(tiny_sam_config()), tiny_atl("translandseg"))
    decoder = model.get_base_model().mask_decoder.modules_to_save["default"]
    assert all(p.requires_grad for p in decoder.parameters())


def test_transformers_adapter_api_runs_atl(monkeypatch, pixel_values):
    """transformers 5.25's `add_adapter`/`set_adapter`/`disable_adapters`/`active_adapters`/`delete_adapter` ask for
    peft >= 0.22, which the pin (`pyproject.toml`) does not allow yet: with that version check passed over, the rest of
    what runs there runs ATL (`delete_adapter` reads `peft_type.value`; today: 'str' object has no attribute)."""
    import transformers.integrations.peft as transformers_peft

    monkeypatch.setattr(transformers_peft, "check_peft_version", lambda min_version: None)
    torch.manual_seed(0)
    sam = SamModel(tiny_sam_config()).eval()
    with torch.no_grad():
        plain = sam(pixel_values=pixel_values, multimask_output=False).pred_masks
    sam.add_adapter(ATLConfig(bottleneck_dim=8, residual=False), adapter_name="first")
    sam.add_adapter(ATLConfig(bottleneck_dim=8), adapter_name="second")
    assert sam.active_adapters() == ["second"]
    sam.set_adapter("first")
    assert sam.active_adapters() == ["first"]
    with torch.no_grad():
        adapted = sam(pixel_values=pixel_values, multimask_output=False).pred_masks
        sam.disable_adapters()
        disabled = sam(pixel_values=pixel_values, multimask_output=False).pred_masks
    assert torch.equal(disabled, plain) and not torch.equal(adapted, plain)
    sam.delete_adapter("second")
    assert list(sam.peft_config) == ["first"]
