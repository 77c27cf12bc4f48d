"""The Bijie landslide dataset (Ji et al. 2020) as a Hugging Face `DatasetDict`.

Citation:
    Ji, S., Yu, D., Shen, C., Li, W., Xu, Q. (2020). Landslide detection from an open satellite
    imagery and digital elevation model dataset using attention boosted convolutional neural
    networks. Landslides 17, 1337-1352.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import DatasetDict, Features, Image, Value

from ._io import (
    DEFAULT_SEED,
    IMAGE_EXTENSIONS,
    DatasetError,
    ErrorPolicy,
    binarize_mask,
    load_validated,
    check_8bit,
    check_not_turned,
    check_same_size,
    dataset_root,
    encode_png,
    file_signature,
    image_reference,
    index_by_stem,
    list_files,
    lookup_stem,
    open_image,
)
from .splits import assign_splits

LANDSLIDE = "landslide"
NON_LANDSLIDE = "non-landslide"
HUB_PATTERNS = [f"{LANDSLIDE}/*", f"{NON_LANDSLIDE}/*"]  # what a Hub dataset id's repository gives the loader
GROUND_RESOLUTION = 0.8  # metres per pixel of the TripleSat imagery (Ji et al. 2020)
_LAYOUT = "landslide/{image,mask,dem}/dfNNN.png and non-landslide/{image,dem}/"


@dataclass
class _BijieItem:
    source: str
    stem: str
    image: Path
    mask: Path | None
    dem: Path | None
    expected_mask: Path
    expected_dem: Path

    @property
    def key(self) -> str:
        """Split key: stems may repeat across landslide/ and non-landslide/, source/stem cannot."""
        return f"{self.source}/{self.stem}"


def bijie_features(include_dem: bool = False) -> Features:
    features = {"image": Image(mode="RGB"), "mask": Image(), "id": Value("string"), "source": Value("string")}
    if include_dem:
        features["dem"] = Image()
    return Features(features)


def load_bijie(
    root: str | Path,
    split: str = "default",
    include_non_landslide: bool = False,
    split_file: str | Path | None = None,
    include_dem: bool = False,
    on_error: str = "raise",
    seed: int = DEFAULT_SEED,
    cache_dir: str | Path | None = None,
    skipped: list | None = None,
) -> DatasetDict:
    """Load the Bijie landslide dataset from its own folder layout: `root` is the folder, or a Hub dataset id whose
    files are downloaded once, or read from the local Hub cache, offline too.

    Features:
        image (Image, RGB), mask (Image, 0/1), id (file stem, e.g. "df001"), source ("landslide" or
        "non-landslide"), and dem (Image, as stored) with `include_dem=True`. Stems can repeat
        across the two sources, so (source, id) identifies a sample.

    Format:
        `landslide/{image,mask,dem,polygon_coordinate}/dfNNN.png` and `non-landslide/{image,dem}/`;
        TripleSat 0.8 m images of varying size (61x61 to about 350x300 px); masks single-channel
        0/255. Non-landslide images (`include_non_landslide=True`) get all-zero masks. The DEM's
        size is not checked against the image.

    Classes:
        0 background, 1 landslide.

    Splits (`split`):
        "default": a seeded (`seed`) 70/10/20 train/validation/test split of the samples sorted
        by "source/stem" key; "translandseg": the authors' rule (`translandseg_split`), train and
        validation only; "train": everything in train. An existing `split_file` (JSON: split
        name -> list of keys "landslide/df001", or bare stems where unambiguous) defines the split
        instead; a missing one is written with the computed split, so runs and papers can share
        it. It is never written inside `root`. Splits are drawn over every file found, before any
        is skipped, so a bad file does not reshuffle the others.

    Errors:
        Missing, corrupt or truncated files, an image that is not 8-bit, a mask whose size
        differs from its image, or an image without a mask raise `DatasetError` naming the file;
        with `on_error="skip"` they are left out, listed in one `SkippedItemsWarning` and appended
        to `skipped` (a list) when given.
    """
    root = dataset_root(root, "Bijie dataset folder", HUB_PATTERNS)
    policy = ErrorPolicy(on_error, skipped)
    sources = [LANDSLIDE, NON_LANDSLIDE] if include_non_landslide else [LANDSLIDE]
    items = [item for source in sources for item in _discover(root, source, include_dem)]

    aliases: dict[str, list[str]] = {}
    for item in items:
        aliases.setdefault(item.stem, []).append(item.key)
    assignment = assign_splits([item.key for item in items], split, seed, split_file, root, aliases)

    return load_validated(
        root, items, lambda item: _validate(item, include_dem), lambda item: assignment.get(item.key),
        lambda item, size: (item, size, include_dem), _make_example, bijie_features(include_dem), cache_dir,
        lambda valid: ["bijie", include_dem, file_signature(p for i in valid for p in (i.image, i.mask, i.dem))],
        policy, "Bijie", "samples",
    )


def _discover(root: Path, source: str, include_dem: bool) -> list[_BijieItem]:
    image_dir = root / source / "image"
    if not image_dir.is_dir():
        raise DatasetError(root, f"no {source}/image/ folder; expected the Bijie layout {_LAYOUT}")
    images = list_files(image_dir, IMAGE_EXTENSIONS)
    if not images:
        raise DatasetError(image_dir, "no images (.png, .jpg, .tif) in the folder")
    masks = _folder_index(root, f"{source}/mask") if source == LANDSLIDE else {}
    dems = _folder_index(root, f"{source}/dem") if include_dem else {}
    return [
        _BijieItem(
            source=source,
            stem=image.stem,
            image=image,
            mask=lookup_stem(masks, image.stem, root / source / "mask") if source == LANDSLIDE else None,
            dem=lookup_stem(dems, image.stem, root / source / "dem") if include_dem else None,
            expected_mask=root / source / "mask" / image.name,
            expected_dem=root / source / "dem" / image.name,
        )
        for image in images
    ]


def _folder_index(root: Path, relative: str) -> dict[str, list[Path]]:
    folder = root / relative
    if not folder.is_dir():
        raise DatasetError(root, f"no {relative}/ folder; expected the Bijie layout {_LAYOUT}")
    return index_by_stem(list_files(folder, IMAGE_EXTENSIONS))


def _validate(item: _BijieItem, include_dem: bool) -> tuple[int, int]:
    """Decode every file of the sample once; return the image's (width, height)."""
    image = open_image(item.image)
    check_8bit(image, item.image)
    check_not_turned(image, item.image)
    if item.source == LANDSLIDE:
        if item.mask is None:
            raise DatasetError(item.image, f"image has no mask; expected {item.expected_mask}")
        check_same_size(image, item.image, open_image(item.mask), item.mask)
    if include_dem:
        if item.dem is None:
            raise DatasetError(item.image, f"image has no DEM; expected {item.expected_dem}")
        check_not_turned(open_image(item.dem), item.dem)
    return image.size


def _make_example(row: tuple[_BijieItem, tuple[int, int], bool]) -> dict:
    item, (width, height), include_dem = row
    if item.mask is None:  # non-landslide scenes contain no landslide pixel
        mask = np.zeros((height, width), dtype=np.uint8)
    else:
        mask = binarize_mask(open_image(item.mask))
    example = {"image": image_reference(item.image), "mask": encode_png(mask), "id": item.stem, "source": item.source}
    if include_dem:
        example["dem"] = image_reference(item.dem)
    return example
