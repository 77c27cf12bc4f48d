"""Loading never runs code: weights are read from safetensors only, pickle files are neither downloaded nor read,
and an original SAM `.pth` is unpickled with `weights_only=True`.

Every pickle here is live: unpickling it writes a marker file, so a test that reads one fails on the marker.
"""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub.utils import filter_repo_objects

from conftest import put_in_hub_cache

from translandseg_hf import TransLandSegModel, load_segmentation_model
from translandseg_hf.baselines import BaselineConfig, BaselineSegmentationModel
from translandseg_hf.sam_loading import load_sam

REFUSED = r"has no {}, only pickle weights \({}\), which are never read: unpickling a file can run any code"


class RunsCode:
    """Unpickling this calls `exec`, which writes the marker: what a malicious pickle smuggles in."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",)


def write_live_pickle(path: Path, marker: Path) -> Path:
    torch.save({"weight": RunsCode(marker)}, path)
    return path


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "code-ran.txt"


@pytest.fixture
def adapter(tmp_path, tiny_sam) -> tuple[Path, TransLandSegModel]:
    """A saved adapter whose in-memory base is bundled beside it, in base_model/."""
    model = TransLandSegModel.from_sam(tiny_sam)
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "base_model" / "model.safetensors").is_file()
    return tmp_path / "adapter", model


def test_the_pickles_are_live(tmp_path, marker):
    """Guards the tests below: unpickling these files does run their code."""
    path = write_live_pickle(tmp_path / "adapter_model.bin", marker)
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran"


def test_pickles_beside_the_safetensors_are_never_read(adapter, marker, pixel_values):
    folder, model = adapter
    for name in ("adapter_model.bin", "pytorch_model.bin", "training_args.bin", "optimizer.pt",
                 "base_model/pytorch_model.bin", "base_model/sam_vit_b.pth"):
        write_live_pickle(folder / name, marker)
    loaded = TransLandSegModel.from_pretrained(folder)
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values).logits, model.eval()(pixel_values).logits)
    assert load_segmentation_model(folder).image_size == model.image_size
    assert not marker.exists()


def only_pickled_adapter(folder: Path, marker: Path) -> tuple[Path, str, str]:
    (folder / "adapter_model.safetensors").unlink()
    write_live_pickle(folder / "adapter_model.bin", marker)
    return folder, "adapter_model.safetensors", "adapter_model.bin"


def only_pickled_base(folder: Path, marker: Path) -> tuple[Path, str, str]:
    (folder / "base_model" / "model.safetensors").unlink()
    write_live_pickle(folder / "base_model" / "pytorch_model.bin", marker)
    return folder, "model.safetensors", "pytorch_model.bin"


@pytest.mark.parametrize("damage", [only_pickled_adapter, only_pickled_base], ids=["adapter", "bundled base"])
@pytest.mark.parametrize("load", [TransLandSegModel.from_pretrained, load_segmentation_model],
                         ids=["from_pretrained", "load_segmentation_model"])
def test_a_folder_with_only_pickled_weights_is_refused_saying_why(adapter, marker, damage, load):
    folder, wanted, pickled = damage(adapter[0], marker)
    with pytest.raises(FileNotFoundError, match=REFUSED.format(re.escape(wanted), re.escape(pickled))):
        load(folder)
    assert not marker.exists()


def test_a_baseline_with_only_pickled_weights_is_refused(tmp_path, marker):
    BaselineSegmentationModel(BaselineConfig("unet", "resnet18", None, image_size=64)).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    write_live_pickle(tmp_path / "pytorch_model.bin", marker)
    with pytest.raises(FileNotFoundError, match=REFUSED.format(r"model\.safetensors", r"pytorch_model\.bin")):
        load_segmentation_model(tmp_path)
    assert not marker.exists()


def test_a_sam_folder_with_only_pickled_weights_is_refused(tmp_path, tiny_sam, marker):
    tiny_sam.save_pretrained(tmp_path / "sam")
    (tmp_path / "sam" / "model.safetensors").unlink()
    write_live_pickle(tmp_path / "sam" / "pytorch_model.bin", marker)
    with pytest.raises(FileNotFoundError, match=REFUSED.format(r"model\.safetensors", r"pytorch_model\.bin")):
        TransLandSegModel.from_sam(str(tmp_path / "sam"))
    assert not marker.exists()


# A Hub repository as published by someone else: safetensors and pickles of every kind side by side.
REPOSITORY_FILES = [
    "README.md", "adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "preprocessor_config.json",
    "baseline_config.json", "model.safetensors", "pytorch_model.bin", "training_args.bin", "optimizer.pt",
    "rng_state.pth", "notes.pkl", "base_model/config.json", "base_model/model.safetensors",
    "base_model/pytorch_model.bin", "base_model/sam_vit_b.pth",
]


def test_hub_downloads_fetch_no_pickle(adapter, monkeypatch):
    """What each download asks for, applied to a repository listing as huggingface_hub applies it."""
    fetched = []

    def snapshot_download(repo_id, **kwargs):
        fetched.append(set(filter_repo_objects(REPOSITORY_FILES, allow_patterns=kwargs.get("allow_patterns"),
                                               ignore_patterns=kwargs.get("ignore_patterns"))))
        return str(adapter[0])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    TransLandSegModel.from_pretrained("lab/adapter")
    load_segmentation_model("lab/adapter")
    assert len(fetched) == 3 and set().union(*fetched) == {
        "README.md", "adapter_config.json", "adapter_model.safetensors", "preprocessor_config.json",
        "baseline_config.json", "base_model/config.json", "base_model/model.safetensors"}


def test_a_cached_hub_repository_with_pickles_loads_from_safetensors_only(adapter, marker, tmp_path, pixel_values):
    folder, model = adapter
    with_pickles, only_pickles = tmp_path / "with-pickles", tmp_path / "only-pickles"
    shutil.copytree(folder, with_pickles)
    write_live_pickle(with_pickles / "adapter_model.bin", marker)
    write_live_pickle(with_pickles / "base_model" / "pytorch_model.bin", marker)
    shutil.copytree(with_pickles, only_pickles)
    (only_pickles / "adapter_model.safetensors").unlink()
    cache = tmp_path / "hub"
    put_in_hub_cache(cache, "lab/with-pickles", with_pickles)
    put_in_hub_cache(cache, "lab/only-pickles", only_pickles)

    loaded = TransLandSegModel.from_pretrained("lab/with-pickles", cache_dir=cache, local_files_only=True)
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values).logits, model.eval()(pixel_values).logits)
    with pytest.raises(FileNotFoundError, match=REFUSED.format(r"adapter_model\.safetensors", r"adapter_model\.bin")):
        TransLandSegModel.from_pretrained("lab/only-pickles", cache_dir=cache, local_files_only=True)
    assert not marker.exists()


@pytest.mark.parametrize("load", [load_sam, TransLandSegModel.from_sam], ids=["load_sam", "from_sam"])
def test_an_original_sam_pth_that_would_run_code_is_refused_without_running_it(tmp_path, marker, load):
    path = write_live_pickle(tmp_path / "sam_vit_b_01ec64.pth", marker)
    with pytest.raises(ValueError, match=r"Cannot read \S*sam_vit_b_01ec64\.pth as a SAM checkpoint \(a plain state "
                                         r"dict of tensors\): unpickling it would call exec, which can run any code, "
                                         r"so it is not loaded\.") as raised:
        load(str(path))
    assert isinstance(raised.value.__cause__, pickle.UnpicklingError)
    assert not marker.exists()
