"""Shared fixtures and helpers: tiny random SAMs (seconds on a CPU), the real samples beside the project, recipes."""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from hypothesis import settings
from transformers import SamModel

from translandseg_hf.sam_configs import tiny_sam_config

from helpers.models import tiny_atl  # noqa: F401  (imported from here by tests written before tests/helpers/)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TRANSLANDSEG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real landslide samples not found at {SHARED_DATA} (a user's checkout)"
)

# Property tests (tests/test_fuzz.py): "ci", the default, runs a few seconds and draws the same examples on every run,
# so CI is deterministic; `pytest tests/test_fuzz.py --hypothesis-profile=long` draws hundreds of new ones. Neither
# keeps an example database (it would be a folder in the checkout): a failure prints how to reproduce it.
settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True, database=None)
settings.register_profile("long", max_examples=500, deadline=None, database=None)
settings.load_profile("ci")  # hypothesis's --hypothesis-profile option, read after this file, overrides it


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny random SAM saved as `translandseg` saves models, with the default contract (tiles of the input side)."""
    from translandseg_hf import TransLandSegModel

    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    TransLandSegModel.from_sam(SamModel(tiny_sam_config())).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_sam_folder(tmp_path_factory) -> Path:
    """A tiny random SAM saved as `translandseg` saves models; tiles of 256 px keep a 1024 px scene to 25 tiles."""
    from translandseg_hf import TransLandSegModel
    from translandseg_hf.image_processing import TransLandSegImageProcessor

    torch.manual_seed(0)
    model = TransLandSegModel.from_sam(SamModel(tiny_sam_config()))
    model.set_image_processor(TransLandSegImageProcessor(input_size=64, tile_size=256))
    folder = tmp_path_factory.mktemp("tiny-sam")
    model.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_sam() -> SamModel:
    torch.manual_seed(0)
    return SamModel(tiny_sam_config()).eval()


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory) -> Path:
    """An RGB Landslide4Sense model (B4, B3, B2 on the dataset's scale) saved in a folder: it reads Sentinel-2."""
    from helpers.models import multispectral
    from helpers.sentinel2 import l4s_contract

    folder = tmp_path_factory.mktemp("rgb-model")
    rgb = multispectral(SamModel(tiny_sam_config()).eval(), extra=0, seed=1)
    rgb.set_image_processor(l4s_contract((3, 2, 1)))
    rgb.eval().save_pretrained(folder)
    return folder


@pytest.fixture
def pixel_values() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 64, 64, generator=generator)


@pytest.fixture
def labels() -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    return (torch.rand(2, 1, 64, 64, generator=generator) > 0.7).float()


@functools.cache
def load_recipe(name: str) -> ModuleType:
    """recipes/NAME.py as a module: the recipes are scripts, not a package, so they are loaded by path (once each).

    It is registered in sys.modules while it runs, as an import would be: dataclasses (and pickling) look it up there.
    """
    spec = importlib.util.spec_from_file_location(f"translandseg_{name}_recipe", ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


def put_in_hub_cache(cache_dir, repo_id, folder, repo_type="model"):
    """Lay out `folder` as the cached snapshot of `repo_id` (a model or a dataset), as huggingface_hub writes it."""
    repo = cache_dir / f"{repo_type}s--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            target = snapshot / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return snapshot
