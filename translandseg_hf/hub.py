"""Local path or Hugging Face Hub id: the one place that decides, and fetches a repository's files when needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

PathOrRepoId = Union[str, os.PathLike]


def local_path(path_or_repo_id: PathOrRepoId, what: str) -> Optional[Path]:
    """The local file or folder `path_or_repo_id` names, or None when it is a Hub id (`user/repo`, `repo`).

    A name that can only be a path (it starts with `.`, `/` or `~`, has more than one `/`, or ends with a file
    suffix such as `.pth`) but does not exist is a `FileNotFoundError` naming `what` it should have been, rather
    than a Hub lookup that fails later with a confusing network error.
    """
    text = os.path.expanduser(str(path_or_repo_id))
    if os.path.exists(text):
        return Path(text)
    looks_like_path = (
        isinstance(path_or_repo_id, os.PathLike)
        or str(path_or_repo_id).startswith((".", "/", "~"))
        or text.count("/") > 1
        or os.path.splitext(text)[1] in (".pth", ".pt", ".bin", ".safetensors", ".json")
    )
    if looks_like_path:
        raise FileNotFoundError(f"{path_or_repo_id} does not exist (expected {what}).")
    return None


def resolve_model_folder(
    path_or_repo_id: PathOrRepoId,
    what: str,
    required: Sequence[str] = (),
    allow_patterns: Sequence[str] = (),
    revision: Optional[str] = None,
    **download_kwargs,
) -> Path:
    """A local folder holding the `required` files: the folder itself, or a Hub repository's files downloaded (or
    read from the local cache, which also works offline) with `allow_patterns` besides the required ones."""
    folder = local_path(path_or_repo_id, what)
    if folder is None:
        from huggingface_hub import snapshot_download

        patterns = [*required, *allow_patterns]
        folder = Path(
            snapshot_download(str(path_or_repo_id), revision=revision, allow_patterns=patterns, **download_kwargs)
        )
    elif not folder.is_dir():
        raise FileNotFoundError(f"{folder} is a file, not a folder with {what}.")
    for name in required:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} has no {name}: it is not {what}.")
    return folder
