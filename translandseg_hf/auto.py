"""One loader for every kind of saved landslide model: the config file in the folder says which kind it is."""

from __future__ import annotations

from typing import Optional

from .baselines import BaselineSegmentationModel
from .hub import PathOrRepoId, resolve_model_folder
from .modeling_translandseg import TransLandSegModel
from .onnx_backend import ONNX_MODEL
from .segmentation import SegmentationModel

SAVED_MODEL_CLASSES: tuple[type[SegmentationModel], ...] = (TransLandSegModel, BaselineSegmentationModel)


def load_segmentation_model(path_or_repo_id: PathOrRepoId, revision: Optional[str] = None) -> SegmentationModel:
    """A saved model of any kind, from a local folder or a Hub repository (read from the cache when offline):
    `TransLandSegModel` for a folder with `adapter_config.json`, `BaselineSegmentationModel` for one with
    `baseline_config.json`, and `onnx_backend.OnnxSegmentationModel` (run by onnxruntime, which only it imports) for
    one with `model.onnx` (`translandseg export`)."""
    identifying = [cls.saved_files[0] for cls in SAVED_MODEL_CLASSES] + [ONNX_MODEL]
    folder = resolve_model_folder(path_or_repo_id, "a saved landslide model", allow_patterns=identifying,
                                  revision=revision)
    if (folder / ONNX_MODEL).is_file():
        from .onnx_backend.runtime import OnnxSegmentationModel

        return OnnxSegmentationModel.from_pretrained(path_or_repo_id, revision=revision)
    for cls in SAVED_MODEL_CLASSES:
        if (folder / cls.saved_files[0]).is_file():
            return cls.from_pretrained(path_or_repo_id, revision=revision)
    raise FileNotFoundError(f"{path_or_repo_id} holds none of {identifying}: it is not a saved landslide model.")
