"""Local path or Hugging Face Hub id: the one place that decides, and fetches a repository's files when needed."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

PathOrRepoId = Union[str, os.PathLike]
# What torch.save and pickle write. Loading one unpickles it, which can run any code its author put in it: weights are
# read from safetensors only, and these are neither downloaded nor read.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
NEVER_DOWNLOADED = [f"*{suffix}" for suffix in PICKLE_SUFFIXES]
DATASET_CARD = ["README.md"]  # what checking a Hub dataset id fetches: that the repository is there, not its data
MAX_CONFIG_BYTES = 16 * 2**20  # a model's JSON files are kilobytes: a bigger one is a bomb, not a config


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


def is_local(name: PathOrRepoId) -> bool:
    """Whether `name` is a local path, even one that no longer exists (a model card still names a local base)."""
    try:
        return local_path(name, "a local path or a Hub id") is not None
    except FileNotFoundError:  # a name that can only be a path, but no longer exists
        return True


def local_folder(path_or_repo_id: PathOrRepoId, what: str, file_message: Optional[str] = None) -> Optional[Path]:
    """The local folder `path_or_repo_id` names, or None for a Hub id; a file is refused. `file_message` is what
    the refusal says after the file's name (default: "is a file, not a folder with {what}.")."""
    folder = local_path(path_or_repo_id, what)
    if folder is not None and not folder.is_dir():
        raise FileNotFoundError(f"{folder} {file_message or f'is a file, not a folder with {what}.'}")
    return folder


def check_data_dir(dataset: str, data_dir: Optional[PathOrRepoId], must_exist: bool = True) -> Optional[Path]:
    """The folder holding `dataset` (None for `synthetic`, which needs none): every dataset but synthetic needs one,
    a folder or a Hub dataset id. With `must_exist` a folder must be there and a Hub id's repository must exist (or
    be cached, offline), so a run fails before any work rather than deep in a loader; a Hub id gives its snapshot
    folder, with only its card fetched (each loader fetches the files it reads). Without, the name is returned
    unchecked."""
    if dataset != "synthetic" and not data_dir:
        raise ValueError(f"Dataset {dataset!r} needs data_dir (the folder holding it).")
    if data_dir is None:
        return None
    if not must_exist:
        return Path(data_dir)
    if not is_local(data_dir):
        return resolve_dataset_folder(data_dir, what=f"dataset {dataset!r}", allow_patterns=DATASET_CARD)
    if not Path(data_dir).expanduser().is_dir():
        raise FileNotFoundError(f"data_dir {data_dir} does not exist (dataset {dataset!r}).")
    return Path(data_dir).expanduser()


def resolve_dataset_folder(
    name_or_path: PathOrRepoId,
    revision: Optional[str] = None,
    what: str = "a dataset",
    allow_patterns: Sequence[str] = (),
    **download_kwargs,
) -> Path:
    """The local folder holding a dataset: the folder itself, or a Hub dataset repository's files (`allow_patterns`
    of them, or all), downloaded or read from the local Hub cache (which is all there is offline, HF_HUB_OFFLINE=1).
    A missing repository, revision or cached copy is a FileNotFoundError naming the id and saying what to do."""
    folder = local_folder(name_or_path, what)
    if folder is not None:
        return folder
    from huggingface_hub import snapshot_download

    alternative = f"pass the folder holding {what} or a Hub dataset id such as ibm-nasa-geospatial/Landslide4sense"
    with hub_errors(str(name_or_path), "dataset", alternative, revision, download_kwargs.get("cache_dir")):
        return Path(snapshot_download(str(name_or_path), repo_type="dataset", revision=revision,
                                      allow_patterns=list(allow_patterns) or None, **download_kwargs))


