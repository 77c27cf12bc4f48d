"""A Hugging Face Space for a model: `app.py` (the same page as `translandseg app`), `requirements.txt` and a README
with the Space metadata. A local model folder is copied in beside `app.py`; a Hub id is loaded at start.

translandseg-hf is not on PyPI, so the Space carries the package's code beside `app.py` (`python app.py` imports it
from there) and `requirements.txt` lists only its dependencies. Not a wheel: Spaces run `pip install -r` on
`requirements.txt` mounted alone, before the repository's files are copied in, so a local path in it is not found."""

from __future__ import annotations

import shutil
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path
from typing import Optional

import yaml
from packaging.requirements import Requirement

from ..hub import local_folder
from ..io_utils import atomic_write_text
from . import DEFAULT_MAX_PIXELS

MODEL_FOLDER = "model"  # where a local model goes inside the Space
PACKAGE = Path(__file__).resolve().parents[1]  # the translandseg_hf the command runs, editable or not
DISTRIBUTION = "translandseg-hf"


def write_space(
    model: str, output, title: str = "Landslide mapping", max_pixels: int = DEFAULT_MAX_PIXELS,
    requirement: Optional[str] = None, sdk_version: Optional[str] = None, overwrite: bool = False,
) -> Path:
    """Write the Space's files to `output` (a new or empty folder unless `overwrite`); the folder."""
    output = Path(output)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise FileExistsError(f"{output} is not empty; choose a new folder or pass --overwrite.")
    folder = local_folder(model, "a saved model folder", "is a file, not a saved model folder.")
    if folder is not None:
        refuse_overlap(output, folder, MODEL_FOLDER, "the model folder")
    refuse_overlap(output, PACKAGE, PACKAGE.name, "the translandseg_hf package")
    requirements, sdk = requirement or carried_requirements(), sdk_version or gradio_version()  # either may fail
    output.mkdir(parents=True, exist_ok=True)
    if folder is not None:
        copy_folder(folder, output / MODEL_FOLDER)
    shutil.rmtree(output / PACKAGE.name, ignore_errors=True)  # a copy left by an earlier run would shadow --requirement
    if requirement is None:
        copy_folder(PACKAGE, output / PACKAGE.name)
    repo_id = None if folder is not None else str(model)
    atomic_write_text(output / "app.py", app_source(repo_id, title, max_pixels))
    atomic_write_text(output / "requirements.txt", requirements + "\n")
    atomic_write_text(output / "README.md", space_readme(repo_id, title, sdk, requirement))
    return output


def refuse_overlap(output: Path, source: Path, name: str, what: str) -> None:
    """A copy into `output / name` must neither replace `source` nor land inside it."""
    if output.resolve().is_relative_to(source.resolve()) or (output / name).resolve() == source.resolve():
        raise ValueError(f"the Space folder {output} overlaps {what} {source}; choose another.")


def copy_folder(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def app_source(repo_id: Optional[str], title: str, max_pixels: int) -> str:
    """app.py: load the model (the Hub id, or the folder beside it) and serve the page."""
    docstring = (f'"""A Hugging Face Space: landslide maps from {repo_id or "the model in ./" + MODEL_FOLDER}, as '
                 '`translandseg app` serves them."""\n\n')
    imports = "from translandseg_hf.app import launch_app\n\n"
    if repo_id is None:
        imports = "from pathlib import Path\n\n" + imports
    model = repr(repo_id) if repo_id else f"Path(__file__).parent / {MODEL_FOLDER!r}"
    return f"{docstring}{imports}launch_app({model}, max_pixels={max_pixels}, title={title!r})\n"


def carried_requirements() -> str:
    """requirements.txt for a Space carrying the package: what `pip install translandseg-hf[app]` would install."""
    try:
        listed, installed = requires(DISTRIBUTION) or [], version(DISTRIBUTION)
    except PackageNotFoundError:
        raise ValueError(f"{DISTRIBUTION} is not installed, so the dependencies of {PACKAGE} are unknown: install it "
                         "(`pip install -e .` in its source folder) or pass --requirement, e.g. "
                         "'translandseg-hf[app] @ git+https://...'.") from None
    lines = [f"# {DISTRIBUTION} {installed} with its [app] extra: the package's code is {PACKAGE.name}/ beside app.py;",
             "# these are its dependencies."]
    for text in listed:
        dependency = Requirement(text)
        if "extra" not in str(dependency.marker or ""):
            lines.append(text)
        elif dependency.marker.evaluate({"extra": "app"}):  # the app extra's own: needed unconditionally here
            dependency.marker = None
            lines.append(str(dependency))
    return "\n".join(lines)


def gradio_version() -> str:
    """The Space's `sdk_version`: the Gradio this page was built and tested with."""
    try:
        return version("gradio")
    except PackageNotFoundError:
        raise ValueError("Gradio is not installed: install translandseg-hf[app] or pass --sdk_version.") from None


def space_readme(repo_id: Optional[str], title: str, sdk_version: str, requirement: Optional[str] = None) -> str:
    """The Space's README: Spaces' YAML metadata, then what the Space carries, how to use and publish it."""
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
            "(GeoJSON and GPKG; GPKG only for a plain image without georeferencing) for QGIS. Scenes are mapped as "
            "`translandseg predict` maps them.\n\n"
            f"{carried_text(repo_id, requirement)}\n\n"
            "Run it locally with `pip install -r requirements.txt && python app.py`; publish it with "
            "`hf upload USER/SPACE . --repo-type space` from this folder.\n")


def carried_text(repo_id: Optional[str], requirement: Optional[str]) -> str:
    """The README's account of where the model and the package come from."""
    model = (f"The model is downloaded from the Hub ({repo_id}) when the app starts" if repo_id
             else f"The model is carried in `{MODEL_FOLDER}/`")
    if requirement:
        return f"{model}; translandseg-hf is installed from `{requirement}` (requirements.txt)."
    return (f"{model}. translandseg-hf is not on PyPI, so its code ({DISTRIBUTION} {version(DISTRIBUTION)}) is "
            f"carried in `{PACKAGE.name}/`, which `app.py` imports; `requirements.txt` lists its dependencies.")
