"""Synthetic landslide-like scenes: textured vegetated terrain with bright, elongated bare scars.

They are not real data. They exist so that pipelines, examples and tests can train on something
learnable without downloading anything: scars are brighter and less green than the terrain
around them, as fresh landslides are in optical imagery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from datasets import DatasetDict

from ._io import DEFAULT_FRACTIONS, SPLIT_NAMES, build_dataset_dict, encode_png
from .splits import split_sizes
from .image_folder import image_folder_features

_VEGETATION = np.array([52, 84, 40], dtype=np.float32)  # dark green canopy
_MEADOW = np.array([96, 112, 62], dtype=np.float32)  # lighter, drier vegetation
_SOIL = np.array([182, 164, 138], dtype=np.float32)  # fresh bare soil and rock


def _fractal_noise(rng: np.random.Generator, size: int, beta: float) -> np.ndarray:
    """(size, size) zero-mean unit-variance noise with a 1/f^beta power spectrum: terrain-like."""
    spectrum = np.fft.rfft2(rng.standard_normal((size, size)))
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    frequency = np.hypot(fx, fy)
    frequency[0, 0] = 1.0
    spectrum /= frequency ** (beta / 2)
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(size, size))
    return field / (field.std() + 1e-8)


def _scar(rng: np.random.Generator, size: int, roughness: np.ndarray) -> np.ndarray:
    """Boolean (size, size) tongue: narrow crown, widening downslope, with a ragged edge."""
    centre = rng.uniform(0.2, 0.8, size=2) * size
    angle = rng.uniform(0, np.pi)
    length = rng.uniform(0.2, 0.45) * size
    width = rng.uniform(0.05, 0.12) * size
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    along = (x - centre[0]) * np.cos(angle) + (y - centre[1]) * np.sin(angle)
    across = -(x - centre[0]) * np.sin(angle) + (y - centre[1]) * np.cos(angle)
    t = along / length + 0.5  # 0 at the crown, 1 at the toe
    half_width = 0.5 * width * (0.5 + t) * np.sqrt(np.clip(np.sin(np.pi * t), 0, 1))
    return (t >= 0) & (t <= 1) & (np.abs(across) <= half_width * (1 + 0.35 * roughness))


def make_synthetic_scene(
    size: int = 256, seed: int | Sequence[int] = 0, num_scars: tuple[int, int] = (1, 4)
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic (size, size, 3) uint8 scene and its (size, size) uint8 0/1 landslide mask.

    Deterministic for a seed; between `num_scars[0]` and `num_scars[1]` scars (inclusive).
    """
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    if not 0 <= num_scars[0] <= num_scars[1]:
        raise ValueError(f"num_scars must be (low, high) with 0 <= low <= high, got {num_scars}")
    rng = np.random.default_rng(seed)
    elevation = _fractal_noise(rng, size, beta=3.2)
    vegetation = _fractal_noise(rng, size, beta=2.0)
    roughness = _fractal_noise(rng, size, beta=1.6)
    grain = rng.standard_normal((size, size, 3)).astype(np.float32)

    # Hillshade from the elevation gradient, lit from the north-west.
    dy, dx = np.gradient(elevation * size / 24)
    shade = np.clip(0.85 + 0.25 * (-dx - dy) / np.sqrt(1 + dx**2 + dy**2), 0.5, 1.2)[..., None]

    mix = (1 / (1 + np.exp(-1.5 * vegetation)))[..., None]  # 0 dense canopy .. 1 meadow
    terrain = (1 - mix) * _VEGETATION + mix * _MEADOW

    mask = np.zeros((size, size), dtype=bool)
    for _ in range(rng.integers(num_scars[0], num_scars[1] + 1)):
        mask |= _scar(rng, size, roughness)
    soil = _SOIL * (1 + 0.08 * roughness[..., None])
    edge = _soften(mask.astype(np.float32))[..., None]  # a 1-2 px transition, as real scar edges
    image = ((1 - edge) * terrain + edge * soil) * shade + 6 * grain
    return np.clip(image, 0, 255).astype(np.uint8), mask.astype(np.uint8)


def _soften(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, 1, mode="edge")
    return sum(padded[1 + dy : padded.shape[0] - 1 + dy, 1 + dx : padded.shape[1] - 1 + dx]
               for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9  # fmt: skip


def load_synthetic(
    num_samples: int = 32,
    image_size: int = 256,
    seed: int = 0,
    splits: Sequence[float] = DEFAULT_FRACTIONS,
    num_scars: tuple[int, int] = (1, 4),
    cache_dir: str | Path | None = None,
) -> DatasetDict:
    """A synthetic landslide `DatasetDict` with the loaders' features, for pipelines and tests.

    Features:
        image (Image, RGB), mask (Image, 0/1), id ("synthetic-0003").

    Format:
        `num_samples` scenes of `make_synthetic_scene(image_size, (seed, i))`, split by the
        `splits` fractions (train, validation, test), in id order. Synthetic, not real imagery.

    Classes:
        0 background, 1 landslide scar.

    Citation:
        None: generated here; cite real datasets for results.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    if len(splits) != len(SPLIT_NAMES):
        raise ValueError(f"splits must give train, validation and test fractions, got {tuple(splits)}")
    rows_by_split, start = {}, 0
    for name, count in zip(SPLIT_NAMES, split_sizes(num_samples, splits)):
        rows_by_split[name] = [(index, image_size, seed, tuple(num_scars)) for index in range(start, start + count)]
        start += count
    fingerprint = ["synthetic", num_samples, image_size, seed, list(splits), list(num_scars)]
    return build_dataset_dict(rows_by_split, _make_example, image_folder_features(), cache_dir, fingerprint)


def _make_example(row: tuple[int, int, int, tuple[int, int]]) -> dict:
    index, image_size, seed, num_scars = row
    image, mask = make_synthetic_scene(image_size, seed=(seed, index), num_scars=num_scars)
    return {"image": encode_png(image), "mask": encode_png(mask), "id": f"synthetic-{index:04d}"}
