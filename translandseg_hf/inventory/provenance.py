"""Where an inventory's polygons came from: the model (its name and a revision hash of what it computes with), the
package's version and when the mapping was done. Written into every landslide's row and into inventory.json."""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path
from typing import Optional, Union

from ..contract_fields import PREPROCESSOR_CONFIG
from ..hub import PathOrRepoId, local_folder, resolve_model_folder
from ..package_info import package_version  # noqa: F401  (build.py's provenance fields)

WEIGHT_SUFFIXES = (".safetensors", ".onnx")  # what a saved model (torch) or an export (onnxruntime) computes with
REVISION_HEX = 12  # hex digits of the sha256 kept: 48 bits, no collision among a team's models
CHUNK = 2**20


def model_folder(model: PathOrRepoId) -> Path:
    """The local folder of a model: the folder given, or a Hub repository's snapshot (the cache offline)."""
    return resolve_model_folder(model, "a saved landslide model", required=[PREPROCESSOR_CONFIG],
                                allow_patterns=[f"*{suffix}" for suffix in WEIGHT_SUFFIXES])


def model_name(model: Optional[PathOrRepoId]) -> Optional[str]:
    """A Hub id as it is, a folder by its name (None: no model named)."""
    if model is None:
        return None
    folder = local_folder(model, "a saved landslide model")
    return str(model) if folder is None else Path(os.path.abspath(folder)).name


def model_revision(folder: Union[str, os.PathLike]) -> str:
    """sha256 over the model's weight files (*.safetensors, *.onnx) and its contract (preprocessor_config.json),
    each as its name, a NUL and its bytes, in name order; the first REVISION_HEX hex digits. Two folders with the
    same weights and contract get the same revision, wherever they are; a retrained or re-scaled model another."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no weight files ({', '.join('*' + s for s in WEIGHT_SUFFIXES)}) to "
                                "identify the model by.")
    contract = folder / PREPROCESSOR_CONFIG
    digest = hashlib.sha256()
    for path in files + ([contract] if contract.is_file() else []):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()[:REVISION_HEX]


def mapped_at() -> str:
    """Now, UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
