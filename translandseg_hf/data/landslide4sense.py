"""Landslide4Sense (Ghorbanzadeh et al. 2022) as a Hugging Face `DatasetDict`, from its HDF5 files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from datasets import Array3D, DatasetDict, Features, Image, Value

from ..image_processing import TransLandSegImageProcessor
from ..geo.sentinel2.bands import landslide4sense_source
from ._io import (
    DatasetError,
    ErrorPolicy,
    load_validated,
    check_finite,
    check_real,
    dataset_root,
    encode_png,
    file_signature,
    natural_key,
    read_h5_array,
)

PATCH_SHAPE = (128, 128, 14)  # channels last: Sentinel-2 B1-B12, ALOS PALSAR slope, DEM
RGB_BANDS = (3, 2, 1)  # B4, B3, B2
BAND_NAMES = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12", "slope", "DEM")
GROUND_RESOLUTION = 10.0  # metres per pixel: Sentinel-2's 10 m bands (the others resampled to them)
# The input contract of a model trained on the RGB patches: a GeoTIFF of the 14 bands is read the same way.
RGB_CONTRACT = dict(bands=[b + 1 for b in RGB_BANDS], scale="divisor", divisor=10.0, tile_size=PATCH_SHAPE[0],
                    ground_resolution=GROUND_RESOLUTION, **landslide4sense_source(RGB_BANDS))
# Per-band mean and std of the training patches, from the competition baseline
# (iarai/Landslide4Sense-2022, dataset/landslide_dataset.py), which normalises with them.
LANDSLIDE4SENSE_MEAN = (
    -0.4914, -0.3074, -0.1277, -0.0625, 0.0439, 0.0803, 0.0644,
    0.0802, 0.3000, 0.4082, 0.0823, 0.0516, 0.3338, 0.7819,
)  # fmt: skip
LANDSLIDE4SENSE_STD = (
    0.9325, 0.8775, 0.8860, 0.8869, 0.8857, 0.8418, 0.8354,
    0.8491, 0.9061, 1.6072, 0.8848, 0.9232, 0.9018, 1.2913,
)  # fmt: skip

# split -> (image folder, mask folder), relative to the root, in the two published layouts.
_ORIGINAL_FOLDERS = {"train": "TrainData", "validation": "ValidData", "test": "TestData"}
_ORIGINAL_LAYOUT = {split: (f"{d}/img", f"{d}/mask") for split, d in _ORIGINAL_FOLDERS.items()}
_HUB_LAYOUT = {s: (f"images/{s}", f"annotations/{s}") for s in ("train", "validation", "test")}
# What a Hub dataset id's repository gives the loader: the patches of either layout, not its archives.
HUB_PATTERNS = [f"{folder}/*.h5" for layout in (_ORIGINAL_LAYOUT, _HUB_LAYOUT)
                for pair in layout.values() for folder in pair]


@dataclass
class _Patch:
    stem: str
    image: Path
    mask: Path | None


def landslide4sense_rgb(patch: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from a (H, W, 14) patch as the TransLandSeg authors made it: B4, B3, B2 as
    `img / 10 * 255`, but clipped to 0-255 first (their `astype(uint8)` wraps values above 10)."""
    scaler = TransLandSegImageProcessor(**RGB_CONTRACT).fixed_scaler()  # the scaling `translandseg predict` applies
    return scaler(np.moveaxis(patch[..., list(RGB_BANDS)], -1, 0)).transpose(1, 2, 0).astype(np.uint8)


