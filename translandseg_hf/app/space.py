"""A Hugging Face Space for a model: `app.py` (the same page as `translandseg app`), `requirements.txt` and a README
with the Space metadata. A local model folder is copied in beside `app.py`; a Hub id is loaded at start."""

from __future__ import annotations

import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

import yaml

from ..hub import local_path
from ..io_utils import atomic_write_text
from . import DEFAULT_MAX_PIXELS

MODEL_FOLDER = "model"  # where a local model goes inside the Space


def write_space(
    model: str, output, title: str = "Landslide mapping", max_pixels: int = DEFAULT_MAX_PIXELS,
    requirement: Optional[str] = None, sdk_version: Optional[str] = None, overwrite: bool = False,
) -> Path:
    """Write the Space's files to `output` (a new or empty folder unless `overwrite`); the folder."""
    output = Path(output)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise FileExistsError(f"{output} is not empty; choose a new folder or pass --overwrite.")
    folder = local_path(model, "a saved model folder")
    if folder is not None and not folder.is_dir():
        raise FileNotFoundError(f"{folder} is a file, not a saved model folder.")
    if folder is not None and (output.resolve().is_relative_to(folder.resolve())
                               or (output / MODEL_FOLDER).resolve() == folder.resolve()):
        raise ValueError(f"the Space folder {output} overlaps the model folder {folder}; choose another.")
    output.mkdir(parents=True, exist_ok=True)
    if folder is not None:
        shutil.rmtree(output / MODEL_FOLDER, ignore_errors=True)
        shutil.copytree(folder, output / MODEL_FOLDER)
    repo_id = None if folder is not None else str(model)
    atomic_write_text(output / "app.py", app_source(repo_id, title, max_pixels))
    atomic_write_text(output / "requirements.txt", (requirement or package_requirement()) + "\n")
    atomic_write_text(output / "README.md", space_readme(repo_id, title, sdk_version or gradio_version()))
    return output


def app_source(repo_id: Optional[str], title: str, max_pixels: int) -> str:
    """app.py: load the model (the Hub id, or the folder beside it) and serve the page."""
    docstring = (f'"""A Hugging Face Space: landslide maps from {repo_id or "the model in ./" + MODEL_FOLDER}, as '
                 '`translandseg app` serves them."""\n\n')
    imports = "from translandseg_hf.app import launch_app\n\n"
    if repo_id is None:
        imports = "from pathlib import Path\n\n" + imports
    model = repr(repo_id) if repo_id else f"Path(__file__).parent / {MODEL_FOLDER!r}"
    return f"{docstring}{imports}launch_app({model}, max_pixels={max_pixels}, title={title!r})\n"


def package_requirement() -> str:
    try:
        return f"translandseg-hf[app]=={version('translandseg-hf')}"
    except PackageNotFoundError:
        return "translandseg-hf[app]"


def gradio_version() -> str:
    """The Space's `sdk_version`: the Gradio this page was built and tested with."""
    try:
        return version("gradio")
    except PackageNotFoundError:
        raise ValueError("Gradio is not installed: install translandseg-hf[app] or pass --sdk_version.") from None


def space_readme(repo_id: Optional[str], title: str, sdk_version: str) -> str:
    """The Space's README: Spaces' YAML metadata, then how to use and publish it."""
    metadata = {
        "title": title, "emoji": "⛰️", "colorFrom": "yellow", "colorTo": "red", "sdk": "gradio",
        "sdk_version": sdk_version, "app_file": "app.py", "pinned": False, "license": "apache-2.0",
        "short_description": "Landslide maps from images and GeoTIFFs (TransLandSeg)",
        "tags": ["landslide", "remote-sensing", "image-segmentation"],
    }
    if repo_id:
        metadata["models"] = [repo_id]
    header = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    source = f"[{repo_id}](https://huggingface.co/{repo_id})" if repo_id else f"the model in `{MODEL_FOLDER}/`"
    return (f"---\n{header}---\n\n# {title}\n\n"
            f"Landslide maps from {source}: upload a PNG, JPEG or GeoTIFF, see the landslides outlined and their "
            "probabilities, change the threshold and minimum area, and download the mask GeoTIFF and the polygons "
            "(GeoJSON, GPKG) for QGIS. Scenes are mapped as `translandseg predict` maps them.\n\n"
            "Run it locally with `pip install -r requirements.txt && python app.py`; publish it with "
            "`hf upload USER/SPACE . --repo-type space` from this folder.\n")
