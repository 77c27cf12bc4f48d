"""The model card written beside every saved adapter, from the `model_card.md` template."""

from __future__ import annotations

import json
from importlib import resources
from typing import Optional, Sequence

from .atl import PRESETS, ATLConfig
from .metrics import table_header, table_row

_STRUCTURE_FIELDS = ("middle_layers", "residual", "placement", "adapter_input", "fft_branch", "bottleneck_dim")


def preset_name(config: ATLConfig) -> str:
    """The Table IV name of an ATL structure, or 'custom'."""
    for name in PRESETS:
        preset = ATLConfig.from_preset(name)
        if all(getattr(preset, field) == getattr(config, field) for field in _STRUCTURE_FIELDS):
            return name
    return "custom"


def render_model_card(
    base_model: str,
    atl_config: ATLConfig,
    trainable: int,
    repo_id: str = "path/to/this/folder",
    datasets: Optional[Sequence[str]] = None,
    metrics: Optional[dict] = None,
    model_name: str = "TransLandSeg landslide segmentation adapter",
) -> str:
    """Fill the template: Hub metadata (library, base model, tags, datasets, metrics) and how to use the adapter."""
    template = resources.files("translandseg_hf").joinpath("model_card.md").read_text(encoding="utf-8")
    summary = ", ".join(f"`{field}={getattr(atl_config, field)!r}`" for field in _STRUCTURE_FIELDS)
    if metrics:
        rows = "\n".join(table_row(split, scores) for split, scores in metrics.items())
        metrics_text = (
            "Scores in percent (P, REC and F1 are means over background and landslide):\n\n"
            f"{table_header('split')}\n{rows}"
        )
    else:
        metrics_text = "No evaluation was recorded with this adapter."
    return template.format(
        base_model=base_model,
        datasets=json.dumps(list(datasets or [])),
        model_name=model_name,
        trainable=f"{trainable:,}",
        preset=preset_name(atl_config),
        atl_summary=summary,
        repo_id=repo_id,
        metrics=metrics_text,
    )

