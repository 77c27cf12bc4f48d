"""Issue 38, half-precision bases: ATL on a bf16 or fp16 SAM by every route a user takes, compared with fp32.

ATL follows PEFT's dtype rule (`lora.Linear.forward`, `autocast_adapter_dtype`): on a half base its layers stay fp32,
their inputs are cast to fp32 and their outputs back to the base's dtype. `from_pretrained` / `from_sam` take
transformers' loading options (`dtype`/`torch_dtype`, `device_map`, `attn_implementation`).

Tolerance: the relative error ||half - fp32|| / ||fp32|| of the prompt-free logits, on tiny random SAMs whose ATL
layers have trained-like (non-zero) weights. Measured over every preset and three inputs: bf16 at most 0.06 (a plain
SamModel in bf16 is off by 0.05-0.12 on the same inputs), fp16 at most 0.012. Allowed: bf16 0.15, fp16 0.03; the
adapter itself moves the logits by 0.5-0.7, so a run that lost it fails (`test_the_tolerance_tells_the_adapter_apart`).
`predict` is compared by probabilities: measured bf16 0.023, fp16 0.004 apart at most; allowed 0.1 and 0.02.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers.models import tiny_atl
from peft import PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft.helpers import disable_input_dtype_casting
from transformers import SamModel
from transformers.models.sam.modeling_sam import SamVisionAttention, SamVisionSdpaAttention

from translandseg_hf import PRESETS, TransLandSegModel
from translandseg_hf.sam_configs import tiny_sam_config

TOLERANCE = {torch.bfloat16: 0.15, torch.float16: 0.03}  # relative error of the logits, measured above
PROBABILITY_TOLERANCE = {torch.bfloat16: 0.1, torch.float16: 0.02}  # largest difference of `predict_proba`'s


def half_kernels_on_cpu(dtype: torch.dtype) -> bool:
    """Whether this torch runs SAM's operations (conv, matmul, layer norm, GELU) in `dtype` on the CPU."""
    try:
        x = torch.ones(1, 2, 4, 4, dtype=dtype)
        torch.nn.functional.gelu(torch.nn.functional.layer_norm(torch.nn.functional.conv2d(x, x[:, :, :1, :1].
                                 expand(2, 2, 1, 1).contiguous()) @ x[0, 0], (4,)))
        return True
    except RuntimeError:
        return False


DTYPES = [
    pytest.param(torch.bfloat16, id="bf16"),
    pytest.param(torch.float16, id="fp16", marks=pytest.mark.skipif(
        not half_kernels_on_cpu(torch.float16), reason="this torch has no fp16 CPU kernels for SAM's operations")),
]


def relative_error(half: torch.Tensor, reference: torch.Tensor) -> float:
    return ((half.float() - reference).norm() / reference.norm()).item()


def perturb_atl(model: torch.nn.Module, seed: int = 1) -> None:
    """Trained-like ATL weights: its up-projection starts at zero, so a fresh adapter would add nothing to compare.
    (Only ATL's: SAM's decoder with noise added computes in bf16 as loosely as any bf16 network, which is not ATL's.)"""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".atl_adapters." in name:
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))


