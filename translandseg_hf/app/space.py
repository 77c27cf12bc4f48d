"""A Hugging Face Space for a model: `app.py` (the same page as `translandseg app`), `requirements.txt` and a README
with the Space metadata. A local model folder is copied in beside `app.py`; a Hub id is loaded at start.

translandseg-hf is not on PyPI, so the Space carries the package's code beside `app.py` (`python app.py` imports it
from there) and `requirements.txt` lists only its dependencies. Not a wheel: Spaces run `pip install -r` on
`requirements.txt` mounted alone, before the repository's files are copied in, so a local path in it is not found."""

from __future__ import annotations

import fnmatch
import os
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
NOT_COPIED = ("__pycache__", "*.pyc", ".git")  # a clone's .git/config may hold a token in its remote URL;
# `hf upload` leaves .git out too (huggingface_hub's DEFAULT_IGNORE_PATTERNS)
HUB_CACHE_REPOSITORIES = ("models--", "datasets--", "spaces--")  # huggingface_hub's cache folders, one per repository


def write_space(
    model: str, output, title: str = "Landslide mapping", max_pixels: int = DEFAULT_MAX_PIXELS,
    requirement: Optional[str] = None, sdk_version: Optional[str] = None, overwrite: bool = False,
    no_urls: bool = False,
) -> Path:
    """Write the Space's files to `output` (a new or empty folder unless `overwrite`); the folder. `no_urls`: the
    Space maps uploads only (`translandseg app --no_urls`)."""
    output = Path(output)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise FileExistsError(f"{output} is not empty; choose a new folder or pass --overwrite.")
    folder = local_folder(model, "a saved model folder", "is a file, not a saved model folder.")
    repo_id = None if folder is not None else checked_repo_id(model)
    check_generated_values(title, max_pixels, requirement, sdk_version)
    model_copy = []
    if folder is not None:
        refuse_overlap(output, folder, MODEL_FOLDER, "the model folder")
        model_copy = plan_copy(folder, "the model folder")
    refuse_overlap(output, PACKAGE, PACKAGE.name, "the translandseg_hf package")
    package_copy = plan_copy(PACKAGE, "the translandseg_hf package") if requirement is None else []
    requirements, sdk = requirement or carried_requirements(), sdk_version or gradio_version()  # either may fail
    output.mkdir(parents=True, exist_ok=True)
    if folder is not None:
        write_copy(model_copy, output / MODEL_FOLDER)
    remove_old_copy(output / PACKAGE.name)  # a copy left by an earlier run would shadow --requirement
    if requirement is None:
        write_copy(package_copy, output / PACKAGE.name)
    atomic_write_text(output / "app.py", app_source(repo_id, title, max_pixels, no_urls))
    atomic_write_text(output / "requirements.txt", requirements + "\n")
    atomic_write_text(output / "README.md", space_readme(repo_id, title, sdk, requirement))
    return output


