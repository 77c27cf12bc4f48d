"""Opt-in checks on the real SAM ViT-B from the Hub (`pytest -m slow`, needs network or a filled HF cache)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from translandseg_hf import TransLandSegModel

pytestmark = pytest.mark.slow


def test_fresh_adapter_on_real_sam_vit_b_computes_plain_sam(tmp_path):
    model = TransLandSegModel.from_sam("facebook/sam-vit-base")
    image = (np.random.default_rng(0).random((300, 400, 3)) * 255).astype(np.uint8)
    pixel_values = model.image_processor([image]).pixel_values
    with torch.no_grad(), model.peft_model.disable_adapter():  # plain SAM: no ATL, the original decoder
        expected = model.sam(pixel_values=pixel_values, multimask_output=False).pred_masks[:, 0]
    with torch.no_grad():
        expected = F.interpolate(expected, size=pixel_values.shape[-2:], mode="bilinear", align_corners=False)
        torch.testing.assert_close(model(pixel_values).logits, expected, rtol=0, atol=1e-5)
    assert model.parameter_counts()["trainable"] > 4_000_000
    model.save_pretrained(tmp_path)
    assert TransLandSegModel.from_pretrained(tmp_path).base_model_name_or_path == "facebook/sam-vit-base"
