"""Output rasters: probability (float32, NaN nodata) and mask (uint8 0/1, 255 nodata) GeoTIFFs written strip by strip.

Each file is written under a temporary name beside its target and renamed only when complete, so an interrupted run
never leaves a truncated GeoTIFF where a reader would take it as whole.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

PROBABILITY_NODATA = float("nan")
MASK_NODATA = 255  # 0 and 1 are classes, so 255 marks pixels without data


class StagedOutputs:
    """Temporary paths beside each output; `commit` renames them all into place, `discard` deletes them."""

    def __init__(self):
        self.temporary: dict[Path, Path] = {}

    def path_for(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
        os.close(descriptor)
        os.unlink(temporary)  # GDAL and pyogrio create the file themselves
        self.temporary[target] = Path(temporary)
        return Path(temporary)

    def commit(self) -> None:
        for target, temporary in self.temporary.items():
            os.replace(temporary, target)
        self.temporary.clear()

    def discard(self) -> None:
        for temporary in self.temporary.values():
            temporary.unlink(missing_ok=True)
        self.temporary.clear()


def geotiff_profile(height: int, width: int, crs, transform, dtype: str, nodata) -> dict:
    """Deflate-compressed, 256 px tiled, with the input's CRS and transform (none for plain images)."""
    profile = dict(
        driver="GTiff", height=height, width=width, count=1, dtype=dtype, nodata=nodata,
        compress="deflate", tiled=True, blockxsize=256, blockysize=256, BIGTIFF="IF_SAFER",
    )
    if crs is not None:
        profile["crs"] = crs
    if not transform.is_identity:
        profile["transform"] = transform
    if dtype == "float32":
        profile["predictor"] = 3  # floating-point predictor: deflate then compresses probabilities far better
    return profile


class PredictionRasters:
    """The open probability and mask GeoTIFFs of one scene, written strip by strip to staged temporary paths."""

    def __init__(self, staged: StagedOutputs, probability_path: Path, mask_path: Path, height, width, crs, transform):
        self.probability_path = staged.path_for(probability_path)
        self.mask_path = staged.path_for(mask_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain images: pixel coordinates are intended
            self._open(height, width, crs, transform)

    def _open(self, height, width, crs, transform) -> None:
        self.probability = rasterio.open(
            self.probability_path, "w",
            **geotiff_profile(height, width, crs, transform, "float32", PROBABILITY_NODATA),
        )
        self.mask = rasterio.open(
            self.mask_path, "w", **geotiff_profile(height, width, crs, transform, "uint8", MASK_NODATA)
        )

    def write_strip(self, row: int, probability: np.ndarray, valid: np.ndarray, threshold: float) -> None:
        """(h, W) probabilities and validity starting at scene row `row`."""
        height, width = probability.shape
        window = Window(0, row, width, height)
        mask = np.where(valid, (probability > threshold).astype(np.uint8), np.uint8(MASK_NODATA))
        self.probability.write(np.where(valid, probability, np.nan).astype(np.float32), 1, window=window)
        self.mask.write(mask, 1, window=window)

    def close(self) -> None:
        self.probability.close()
        self.mask.close()
