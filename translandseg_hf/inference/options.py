"""How scenes are read, tiled, thresholded and turned into polygons: the options of `translandseg predict`, the app
and `predict_files`, with their defaults written once (the command line's help and the app's page quote these)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from ..geo.map_files import DEFAULT_MIN_PIXELS  # noqa: F401 (the options' default, quoted by the CLI and app)

DEFAULT_THRESHOLD = 0.5
DEFAULT_OVERLAP_DIVISOR = 8  # neighbouring tiles share an eighth of a tile: enough for the blending ramp
BACKENDS = ("torch", "onnxruntime")  # what runs the model (`runner.load_model`)
DEFAULT_MAX_PIXELS = 2 * 10**10  # per scene, from its header: no real scene is near it, a header bomb passes it


@dataclass
class PredictionOptions:
    """How scenes are read, tiled, thresholded and turned into polygons."""

    # None: as the model's contract (its image processor) says; a value overrides it, with a warning.
    bands: Optional[Sequence[int]] = None  # 1-based band numbers, in the model's channel order
    scale: Optional[str] = None  # none | divisor | percentile
    percentiles: Optional[Sequence[float]] = None
    divisor: Optional[float] = None
    tile_size: Optional[int] = None  # tile side in scene px; None: the training tile at the scene's resolution
    resolution: Optional[float] = None  # the scene's metres per pixel; None: from its transform (projected CRS)
    overlap: Optional[int] = None  # scene px between neighbouring tiles; None: tile // DEFAULT_OVERLAP_DIVISOR
    batch_size: int = 4
    threshold: float = DEFAULT_THRESHOLD
    min_area: Optional[float] = None  # drop smaller polygons (in their `area_unit`); None: DEFAULT_MIN_PIXELS px' area
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast)
    overwrite: bool = False
    tta: bool = False  # average the 8 flips and rotations (D4) of each tile; also write STEM_uncertainty.tif
    simplify: Optional[float] = None  # polygon simplification tolerance in map units (None: exact pixel edges)
    pipelined: bool = True  # read the next strip and write the previous one while the model runs
    max_pixels: Optional[int] = DEFAULT_MAX_PIXELS  # refuse larger scenes from the header; None or 0: no limit
    # Sentinel-2 products (SAFE folders, band folders, STAC items), stacked as the model's contract names.
    dem: Optional[str] = None  # elevation in metres, for models that read slope and elevation
    offset: Optional[float] = None  # digital numbers added before dividing; None: from the product's metadata
    fill_missing: bool = False  # fill bands a product lacks (B10 of L2A) with the training mean, not refuse

    def __post_init__(self):
        """Refuse values that would map nothing useful, before a model is loaded (`translandseg predict`: exit 2)."""
        check_threshold(self.threshold)
        if isinstance(self.batch_size, bool) or int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ValueError(f"batch_size must be a whole number of tiles, at least 1, got {self.batch_size}.")
        if self.overlap is not None and (int(self.overlap) != self.overlap or self.overlap < 0):
            raise ValueError(f"overlap must be a whole number of scene px, 0 or more, got {self.overlap}.")
        if self.tile_size is not None and self.tile_size >= 1 and self.overlap is not None:
            self.overlap_for(int(self.tile_size))

    def product_options(self) -> dict:
        """The keyword arguments of `Sentinel2Stack` these options give."""
        return dict(dem=self.dem, offset=self.offset, fill_missing=self.fill_missing)

    def overlap_for(self, tile_size: int) -> int:
        """Scene pixels shared by neighbouring tiles of `tile_size`: the option, or an eighth of the tile. An overlap
        the tile planned for a scene cannot hold is refused before the model runs on it."""
        if self.overlap is None:
            return tile_size // DEFAULT_OVERLAP_DIVISOR
        if self.overlap >= tile_size:
            raise ValueError(f"overlap must be less than the tile side, {tile_size} px here, got {self.overlap}: "
                             "neighbouring tiles would not advance.")
        return int(self.overlap)


def check_threshold(threshold: float) -> float:
    """`threshold`, if it can split probabilities: a pixel is mapped where its probability is above it, so 50 (a
    percentage) or NaN would map nothing and a negative value everything, each without a word."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(threshold, bool) or not 0 < value < 1:  # NaN and infinity fail the comparison too
        hint = f" (a percentage? {value:g}% is {value / 100:g})" if 1 < value < 100 else ""
        raise ValueError(f"threshold must be a probability between 0 and 1 (exclusive), got {threshold}{hint}.")
    return threshold


def contract_for(model, options: PredictionOptions):
    """The model's saved contract (`contract.contract_of`) with the options' overrides, and a note per override."""
    from .contract import contract_of, with_overrides

    return with_overrides(contract_of(model), options.bands, options.scale, options.divisor, options.percentiles)
