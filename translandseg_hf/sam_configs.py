"""SAM architectures by name: Meta's ViT-B/L/H and small random ones for demos and tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import SamConfig

# Meta's three image encoders (segment-anything `build_sam.py`); the prompt encoder and mask decoder are shared.
SAM_ARCHITECTURES = {
    "vit_b": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, global_attn_indexes=[2, 5, 8, 11]),
    "vit_l": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, global_attn_indexes=[5, 11, 17, 23]),
    "vit_h": dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, global_attn_indexes=[7, 15, 23, 31]),
}
HUB_IDS = {"vit_b": "facebook/sam-vit-base", "vit_l": "facebook/sam-vit-large", "vit_h": "facebook/sam-vit-huge"}


def sam_config(architecture: str, image_size: int = 1024) -> SamConfig:
    """The `SamConfig` of one of Meta's checkpoints, without downloading anything (at another input size for
    benchmarks: the absolute position embedding is then sized for `image_size`)."""
    from transformers import SamConfig, SamVisionConfig  # here, so that naming the architectures imports no torch

    if architecture not in SAM_ARCHITECTURES:
        raise ValueError(f"Unknown SAM architecture {architecture!r}; valid ones are {list(SAM_ARCHITECTURES)}.")
    vision = SamVisionConfig(**SAM_ARCHITECTURES[architecture], image_size=image_size)
    prompt = dict(image_size=image_size)
    return SamConfig(vision_config=vision.to_dict(), prompt_encoder_config=prompt)


def tiny_sam_config(
    image_size: int = 64,
    patch_size: int = 4,
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    embedding_channels: int = 32,
) -> SamConfig:
    """A small random SAM (seconds on a CPU) for demos and tests.

    The initializer ranges are raised from transformers' defaults (1e-10 in the vision config), with which a random
    SAM's output ignores its input image.
    """
    from transformers import SamConfig

    grid = image_size // patch_size
    vision = dict(
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=patch_size,
        mlp_dim=hidden_size * 2,
        output_channels=embedding_channels,
        num_pos_feats=embedding_channels // 2,
        window_size=max(2, grid // 4),
        global_attn_indexes=[num_hidden_layers - 1],
        initializer_range=0.02,
    )
    prompt = dict(hidden_size=embedding_channels, image_size=image_size, patch_size=patch_size, mask_input_channels=4)
    decoder = dict(
        hidden_size=embedding_channels,
        num_hidden_layers=2,
        num_attention_heads=4,
        mlp_dim=embedding_channels * 2,
        iou_head_hidden_dim=embedding_channels,
    )
    return SamConfig(
        vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder, initializer_range=0.25
    )
