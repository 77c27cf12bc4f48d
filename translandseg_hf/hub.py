"""Where saved adapters live: local folders or Hugging Face Hub repositories (cached, so they also work offline)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from huggingface_hub import snapshot_download

ADAPTER_FILES = {"config": "adapter_config.json", "weights": "adapter_model.safetensors", "card": "README.md"}
BASE_MODEL_SUBFOLDER = "base_model"  # where a base without a Hub id is saved beside its adapter


def resolve_adapter_folder(path_or_repo_id: Union[str, os.PathLike], revision: Optional[str] = None) -> Path:
    """A local folder holding `adapter_config.json` and `adapter_model.safetensors`, downloading a Hub repo if needed."""
    path = Path(path_or_repo_id)
    if path.is_dir():
        folder = path
    elif path.exists() or str(path_or_repo_id).startswith((".", "/")) or str(path_or_repo_id).count("/") > 1:
        raise FileNotFoundError(f"{path_or_repo_id} is not a folder with a saved TransLandSeg adapter.")
    else:
        patterns = list(ADAPTER_FILES.values()) + [f"{BASE_MODEL_SUBFOLDER}/*"]
        folder = Path(snapshot_download(str(path_or_repo_id), revision=revision, allow_patterns=patterns))
    for name in (ADAPTER_FILES["config"], ADAPTER_FILES["weights"]):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} has no {name}: it is not a saved TransLandSeg adapter.")
    return folder
