"""Parameter counts of every ATL preset on Meta's SAM architectures (the paper's Table III), without weights. Trainable
counts are prompt-free TransLandSeg's: the decoder parts it never trains are frozen (`modeling_translandseg`)."""

from __future__ import annotations

from typing import Iterable, Optional

import torch
from peft import get_peft_model
from transformers import SamModel

from .atl import PRESETS, ATLConfig
from .sam_configs import sam_config


def count_parameters(
    architecture: str = "vit_l", preset: Optional[str] = "translandseg", image_size: int = 1024, extra_bands: int = 0
) -> dict[str, int]:
    """Total and trainable parameters of plain SAM (preset None) or SAM + an ATL preset, built on the meta device;
    at another `image_size` the position tables (frozen) change size, the trainable count does not."""
    with torch.device("meta"):
        sam = SamModel(sam_config(architecture, image_size))
        if preset is None:
            total = sum(p.numel() for p in sam.parameters())
            return {"total": total, "trainable": total}
        from .modeling_translandseg import TransLandSegModel, peft_reading_checkpointing_flag

        atl_config = ATLConfig.from_preset(preset, extra_bands=extra_bands)
        with peft_reading_checkpointing_flag():
            counts = TransLandSegModel(get_peft_model(sam, atl_config)).parameter_counts()
    return {"total": counts["total"], "trainable": counts["trainable"]}


def parameter_table(architecture: str = "vit_l", presets: Iterable[str] = tuple(PRESETS), extra_bands: int = 0) -> str:
    """A Markdown table: total and trainable parameters of SAM and of each preset on one architecture."""
    rows = [("SAM (full fine-tuning)", count_parameters(architecture, None))]
    suffix = f" + {extra_bands} bands" if extra_bands else ""
    rows += [(name + suffix, count_parameters(architecture, name, extra_bands=extra_bands)) for name in presets]
    lines = [
        f"| model ({architecture}) | total parameters | trainable parameters | total (M) | trainable (M) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, counts in rows:
        total, trainable = counts["total"], counts["trainable"]
        lines.append(f"| {name} | {total:,} | {trainable:,} | {total / 1e6:.2f} | {trainable / 1e6:.2f} |")
    return "\n".join(lines)