def trained_on(sam: SamModel, preset: str = "translandseg", extra_bands: int = 0) -> TransLandSegModel:
    torch.manual_seed(0)
    config = tiny_atl(preset)
    config.extra_bands = extra_bands
    model = TransLandSegModel.from_sam(copy.deepcopy(sam), config)
    perturb_atl(model)
    return model.eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An fp32 model with trained-like weights, saved (with its base), its base SAM, inputs and fp32 outputs."""
    torch.manual_seed(0)
    sam = SamModel(tiny_sam_config()).eval()
    model = trained_on(sam)
    folder = tmp_path_factory.mktemp("fp32-model")
    model.save_pretrained(folder)
    pixel_values = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    images = [np.random.default_rng(3).integers(0, 256, (40, 50, 3), dtype=np.uint8)]
    with torch.no_grad():
        low_res = model(pixel_values).low_res_logits
    return SimpleNamespace(sam=sam, model=model, folder=folder, pixel_values=pixel_values, low_res=low_res,
                           images=images, probabilities=model.predict_proba(images))


# ------------------------------------------------------------------------------------------ the routes
# Each: (trained, dtype) -> (the model's SamModel, low-resolution logits (B, 1, 16, 16)). The PEFT routes are fed
# pixels in the base's dtype, as a SamModel user feeds them; TransLandSeg's take the fp32 pixels its processor makes.
def via_get_peft_model(trained, dtype):
    peft_model = get_peft_model(copy.deepcopy(trained.sam).to(dtype), copy.deepcopy(trained.model.atl_config))
    set_peft_model_state_dict(peft_model, get_peft_model_state_dict(trained.model.peft_model))
    outputs = peft_model.eval()(pixel_values=trained.pixel_values.to(dtype), multimask_output=False)
    return peft_model.get_base_model(), outputs.pred_masks[:, 0]


def via_peft_from_pretrained(trained, dtype):
    peft_model = PeftModel.from_pretrained(copy.deepcopy(trained.sam).to(dtype), str(trained.folder))
    outputs = peft_model(pixel_values=trained.pixel_values.to(dtype), multimask_output=False)
    return peft_model.get_base_model(), outputs.pred_masks[:, 0]


def via_from_sam(trained, dtype):
    model = TransLandSegModel.from_sam(copy.deepcopy(trained.sam).to(dtype), copy.deepcopy(trained.model.atl_config))
    model.load_weights(trained.folder)
    return model.sam, model.eval()(trained.pixel_values).low_res_logits


def via_from_sam_dtype(trained, dtype):
    model = TransLandSegModel.from_sam(trained.folder / "base_model", copy.deepcopy(trained.model.atl_config),
                                       dtype=dtype)
    model.load_weights(trained.folder)
    return model.sam, model.eval()(trained.pixel_values).low_res_logits


def via_from_pretrained(trained, dtype):
    model = TransLandSegModel.from_pretrained(trained.folder, dtype=dtype)
    return model.sam, model(trained.pixel_values).low_res_logits


def via_from_pretrained_torch_dtype(trained, dtype):
    model = TransLandSegModel.from_pretrained(trained.folder, torch_dtype=dtype)
    return model.sam, model(trained.pixel_values).low_res_logits


ROUTES = [
    pytest.param(via_get_peft_model, id="get_peft_model"),
    pytest.param(via_peft_from_pretrained, id="PeftModel.from_pretrained"),
    pytest.param(via_from_sam, id="from_sam(half SamModel)"),
    pytest.param(via_from_sam_dtype, id="from_sam(folder, dtype=)"),
    pytest.param(via_from_pretrained, id="from_pretrained(dtype=)"),
    pytest.param(via_from_pretrained_torch_dtype, id="from_pretrained(torch_dtype=)"),
]


def atl_dtypes(module: torch.nn.Module) -> set[torch.dtype]:
    return {p.dtype for name, p in module.named_parameters() if ".atl_adapters." in name}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("route", ROUTES)
@torch.no_grad()
def test_a_half_precision_base_runs_atl_close_to_fp32(trained, route, dtype):
    sam, low_res = route(trained, dtype)
    assert sam.vision_encoder.get_base_layer().patch_embed.projection.weight.dtype == dtype  # the base is half
    assert atl_dtypes(sam) == {torch.float32}  # PEFT's autocast_adapter_dtype: the adapter stays fp32
    assert low_res.dtype == dtype and torch.isfinite(low_res).all()
    assert relative_error(low_res, trained.low_res) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_after_to_half_feeds_the_model_its_dtype(trained, dtype):
    model = TransLandSegModel.from_pretrained(trained.folder).to(dtype)
    assert atl_dtypes(model) == {dtype}  # `.to` casts everything, the adapter too
    probabilities = model.predict_proba(trained.images)
    assert probabilities[0].dtype == np.float32 and probabilities[0].shape == (40, 50)
    difference = np.abs(probabilities[0] - trained.probabilities[0]).max()
    assert difference <= PROBABILITY_TOLERANCE[dtype]
    masks = model.predict(trained.images)
    assert masks[0].shape == (40, 50) and masks[0].dtype == np.uint8


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("extra_bands", [0, 2], ids=["rgb", "rgb+2"])
@torch.no_grad()
def test_every_atl_structure_runs_on_a_bf16_base(trained, preset, extra_bands):
    """Each code path of the layer (before / inside the block, the released code's input, extra bands) casts."""
    reference = trained_on(trained.sam, preset, extra_bands)
    half = TransLandSegModel.from_sam(copy.deepcopy(trained.sam).to(torch.bfloat16),
                                      copy.deepcopy(reference.atl_config))
    half.load_state_dict(reference.state_dict())
    pixel_values = torch.randn(2, 3 + extra_bands, 64, 64, generator=torch.Generator().manual_seed(4))
    half_logits = half.eval()(pixel_values).low_res_logits
    assert relative_error(half_logits, reference(pixel_values).low_res_logits) <= TOLERANCE[torch.bfloat16]


@torch.no_grad()
def test_the_tolerance_tells_the_adapter_apart(trained):
    """The bf16 tolerance is tight enough to see a model that dropped its trained adapter."""
    model = TransLandSegModel.from_pretrained(trained.folder, dtype=torch.bfloat16)
    with model.peft_model.disable_adapter():
        without_adapter = model(trained.pixel_values).low_res_logits
    assert relative_error(without_adapter, trained.low_res) > TOLERANCE[torch.bfloat16]


@torch.no_grad()
def test_peft_input_casting_switched_off_gives_torch_dtype_error(trained):
    """`peft.helpers.disable_input_dtype_casting` turns ATL's cast off as it does LoRA's: the mismatch is the user's."""
    model = TransLandSegModel.from_pretrained(trained.folder, dtype=torch.bfloat16)
    mismatch = r"expected (m1 and m2 to have the same dtype|scalar type)"
    with disable_input_dtype_casting(model.peft_model), pytest.raises(RuntimeError, match=mismatch):
        model(trained.pixel_values)


def test_a_bf16_base_trains_its_fp32_adapter(trained):
    model = TransLandSegModel.from_pretrained(trained.folder, dtype=torch.bfloat16, is_trainable=True).train()
    labels = (trained.pixel_values[:, :1] > 0).float()
    model(trained.pixel_values, labels=labels).loss.backward()
    gradients = {name: p.grad for name, p in model.named_parameters() if ".atl_adapters." in name}
    assert gradients and all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all()
                             for g in gradients.values())


