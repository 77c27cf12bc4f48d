"""Load any supported dataset by name, so recipes and users share one way to pick data."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from datasets import DatasetDict

from ..choices import DATASET_NAMES
from ..hub import check_data_dir, is_local, resolve_dataset_folder
from .bijie import GROUND_RESOLUTION as BIJIE_GROUND_RESOLUTION
from .bijie import load_bijie
from .image_folder import load_image_folder
from .landslide4sense import RGB_CONTRACT, load_landslide4sense
from .synthetic import load_synthetic



def load_named_dataset(
    name: str, data_dir: Optional[str] = None, split_file: Optional[str] = None, **options
) -> DatasetDict:
    """`bijie`, `landslide4sense`, `folder` (`data_dir/images` + `data_dir/masks` unless `images_dir`/`masks_dir`
    are given) or `synthetic`; `data_dir` is a folder or a Hub dataset id; `options` go to the dataset's loader."""
    if name not in DATASET_NAMES:
        raise ValueError(f"Unknown dataset {name!r}; valid datasets are {list(DATASET_NAMES)}.")
    check_data_dir(name, data_dir)
    if name == "bijie":
        return load_bijie(data_dir, split_file=split_file, **options)
    if name == "landslide4sense":
        return load_landslide4sense(data_dir, **options)
    if name == "folder":
        root = Path(data_dir) if is_local(data_dir) else resolve_dataset_folder(data_dir, what="dataset 'folder'")
        images_dir = options.pop("images_dir", root / "images")
        masks_dir = options.pop("masks_dir", root / "masks")
        return load_image_folder(images_dir, masks_dir, split_file=split_file, **options)
    return load_synthetic(**options)


def dataset_contract(name: str) -> dict:
    """What a dataset's images are, for a trained model's input contract: bands, scaling, and (where fixed) ground
    resolution and tile size. Bijie and folders hold 8-bit RGB images; Landslide4Sense's RGB is made from bands."""
    if name not in DATASET_NAMES:
        raise ValueError(f"Unknown dataset {name!r}; valid datasets are {list(DATASET_NAMES)}.")
    if name == "landslide4sense":
        return dict(RGB_CONTRACT)
    contract = dict(bands=[1, 2, 3], scale="none")
    if name == "bijie":
        contract["ground_resolution"] = BIJIE_GROUND_RESOLUTION
    return contract
