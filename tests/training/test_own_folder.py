"""Training on your own folder of image/mask pairs (issue 37 items 3, 6, 10): a seeded default split that scores the
model, a failed run that leaves nothing blocking the next, and `--images_dir`/`--masks_dir` with or without
`--data_dir`."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import load_recipe
from helpers.datasets import scene, write_png
from helpers.training import TINY

from translandseg_hf.data import DatasetError, load_image_folder, load_named_dataset
from translandseg_hf.data.splits import seeded_split
from translandseg_hf.training import parse_config

PAIRS = 12
STEMS = [f"tile{index:02d}" for index in range(PAIRS)]
DEFAULT_SIZES = {"train": 8, "validation": 1, "test": 3}  # 70/10/20 of 12 by each stem's hash; validation kept non-empty


def write_folder(root, count=PAIRS, images="images", masks="masks"):
    """`count` 30x40 RGB PNGs with 0/255 masks of the same stem: a user's own folder."""
    for index, stem in enumerate(STEMS[:count]):
        image, mask = scene(index)
        write_png(root / images / f"{stem}.png", image)
        write_png(root / masks / f"{stem}.png", mask)
    return root


def ids(splits):
    return {name: sorted(split["id"]) for name, split in splits.items()}


def train(output_dir, *extra):
    return load_recipe("train").main([*TINY, "--epochs", "1", "--output_dir", str(output_dir), *extra])


# --- item 3: a folder's default split --------------------------------------------------------------------------

DEFAULT_LOADS = {
    "load_image_folder": lambda root, cache: load_image_folder(root / "images", root / "masks", cache_dir=cache),
    "load_named_dataset": lambda root, cache: load_named_dataset("folder", str(root), cache_dir=cache),
    "training config": lambda root, cache: load_named_dataset(
        "folder", str(root), cache_dir=cache,
        **parse_config(["--dataset", "folder", "--data_dir", str(root)]).data.loader_options()),
}


@pytest.mark.parametrize("load", DEFAULT_LOADS.values(), ids=DEFAULT_LOADS.keys())
def test_a_folder_gets_the_seeded_70_10_20_split_by_default(tmp_path, load):
    root = write_folder(tmp_path / "own")
    first = ids(load(root, tmp_path / "cache1"))
    assert {name: len(members) for name, members in first.items()} == DEFAULT_SIZES
    assert first == seeded_split(STEMS)  # the documented rule: Bijie's seeded split of the sorted stems
    assert ids(load(root, tmp_path / "cache2")) == first  # the same split on a second call


def test_training_on_a_folder_by_default_scores_validation_and_test(tmp_path):
    root = write_folder(tmp_path / "own")
    metrics = train(tmp_path / "run", "--dataset", "folder", "--data_dir", str(root))
    assert metrics["split_sizes"] == DEFAULT_SIZES
    assert metrics["best_validation"] is not None and metrics["test"] is not None


SCHEMES = {  # --split_scheme: the split it asks for, and the warning it gives (None: none)
    "default": (DEFAULT_SIZES, None),
    "translandseg": ({"train": 8, "validation": 4}, None),  # floor(0.3 * 12) + 1 validation
    "train": ({"train": PAIRS}, r"all 12 samples are in the train split.*--split_scheme default"),
}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_an_explicit_split_scheme_is_kept_and_training_on_everything_warns(tmp_path, scheme):
    sizes, warning = SCHEMES[scheme]
    root = write_folder(tmp_path / "own")
    options = parse_config(["--dataset", "folder", "--data_dir", str(root), "--split_scheme", scheme]).data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = load_named_dataset("folder", str(root), cache_dir=tmp_path / "cache", **options.loader_options())
    assert {name: len(split) for name, split in splits.items()} == sizes
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    if warning is None:
        assert not [m for m in messages if "train split" in m]
    else:
        assert any(re.search(warning, m) for m in messages), messages


def test_a_folder_without_masks_is_one_split_of_images_to_predict(tmp_path):
    root = write_folder(tmp_path / "own")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "scores nothing" warning: there is nothing to score
        splits = load_image_folder(root / "images", None, cache_dir=tmp_path / "cache")
    assert ids(splits) == {"train": STEMS}


# --- item 6: a run that fails on bad data leaves nothing that blocks the next -------------------------------------


def wrong_size_mask(root):
    path = root / "masks" / f"{STEMS[3]}.png"
    Image.fromarray(np.zeros((7, 9), np.uint8)).save(path)


def truncated_image(root):
    path = root / "images" / f"{STEMS[5]}.png"
    path.write_bytes(path.read_bytes()[:60])


@pytest.mark.parametrize("damage", [wrong_size_mask, truncated_image], ids=["mask of the wrong size", "corrupt image"])
def test_a_run_failing_on_bad_data_does_not_block_the_next(tmp_path, damage):
    root = write_folder(tmp_path / "own")
    output_dir = tmp_path / "run"
    output_dir.mkdir()
    (output_dir / "notes.txt").write_text("mine")  # there before the run: never removed
    damage(root)
    with pytest.raises(DatasetError, match=r"tile0[35]"):
        train(output_dir, "--dataset", "folder", "--data_dir", str(root))
    assert sorted(path.name for path in output_dir.iterdir()) == ["notes.txt"]
    write_folder(root)  # the user fixes the data and runs again, without --overwrite_output_dir
    metrics = train(output_dir, "--dataset", "folder", "--data_dir", str(root))
    assert metrics["split_sizes"] == DEFAULT_SIZES and (output_dir / "model").is_dir()
    assert (output_dir / "notes.txt").read_text() == "mine"


# --- item 10: --images_dir / --masks_dir, with or without --data_dir ------------------------------------------------

PATH_FORMS = {  # how the user names the folders -> the arguments, given the folder that holds `pics/` and `labels/`
    "absolute, no data_dir": lambda root: ["--images_dir", str(root / "pics"), "--masks_dir", str(root / "labels")],
    "relative to the cwd, no data_dir": lambda root: ["--images_dir", "own/pics", "--masks_dir", "own/labels"],
    "relative to data_dir": lambda root: ["--data_dir", "own", "--images_dir", "pics", "--masks_dir", "labels"],
    "absolute, with data_dir": lambda root: ["--data_dir", str(root), "--images_dir", str(root / "pics"),
                                             "--masks_dir", str(root / "labels")],
}


@pytest.mark.parametrize("form", PATH_FORMS.values(), ids=PATH_FORMS.keys())
def test_images_and_masks_folders_with_or_without_data_dir(tmp_path, monkeypatch, form):
    root = write_folder(tmp_path / "own", images="pics", masks="labels")
    monkeypatch.chdir(tmp_path)
    metrics = train(tmp_path / "run", "--dataset", "folder", *form(root))
    assert metrics["split_sizes"] == DEFAULT_SIZES


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--images_dir", "own/pics"], r"--masks_dir"),  # without data_dir there is no default masks folder
        (["--data_dir", "own", "--images_dir", "own/pics", "--masks_dir", "own/labels"],
         r"own/own/pics.*relative to data_dir"),
    ],
    ids=["images without masks", "cwd-relative with data_dir"],
)
def test_folder_paths_that_name_nothing_say_how_they_are_read(tmp_path, monkeypatch, arguments, message):
    write_folder(tmp_path / "own", images="pics", masks="labels")
    monkeypatch.chdir(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        train(tmp_path / "run", "--dataset", "folder", *arguments)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_help_says_how_folder_paths_are_read(capsys):
    with pytest.raises(SystemExit):
        parse_config(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "relative to data_dir when given, else to the current folder" in help_text
    assert "70/10/20" in help_text
