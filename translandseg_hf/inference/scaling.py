"""Band values -> the model's 0-255 RGB range: percentile stretch, a fixed divisor, or none (already uint8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

SCALE_METHODS = ("auto", "percentile", "divisor", "none")
OVERVIEW_SIDE = 1024  # the decimated read for percentiles: about a million pixels, whatever the scene's size


@dataclass
class LinearScaler:
    """value -> (value - low) / (high - low) * 255, clipped to 0-255, per band."""

    low: np.ndarray  # (C,)
    high: np.ndarray  # (C,)

    def __call__(self, bands: np.ndarray) -> np.ndarray:
        """(C, H, W) raw values -> (C, H, W) float32 in 0-255."""
        low, high = self.low[:, None, None], self.high[:, None, None]
        span = np.where(high > low, high - low, 1.0)
        return np.clip((bands.astype(np.float32) - low) / span * 255.0, 0.0, 255.0).astype(np.float32)


def fit_scaler(
    dataset, bands: Sequence[int], method: str = "auto", percentiles: Sequence[float] = (2.0, 98.0),
    divisor: float = 10000.0,
) -> LinearScaler:
    """A scaler for `bands` of an open rasterio dataset; `auto` is `none` for uint8 and `percentile` otherwise."""
    if method not in SCALE_METHODS:
        raise ValueError(f"scale must be one of {SCALE_METHODS}, got {method!r}.")
    count = len(bands)
    if method == "auto":
        method = "none" if all(dataset.dtypes[b - 1] == "uint8" for b in bands) else "percentile"
    if method == "none":
        return LinearScaler(np.zeros(count, np.float32), np.full(count, 255.0, np.float32))
    if method == "divisor":
        if divisor <= 0:
            raise ValueError(f"divisor must be positive, got {divisor}.")
        # img / divisor * 255, as Landslide4Sense's RGB conversion does with divisor 10.
        return LinearScaler(np.zeros(count, np.float32), np.full(count, float(divisor), np.float32))
    low_percent, high_percent = percentiles
    if not 0 <= low_percent < high_percent <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {tuple(percentiles)}.")
    factor = max(1, int(np.ceil(max(dataset.height, dataset.width) / OVERVIEW_SIDE)))
    shape = (count, max(1, dataset.height // factor), max(1, dataset.width // factor))
    overview = dataset.read(list(bands), out_shape=shape, masked=True)  # (C, h, w), decimated by GDAL
    lows, highs = [], []
    for band in overview:
        valid = band.compressed()
        if valid.size == 0:
            lows.append(0.0), highs.append(255.0)
            continue
        low, high = np.percentile(valid, [low_percent, high_percent])
        lows.append(float(low)), highs.append(float(high))
    return LinearScaler(np.asarray(lows, np.float32), np.asarray(highs, np.float32))