def load_landslide4sense(
    root: str | Path,
    bands: str | Sequence[int] = "rgb",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    on_error: str = "raise",
    cache_dir: str | Path | None = None,
    skipped: list | None = None,
) -> DatasetDict:
    """Load Landslide4Sense from either published folder layout: `root` is the folder, or a Hub dataset id
    (`"ibm-nasa-geospatial/Landslide4sense"`) whose h5 patches are downloaded once, or read from the local Hub
    cache, offline too.

    Features:
        image: with `bands="rgb"`, an RGB Image made as the paper did (`landslide4sense_rgb`);
        with a list of band indices (0-13), an `Array3D` (128, 128, len(bands)) float32, channels
        last, the dataset's own values: `TransLandSegImageProcessor` (its `band_mean` / `band_std`)
        is the one place they are scaled, in training as in prediction. `mean` / `std` are no
        longer accepted here and raise a `ValueError`.
        mask (Image, 0/1), absent for a split whose masks are not there; id ("image_12").

    Format:
        Original: `TrainData|ValidData|TestData/img/image_N.h5` (key `img`, 128x128x14 float32,
        Sentinel-2 B1-B12, slope, DEM) and `.../mask/mask_N.h5` (key `mask`, 128x128, 0/1).
        Hub mirror: `images/{train,validation,test}/image_N.h5` and
        `annotations/{train,validation,test}/mask_N.h5`. Splits are train/validation/test
        (3799 / 245 / 800 patches), sorted numerically (image_10 after image_9).

    Classes:
        0 background, 1 landslide (any non-zero mask value).

    Errors:
        A wrong layout, an empty folder, an unreadable or truncated file, a missing `img`/`mask`
        key, a wrong shape, values that are not real numbers (complex, strings), NaN or infinite
        values in the bands used or in the mask, or an image without its mask raise `DatasetError`
        naming the file; with
        `on_error="skip"` the bad patches are left out, listed in one `SkippedItemsWarning` and
        appended to `skipped` (a list) when given.

    Citation:
        Ghorbanzadeh, O., Xu, Y., Ghamisi, P., Kopp, M., Kreil, D. (2022). Landslide4Sense:
        Reference benchmark data and deep learning models for landslide detection. IEEE
        Transactions on Geoscience and Remote Sensing 60, 1-17.
    """
    root = dataset_root(root, "Landslide4Sense folder", HUB_PATTERNS)
    band_list = _check_bands(bands, mean, std)
    policy = ErrorPolicy(on_error, skipped)
    folders = _find_layout(root)
    patches_by_split = {split: _discover(img_dir, mask_dir) for split, (img_dir, mask_dir) in folders.items()}
    split_of = {patch.image: split for split, patches in patches_by_split.items() for patch in patches}
    labelled = {split: patches[0].mask is not None for split, patches in patches_by_split.items()}
    return load_validated(
        root, [patch for patches in patches_by_split.values() for patch in patches],
        lambda patch: _validate(patch, band_list), lambda patch: split_of[patch.image],
        lambda patch, _: (patch, band_list), _make_example, lambda split: _features(band_list, labelled[split]),
        cache_dir,  # "raw": the caches of the loader that normalised are never reused
        lambda valid: ["landslide4sense", "raw", band_list,
                       file_signature(p for i in valid for p in (i.image, i.mask))],
        policy, "Landslide4Sense", "patches",
    )


def _check_bands(bands, mean, std) -> list[int] | None:
    """The chosen band indices (None for the paper's RGB); the loader returns the dataset's values, so `mean` /
    `std` are refused: the image processor is the only normaliser."""
    if mean is not None or std is not None:
        raise ValueError(
            "load_landslide4sense returns the dataset's own values and no longer takes mean/std; normalise with "
            "TransLandSegImageProcessor(band_mean=, band_std=) (its pixels_from_bands), as training and predict do"
        )
    if isinstance(bands, str):
        if bands != "rgb":
            raise ValueError(f"bands must be 'rgb' or a list of band indices 0-13, got {bands!r}")
        return None
    band_list = [int(b) for b in bands]
    if not band_list or len(set(band_list)) != len(band_list) or not all(0 <= b < PATCH_SHAPE[2] for b in band_list):
        raise ValueError(f"bands must be distinct indices in 0-{PATCH_SHAPE[2] - 1}, got {list(bands)}")
    return band_list


