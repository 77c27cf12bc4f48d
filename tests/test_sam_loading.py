"""Base SAMs from Meta's original `.pth` checkpoints, read with `weights_only=True`, and from bad files."""

from __future__ import annotations

import pickle
import re

import pytest
import torch

from translandseg_hf import TransLandSegModel
from translandseg_hf.sam_loading import infer_sam_config, load_sam, rename_original_sam_keys


def to_original_segment_anything_names(state_dict):
    """Meta's segment-anything names, written independently of the library's renaming (the test's oracle)."""
    original = {}
    for key, value in state_dict.items():
        if key == "shared_image_embedding.positional_embedding":
            continue  # tied to the prompt encoder's copy; Meta stores it once
        key = key.replace("prompt_encoder.shared_embedding.positional_embedding",
                          "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix")
        key = key.replace("vision_encoder.layers.", "image_encoder.blocks.")
        key = key.replace("vision_encoder.", "image_encoder.")
        key = key.replace("patch_embed.projection", "patch_embed.proj")
        for hf, meta in [("neck.conv1", "neck.0"), ("neck.layer_norm1", "neck.1"), ("neck.conv2", "neck.2"),
                         ("neck.layer_norm2", "neck.3"), ("upscale_conv1", "output_upscaling.0"),
                         ("upscale_layer_norm", "output_upscaling.1"), ("upscale_conv2", "output_upscaling.3"),
                         ("mask_embed.conv1", "mask_downscaling.0"), ("mask_embed.layer_norm1", "mask_downscaling.1"),
                         ("mask_embed.conv2", "mask_downscaling.3"), ("mask_embed.layer_norm2", "mask_downscaling.4"),
                         ("mask_embed.conv3", "mask_downscaling.6"), ("point_embed", "point_embeddings")]:
            key = key.replace(hf, meta)
        key = re.sub(r"\.layer_norm(\d|_final_attn)", r".norm\1", key)
        key = re.sub(r"(mlps\.\d+|prediction_head)\.layers\.0\.", r"\1.layers.1.", key)
        key = re.sub(r"(mlps\.\d+|prediction_head)\.proj_in\.", r"\1.layers.0.", key)
        key = re.sub(r"(mlps\.\d+|prediction_head)\.proj_out\.", r"\1.layers.2.", key)
        original[key] = value.clone()
    original["pixel_mean"] = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
    original["pixel_std"] = torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)
    return original


@pytest.fixture
def original_checkpoint(tmp_path, tiny_sam):
    path = tmp_path / "sam_vit_tiny_test.pth"
    torch.save(to_original_segment_anything_names(tiny_sam.state_dict()), path)
    return path


def test_original_checkpoint_loads_with_the_same_weights(original_checkpoint, tiny_sam, pixel_values):
    sam, name = load_sam(str(original_checkpoint))
    assert name == str(original_checkpoint.resolve())
    expected = tiny_sam.state_dict()
    loaded = sam.state_dict()
    assert loaded.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(loaded[key], expected[key], rtol=0, atol=0, msg=key)
    vision = sam.config.vision_config
    assert (vision.hidden_size, vision.num_hidden_layers, vision.patch_size, vision.image_size) == (32, 2, 4, 64)
    assert list(vision.global_attn_indexes) == [1] and vision.window_size == tiny_sam.config.vision_config.window_size


def test_model_from_original_checkpoint_reloads_from_its_path(tmp_path, original_checkpoint, pixel_values):
    model = TransLandSegModel.from_sam(str(original_checkpoint))
    model.save_pretrained(tmp_path / "adapter")
    assert not (tmp_path / "adapter" / "base_model").exists()
    with torch.no_grad():
        torch.testing.assert_close(
            TransLandSegModel.from_pretrained(tmp_path / "adapter")(pixel_values).logits, model(pixel_values).logits
        )


def test_meta_vit_l_names_infer_the_vit_l_config():
    from transformers import SamModel

    from translandseg_hf.sam_configs import sam_config

    with torch.device("meta"):
        state_dict = SamModel(sam_config("vit_l")).state_dict()
    config = infer_sam_config(rename_original_sam_keys(to_original_segment_anything_names(state_dict)))
    vision = config.vision_config
    assert (vision.hidden_size, vision.num_hidden_layers, vision.num_attention_heads) == (1024, 24, 16)
    assert list(vision.global_attn_indexes) == [5, 11, 17, 23] and vision.window_size == 14


def test_checkpoint_that_needs_unpickling_code_is_refused(tmp_path):
    path = tmp_path / "sam_vit_b_evil.pth"
    torch.save({"model": object()}, path)  # an arbitrary object: weights_only=True refuses it
    with pytest.raises(ValueError, match=r"Cannot read \S*sam_vit_b_evil\.pth as a SAM checkpoint") as raised:
        load_sam(str(path))
    assert isinstance(raised.value.__cause__, pickle.UnpicklingError)  # refused by weights_only, not unreadable


def test_checkpoint_of_something_else_is_named(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"resnet\.pth is not one of Meta's SAM checkpoints"):
        load_sam(str(path))


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.pth does not exist"):
        load_sam(str(tmp_path / "absent.pth"))
