"""The input contract on the mapping side: what a scene makes of it. A percentile stretch fitted on the scene, the
tile side planned from the scene's resolution, and `translandseg predict`'s overrides with the notes that say them;
the contract itself (`TransLandSegImageProcessor`) holds parameters, steps and the scaling rule, fitted here on a
scene's read."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..contract_fields import MAX_TILE_SIDE, check
from ..geo.decimated import decimated_read
from ..image_processing import InputRefused, LinearScaler, TransLandSegImageProcessor

OVERRIDABLE = ("bands", "scale", "divisor", "percentiles")  # what `translandseg predict` may change of a contract


@dataclass
class TilePlan:
    """The tile side in scene pixels, and why (printed in the summary)."""

    size: int
    reason: str


def contract_of(model) -> TransLandSegImageProcessor:
    """The contract a live model carries, or RGB at its input side for one built without a contract."""
    return getattr(model, "image_processor", None) or TransLandSegImageProcessor(input_size=int(model.image_size))


def with_overrides(
    contract: TransLandSegImageProcessor, bands: Optional[Sequence[int]] = None, scale: Optional[str] = None,
    divisor: Optional[float] = None, percentiles: Optional[Sequence[float]] = None,
) -> tuple[TransLandSegImageProcessor, list[str]]:
    """A copy of `contract` with the given options in place; and one note per option that differs."""
    given = {"bands": None if bands is None else [int(b) for b in bands], "scale": scale,
             "divisor": None if divisor is None else float(divisor),
             "percentiles": None if percentiles is None else [float(p) for p in percentiles]}
    processor, notes = copy.deepcopy(contract), []
    for name in OVERRIDABLE:
        value = given[name]
        if value is not None and value != getattr(contract, name):
            notes.append(f"--{name} {as_flag(value)} overrides the model's {name} ({as_flag(getattr(contract, name))})")
            setattr(processor, name, value)
    check(vars(processor))
    return processor, notes


def as_flag(value) -> str:
    """A contract value as its option is written: `4,3,2`, `2,98`, `10000`, `percentile`."""
    if isinstance(value, (list, tuple)):
        return ",".join(as_flag(v) for v in value)
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


# The smallest tile side derived from the scene's own transform that is mapped without asking: a model trained at
# 0.8 m given a 300 m scene would otherwise run 1 px tiles (thousands of model calls that see nothing it learnt).
MIN_DERIVED_TILE_SIDE = 32


# What a scene refused for its tiling can do, in the words of where it was given (`InputRefused.worded_for`).
COARSE_REMEDIES = {
    "cli": "or pass --tile_size (scene px) or --resolution (metres per pixel) to map it anyway.",
    "app": "or map it with `translandseg predict`, which can set the tile side or the scene's resolution: this app "
           "maps at the model's own tiling only.",
}
FINE_REMEDIES = {  # a scene whose stated pixel size would make tiles beyond MAX_TILE_SIDE
    "cli": "pass --resolution (metres per pixel) or --tile_size.",
    "app": "check the file's georeferencing, or map it with `translandseg predict`, which can set the tile side or "
           "the scene's resolution: this app maps at the model's own tiling only.",
}


def too_coarse(side: int, trained: float, scene: float, scaled: int) -> InputRefused:
    """Why a scene is refused as far coarser than the training imagery, and the ways to map it anyway."""
    return InputRefused(
        f"the scene is at {scene:g} m per pixel and the model was trained at {trained:g} m, so one training tile of "
        f"{side} px covers {scaled} px of the scene, under {MIN_DERIVED_TILE_SIDE} px: the model would see almost "
        f"nothing it learnt from. Map imagery near {trained:g} m", COARSE_REMEDIES, sep=", ")


def plan_tiles(
    contract: TransLandSegImageProcessor, scene_resolution: Optional[float], tile_size: Optional[int] = None,
    resolution: Optional[float] = None,
) -> TilePlan:
    """Tiles cover the ground one training input covered: the contract's tile side scaled by training resolution
    / scene resolution when both are known; `tile_size` (scene px) and `resolution` (m per px) override."""
    if tile_size is not None:
        if not 1 <= tile_size <= MAX_TILE_SIDE:
            raise ValueError(f"tile_size must be 1-{MAX_TILE_SIDE} px, got {tile_size}.")
        return TilePlan(int(tile_size), "--tile_size")
    scene = resolution if resolution is not None else scene_resolution
    trained, side = contract.ground_resolution, contract.tile_size
    if trained and scene:
        scaled = max(1, round(side * trained / scene))
        source = "--resolution" if resolution is not None else "the scene's transform"
        if scaled > MAX_TILE_SIDE:  # a tile is allocated whole: a pixel size of a micrometre would ask for TBs
            raise InputRefused(f"tiles of {side} px at {trained:g} m are {scaled} px at {scene:g} m per pixel "
                               f"({source}), more than {MAX_TILE_SIDE} px: the resolution looks wrong", FINE_REMEDIES)
        if scaled < MIN_DERIVED_TILE_SIDE and resolution is None:
            raise too_coarse(side, trained, scene, scaled)
        return TilePlan(scaled, f"training tiles of {side} px at {trained:g} m; scene at {scene:g} m ({source})")
    unknown = "the scene's resolution" if trained else "the training resolution"
    return TilePlan(side, f"the training tile size ({unknown} is unknown)")


def fit_scaler(contract: TransLandSegImageProcessor, dataset, bands: Sequence[int], source: str = "the scene"
               ) -> LinearScaler:
    """The contract's scaler for `bands` of an open rasterio dataset, by the rule `model.predict` follows too
    (`scaler_for`), from a decimated read of the whole scene (NaN and infinity are nodata); a `scale: none` model
    refuses values it cannot read as 8-bit, naming `source`. 8-bit bands under `none` or `divisor` are not read."""
    if contract.scale == "divisor" or (contract.scale == "none" and all(
            np.dtype(dataset.dtypes[band - 1]) == np.uint8 for band in bands)):
        return contract.fixed_scaler()
    values = [band.compressed() for band in decimated_read(dataset, bands)]
    dtype = np.result_type(*values)
    values = [v[np.isfinite(v)] if v.dtype.kind == "f" else v for v in values]
    return contract.scaler_for(values, dtype, source, "cli")
