"""One loader for every kind of saved landslide model: the config file in the folder says which kind it is."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from .baselines.modeling_baseline import BASELINE_FILES, BaselineSegmentationModel
from .hub import ADAPTER_FILES
from .modeling_translandseg import TransLandSegModel


def load_segmentation_model(path_or_repo_id: Union[str, os.PathLike], revision: Optional[str] = None):
    """`TransLandSegModel` for a folder with `adapter_config.json`, `BaselineSegmentationModel` for one with
    `baseline_config.json`; a Hub repository id is checked for either file."""
    path = Path(path_or_repo_id)
    if path.is_dir():
        names = {item.name for item in path.iterdir()}
    elif path.exists() or str(path_or_repo_id).startswith((".", "/")) or str(path_or_repo_id).count("/") > 1:
        raise FileNotFoundError(f"{path_or_repo_id} is not a folder with a saved model.")
    else:
        from huggingface_hub import snapshot_download  # reads the local cache when offline

        patterns = [ADAPTER_FILES["config"], BASELINE_FILES["config"]]
        folder = Path(snapshot_download(str(path_or_repo_id), revision=revision, allow_patterns=patterns))
        names = {item.name for item in folder.iterdir()}
    if ADAPTER_FILES["config"] in names:
        return TransLandSegModel.from_pretrained(path_or_repo_id, revision=revision)
    if BASELINE_FILES["config"] in names:
        return BaselineSegmentationModel.from_pretrained(path_or_repo_id, revision=revision)
    raise FileNotFoundError(f"{path_or_repo_id} holds neither {ADAPTER_FILES['config']} (TransLandSeg) nor "
                            f"{BASELINE_FILES['config']} (a CNN baseline).")
