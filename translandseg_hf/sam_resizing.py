"""SAM at another input size: its pretrained weights resampled to a new token grid, so 128 px Landslide4Sense patches
can train at 256 px instead of being magnified to 1024 (as SAMed and SAM-Med2D do for medical images).

transformers' `SamModel` fixes its grid at construction and does not resample; this module does it once, on the
weights: the absolute position embedding (bicubic) and the relative-position tables of the global-attention blocks
(linear along their length). Windowed blocks, the neck, the prompt encoder and the mask decoder load unchanged.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from transformers import SamModel

MIN_IMAGE_SIZE = 64
SIZE_MULTIPLE = 16  # SAM's patch side


def check_image_size(image_size: int, patch_size: int = SIZE_MULTIPLE) -> None:
    if image_size < MIN_IMAGE_SIZE or image_size % SIZE_MULTIPLE or image_size % patch_size:
        raise ValueError(f"image_size must be a multiple of {SIZE_MULTIPLE} (and of the patch size {patch_size}) of at "
                         f"least {MIN_IMAGE_SIZE}, got {image_size}.")


def resized_sam_config(config, image_size: int):
    """The `SamConfig` of the same SAM at another input side: the vision grid and the prompt encoder's embedding."""
    config = copy.deepcopy(config)
    config.vision_config.image_size = image_size
    config.prompt_encoder_config.image_size = image_size
    config.prompt_encoder_config.image_embedding_size = image_size // config.prompt_encoder_config.patch_size
    return config


def resample_pos_embed(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """(1, G, G, C) -> (1, grid, grid, C), bicubic."""
    resized = F.interpolate(pos_embed.permute(0, 3, 1, 2).float(), size=(grid, grid), mode="bicubic",
                            align_corners=False)
    return resized.permute(0, 2, 3, 1).to(pos_embed.dtype).contiguous()


def resample_rel_pos(table: torch.Tensor, length: int) -> torch.Tensor:
    """(L, head_dim) -> (length, head_dim), linear along L (as SAM itself interpolates a table of the wrong length)."""
    resized = F.interpolate(table.float().T[None], size=length, mode="linear", align_corners=False)
    return resized[0].T.to(table.dtype).contiguous()


def global_attention_layers(vision_config) -> set[int]:
    """Blocks whose attention spans the whole grid (all of them when SAM has no windows)."""
    if not vision_config.window_size:
        return set(range(vision_config.num_hidden_layers))
    return set(vision_config.global_attn_indexes)


def resize_sam(sam: SamModel, image_size: int) -> SamModel:
    """`sam` itself at its own size; otherwise a new `SamModel` for `image_size` x `image_size` inputs, with every
    pretrained tensor carried over (resampled where the grid shows). Any key missing, unexpected or of the wrong
    shape after resampling is an error, never a silent re-initialisation."""
    vision = sam.config.vision_config
    if image_size == vision.image_size:
        return sam
    check_image_size(image_size, vision.patch_size)
    grid = image_size // vision.patch_size
    global_layers = global_attention_layers(vision)
    state = {}
    for key, tensor in sam.state_dict().items():
        if key == "vision_encoder.pos_embed":
            tensor = resample_pos_embed(tensor, grid)
        elif key.endswith(("attn.rel_pos_h", "attn.rel_pos_w")) and int(key.split(".")[2]) in global_layers:
            tensor = resample_rel_pos(tensor, 2 * grid - 1)
        state[key] = tensor
    # on the base's device and in its dtype, so a bf16 base loaded with dtype= stays bf16 at another size
    resized = SamModel(resized_sam_config(sam.config, image_size)).to(device=sam.device, dtype=sam.dtype)
    expected = resized.state_dict()
    wrong_shape = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected or wrong_shape:
        raise ValueError(f"Resampling SAM to {image_size} px left missing keys {missing[:5]}, unexpected keys "
                         f"{unexpected[:5]} and keys of the wrong shape {wrong_shape[:5]}.")
    resized.load_state_dict(state, strict=True)
    resized.name_or_path = sam.name_or_path
    return resized.eval()