def checked_repo_id(model) -> str:
    """A Hub id goes into app.py and the README: only what the Hub's own rule allows (`user/repo`, letters, digits,
    `-_.`), so no id can close a string and add code."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(str(model))
    except HFValidationError as error:
        raise ValueError(f"{model!r} is neither a model folder nor a Hub model id: {error}") from None
    return str(model)


def check_generated_values(title, max_pixels, requirement: Optional[str], sdk_version: Optional[str]) -> None:
    """What else the Space's files carry: one line of text each and a whole number, refused with what they should be
    (a line break would start new lines in README.md or requirements.txt, such as a pip `--index-url`)."""
    for name, text in (("the title", title), ("--requirement", requirement), ("--sdk_version", sdk_version)):
        if text is not None and (not isinstance(text, str) or not text.isprintable()):
            raise ValueError(f"{name} {text!r} must be one line of printable text.")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ValueError(f"max_pixels {max_pixels!r} must be a whole number above 0.")


def refuse_overlap(output: Path, source: Path, name: str, what: str) -> None:
    """A copy into `output / name` must neither replace `source` nor land inside it."""
    if output.resolve().is_relative_to(source.resolve()) or (output / name).resolve() == source.resolve():
        raise ValueError(f"the Space folder {output} overlaps {what} {source}; choose another.")


def plan_copy(source: Path, what: str) -> list[tuple[str, Path, Optional[str]]]:
    """(kind, path inside the copy, what to write) for every entry of `source`, all checked before anything is
    written: a folder someone else made may hold links to the user's files (`notes.txt -> ~/.cache/huggingface/token`),
    which a copy that follows links would publish in the Space."""
    root, entries = source.resolve(), []
    blobs = hub_cache_blobs(root)
    for folder, folders, files in os.walk(source):  # links to folders are listed, never entered
        folders[:] = sorted(name for name in folders if not is_not_copied(name))
        for name in sorted(folders + [name for name in files if not is_not_copied(name)]):
            path = Path(folder) / name
            entries.append(planned_entry(path, path.relative_to(source), root, blobs, what))
    return entries


def is_not_copied(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in NOT_COPIED)


def hub_cache_blobs(root: Path) -> Optional[Path]:
    """A snapshot in the Hugging Face cache (`models--USER--REPO/snapshots/REVISION`) holds links to its
    repository's `blobs/`: those files are the repository's own, copied as files."""
    blobs = root.parent.parent / "blobs"
    in_cache = root.parent.name == "snapshots" and root.parent.parent.name.startswith(HUB_CACHE_REPOSITORIES)
    return blobs if in_cache and blobs.is_dir() and not blobs.is_symlink() else None


def planned_entry(path: Path, relative: Path, root: Path, blobs: Optional[Path], what: str):
    """How one entry is copied: a folder made, a file's bytes, or a link that stays inside as a relative link."""
    if not path.is_symlink():
        if path.is_dir():
            return "folder", relative, None
        if path.is_file():
            return "file", relative, str(path)
        raise ValueError(f"{path}: not a file, folder or link (a pipe, socket or device); remove it from {what}.")
    resolved = Path(os.path.realpath(path))
    if resolved.is_relative_to(root):
        return "link", relative, os.path.relpath(resolved, (root / relative).parent)
    if blobs is not None and resolved.parent == blobs and resolved.is_file():
        return "file", relative, str(resolved)
    kind = "a folder" if resolved.is_dir() else "a file" if resolved.exists() else "a missing file"
    raise ValueError(f"{path}: a link to {kind} outside {what} ({os.readlink(path)}), which the Space would carry "
                     "and publish; replace the link with the file it stands for, or remove it.")


def write_copy(entries: list[tuple[str, Path, Optional[str]]], target: Path) -> None:
    """Write what `plan_copy` planned into a fresh `target`."""
    remove_old_copy(target)
    target.mkdir()
    for kind, relative, content in entries:
        destination = target / relative
        if kind == "folder":
            destination.mkdir()
        elif kind == "link":
            os.symlink(content, destination)
        else:
            shutil.copy2(content, destination)


def remove_old_copy(target: Path) -> None:
    """An earlier run's copy goes; a link there is removed, never what it points to."""
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)


def app_source(repo_id: Optional[str], title: str, max_pixels: int, no_urls: bool = False) -> str:
    """app.py: load the model (the Hub id, or the folder beside it) and serve the page. Every value is written as a
    Python literal (`repr`), the docstring too, so no text given to `space` can become code."""
    docstring = (f"A Hugging Face Space: landslide maps from {repo_id or 'the model in ./' + MODEL_FOLDER}, as "
                 "`translandseg app` serves them.")
    imports = "from translandseg_hf.app import launch_app\n\n"
    if repo_id is None:
        imports = "from pathlib import Path\n\n" + imports
    model = repr(str(repo_id)) if repo_id else f"Path(__file__).parent / {MODEL_FOLDER!r}"
    return (f"{docstring!r}\n\n{imports}"
            f"launch_app({model}, max_pixels={int(max_pixels)!r}, title={str(title)!r}"
            + (", no_urls=True" if no_urls else "") + ")\n")


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
