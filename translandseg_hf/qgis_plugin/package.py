"""`translandseg qgis-plugin`: the plugin as QGIS installs it, a folder `translandseg_qgis/` and its zip for Plugins >
Install from ZIP. Runs in the package's environment, not in QGIS: it copies the plugin's files (installed as the
top-level `translandseg_qgis`, from the repository's `qgis_plugin/translandseg_qgis/`), importing neither them nor
qgis."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Union

from ..io_utils import atomic_write_through, replace_folder, staging_dir_for
from ..package_info import package_version

PLUGIN_NAME = "translandseg_qgis"
PLUGIN_FILES = ("*.py", "metadata.txt", "*.svg")  # the package data globs in pyproject.toml
CHECKOUT_SOURCE = Path(__file__).resolve().parents[2] / "qgis_plugin" / PLUGIN_NAME  # a source checkout, not installed


def plugin_source() -> Path:
    """The plugin's folder: the installed `translandseg_qgis` (found, never imported: it is QGIS's program), else the
    one of the source checkout this package runs from."""
    spec = importlib.util.find_spec(PLUGIN_NAME)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else CHECKOUT_SOURCE


def plugin_files() -> list[Path]:
    """The plugin's files as installed with the package."""
    source = plugin_source()
    files = sorted({path for pattern in PLUGIN_FILES for path in source.glob(pattern)})
    missing = [name for name in ("__init__.py", "metadata.txt") if source / name not in files]
    if missing:
        raise FileNotFoundError(f"{source}: the plugin's {', '.join(missing)} are missing: reinstall translandseg-hf.")
    return files


def write_plugin(output_dir: Union[str, os.PathLike]) -> tuple[Path, Path]:
    """Write OUTPUT_DIR/translandseg_qgis/ (the plugin, its metadata carrying this package's version) and
    OUTPUT_DIR/translandseg_qgis.zip; both are replaced if they exist (a link there is replaced, never written
    through). Both are written under unique temporary names (`io_utils`), removed if the run fails. Returns (folder,
    zip)."""
    output = Path(output_dir)
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"{output} is a file: give a folder for the plugin (it is made if missing).")
    output.mkdir(parents=True, exist_ok=True)
    folder, archive = output / PLUGIN_NAME, output / f"{PLUGIN_NAME}.zip"
    if folder.is_file() and not folder.is_symlink():
        raise FileExistsError(f"{folder} is a file, not the plugin's folder: move it away or choose another folder.")
    staging = staging_dir_for(folder)
    try:
        for path in plugin_files():
            shutil.copyfile(path, staging / path.name)
        stamp_version(staging / "metadata.txt", package_version() or "")
        atomic_write_through(archive, lambda handle: write_zip(handle, staging))
        if folder.exists() or folder.is_symlink():
            replace_folder(staging, folder)
        else:
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder, archive


def write_zip(handle, staging: Path) -> None:
    """The zip QGIS installs from: the plugin's files under translandseg_qgis/."""
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(staging.iterdir()):
            bundle.write(path, f"{PLUGIN_NAME}/{path.name}")


def stamp_version(metadata_file: Path, version: str) -> None:
    """The plugin's version is the package's, so a plugin and the environment it runs can be matched."""
    if version:
        text = metadata_file.read_text(encoding="utf-8")
        metadata_file.write_text(re.sub(r"(?m)^version=.*$", f"version={version}", text), encoding="utf-8")
