"""Any folder of images with masks (e.g. the Sichuan dataset) as a Hugging Face `DatasetDict`.

Citation (Sichuan):
    Zeng, C., Cao, Z., Su, F., Zeng, Z., Yu, C. (2021). A dataset of high-precision aerial
    imagery and interpretation of landslide and debris flow disaster in Sichuan and
    surrounding areas. Science Data Bank, doi:10.11922/sciencedb.j00001.00222.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

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
    encode_png,
    file_signature,
    image_reference,
    index_by_stem,
    list_files,
    lookup_stem,
    open_image,
    require_dir,
)
from .splits import assign_splits

# How an image's stem becomes its mask's stem: None (the same stem), a format string with
# "{stem}" ("{stem}_mask"), a (regex, replacement) pair ((r"^Landslide", "LandslideLabel")), or a callable.
MaskName = Union[None, str, Sequence[str], Callable[[str], str]]
MaskColor = Union[None, int, Sequence[int]]


@dataclass
class _Pair:
    stem: str
    image: Path
    mask: Path | None
    expected_mask: str | None  # None: no masks folder, the pair is unlabelled


def image_folder_features(labelled: bool = True) -> Features:
    features = {"image": Image(mode="RGB"), "mask": Image(), "id": Value("string")}
    if not labelled:
        del features["mask"]
    return Features(features)


def load_image_folder(
    images_dir: str | Path,
    masks_dir: str | Path | None,
    mask_name: MaskName = None,
    mask_color: MaskColor = None,
    split: str | None = None,
    split_file: str | Path | None = None,
    seed: int = DEFAULT_SEED,
    on_error: str = "raise",
    cache_dir: str | Path | None = None,
    skipped: list | None = None,
) -> DatasetDict:
    """Load image/mask pairs matched by file stem, e.g. your own imagery or the Sichuan dataset.

    Features:
        image (Image, RGB), mask (Image, 0/1), id (image file stem). Without `masks_dir` (images
        to predict on) there is no mask column.

    Format:
        Images: PNG, JPEG, TIFF or GeoTIFF (read with rasterio; 8-bit, 1 band or the first 3),
        directly in `images_dir`. Each mask is the file in `masks_dir` whose stem is
        `mask_name` applied to the image's stem (see `MaskName`), in any of those formats.
        Sichuan: `load_image_folder("sichuan/images", "sichuan/masks",
        mask_name=(r"^Landslide", "LandslideLabel"), mask_color=(255, 0, 255))`.

    Classes:
        0 background, 1 landslide. Without `mask_color`, any non-zero pixel is landslide (grey
        0/1 or 0/255, palette index > 0, any non-black RGB colour); with it, only pixels of that
        grey value or RGB colour. Prefer PNG masks: JPEG's compression noise turns black pixels
        near edges non-zero.

    Splits (`split`):
        "default" (the default with masks, as for Bijie): the seeded (`seed`) 70/10/20
        train/validation/test split of `seeded_split` by each stem's hash (12 pairs: 8/1/3);
        "translandseg": the authors' rule; "train" (the default without masks): everything in
        one train split, which with masks warns that nothing is scored. An existing `split_file`
        (JSON: split name -> list of ids) defines the split instead; a missing one is written
        with the computed split (never inside `images_dir`).

    Errors:
        An unreadable or truncated file, an image that is not 8-bit, a missing mask, or a mask
        whose size differs from its image raise `DatasetError` naming the files; with
        `on_error="skip"` those pairs are left out, listed in one `SkippedItemsWarning` and
        appended to `skipped` (a list) when given.
    """
    images_dir = require_dir(images_dir, "images folder")
    masks_dir = None if masks_dir is None else require_dir(masks_dir, "masks folder")
    to_mask_stem = _mask_stem_function(mask_name)
    _check_color(mask_color)
    pairs = _pair(images_dir, masks_dir, to_mask_stem)
    labelled = masks_dir is not None
    split = split or ("default" if labelled else "train")  # images to predict on are not scored: one split
    assignment = assign_splits([pair.stem for pair in pairs], split, seed, split_file, images_dir,
                               warn_train_only=labelled)

    policy = ErrorPolicy(on_error, skipped)
    return load_validated(
        images_dir, pairs, _validate, lambda pair: assignment.get(pair.stem), lambda pair, _: (pair, mask_color),
        _make_example, image_folder_features(labelled=labelled), cache_dir,
        lambda valid: ["image_folder", mask_color, file_signature(p for i in valid for p in (i.image, i.mask))],
        policy, f"image folder {images_dir}", "image/mask pairs",
    )


def _mask_stem_function(mask_name: MaskName) -> Callable[[str], str]:
    if mask_name is None:
        return lambda stem: stem
    if callable(mask_name):
        return mask_name
    if isinstance(mask_name, str):
        if "{stem}" not in mask_name:
            raise ValueError(f"mask_name {mask_name!r} must contain '{{stem}}', e.g. '{{stem}}_mask'")
        return lambda stem: mask_name.format(stem=stem)
    if len(mask_name) == 2 and all(isinstance(part, str) for part in mask_name):
        pattern, replacement = re.compile(mask_name[0]), mask_name[1]
        return lambda stem: pattern.sub(replacement, stem, count=1)
    raise ValueError(
        f"mask_name must be None, a format string with '{{stem}}', a (regex, replacement) pair or a "
        f"callable, got {mask_name!r}"
    )


def _check_color(color: MaskColor) -> None:
    valid_grey = isinstance(color, int) and 0 <= color <= 255
    valid_rgb = not isinstance(color, (int, str)) and color is not None and len(color) == 3
    if color is not None and not (valid_grey or (valid_rgb and all(0 <= int(c) <= 255 for c in color))):
        raise ValueError(f"mask_color must be None, a grey value 0-255 or an (R, G, B) triple, got {color!r}")


def _pair(images_dir: Path, masks_dir: Path | None, to_mask_stem: Callable[[str], str]) -> list[_Pair]:
    images = list_files(images_dir, IMAGE_EXTENSIONS)
    if not images:
        raise DatasetError(images_dir, f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the folder")
    image_index = index_by_stem(images)
    for stem in image_index:
        lookup_stem(image_index, stem, images_dir)  # two images with one stem would share an id
    if masks_dir is None:
        return [_Pair(image.stem, image, None, None) for image in images]
    mask_index = index_by_stem(list_files(masks_dir, IMAGE_EXTENSIONS))
    if not mask_index:
        raise DatasetError(masks_dir, f"no masks ({', '.join(IMAGE_EXTENSIONS)}) in the folder")
    pairs = []
    for image in images:
        mask_stem = to_mask_stem(image.stem)
        mask = lookup_stem(mask_index, mask_stem, masks_dir)
        pairs.append(_Pair(image.stem, image, mask, f"{masks_dir / mask_stem}.png (or .jpg, .tif)"))
    return pairs


def _validate(pair: _Pair) -> bool:
    image = open_image(pair.image)
    check_8bit(image, pair.image)
    check_not_turned(image, pair.image)
    if pair.expected_mask is not None:
        if pair.mask is None:
            raise DatasetError(pair.image, f"image has no mask; expected {pair.expected_mask}")
        check_same_size(image, pair.image, open_image(pair.mask), pair.mask)
    return True


def _make_example(row: tuple[_Pair, MaskColor]) -> dict:
    pair, mask_color = row
    example = {"image": image_reference(pair.image), "id": pair.stem}
    if pair.mask is not None:
        example["mask"] = encode_png(binarize_mask(open_image(pair.mask), mask_color))
    return example