def _find_layout(root: Path) -> dict[str, tuple[Path, Path]]:
    layouts = []
    for layout in (_ORIGINAL_LAYOUT, _HUB_LAYOUT):
        found = {split: (root / img, root / mask) for split, (img, mask) in layout.items() if (root / img).is_dir()}
        if found:
            layouts.append(found)
    if len(layouts) != 1:
        problem = "holds both the original and the Hub layout" if layouts else "has no Landslide4Sense image folder"
        raise DatasetError(
            root,
            f"{problem}; expected TrainData|ValidData|TestData/img/image_N.h5 (+ .../mask/mask_N.h5) "
            "or images/{train,validation,test}/image_N.h5 (+ annotations/{split}/mask_N.h5)",
        )
    return layouts[0]


def _discover(img_dir: Path, mask_dir: Path) -> list[_Patch]:
    images = sorted((p for p in img_dir.glob("*.h5") if p.is_file()), key=lambda p: natural_key(p.name))
    if not images:
        raise DatasetError(img_dir, "no .h5 image patches in the folder; expected image_N.h5")
    labelled = mask_dir.is_dir() and any(mask_dir.glob("*.h5"))
    # A split without any mask (the competition's test set) is unlabelled, not broken.
    # image_N.h5 -> mask_N.h5, the baseline's own rule.
    return [_Patch(p.stem, p, mask_dir / p.name.replace("image", "mask") if labelled else None) for p in images]


def _validate(patch: _Patch, band_list: list[int] | None) -> bool:
    """Read the patch and its mask once: shape and dtype from the HDF5 header, then finite values in the bands
    used (a NaN in an unused band does not matter)."""
    image = read_h5_array(patch.image, "img", _patch_check(patch.image))
    used = list(RGB_BANDS) if band_list is None else band_list
    check_finite(patch.image, "img", image[..., used], [BAND_NAMES[b] for b in used])
    if patch.mask is not None:
        if not patch.mask.is_file():
            raise DatasetError(patch.image, f"patch has no mask; expected {patch.mask}")
        mask = read_h5_array(patch.mask, "mask", _mask_check(patch.mask))
        check_finite(patch.mask, "mask", mask)
    return True


def _patch_check(path: Path):
    def check(dataset) -> None:
        if dataset.shape != PATCH_SHAPE:
            raise DatasetError(path, f"'img' has shape {dataset.shape}; expected {PATCH_SHAPE} (channels last)")
        check_real(path, "img", dataset.dtype)

    return check


def _mask_check(path: Path):
    def check(dataset) -> None:
        if tuple(side for side in dataset.shape if side != 1) != PATCH_SHAPE[:2]:  # (128, 128) or (128, 128, 1)
            raise DatasetError(path, f"'mask' has shape {dataset.shape}; expected {PATCH_SHAPE[:2]} like its image")
        check_real(path, "mask", dataset.dtype)

    return check


def _features(band_list: list[int] | None, labelled: bool) -> Features:
    if band_list is None:
        image = Image(mode="RGB")
    else:
        image = Array3D(shape=(*PATCH_SHAPE[:2], len(band_list)), dtype="float32")
    features = {"image": image, "mask": Image(), "id": Value("string")}
    if not labelled:
        del features["mask"]
    return Features(features)


def _make_example(row: tuple) -> dict:
    patch, band_list = row
    image = read_h5_array(patch.image, "img")
    if band_list is None:
        example = {"image": encode_png(landslide4sense_rgb(image))}
    else:
        example = {"image": image[..., band_list].astype(np.float32)}  # (H, W, C), the dataset's values
    if patch.mask is not None:
        mask = read_h5_array(patch.mask, "mask").squeeze()
        example["mask"] = encode_png((mask != 0).astype(np.uint8))
    example["id"] = patch.stem
    return example
