"""Labels and images are checked, never silently misread: a 0/255 mask is an error, float images in [0, 1] work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from translandseg_hf import TransLandSegModel
from translandseg_hf.losses import LossConfig, loss_for_labels


def test_a_0_255_mask_is_refused_naming_the_values(tiny_sam, pixel_values, labels):
    model = TransLandSegModel.from_sam(tiny_sam)
    with pytest.raises(ValueError, match=r"labels must be 0 \(background\) or 1 \(landslide\), found values 0, 255; "
                                         r"divide a 0/255 mask by 255"):
        model(pixel_values, labels=labels * 255)
    assert model(pixel_values, labels=labels).loss > 0  # the same mask as 0/1 trains


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 2, 64, 64), (64, 64)])
def test_labels_that_cannot_match_the_logits_are_refused(shape):
    logits = torch.zeros(2, 1, 64, 64)
    with pytest.raises(ValueError, match=r"labels must have shape \(2, 1, 64, 64\) or \(2, 64, 64\) to match the "
                                         rf"logits, got \({', '.join(map(str, shape))}\)"):
        loss_for_labels(logits, torch.zeros(shape), LossConfig())


def test_many_distinct_label_values_are_listed_briefly():
    labels = torch.arange(20, dtype=torch.float32).reshape(1, 1, 4, 5)
    with pytest.raises(ValueError, match=r"found values 0, 1, 2, 3, 4, 5, 6, 7, \.\.\.;"):
        loss_for_labels(torch.zeros(1, 1, 4, 5), labels, LossConfig())


def test_float_images_in_0_1_predict_as_their_uint8_equivalent(tiny_sam):
    model = TransLandSegModel.from_sam(tiny_sam)
    torch.nn.init.normal_(model.sam.vision_encoder.atl_adapters["default"].up.weight, std=0.1)
    image = np.random.default_rng(0).integers(0, 256, size=(50, 40, 3), dtype=np.uint8)
    from_uint8 = model.predict_proba([image])[0]
    from_float = model.predict_proba([image.astype(np.float32) / 255])[0]
    np.testing.assert_allclose(from_float, from_uint8, atol=1e-5)
    assert from_uint8.std() > 0  # the model's output depends on the image, so the comparison means something


@pytest.mark.parametrize("image, message", [  # the 8-bit contract's rule, as `translandseg predict` reads files
    (np.full((8, 8, 3), 300.0), r"the image: the bands hold float64 values from 300 to 300, but the model reads 8-bit "
                                r"values \(0-255\) as they are .*clipped to white; scale the image to 0-255"),
    (np.full((8, 8, 3), np.nan, np.float32), r"the image holds NaN or infinite float32 values"),
    (np.zeros((8, 8, 3), np.complex64), r"Expected an image of integer or float values, got dtype complex64")])
def test_images_outside_the_accepted_ranges_state_them(tiny_sam, image, message):
    model = TransLandSegModel.from_sam(tiny_sam)
    with pytest.raises(ValueError, match=message):
        model.predict([image])
