"""Datasets from the Hub (issue 23, section 4): the loaders, `load_named_dataset` and the training config's
`--data_dir` take a Hub dataset id as well as a folder, resolved through hub.py's one path-or-Hub-id decision.
Offline, through a local Hub cache in tmp_path that holds a tiny Landslide4Sense mirror, as huggingface_hub lays
one out; no network."""

from __future__ import annotations

import re

import httpx
import numpy as np
import pytest
from huggingface_hub import constants
from huggingface_hub.errors import RepositoryNotFoundError

import huggingface_hub
from translandseg_hf.data import load_landslide4sense
from translandseg_hf.data.named import load_named_dataset
from translandseg_hf.hub import check_data_dir, resolve_dataset_folder
from translandseg_hf.training.builders import check_inputs_exist
from translandseg_hf.training.config import parse_config

from conftest import put_in_hub_cache
from helpers.datasets import scene, write_l4s, write_png

REPO = "landslide-lab/l4s-mirror"
COUNTS = {"train": 3, "validation": 2, "test": 1}


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An offline Hub whose cache is in tmp_path (huggingface_hub reads its constants when imported: they are
    patched too)."""
    cache = tmp_path / "hf_home" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(cache.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


@pytest.fixture
def mirror(tmp_path, hub_cache):
    """A tiny Landslide4Sense mirror in the Hub layout (test masks included), as a folder and in the cache."""
    folder = write_l4s(tmp_path / "mirror", "hub", counts=COUNTS, labelled=tuple(COUNTS))
    return folder, put_in_hub_cache(hub_cache, REPO, folder, "dataset")


def rows(dataset_dict) -> dict:
    """Every split's examples, images and masks as arrays, for comparing two loads."""
    return {split: [{key: np.asarray(value) for key, value in example.items()} for example in dataset]
            for split, dataset in dataset_dict.items()}


def assert_same_rows(loaded, expected, counts=COUNTS) -> None:
    assert set(loaded) == set(expected) == set(counts)
    for split, examples in expected.items():
        assert len(loaded[split]) == len(examples) == counts[split]
        for got, want in zip(loaded[split], examples):
            assert got.keys() == want.keys()
            for key in want:
                np.testing.assert_array_equal(got[key], want[key])


def test_a_hub_id_loads_as_its_folder(tmp_path, mirror):
    folder, snapshot = mirror
    assert resolve_dataset_folder(REPO) == snapshot
    by_id = load_landslide4sense(REPO, cache_dir=tmp_path / "arrow_id")
    by_folder = load_landslide4sense(folder, cache_dir=tmp_path / "arrow_folder")
    assert_same_rows(rows(by_id), rows(by_folder))
    bands = [3, 2, 1, 12, 13]
    named = load_named_dataset("landslide4sense", REPO, bands=bands, cache_dir=tmp_path / "arrow_named")
    direct = load_landslide4sense(folder, bands=bands, cache_dir=tmp_path / "arrow_bands")
    assert named["train"].features["image"].shape == (128, 128, 5)
    assert_same_rows(rows(named), rows(direct))


def test_the_training_config_resolves_a_hub_data_dir(tmp_path, mirror):
    _, snapshot = mirror
    config = parse_config(["--dataset", "landslide4sense", "--data_dir", REPO, "--bands", "all"])
    assert config.data.data_dir == REPO
    check_inputs_exist(config)  # the run's check before any work: the id resolves, offline, from the cache
    assert check_data_dir(config.data.dataset, config.data.data_dir) == snapshot
    loaded = load_named_dataset(config.data.dataset, config.data.data_dir, config.data.split_file,
                                cache_dir=tmp_path / "arrow", **config.data.loader_options())
    assert {split: len(dataset) for split, dataset in loaded.items()} == COUNTS
    assert loaded["train"].features["image"].shape == (128, 128, 14)


def test_a_folder_dataset_loads_by_its_hub_id(tmp_path, hub_cache):
    folder = tmp_path / "scenes"
    for index in range(4):
        image, mask = scene(index)
        write_png(folder / "images" / f"s{index}.png", image)
        write_png(folder / "masks" / f"s{index}.png", mask)
    put_in_hub_cache(hub_cache, "landslide-lab/scenes", folder, "dataset")
    by_id = load_named_dataset("folder", "landslide-lab/scenes", cache_dir=tmp_path / "arrow_id")
    by_folder = load_named_dataset("folder", str(folder), cache_dir=tmp_path / "arrow_folder")
    assert sum(len(split) for split in by_id.values()) == 4
    assert_same_rows(rows(by_id), rows(by_folder), {split: len(data) for split, data in by_folder.items()})


def test_a_hub_id_not_in_the_cache_says_what_to_do(hub_cache):
    absent = "landslide-lab/absent"
    message = (rf"^{absent} is not a folder, and the Hub dataset {absent} is not in the local Hugging Face cache "
               rf"\({re.escape(str(hub_cache))}\) while the Hub is offline \(HF_HUB_OFFLINE=1\); download it once "
               rf"online \(`hf download {absent} --repo-type dataset`, or run this again online\) or pass the folder "
               r"holding {} or a Hub dataset id such as ibm-nasa-geospatial/Landslide4sense\.$")
    with pytest.raises(FileNotFoundError, match=message.format("Landslide4Sense folder")):
        load_landslide4sense(absent)
    with pytest.raises(FileNotFoundError, match=message.format("dataset 'landslide4sense'")):
        check_data_dir("landslide4sense", absent)
    with pytest.raises(FileNotFoundError, match=message.format("dataset 'bijie'")):
        load_named_dataset("bijie", absent)


def test_a_repository_the_hub_does_not_have_says_so(hub_cache, monkeypatch):
    def no_such_repository(repo_id, **_):
        url = f"https://huggingface.co/api/datasets/{repo_id}/revision/main"
        response = httpx.Response(404, request=httpx.Request("GET", url))
        raise RepositoryNotFoundError(f"404 Client Error: Repository Not Found for url: {url}", response=response)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_such_repository)
    with pytest.raises(FileNotFoundError, match=r"^someone/typo is not a folder, and the Hugging Face Hub has no "
                                                r"dataset repository someone/typo \(or it is private or gated: log "
                                                r"in with `hf auth login`\); pass the folder holding Bijie dataset"):
        resolve_dataset_folder("someone/typo", what="Bijie dataset folder")


@pytest.mark.parametrize("name", ["./absent", "data/l4s/absent", "~/absent-l4s-folder"])
def test_a_missing_local_path_is_still_a_missing_folder(hub_cache, monkeypatch, tmp_path, name):
    """Names that can only be paths never go to the Hub: the loader's own message, as before."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"^Landslide4Sense folder not found: \S*absent\S* is not a folder$"):
        load_landslide4sense(name)
    with pytest.raises(FileNotFoundError, match=rf"^data_dir {re.escape(name)} does not exist \(dataset 'bijie'\)"):
        check_data_dir("bijie", name)