# ------------------------------------------------------------------------------------------ the other loading options
@pytest.mark.parametrize("implementation, attention", [("eager", SamVisionAttention), ("sdpa", SamVisionSdpaAttention)])
@torch.no_grad()
def test_from_pretrained_takes_attn_implementation(trained, implementation, attention):
    model = TransLandSegModel.from_pretrained(trained.folder, attn_implementation=implementation)
    encoder = model.sam.vision_encoder.get_base_layer()
    assert all(type(layer.attn) is attention for layer in encoder.layers)
    assert model.sam.config._attn_implementation == implementation
    torch.testing.assert_close(model(trained.pixel_values).low_res_logits, trained.low_res, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("device_map", ["cpu", "auto", {"": "cpu"}], ids=["cpu", "auto", "one-device-dict"])
def test_from_pretrained_takes_device_map(trained, device_map):
    model = TransLandSegModel.from_pretrained(trained.folder, device_map=device_map)
    expected = torch.accelerator.current_accelerator(check_available=True) if device_map == "auto" else None
    assert model.sam.device.type == (expected or torch.device("cpu")).type
    assert {p.device.type for p in model.parameters()} == {model.sam.device.type}  # the adapter goes with SAM


def test_from_sam_takes_the_options_on_a_built_sam(trained):
    model = TransLandSegModel.from_sam(copy.deepcopy(trained.sam), dtype="bfloat16", device_map="cpu",
                                       attn_implementation=trained.sam.config._attn_implementation)
    assert model.sam.dtype == torch.bfloat16 and atl_dtypes(model) == {torch.float32}


REFUSED = [  # (options, error, what it says)
    (dict(bogus=1), TypeError,
     r"TransLandSegModel\.from_pretrained\(\) got unexpected keyword argument\(s\) bogus: it takes revision, "
     r"base_model, is_trainable, dtype, torch_dtype, device_map, attn_implementation"),
    (dict(dtype=torch.bfloat16, torch_dtype=torch.float16), ValueError,
     r"Pass dtype= or torch_dtype= \(its older name\), not both"),
    (dict(attn_implementation="flash_attention_2"), ValueError, "SamModel does not support Flash Attention 2"),
]


@pytest.mark.parametrize("options, error, said", REFUSED, ids=["unknown", "both-dtypes", "flash-attention"])
def test_from_pretrained_refuses_options_clearly(trained, options, error, said):
    with pytest.raises(error, match=said):
        TransLandSegModel.from_pretrained(trained.folder, **options)


BUILT_REFUSED = [
    (dict(attn_implementation="eager"), r"The SamModel given was built with attn_implementation='sdpa': SamModel "
                                        r"picks its attention classes when built"),
    (dict(device_map={"vision_encoder": "cpu", "mask_decoder": "cpu"}), r"a device_map over modules"),
]


@pytest.mark.parametrize("options, said", BUILT_REFUSED, ids=["attention", "module-map"])
def test_from_sam_refuses_what_a_built_sam_cannot_change(trained, options, said):
    assert trained.sam.config._attn_implementation == "sdpa"
    with pytest.raises(ValueError, match=said):
        TransLandSegModel.from_sam(copy.deepcopy(trained.sam), **options)
