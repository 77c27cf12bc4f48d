"""Loaders, splits, bad input and SAM transforms, on the shared real samples and on tiny written files."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import datasets
import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from translandseg_hf.data import (
    LANDSLIDE4SENSE_MEAN,
    LANDSLIDE4SENSE_STD,
    DatasetError,
    SamTransform,
    SkippedItemsWarning,
    collate_fn,
    load_bijie,
    load_image_folder,
    load_landslide4sense,
    load_synthetic,
    make_synthetic_scene,
    prepare_dataset,
)
from translandseg_hf.data.splits import seeded_split

from translandseg_hf.image_processing import TransLandSegImageProcessor

from conftest import SHARED_DATA, requires_shared_data
from helpers.datasets import L4S_FOLDERS, scene, write_bijie, write_h5, write_l4s, write_png
from helpers.rasters import write_raster

datasets.disable_progress_bars()


# --- tiny datasets (written by helpers.datasets) ------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def assert_valid_segmentation(dataset_dict: datasets.DatasetDict, rows: int) -> None:
    assert sum(split.num_rows for split in dataset_dict.values()) == rows
    for split in dataset_dict.values():
        assert {"image", "mask", "id"} <= set(split.features)
        assert isinstance(split.features["image"], datasets.Image)
        for example in split:
            mask = np.asarray(example["mask"])
            assert set(np.unique(mask)) <= {0, 1}
            assert example["image"].size == example["mask"].size
            assert example["image"].mode == "RGB"


# --- loaders on real samples --------------------------------------------------------------------

REAL_SAMPLES = {
    "bijie": (lambda d, c: load_bijie(d / "bijie", cache_dir=c), 10),
    "sichuan": (
        lambda d, c: load_image_folder(
            d / "sichuan/images", d / "sichuan/masks", mask_name=(r"^Landslide", "LandslideLabel"),
            mask_color=(255, 0, 255), cache_dir=c,
        ),
        5,
    ),  # fmt: skip
    "landslide4sense-rgb": (
        lambda d, c: load_image_folder(d / "landslide4sense-rgb/image", d / "landslide4sense-rgb/label", cache_dir=c),
        10,
    ),
}


@requires_shared_data
@pytest.mark.parametrize("name", REAL_SAMPLES)
def test_real_samples_load(name, cache):
    load, rows = REAL_SAMPLES[name]
    dataset_dict = load(SHARED_DATA, cache)
    assert_valid_segmentation(dataset_dict, rows)
    masks = [np.asarray(m) for split in dataset_dict.values() for m in split["mask"]]
    assert sum(m.any() for m in masks) >= rows - 1  # Landslide4Sense sample 1 is all background


@requires_shared_data
def test_sichuan_magenta_becomes_landslide(cache):
    dataset_dict = REAL_SAMPLES["sichuan"][0](SHARED_DATA, cache)
    example = next(e for split in dataset_dict.values() for e in split if e["id"] == "Landslide001")
    rgb = np.asarray(Image.open(SHARED_DATA / "sichuan/masks/LandslideLabel001.png").convert("RGB"))
    expected = np.all(rgb == (255, 0, 255), axis=-1)
    np.testing.assert_array_equal(np.asarray(example["mask"]), expected.astype(np.uint8))


@requires_shared_data
def test_real_bijie_translandseg_split_follows_the_authors_rule(cache):
    dataset_dict = load_bijie(SHARED_DATA / "bijie", split="translandseg", cache_dir=cache)
    files = sorted(os.listdir(SHARED_DATA / "bijie/landslide/image"))
    indices = list(range(len(files)))
    np.random.seed(42)
    np.random.shuffle(indices)
    cut = int(np.floor(0.3 * len(files))) + 1
    assert sorted(dataset_dict["validation"]["id"]) == sorted(Path(files[i]).stem for i in indices[:cut])
    assert sorted(dataset_dict["train"]["id"]) == sorted(Path(files[i]).stem for i in indices[cut:])
    assert "test" not in dataset_dict


# --- Bijie --------------------------------------------------------------------------------------


def test_bijie_layout_with_non_landslide_and_dem(tmp_path, cache):
    root = write_bijie(tmp_path / "bijie", non_landslide=("df001", "df101"), dem=True)
    dataset_dict = load_bijie(root, split="train", include_non_landslide=True, include_dem=True, cache_dir=cache)
    train = dataset_dict["train"]
    assert set(train.features) == {"image", "mask", "id", "source", "dem"}
    assert_valid_segmentation(dataset_dict, 5)
    keys = [f"{s}/{i}" for s, i in zip(train["source"], train["id"])]
    assert len(set(keys)) == 5 and train["id"].count("df001") == 2  # stems collide across sources
    for example in train:
        assert (np.asarray(example["mask"]).any()) == (example["source"] == "landslide")
        assert example["dem"].size == example["image"].size


def test_bijie_default_split_is_seeded_and_shared_through_the_split_file(tmp_path, cache):
    root = write_bijie(tmp_path / "bijie", stems=[f"df{i:03d}" for i in range(20)])
    split_file = tmp_path / "splits/bijie.json"
    first = load_bijie(root, split_file=split_file, cache_dir=cache)
    keys = [f"landslide/df{i:03d}" for i in range(20)]  # the loader's keys: source/stem
    assert {name: sorted(f"landslide/{i}" for i in split["id"]) for name, split in first.items()} == seeded_split(keys)
    assert {name: split.num_rows for name, split in first.items()} == {"train": 16, "validation": 2, "test": 2}
    written = json.loads(split_file.read_text())
    assert sorted(written["test"]) == sorted(f"landslide/{i}" for i in first["test"]["id"])
    again = load_bijie(root, seed=42, cache_dir=tmp_path / "other-cache")
    assert {n: s["id"] for n, s in again.items()} == {n: s["id"] for n, s in first.items()}
    other_seed = load_bijie(root, seed=7, cache_dir=cache)
    assert other_seed["test"]["id"] != first["test"]["id"]


def test_user_split_file_takes_bare_or_full_ids(tmp_path, cache):
    root = write_bijie(tmp_path / "bijie")
    split_file = tmp_path / "mine.json"
    split_file.write_text(json.dumps({"train": ["df001", "landslide/df002"], "holdout": ["df003"]}))
    dataset_dict = load_bijie(root, split="translandseg", split_file=split_file, cache_dir=cache)
    assert dataset_dict["train"]["id"] == ["df001", "df002"] and dataset_dict["holdout"]["id"] == ["df003"]


def test_split_file_with_unknown_id_names_the_file(tmp_path, cache):
    root = write_bijie(tmp_path / "bijie")
    split_file = tmp_path / "bad.json"
    split_file.write_text(json.dumps({"train": ["df001", "df999"]}))
    with pytest.raises(DatasetError, match=r"bad\.json: 1 id\(s\) not found in the dataset: df999"):
        load_bijie(root, split_file=split_file, cache_dir=cache)


def test_split_file_is_never_written_into_the_dataset(tmp_path, cache):
    root = write_bijie(tmp_path / "bijie")
    with pytest.raises(ValueError, match=r"split\.json is inside the dataset folder"):
        load_bijie(root, split_file=root / "split.json", cache_dir=cache)


def test_translandseg_split_on_written_files(tmp_path, cache):
    stems = [f"df{i:03d}" for i in range(17)]
    dataset_dict = load_bijie(write_bijie(tmp_path / "b", stems=stems), split="translandseg", cache_dir=cache)
    indices = list(range(len(stems)))
    np.random.seed(42)
    np.random.shuffle(indices)
    cut = math.floor(0.3 * len(stems)) + 1
    assert dataset_dict["validation"]["id"] == sorted(stems[i] for i in indices[:cut])
    assert dataset_dict["train"]["id"] == sorted(stems[i] for i in indices[cut:])


def test_save_to_disk_round_trip_embeds_the_images(tmp_path, cache):
    root = write_bijie(tmp_path / "bijie")
    dataset_dict = load_bijie(root, split="train", cache_dir=cache)
    images = [np.asarray(image) for image in dataset_dict["train"]["image"]]
    dataset_dict.save_to_disk(tmp_path / "saved")
    shutil.rmtree(root)  # the saved copy must not depend on the source files
    reloaded = datasets.load_from_disk(str(tmp_path / "saved"))
    assert reloaded["train"].features == dataset_dict["train"].features
    for image, example in zip(images, reloaded["train"]):
        np.testing.assert_array_equal(np.asarray(example["image"]), image)
        assert set(np.unique(np.asarray(example["mask"]))) <= {0, 1}


def test_images_are_stored_as_paths_not_pixels(tmp_path, cache):
    """Lazy loading: the Arrow table refers to the PNG files; nothing is decoded into memory."""
    dataset_dict = load_bijie(write_bijie(tmp_path / "bijie"), split="train", cache_dir=cache)
    stored = dataset_dict["train"].data.column("image").to_pylist()
    assert all(value["bytes"] is None and value["path"].endswith(".png") for value in stored)


# --- Landslide4Sense ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["original", "hub"])
def test_landslide4sense_rgb_follows_the_papers_conversion(layout, tmp_path, cache):
    root = write_l4s(tmp_path / "l4s", layout)
    dataset_dict = load_landslide4sense(root, cache_dir=cache)
    assert {name: split.num_rows for name, split in dataset_dict.items()} == {"train": 3, "validation": 2, "test": 2}
    assert "mask" not in dataset_dict["test"].features  # a split without masks is unlabelled
    assert_valid_segmentation(datasets.DatasetDict({k: dataset_dict[k] for k in ("train", "validation")}), 5)
    img_dir = root / L4S_FOLDERS[layout]["train"][0]
    for example in dataset_dict["train"]:
        with h5py.File(img_dir / f"{example['id']}.h5") as handle:
            patch = handle["img"][()]
        expected = np.clip(patch[..., [3, 2, 1]] / 10 * 255, 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(np.asarray(example["image"]), expected)


def test_landslide4sense_sorts_patches_numerically(tmp_path, cache):
    root = write_l4s(tmp_path / "l4s", "original", counts={"train": 11}, labelled=("train",))
    assert load_landslide4sense(root, cache_dir=cache)["train"]["id"][8:] == ["image_9", "image_10", "image_11"]


@pytest.mark.parametrize(
    ("bands", "mean", "std"),
    [([3, 2, 1, 0, 12, 13], None, None), ([3, 2, 1, 7], [4.0], [0.5])],
)
def test_landslide4sense_band_arrays_are_raw_and_the_processor_normalises(bands, mean, std, tmp_path, cache):
    """The loader returns the h5 values exactly; the image processor (as in training and predict) is the one
    normaliser: (x - band_mean) / band_std for the bands beyond RGB."""
    root = write_l4s(tmp_path / "l4s", "hub", counts={"train": 2}, labelled=("train",))
    train = load_landslide4sense(root, bands=bands, cache_dir=cache)["train"]
    assert train.features["image"] == datasets.Array3D(shape=(128, 128, len(bands)), dtype="float32")
    with h5py.File(root / "images/train/image_1.h5") as handle:
        raw = handle["img"][()][..., bands].astype(np.float32)
    loaded = np.asarray(train.with_format("numpy")[0]["image"])
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, raw)
    mean = mean or [LANDSLIDE4SENSE_MEAN[b] for b in bands[3:]]
    std = std or [LANDSLIDE4SENSE_STD[b] for b in bands[3:]]
    processor = TransLandSegImageProcessor(bands=[b + 1 for b in bands], band_mean=mean, band_std=std, input_size=32)
    pixels = processor.pixels_from_bands(np.moveaxis(loaded, -1, 0))
    np.testing.assert_allclose(pixels[3:], (np.moveaxis(raw[..., 3:], -1, 0) - np.float32(mean)[:, None, None])
                               / np.float32(std)[:, None, None], rtol=1e-6)
    np.testing.assert_array_equal(pixels[:3], processor.fixed_scaler()(np.moveaxis(raw[..., :3], -1, 0)))
    prepared = prepare_dataset(datasets.DatasetDict({"train": train}), processor)["train"][0]
    assert prepared["pixel_values"].shape == (len(bands), 32, 32) and prepared["labels"].shape == (1, 32, 32)


def test_landslide4sense_refuses_mean_and_std(tmp_path, cache):
    root = write_l4s(tmp_path / "l4s", "hub", counts={"train": 1}, labelled=("train",))
    with pytest.raises(ValueError, match=re.escape("TransLandSegImageProcessor(band_mean=, band_std=)")):
        load_landslide4sense(root, bands=[3, 2, 1], mean=[0.0] * 3, std=[1.0] * 3, cache_dir=cache)


# --- image folder -------------------------------------------------------------------------------


def palette_mask(mask01: np.ndarray) -> Image.Image:
    image = Image.fromarray(mask01, mode="P")
    image.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    return image


# How each mask encoding is written, and the mask_color that reads it back as the same 0/1 mask.
MASK_ENCODINGS = {
    "grey-0-255": (lambda m: Image.fromarray(m * 255), None),
    "grey-0-1": (lambda m: Image.fromarray(m), None),
    "palette": (palette_mask, None),
    "rgb-any-colour": (lambda m: Image.fromarray(np.stack([m * 200, m * 10, m * 0], -1)), None),
    "rgb-given-colour": (
        lambda m: Image.fromarray(np.where(m[..., None] == 1, [255, 0, 255], [0, 255, 0]).astype(np.uint8)),
        (255, 0, 255),
    ),
}


@pytest.mark.parametrize("encoding", MASK_ENCODINGS)
@pytest.mark.parametrize("image_format", [".png", ".jpg", ".tif"])
def test_image_folder_formats_and_mask_encodings(encoding, image_format, tmp_path, cache):
    write_mask, mask_color = MASK_ENCODINGS[encoding]
    image, mask255 = scene(0)
    images_dir, masks_dir = tmp_path / "images", tmp_path / "masks"
    images_dir.mkdir()
    masks_dir.mkdir()
    if image_format == ".tif":
        write_raster(images_dir / "Landslide001.tif", np.moveaxis(image, -1, 0))
    else:
        Image.fromarray(image).save(images_dir / f"Landslide001{image_format}")
    write_mask(mask255 // 255).save(masks_dir / "LandslideLabel001.png")
    dataset_dict = load_image_folder(
        images_dir, masks_dir, mask_name=(r"^Landslide", "LandslideLabel"), mask_color=mask_color, cache_dir=cache
    )
    assert_valid_segmentation(dataset_dict, 1)
    example = dataset_dict["train"][0]
    assert example["id"] == "Landslide001"
    np.testing.assert_array_equal(np.asarray(example["mask"]), mask255 // 255)
    if image_format != ".jpg":
        np.testing.assert_array_equal(np.asarray(example["image"]), image)


@pytest.mark.parametrize(
    "mask_name", ["{stem}_mask", ("$", "_mask"), lambda stem: stem + "_mask"], ids=["format", "regex", "callable"]
)
def test_image_folder_mask_name_mappings(mask_name, tmp_path, cache):
    (tmp_path / "gt").mkdir()
    for index in range(3):
        image, mask = scene(index)
        write_png(tmp_path / "img" / f"tile{index}.png", image)
        write_raster(tmp_path / "gt" / f"tile{index}_mask.tif", mask)
    dataset_dict = load_image_folder(tmp_path / "img", tmp_path / "gt", mask_name=mask_name, cache_dir=cache)
    assert sorted(i for split in dataset_dict.values() for i in split["id"]) == ["tile0", "tile1", "tile2"]
    assert_valid_segmentation(dataset_dict, 3)


def test_image_folder_without_masks_has_no_mask_column(tmp_path, cache):
    write_png(tmp_path / "img/a.png", scene(0)[0])
    dataset_dict = load_image_folder(tmp_path / "img", None, cache_dir=cache)
    assert set(dataset_dict["train"].features) == {"image", "id"}


def test_image_folder_default_split_reuses_the_seeded_split(tmp_path, cache):
    for index in range(10):
        image, mask = scene(index)
        write_png(tmp_path / "img" / f"t{index}.png", image)
        write_png(tmp_path / "gt" / f"t{index}.png", mask)
    folder = load_image_folder(tmp_path / "img", tmp_path / "gt", split="default", cache_dir=cache)
    bijie = load_bijie(write_bijie(tmp_path / "b", stems=[f"t{i}" for i in range(10)]), cache_dir=cache)
    stems = [f"t{i}" for i in range(10)]  # the same rule, over each loader's keys (Bijie's are source/stem)
    assert {n: sorted(s["id"]) for n, s in folder.items()} == seeded_split(stems)
    assert {n: sorted(f"landslide/{i}" for i in s["id"]) for n, s in bijie.items()} == seeded_split(
        [f"landslide/{stem}" for stem in stems])


# --- bad input ----------------------------------------------------------------------------------


def corrupt(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:60])  # a truncated PNG


def resize_mask(path: Path) -> None:
    Image.open(path).resize((7, 9)).save(path)


def bijie_case(damage, target):
    def run(tmp_path, **kwargs):
        root = write_bijie(tmp_path / "bijie")
        damage(root / target)
        return load_bijie(root, split="train", **kwargs)

    return run


def folder_case(damage, target):
    def run(tmp_path, **kwargs):
        for index in range(3):
            image, mask = scene(index)
            write_png(tmp_path / "img" / f"a{index}.png", image)
            write_png(tmp_path / "gt" / f"a{index}.png", mask)
        damage(tmp_path / target)
        return load_image_folder(tmp_path / "img", tmp_path / "gt", **kwargs)

    return run


def l4s_case(damage, target):
    def run(tmp_path, **kwargs):
        root = write_l4s(tmp_path / "l4s", "original", counts={"train": 3}, labelled=("train",))
        damage(root / target)
        return load_landslide4sense(root, **kwargs)

    return run


def rewrite_h5(key: str, shape=(128, 128, 14)):
    return lambda path: write_h5(path, key, np.zeros(shape, np.float32))


def empty_folder(path: Path) -> None:
    for file in path.iterdir():
        file.unlink()


# name -> (loader run, file named in the message, regex of the problem stated after it, skippable per item).
# DatasetError reads "PATH: PROBLEM", and the skip warning lists "PATH: PROBLEM" per item.
BAD_INPUTS = {
    "corrupt image": (bijie_case(corrupt, "landslide/image/df002.png"), "df002.png", "cannot decode the image", True),
    "corrupt mask": (folder_case(corrupt, "gt/a1.png"), "a1.png", "cannot decode the image", True),
    "not an image": (folder_case(lambda p: p.write_text("hello"), "img/a0.png"), "a0.png", "cannot decode the image",
                     True),
    "mask size differs": (bijie_case(resize_mask, "landslide/mask/df003.png"), "df003.png",
                          r"mask is 7x9 but its image \S*df003\.png is 40x32; expected the same width x height", True),
    "image without mask": (folder_case(Path.unlink, "gt/a2.png"), "a2.png",
                           r"image has no mask; expected \S*gt/a2\.png", True),
    "bijie image without mask": (bijie_case(Path.unlink, "landslide/mask/df001.png"), "df001.png",
                                 r"image has no mask; expected \S*landslide/mask/df001\.png", True),
    "h5 without img key": (l4s_case(rewrite_h5("data"), "TrainData/img/image_2.h5"), "image_2.h5",
                           re.escape("no dataset 'img' in the HDF5 file (found ['data'])"), True),
    "h5 without mask key": (l4s_case(rewrite_h5("img", (128, 128)), "TrainData/mask/mask_3.h5"), "mask_3.h5",
                            re.escape("no dataset 'mask' in the HDF5 file (found ['img'])"), True),
    "h5 wrong shape": (l4s_case(rewrite_h5("img", (14, 128, 128)), "TrainData/img/image_1.h5"), "image_1.h5",
                       re.escape("'img' has shape (14, 128, 128); expected (128, 128, 14) (channels last)"), True),
    "not an h5 file": (l4s_case(lambda p: p.write_text("x"), "TrainData/img/image_3.h5"), "image_3.h5",
                       "cannot read as HDF5", True),
    "h5 patch without mask": (l4s_case(Path.unlink, "TrainData/mask/mask_1.h5"), "image_1.h5",
                              r"patch has no mask; expected \S*TrainData/mask/mask_1\.h5", True),
    "empty image folder": (folder_case(empty_folder, "img"), "img", r"no images \(\.png, .*\) in the folder", False),
    "empty h5 folder": (l4s_case(empty_folder, "TrainData/img"), "img",
                        re.escape("no .h5 image patches in the folder; expected image_N.h5"), False),
    "wrong bijie layout": (bijie_case(lambda p: p.rename(p.with_name("images")), "landslide/image"), "bijie",
                           "no landslide/image/ folder; expected the Bijie layout", False),
    "missing bijie mask folder": (bijie_case(shutil.rmtree, "landslide/mask"), "bijie",
                                  "no landslide/mask/ folder; expected the Bijie layout", False),
    "wrong l4s layout": (l4s_case(lambda p: p.rename(p.with_name("Train")), "TrainData"), "l4s",
                         "has no Landslide4Sense image folder", False),
}


def names_the_file(name: str, problem: str) -> str:
    """The message names the file itself, then says what is wrong with it."""
    return rf"{re.escape(name)}: {problem}"


def write_turned_jpeg(path: Path, orientation: int) -> None:
    """A 40x40 JPEG bright in its stored top-left corner, tagged with EXIF `orientation` (3: viewers turn it 180)."""
    pixels = np.zeros((40, 40, 3), np.uint8)
    pixels[:10, :10] = 255
    image, exif = Image.fromarray(pixels), Image.Exif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, exif=exif, quality=100)


TURNED_LOADS = {  # where the turned JPEG goes, and how it is loaded
    "folder": ("img/s0.jpg", "gt/s0.png", lambda root, **kw: load_image_folder(root / "img", root / "gt", **kw)),
    "bijie": ("landslide/image/s0.jpg", "landslide/mask/s0.png", lambda root, **kw: load_bijie(root, **kw)),
}


@pytest.mark.parametrize("loader", TURNED_LOADS)
def test_a_jpeg_with_an_exif_rotation_is_refused_as_its_mask_would_not_match(loader, tmp_path, cache):
    """`datasets` turned such a JPEG when decoding it, its PNG mask and predict (rasterio) did not: labels 180 off."""
    image_path, mask_path, load = TURNED_LOADS[loader]
    mask = np.zeros((40, 40), np.uint8)
    mask[:10, :10] = 255  # the landslide where the stored pixels are bright
    write_png(tmp_path / mask_path, mask)
    write_turned_jpeg(tmp_path / image_path, orientation=3)
    with pytest.raises(DatasetError, match=r"s0\.jpg: the image carries EXIF Orientation 3.*exiftool -Orientation=1"):
        load(tmp_path, split="train", cache_dir=cache)
    write_turned_jpeg(tmp_path / image_path, orientation=1)  # the flag cleared: pixels as stored, as predict reads them
    example = load(tmp_path, split="train", cache_dir=cache)["train"][0]
    image, labels = np.asarray(example["image"]), np.asarray(example["mask"])
    assert image[:10, :10].min() > 200 and image[-10:, -10:].max() < 50 and labels[:10, :10].all()


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_raises_naming_the_file(case, tmp_path, cache):
    run, name, problem, _ = BAD_INPUTS[case]
    with pytest.raises(DatasetError, match=names_the_file(name, problem)) as raised:
        run(tmp_path, cache_dir=cache)
    assert Path(raised.value.path).name == name


@pytest.mark.parametrize("case", [case for case, (*_, per_item) in BAD_INPUTS.items() if per_item])
def test_skip_mode_reports_every_skipped_item(case, tmp_path, cache):
    run, name, problem, _ = BAD_INPUTS[case]
    skipped = []
    listed = r"skipped 1 item\(s\) \(on_error='skip'\):\n  \S*" + names_the_file(name, problem)
    with pytest.warns(SkippedItemsWarning, match=listed) as record:
        dataset_dict = run(tmp_path, cache_dir=cache, on_error="skip", skipped=skipped)
    assert [warning.filename for warning in record] == [__file__]  # the warning points at the loader's caller
    assert len(skipped) == 1 and Path(skipped[0].path).name == name and re.match(problem, skipped[0].reason)
    assert sum(split.num_rows for split in dataset_dict.values()) == 2


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda tmp: load_bijie(tmp / "absent"), "Bijie dataset folder"),
        (lambda tmp: load_landslide4sense(tmp / "absent"), "Landslide4Sense folder"),
        (lambda tmp: load_image_folder(tmp / "absent", None), "images folder"),
    ],
    ids=["bijie", "landslide4sense", "image folder"],
)
def test_missing_root_is_file_not_found(call, what, tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"{what} not found: \S*absent is not a folder"):
        call(tmp_path)


def l4s_root(tmp: Path) -> Path:
    return write_l4s(tmp / "l4s", "original", counts={"train": 1}, labelled=("train",))


def image_folder(tmp: Path) -> tuple[Path, Path]:
    for index in range(2):
        image, mask = scene(index)
        write_png(tmp / "img" / f"a{index}.png", image)
        write_png(tmp / "gt" / f"a{index}.png", mask)
    return tmp / "img", tmp / "gt"


# Each call is on a valid dataset, so the argument check is the only thing that can fail.
INVALID_ARGUMENTS = {
    "on_error": (lambda tmp, **kw: load_bijie(write_bijie(tmp / "bijie"), on_error="ignore", **kw),
                 r"on_error must be one of \(.*\), got 'ignore'"),
    "split scheme": (lambda tmp, **kw: load_bijie(write_bijie(tmp / "bijie"), split="random", **kw),
                     r"split must be one of \(.*\), got 'random'"),
    "band index": (lambda tmp, **kw: load_landslide4sense(l4s_root(tmp), bands=[0, 14], **kw),
                   re.escape("bands must be distinct indices in 0-13, got [0, 14]")),
    "mean with rgb": (lambda tmp, **kw: load_landslide4sense(l4s_root(tmp), bands="rgb", mean=[0.0], **kw),
                      re.escape("no longer takes mean/std; normalise with TransLandSegImageProcessor(")),
    "mask_name": (lambda tmp, **kw: load_image_folder(*image_folder(tmp), mask_name="mask_", **kw),
                  re.escape("mask_name 'mask_' must contain '{stem}'")),
    "mask_color": (lambda tmp, **kw: load_image_folder(*image_folder(tmp), mask_color=(300, 0, 0), **kw),
                   re.escape("mask_color must be None, a grey value 0-255 or an (R, G, B) triple, got (300, 0, 0)")),
}


def test_on_error_stop_is_the_old_spelling_of_raise(tmp_path, cache):
    with pytest.warns(FutureWarning, match='on_error="stop" is the old spelling of "raise"'):
        train = load_landslide4sense(l4s_root(tmp_path), on_error="stop", cache_dir=cache)["train"]
    assert train.num_rows > 0


@pytest.mark.parametrize("case", INVALID_ARGUMENTS)
def test_invalid_arguments_raise_value_error(case, tmp_path, cache):
    call, message = INVALID_ARGUMENTS[case]
    with pytest.raises(ValueError, match=message) as raised:
        call(tmp_path, cache_dir=cache)
    assert not isinstance(raised.value, DatasetError)  # the argument is wrong, not a file


# --- transforms ---------------------------------------------------------------------------------


def test_sam_transform_shapes_and_normalisation():
    value = np.array([10, 128, 240], np.uint8)
    image = Image.fromarray(np.broadcast_to(value, (30, 45, 3)).copy())
    mask = Image.fromarray(np.pad(np.ones((10, 10), np.uint8), ((0, 20), (0, 35))))
    output = SamTransform(64)({"image": [image], "mask": [mask], "id": ["x"]})
    pixel_values, labels = output["pixel_values"][0], output["labels"][0]
    assert pixel_values.shape == (3, 64, 64) and pixel_values.dtype == torch.float32
    assert labels.shape == (1, 64, 64) and set(labels.unique().tolist()) == {0.0, 1.0}
    expected = (value - 255 * np.array(IMAGENET_DEFAULT_MEAN)) / (255 * np.array(IMAGENET_DEFAULT_STD))
    np.testing.assert_allclose(pixel_values.mean(dim=(1, 2)).numpy(), expected, rtol=1e-5)
    assert output["id"] == ["x"]


def test_sam_transform_makes_band_arrays_into_pixels_through_the_processor():
    bands = np.full((128, 128, 5), 0.25, np.float32)
    processor = TransLandSegImageProcessor(bands=[4, 3, 2, 8, 9], band_mean=[0.5, 0.0], band_std=[0.25, 2.0],
                                           input_size=32)
    output = SamTransform(processor)({"image": [bands.tolist()], "id": ["image_1"]})
    assert output["pixel_values"][0].shape == (5, 32, 32) and "labels" not in output
    pixels = processor.pixels_from_bands(np.moveaxis(bands, -1, 0))
    expected = processor.normalize_pixels(processor.resize_to_input(torch.from_numpy(pixels)[None])[0])
    torch.testing.assert_close(output["pixel_values"][0], expected, rtol=0, atol=0)
    extra = torch.tensor([-1.0, 0.125])[:, None, None].expand(2, 32, 32)  # (0.25 - mean) / std
    torch.testing.assert_close(output["pixel_values"][0][3:], extra)


def test_sam_transform_refuses_a_band_count_the_processor_does_not_have():
    with pytest.raises(ValueError, match=r"the processor expects 3 bands, got an array with 5 \(shape \(8, 8, 5\)\)"):
        SamTransform(32)({"image": [np.zeros((8, 8, 5), np.float32).tolist()], "id": ["x"]})


def asymmetric_example() -> tuple[Image.Image, Image.Image]:
    """An L-shaped bright region, so every flip and rotation gives a different picture."""
    mask = np.zeros((16, 16), np.uint8)
    mask[2:12, 3:6] = 1
    mask[9:12, 3:11] = 1
    return Image.fromarray(np.repeat(mask[..., None] * 250, 3, -1)), Image.fromarray(mask)


@pytest.mark.parametrize("color_jitter", [None, "default"])
def test_train_augmentation_moves_image_and_mask_together(color_jitter):
    image, mask = asymmetric_example()
    kwargs = {} if color_jitter == "default" else {"color_jitter": None}
    transform = SamTransform(16, train=True, seed=0, **kwargs)
    seen = set()
    for _ in range(12):
        pixel_values, labels = transform.transform_example(image, mask)
        bright = pixel_values.mean(0) > pixel_values.mean()
        torch.testing.assert_close(bright.float(), labels[0])
        seen.add(labels.numpy().tobytes())
    assert len(seen) >= 4  # flips and rotations really happen


def test_seeded_augmentation_depends_on_seed_epoch_and_sample_only():
    image, mask = asymmetric_example()
    batch = {"image": [image, image], "mask": [mask, mask], "id": ["a", "b"]}
    first, second = (SamTransform(16, train=True, seed=3) for _ in range(2))
    once, again = first(batch), second(batch)
    for key in ("pixel_values", "labels"):
        for a, b in zip(once[key], again[key]):
            torch.testing.assert_close(a, b)
    reordered = second({"image": [image], "mask": [mask], "id": ["b"]})  # another batch, another position
    torch.testing.assert_close(reordered["pixel_values"][0], once["pixel_values"][1])
    draws = set()
    for epoch in range(6):
        first.set_epoch(epoch)
        draws.add(first(batch)["pixel_values"][0].numpy().tobytes())
    assert len(draws) > 1  # a new epoch draws new augmentations


def test_prepare_dataset_augments_train_only(cache):
    dataset_dict = load_synthetic(num_samples=10, image_size=32, seed=1, cache_dir=cache)
    prepared = prepare_dataset(dataset_dict, image_size=32, seed=0)
    plain = SamTransform(32)
    for name in ("validation", "test"):
        for index, example in enumerate(dataset_dict[name]):
            expected = plain.transform_example(example["image"], example["mask"])
            for _ in range(3):  # no random draw: the same every time
                torch.testing.assert_close(prepared[name][index]["pixel_values"], expected[0])
                torch.testing.assert_close(prepared[name][index]["labels"], expected[1])
    train_plain = [plain.transform_example(e["image"], e["mask"])[0] for e in dataset_dict["train"]]
    changed = [not torch.equal(prepared["train"][i]["pixel_values"], p) for i, p in enumerate(train_plain)]
    assert sum(changed) >= len(changed) - 1


def test_collate_fn_stacks_for_a_dataloader(cache):
    prepared = prepare_dataset(load_synthetic(num_samples=6, image_size=32, cache_dir=cache), image_size=24)
    loader = torch.utils.data.DataLoader(prepared["train"], batch_size=2, collate_fn=collate_fn)
    batch = next(iter(loader))
    assert batch["pixel_values"].shape == (2, 3, 24, 24) and batch["labels"].shape == (2, 1, 24, 24)
    assert batch["id"] == ["synthetic-0000", "synthetic-0001"]


# --- synthetic ----------------------------------------------------------------------------------


def test_synthetic_scenes_are_deterministic_and_learnable():
    image, mask = make_synthetic_scene(256, seed=5)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8 and mask.dtype == np.uint8
    again = make_synthetic_scene(256, seed=5)
    np.testing.assert_array_equal(image, again[0])
    np.testing.assert_array_equal(mask, again[1])
    for image, mask in (make_synthetic_scene(256, seed=s) for s in range(10)):  # speed: benchmarks/data_loading.py
        assert set(np.unique(mask)) == {0, 1}
        scar, ground = image[mask == 1].astype(float), image[mask == 0].astype(float)
        assert scar.mean() > ground.mean() + 30  # brighter
        assert (scar[:, 1] - scar[:, 0]).mean() < (ground[:, 1] - ground[:, 0]).mean()  # less green


def test_load_synthetic_has_the_loaders_features(cache):
    dataset_dict = load_synthetic(num_samples=10, image_size=48, seed=2, cache_dir=cache)
    assert {n: s.num_rows for n, s in dataset_dict.items()} == {"train": 7, "validation": 1, "test": 2}
    assert dataset_dict["validation"]["id"] == ["synthetic-0007"]
    assert_valid_segmentation(dataset_dict, 10)
