"""One loader for every kind of saved landslide model: the file that identifies the folder's format says which class
loads it (the formats are rows of `model_kinds.SAVED_FORMATS`, imported by name only when one is loaded, so that
`onnx_backend.export` can load a saved model without this module importing the export)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from .hub import PathOrRepoId, resolve_model_folder
from .model_kinds import SAVED_FORMATS, import_named

if TYPE_CHECKING:
    from .segmentation import SegmentationModel


def load_segmentation_model(path_or_repo_id: PathOrRepoId, revision: Optional[str] = None) -> "SegmentationModel":
    """A saved model of any kind, from a local folder or a Hub repository (read from the cache when offline):
    `onnx_backend.OnnxSegmentationModel` (run by onnxruntime, which only it imports) for a folder with `model.onnx`
    (`translandseg export`), `TransLandSegModel` for one with `adapter_config.json`, `BaselineSegmentationModel` for
    one with `baseline_config.json`."""
    identifying = [saved.identifying_file for saved in SAVED_FORMATS.values()]
    folder = resolve_model_folder(path_or_repo_id, "a saved landslide model", allow_patterns=identifying,
                                  revision=revision)
    for saved in SAVED_FORMATS.values():
        if (folder / saved.identifying_file).is_file():
            return import_named(saved.model_class).from_pretrained(path_or_repo_id, revision=revision)
    raise FileNotFoundError(f"{path_or_repo_id} holds none of {identifying}: it is not a saved landslide model.")
