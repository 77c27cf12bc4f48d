"""How a scene is read for a model: its saved contract (bands, scaling, tile size at a ground resolution), with the
command line's overrides, and the tile side in scene pixels that reproduces the training scale."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional, Sequence

from ..image_processing import TransLandSegImageProcessor

OVERRIDABLE = ("bands", "scale", "divisor", "percentiles")


@dataclass
class TilePlan:
    """The tile side in scene pixels, and why (printed in the summary)."""

    size: int
    reason: str


def contract_with_overrides(
    contract: TransLandSegImageProcessor, bands: Optional[Sequence[int]] = None, scale: Optional[str] = None,
    divisor: Optional[float] = None, percentiles: Optional[Sequence[float]] = None,
) -> tuple[TransLandSegImageProcessor, list[str]]:
    """A copy of the model's contract with the given options in place; and one note per option that differs."""
    given = {"bands": None if bands is None else [int(b) for b in bands], "scale": scale,
             "divisor": None if divisor is None else float(divisor),
             "percentiles": None if percentiles is None else [float(p) for p in percentiles]}
    processor, notes = copy.deepcopy(contract), []
    for name in OVERRIDABLE:
        value = given[name]
        if value is not None and value != getattr(contract, name):
            notes.append(f"--{name} {value} overrides the model's {getattr(contract, name)}")
            setattr(processor, name, value)
    processor._check()
    return processor, notes


def plan_tiles(
    contract: TransLandSegImageProcessor, scene_resolution: Optional[float], tile_size: Optional[int] = None,
    resolution: Optional[float] = None,
) -> TilePlan:
    """Tiles cover the ground one training input covered: the contract's tile side scaled by training resolution /
    scene resolution when both are known; `tile_size` (scene px) and `resolution` (m per px) override."""
    if tile_size is not None:
        if tile_size < 1:
            raise ValueError(f"tile_size must be positive, got {tile_size}.")
        return TilePlan(int(tile_size), "--tile_size")
    scene = resolution if resolution is not None else scene_resolution
    trained = contract.ground_resolution
    if trained and scene:
        side = max(1, round(contract.tile_size * trained / scene))
        source = "--resolution" if resolution is not None else "the scene's transform"
        return TilePlan(side, f"training tiles of {contract.tile_size} px at {trained:g} m; scene at {scene:g} m "
                              f"({source})")
    unknown = "the scene's resolution" if trained else "the training resolution"
    return TilePlan(contract.tile_size, f"the training tile size ({unknown} is unknown)")
