"""Where saved adapters live: local folders or Hugging Face Hub repositories (cached, so they also work offline)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from huggingface_hub import snapshot_download

ADAPTER_FILES = {"config": "adapter_config.json", "weights": "adapter_model.safetensors", "card": "README.md"}
BASE_MODEL_SUBFOLDER = "base_model"  # where a base without a Hub id is saved beside its adapter


def resolve_model_folder(
    path_or_repo_id: Union[str, os.PathLike],
    required: Sequence[str],
    what: str,
    revision: Optional[str] = None,
    extra_patterns: Sequence[str] = (),
) -> Path:
    """A local folder holding the `required` files, downloading them from a Hub repository (or reading the local
    cache, offline) when `path_or_repo_id` is not a folder; `what` names the kind of model in errors."""
    path = Path(path_or_repo_id)
    if path.is_dir():
        folder = path
    elif path.exists() or str(path_or_repo_id).startswith((".", "/")) or str(path_or_repo_id).count("/") > 1:
        raise FileNotFoundError(f"{path_or_repo_id} is not a folder with a saved {what}.")
    else:
        patterns = [*required, *extra_patterns]
        folder = Path(snapshot_download(str(path_or_repo_id), revision=revision, allow_patterns=patterns))
    for name in required:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} has no {name}: it is not a saved {what}.")
    return folder


def resolve_adapter_folder(path_or_repo_id: Union[str, os.PathLike], revision: Optional[str] = None) -> Path:
    """A local folder holding `adapter_config.json` and `adapter_model.safetensors`, downloading a Hub repo if needed."""
    return resolve_model_folder(
        path_or_repo_id,
        (ADAPTER_FILES["config"], ADAPTER_FILES["weights"]),
        "TransLandSeg adapter",
        revision,
        extra_patterns=(ADAPTER_FILES["card"], f"{BASE_MODEL_SUBFOLDER}/*"),
    )


def push_saved_model(
    save_pretrained: Callable[[str], None], repo_id: str, private: Optional[bool], token: Optional[str],
    commit_message: str,
) -> str:
    """Save a model with `save_pretrained(folder)` into a temporary folder, create the repository if needed and
    upload the folder; the commit's URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        save_pretrained(folder)
        commit = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message)
    return commit.commit_url if hasattr(commit, "commit_url") else str(commit)
