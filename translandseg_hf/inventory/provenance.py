"""Where an inventory's polygons came from: the model (its name and a revision hash of what it computes with), the
package's version and when the mapping was done. Written into every landslide's row and into inventory.json."""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Optional, Union

from ..contract_fields import PREPROCESSOR_CONFIG
from ..hub import PathOrRepoId, local_folder, resolve_model_folder
from ..package_info import package_version  # noqa: F401  (build.py's provenance fields)

WEIGHT_SUFFIXES = (".safetensors", ".onnx")  # what a saved model (torch) or an export (onnxruntime) computes with
# An export over 2 GB keeps its weights beside the graph in model.onnx.data (as `onnx_backend.runtime` downloads it).
EXTERNAL_DATA_PATTERN = "*.onnx.data"
REVISION_HEX = 12  # hex digits of the sha256 kept: 48 bits, no collision among a team's models
CHUNK = 2**20


def model_folder(model: PathOrRepoId) -> Path:
    """The local folder of a model: the folder given, or a Hub repository's snapshot (the cache offline)."""
    return resolve_model_folder(model, "a saved landslide model", required=[PREPROCESSOR_CONFIG],
                                allow_patterns=[*(f"*{suffix}" for suffix in WEIGHT_SUFFIXES), EXTERNAL_DATA_PATTERN])


def model_name(model: Optional[PathOrRepoId]) -> Optional[str]:
    """A Hub id as it is, a folder by its name (None: no model named)."""
    if model is None:
        return None
    folder = local_folder(model, "a saved landslide model")
    return str(model) if folder is None else Path(os.path.abspath(folder)).name


def model_revision(folder: Union[str, os.PathLike]) -> str:
    """sha256 over the model's weight files (*.safetensors, *.onnx, and the external-data files each ONNX graph
    names: an export over 2 GB keeps its weights there, `onnx_external_data`) and its contract
    (preprocessor_config.json), each as its name, a NUL and its bytes, in name order; the first REVISION_HEX hex
    digits. Two folders with the same weights and contract get the same revision, wherever they are; a retrained or
    re-scaled model another. The graph's own list is read rather than every file of the folder hashed: a README, a
    card or a log beside the weights would otherwise change the revision of the same model."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no weight files ({', '.join('*' + s for s in WEIGHT_SUFFIXES)}) to "
                                "identify the model by.")
    external = {name for path in files if path.suffix == ".onnx" for name in onnx_external_data(path)}
    files = sorted(set(files) | {folder / name for name in external})
    contract = folder / PREPROCESSOR_CONFIG
    digest = hashlib.sha256()
    for path in files + ([contract] if contract.is_file() else []):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()[:REVISION_HEX]


def onnx_external_data(graph: Path) -> list[str]:
    """The files (relative to the graph's folder) its tensors keep their data in (data_location EXTERNAL), read
    without loading the data. A model folder may come from anyone: a location that leaves the folder (absolute, or
    through '..') is refused naming it, and a missing one too, since the weights could not be identified."""
    try:
        import onnx
        from onnx.external_data_helper import ExternalDataInfo, uses_external_data
    except ImportError:
        raise ValueError(f"{graph}: reading which external-data files an ONNX graph uses needs the onnx package; "
                         "pip install 'translandseg-hf[onnx]'.") from None
    names = set()
    for tensor in graph_tensors(onnx.load(str(graph), load_external_data=False).graph):
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location
        posix = PurePosixPath(location.replace("\\", "/"))
        if not location or posix.is_absolute() or ".." in posix.parts or PureWindowsPath(location).drive:
            raise ValueError(f"{graph}: tensor {tensor.name!r} keeps its data at {location!r}, outside the model's "
                             "folder; an ONNX model's external data must lie in its folder.")
        if not (graph.parent / posix).is_file():
            raise FileNotFoundError(f"{graph}: tensor {tensor.name!r} keeps its data in {location}, which is not in "
                                    f"{graph.parent}.")
        names.add(posix.as_posix())
    return sorted(names)


def graph_tensors(graph):
    """Every tensor of an ONNX graph that may hold weights: its initializers and its nodes' tensor attributes
    (Constant), its subgraphs' (If, Loop) included."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            yield from ([attribute.t] if attribute.HasField("t") else []) + list(attribute.tensors)
            for subgraph in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                yield from graph_tensors(subgraph)


def mapped_at() -> str:
    """Now, UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
