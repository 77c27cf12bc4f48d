"""Tiny datasets written for tests in the layouts the loaders read: Bijie's folders of PNGs and Landslide4Sense's
HDF5 patches (the published layout and the Hub mirror's)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from PIL import Image


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def scene(seed: int, height: int = 30, width: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A random RGB image and a 0/255 mask with a rectangle, of a non-square size."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    mask[5:15, 8:30] = 255
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8), mask


def write_bijie(root: Path, stems=("df001", "df002", "df003"), non_landslide=(), dem=False) -> Path:
    for index, stem in enumerate(stems):
        image, mask = scene(index, 30 + index, 40)
        write_png(root / "landslide/image" / f"{stem}.png", image)
        write_png(root / "landslide/mask" / f"{stem}.png", mask)
        if dem:
            write_png(root / "landslide/dem" / f"{stem}.png", image[..., 0])
    for index, stem in enumerate(non_landslide):
        image, _ = scene(100 + index, 25, 35)
        write_png(root / "non-landslide/image" / f"{stem}.png", image)
        if dem:
            write_png(root / "non-landslide/dem" / f"{stem}.png", image[..., 0])
    return root


ORIGINAL_FOLDERS = {"train": "TrainData", "validation": "ValidData", "test": "TestData"}
L4S_FOLDERS = {
    "original": {split: (f"{d}/img", f"{d}/mask") for split, d in ORIGINAL_FOLDERS.items()},
    "hub": {split: (f"images/{split}", f"annotations/{split}") for split in ORIGINAL_FOLDERS},
}


def write_h5(path: Path, key: str, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.create_dataset(key, data=array)
    return path


def write_l4s(root: Path, layout: str, counts=None, labelled=("train", "validation")) -> Path:
    """Patches in the exact published layout; values from -2 to 14 exercise the RGB clipping."""
    counts = counts or {"train": 3, "validation": 2, "test": 2}
    rng = np.random.default_rng(0)
    for split, count in counts.items():
        img_dir, mask_dir = L4S_FOLDERS[layout][split]
        for n in range(1, count + 1):
            write_h5(root / img_dir / f"image_{n}.h5", "img", rng.uniform(-2, 14, (128, 128, 14)).astype(np.float32))
            if split in labelled:
                write_h5(root / mask_dir / f"mask_{n}.h5", "mask", (rng.random((128, 128)) > 0.7).astype(np.uint8))
    return root
