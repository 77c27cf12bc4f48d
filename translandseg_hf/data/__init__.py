"""Landslide datasets as Hugging Face `DatasetDict`s, and their lazy preprocessing for SAM."""

from ._io import (
    SPLIT_SCHEMES,
    DatasetError,
    SkippedItem,
    SkippedItemsWarning,
)
from .splits import seeded_split, translandseg_split
from .bijie import load_bijie
from .image_folder import load_image_folder
from .named import DATASET_NAMES, dataset_contract, folder_paths, load_named_dataset
from .landslide4sense import LANDSLIDE4SENSE_MEAN, LANDSLIDE4SENSE_STD, landslide4sense_rgb, load_landslide4sense
from .synthetic import load_synthetic, make_synthetic_scene
from .transforms import ColorJitter, SamTransform, collate_fn, prepare_dataset

__all__ = [
    "DATASET_NAMES",
    "load_named_dataset",
    "dataset_contract",
    "folder_paths",
    "LANDSLIDE4SENSE_MEAN",
    "LANDSLIDE4SENSE_STD",
    "SPLIT_SCHEMES",
    "ColorJitter",
    "DatasetError",
    "SamTransform",
    "SkippedItem",
    "SkippedItemsWarning",
    "collate_fn",
    "landslide4sense_rgb",
    "load_bijie",
    "load_image_folder",
    "load_landslide4sense",
    "load_synthetic",
    "make_synthetic_scene",
    "prepare_dataset",
    "seeded_split",
    "translandseg_split",
]
