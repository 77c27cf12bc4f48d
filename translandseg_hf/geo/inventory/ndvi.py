"""NDVI from a raster's red and near-infrared bands, on the post-event grid.

A composite or stack holds each channel as sensor value / divisor, each channel with its own divisor
(Landslide4Sense's B4 is / 445.2, its B8 / 1941.3), so the bands are multiplied back by their divisors first:
NDVI = (d_n n - d_r r) / (d_n n + d_r r). Only where both divisors are equal does the common scale cancel,
(d n - d r) / (d n + d r) = (n - r) / (n + r), and a raster of plain sensor values (no stack) is read as it is."""

from __future__ import annotations

import os
from typing import Union

import numpy as np

from ..sentinel2.stack import STACK_TAG
from .grid import Grid, read_on_grid

PathLike = Union[str, os.PathLike]
RED, NIR = "B4", "B8"  # Sentinel-2's red (665 nm) and near-infrared (842 nm) bands


def is_stack(tags: dict) -> bool:
    """Whether a raster's tags mark it a stack or composite (values = sensor value / divisor, per band)."""
    return bool(tags.get(STACK_TAG))


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """(nir - red) / (nir + red), float32, NaN where either is missing or their sum is not positive."""
    red, nir = red.astype(np.float64), nir.astype(np.float64)
    total = nir + red
    with np.errstate(divide="ignore", invalid="ignore"):
        index = np.where(np.isfinite(total) & (total > 0), (nir - red) / total, np.nan)
    return index.astype(np.float32)


def ndvi_on_grid(path: PathLike, grid: Grid, red_band: int, nir_band: int,
                 multipliers: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """(H, W) NDVI of `path`'s bands `red_band` and `nir_band` (1-based) on `grid`, each band times its multiplier
    (its divisor, for a stack: back to sensor values) before the ratio."""
    red, nir = read_on_grid(path, grid, (red_band, nir_band), kind="values", what="imagery")
    return ndvi(red * multipliers[0], nir * multipliers[1])