@contextmanager
def hub_errors(repo_id: str, kind: str, alternative: str, revision: Optional[str], cache_dir=None) -> Iterator[None]:
    """huggingface_hub's errors for a `kind` ("model" or "dataset") repository as a FileNotFoundError that names the
    id and says what to do: a missing repository or revision, or one neither cached nor reachable (offline, or the
    Hub could not be reached: not huggingface_hub's `Got: ConnectError`)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    try:
        yield
    except HFValidationError as error:
        raise FileNotFoundError(f"{repo_id} is neither a folder nor a Hub {kind} id ({error}); {alternative}.") \
            from error
    except RepositoryNotFoundError as error:
        raise FileNotFoundError(
            f"{repo_id} is not a folder, and the Hugging Face Hub has no {kind} repository {repo_id} (or it is "
            f"private or gated: log in with `hf auth login`); {alternative}.") from error
    except RevisionNotFoundError as error:
        raise FileNotFoundError(f"{repo_id}: the Hub {kind} has no revision {revision!r}; pass one it has (a "
                                "branch, tag or commit) or none for main.") from error
    except LocalEntryNotFoundError as error:
        why = "the Hub is offline (HF_HUB_OFFLINE=1)" if constants.HF_HUB_OFFLINE else "the Hub could not be reached"
        download = f"hf download {repo_id}" + (" --repo-type dataset" if kind == "dataset" else "")
        raise FileNotFoundError(
            f"{repo_id} is not a folder, and the Hub {kind} {repo_id} is not in the local Hugging Face cache "
            f"({cache_dir or constants.HF_HUB_CACHE}) while {why}; download it once online (`{download}`, or run "
            f"this again online) or {alternative}.") from error


def resolve_model_folder(
    path_or_repo_id: PathOrRepoId,
    what: str,
    required: Sequence[str] = (),
    allow_patterns: Sequence[str] = (),
    revision: Optional[str] = None,
    **download_kwargs,
) -> Path:
    """A local folder holding the `required` files: the folder itself, or a Hub repository's files downloaded (or
    read from the local cache, which also works offline) with `allow_patterns` besides the required ones. Pickle
    files are never downloaded, and a folder whose weights are only pickles is refused, saying why."""
    folder = local_folder(path_or_repo_id, what)
    if folder is None:
        from huggingface_hub import snapshot_download

        patterns = [*required, *allow_patterns]
        alternative = f"pass a folder with {what}"
        with hub_errors(str(path_or_repo_id), "model", alternative, revision, download_kwargs.get("cache_dir")):
            folder = Path(snapshot_download(str(path_or_repo_id), revision=revision, allow_patterns=patterns,
                                            ignore_patterns=NEVER_DOWNLOADED, **download_kwargs))
    for name in required:
        if not (folder / name).is_file():
            pickles = pickle_files(folder) if name.endswith(".safetensors") else []
            if pickles:
                raise FileNotFoundError(refusal(folder, name, pickles))
            raise FileNotFoundError(f"{folder} has no {name}: it is not {what}.")
    return folder


def pickle_files(folder: Path) -> list[str]:
    """The names of the files in `folder` that loading would unpickle."""
    return sorted(path.name for path in folder.iterdir() if path.is_file() and path.suffix.lower() in PICKLE_SUFFIXES)


def refusal(folder: Path, wanted: str, pickles: Sequence[str]) -> str:
    """Why a folder with pickled weights but no `wanted` safetensors file is not loaded."""
    return (f"{folder} has no {wanted}, only pickle weights ({', '.join(pickles)}), which are never read: unpickling "
            "a file can run any code its author put in it. Where you trust the file, convert it to safetensors "
            "(safetensors.torch.save_file(torch.load(path, weights_only=True), ...)).")


def read_json_config(path: Path, max_bytes: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    """A model folder's JSON file as a dict, read safely from files other people made: at most `max_bytes` (a huge
    file is refused before it is read), no recursion blow-up on deeply nested arrays, and an object at the top.
    Every failure is a ValueError naming the file (FileNotFoundError when it is missing)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ValueError(f"{path}: {size:,} bytes, more than the {max_bytes:,} a model's JSON file may have; "
                             "it is not a config.")
        with open(path, "rb") as handle:
            text = handle.read(max_bytes + 1).decode("utf-8")
        values = json.loads(text)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file.") from None
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply to be a config (a JSON bomb?).") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not readable JSON ({error}).") from error
    if not isinstance(values, dict):
        raise ValueError(f"{path}: holds a JSON {type(values).__name__}, not an object of fields.")
    return values
