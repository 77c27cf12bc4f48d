"""Load any supported dataset by name, so recipes and users share one way to pick data."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from datasets import DatasetDict

from ..choices import DATASET_NAMES
from ..hub import check_data_dir, is_local, resolve_dataset_folder
from ._io import require_dir
from .bijie import GROUND_RESOLUTION as BIJIE_GROUND_RESOLUTION
from .bijie import load_bijie
from .image_folder import load_image_folder
from .landslide4sense import RGB_CONTRACT, load_landslide4sense
from .synthetic import load_synthetic



def load_named_dataset(
    name: str, data_dir: Optional[str] = None, split_file: Optional[str] = None, **options
) -> DatasetDict:
    """`bijie`, `landslide4sense`, `folder` (images and masks found by `folder_paths`) or `synthetic`; `data_dir` is a
    folder or a Hub dataset id; `options` go to the dataset's loader."""
    if name not in DATASET_NAMES:
        raise ValueError(f"Unknown dataset {name!r}; valid datasets are {list(DATASET_NAMES)}.")
    if name == "folder":
        images_dir, masks_dir = folder_paths(data_dir, options.pop("images_dir", None), options.pop("masks_dir", None))
        return load_image_folder(images_dir, masks_dir, split_file=split_file, **options)
    check_data_dir(name, data_dir)
    if name == "bijie":
        return load_bijie(data_dir, split_file=split_file, **options)
    if name == "landslide4sense":
        return load_landslide4sense(data_dir, **options)
    return load_synthetic(**options)


def folder_paths(
    data_dir: Optional[str], images_dir: Optional[str] = None, masks_dir: Optional[str] = None
) -> tuple[Path, Path]:
    """The `folder` dataset's images and masks folders, which must exist. With `data_dir` (a folder or a Hub dataset
    id): `images_dir`/`masks_dir` relative to it (an absolute path stays), by default `images` and `masks`. Without:
    both must be given, absolute or relative to the current folder."""
    if data_dir is None:
        if not (images_dir and masks_dir):
            raise ValueError("Dataset 'folder' needs data_dir (holding images/ and masks/), or both images_dir and "
                             "masks_dir (--images_dir, --masks_dir: absolute, or relative to the current folder).")
        return require_dir(images_dir, "images folder"), require_dir(masks_dir, "masks folder")
    root = check_data_dir("folder", data_dir) if is_local(data_dir) else (
        resolve_dataset_folder(data_dir, what="dataset 'folder'"))
    return _under(root, images_dir, "images", data_dir), _under(root, masks_dir, "masks", data_dir)


def _under(root: Path, given: Optional[str], default: str, data_dir: str) -> Path:
    relative = bool(given) and not Path(given).expanduser().is_absolute()
    note = f" ({default}_dir {given!r} is read relative to data_dir {data_dir})" if relative else ""
    return require_dir(root / Path(given or default).expanduser(), f"{default} folder", note)


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
