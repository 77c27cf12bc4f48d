"""`translandseg space`: the Space's files, and the Space installed as Hugging Face installs it and serving."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import torch
import yaml

gr = pytest.importorskip("gradio", reason="the app extra is not installed (pip install -e '.[app]')")

from translandseg_hf.app.session import Mapper  # noqa: E402 (gradio first: without it the module skips)
from translandseg_hf.app.space import write_space  # noqa: E402
from translandseg_hf.cli import main  # noqa: E402
from translandseg_hf.image_processing import TransLandSegImageProcessor  # noqa: E402


@pytest.fixture(scope="module")
def tiny_sam_folder(tmp_path_factory) -> Path:
    """A tiny random SAM saved as `translandseg` saves models (tiles of 256 px, as tests/test_app.py's)."""
    from transformers import SamModel

    from translandseg_hf import TransLandSegModel
    from translandseg_hf.sam_configs import tiny_sam_config

    torch.manual_seed(0)
    model = TransLandSegModel.from_sam(SamModel(tiny_sam_config()))
    model.set_image_processor(TransLandSegImageProcessor(input_size=64, tile_size=256))
    folder = tmp_path_factory.mktemp("tiny-sam")
    model.save_pretrained(folder)
    return folder


def space_metadata(readme: Path) -> dict:
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_a_space_for_a_hub_model_names_it_in_its_metadata_and_app(tmp_path, capsys):
    assert main(["space", "--model", "user/landslides", "--output", str(tmp_path / "space")]) == 0
    files = sorted(p.name for p in (tmp_path / "space").iterdir())
    assert files == ["README.md", "app.py", "requirements.txt"]
    metadata = space_metadata(tmp_path / "space" / "README.md")
    assert metadata["sdk"] == "gradio" and metadata["app_file"] == "app.py"
    assert metadata["sdk_version"] == gr.__version__ and metadata["models"] == ["user/landslides"]
    assert metadata["license"] == "apache-2.0" and metadata["title"] and metadata["emoji"]
    app = (tmp_path / "space" / "app.py").read_text()
    ast.parse(app)
    assert "launch_app('user/landslides', max_pixels=50000000" in app
    assert (tmp_path / "space" / "requirements.txt").read_text().startswith("translandseg-hf[app]")
    assert "wrote the Space" in capsys.readouterr().out


def test_a_space_for_a_local_model_carries_it_and_its_app_loads_it(tmp_path, tiny_sam_folder, monkeypatch):
    import runpy

    import translandseg_hf.app.ui as ui

    output = write_space(str(tiny_sam_folder), tmp_path / "space", title="Bijie landslides", max_pixels=1000)
    assert "models" not in space_metadata(output / "README.md")
    assert (output / "model" / "adapter_config.json").is_file()
    launched = {}
    monkeypatch.setattr(ui, "launch_app", lambda model, **kwargs: launched.update(model=model, **kwargs))
    runpy.run_path(str(output / "app.py"), run_name="__main__")
    assert launched == {"model": output / "model", "max_pixels": 1000, "title": "Bijie landslides"}
    assert Mapper(launched["model"], "cpu").contract.tile_size == 256  # the copied model loads


def test_a_space_is_not_written_over_other_files(tmp_path, capsys):
    (tmp_path / "notes.md").write_text("mine")
    assert main(["space", "--model", "user/landslides", "--output", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_space("./no/such/model", tmp_path / "space")


def test_a_space_is_not_written_into_or_over_its_model_folder(tiny_sam_folder, tmp_path):
    with pytest.raises(ValueError, match="overlaps the model folder"):
        write_space(str(tiny_sam_folder), tiny_sam_folder / "space")
    model = shutil.copytree(tiny_sam_folder, tmp_path / "model")  # where the Space would put its copy
    with pytest.raises(ValueError, match="overlaps the model folder"):
        write_space(str(model), tmp_path, overwrite=True)
    assert (model / "adapter_config.json").is_file()
