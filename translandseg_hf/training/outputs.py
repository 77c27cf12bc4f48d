"""Where a run writes: a second run into a folder that holds one refuses, resumes it, or (`overwrite_output_dir`)
trains beside it and replaces it only once complete, so nothing of the two runs is lost or mixed."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from ..hub import is_local
from ..io_utils import replace_folder, shared_hidden_name
from .checkpoints import find_latest_checkpoint
from .config import TrainConfig

RUN_FILES = ("metrics.json", "model", "checkpoints", "base_model")  # what a run writes into output_dir


def run_files(folder: Path) -> list[str]:
    """The names of RUN_FILES present in `folder`: any of them means a run has written there."""
    return [name for name in RUN_FILES if (folder / name).exists()]


def sibling(output_dir: Path, suffix: str) -> Path:
    """`.NAME.SUFFIX` beside output_dir (on its file system, so renames between them are atomic); a fixed name, so
    every process of a run agrees on it."""
    return shared_hidden_name(os.path.normpath(output_dir), suffix)


def choose_work_dir(config: TrainConfig) -> Path:
    """The folder this run writes into, decided before any process writes; a ValueError (one line, saying what to
    pass) when output_dir holds a run that this one would overwrite or restart without being told to."""
    run = config.run
    output_dir = Path(run.output_dir)
    found = run_files(output_dir)
    if not found:
        return output_dir
    if run.overwrite_output_dir:
        check_replaceable(output_dir, config)
        return sibling(output_dir, "overwrite")
    if not run.resume_from_checkpoint:
        raise ValueError(f"{output_dir} already holds a run ({', '.join(found)}): pass --overwrite_output_dir true "
                         "to replace it once the new run completes, or --resume_from_checkpoint latest to continue it.")
    nothing_to_resume = find_latest_checkpoint(output_dir) is None
    if run.resume_from_checkpoint == "latest" and "metrics.json" in found and nothing_to_resume:
        raise ValueError(f"{output_dir} holds a run with no complete checkpoint to continue from: pass "
                         "--overwrite_output_dir true to train it again from the start and replace it.")
    return output_dir


@contextmanager
def removed_on_failure(work_dir: Path):
    """A run that fails before its first complete checkpoint (bad data, a typo, Ctrl-C) can be neither resumed nor
    used: remove the RUN_FILES it wrote, and work_dir if it made it, so the next run into the folder is not refused
    as "already holds a run". What was there before the run stays; so does a run that can be resumed."""
    existed = work_dir.exists()
    before = set(run_files(work_dir))
    try:
        yield
    except BaseException:
        from accelerate import PartialState  # the process that writes shared files is the one that removes them

        if PartialState().is_main_process and find_latest_checkpoint(work_dir) is None:
            remove_run_files(work_dir, keep=before)
            if not existed and work_dir.is_dir() and not any(work_dir.iterdir()):
                work_dir.rmdir()
        raise


def remove_run_files(folder: Path, keep: set[str]) -> None:
    for name in set(run_files(folder)) - keep:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def check_replaceable(output_dir: Path, config: TrainConfig) -> None:
    """Replacing output_dir removes everything in it: refuse where that includes the working folder or the inputs
    (the split_file is carried over instead, see `carry_split_file`)."""
    target = output_dir.resolve()
    keep = {"the working directory": Path.cwd()}
    if config.data.data_dir and is_local(config.data.data_dir):  # a Hub id lies in the cache, not in output_dir
        keep["data_dir"] = Path(config.data.data_dir).resolve()
    for key in ("images_dir", "masks_dir"):  # a folder dataset's own folders, anywhere without data_dir
        if getattr(config.data, key) and (not config.data.data_dir or is_local(config.data.data_dir)):
            keep[key] = (Path(config.data.data_dir or ".") / getattr(config.data, key)).expanduser().resolve()
    if Path(config.model.base_model).exists():
        keep["base_model"] = Path(config.model.base_model).resolve()
    for what, path in keep.items():
        if path == target or target in path.parents:
            raise ValueError(f"--overwrite_output_dir would delete {what} ({path}), which is inside "
                             f"output_dir {output_dir}: choose another output_dir.")


def start_staging(work_dir: Path, output_dir: Path, resuming: bool) -> None:
    """Clear what an earlier replacing run left in the staging folder, unless this run continues it."""
    if work_dir != output_dir and not resuming:
        shutil.rmtree(work_dir, ignore_errors=True)


def carry_split_file(work_dir: Path, output_dir: Path, split_file: Optional[str]) -> None:
    """A split_file kept in output_dir (bijie.yaml's `runs/bijie/split.json`) is the new run's split too: copy it
    into the new run's folder, where it stays after the swap."""
    if not split_file or not Path(split_file).is_file():
        return
    source = Path(split_file).resolve()
    if output_dir.resolve() in source.parents:
        destination = work_dir / source.relative_to(output_dir.resolve())
        if not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def replace_run(work_dir: Path, config: TrainConfig) -> None:
    """Put a completed run in place of the old one (`io_utils.replace_folder`: the old folder is renamed aside, the
    new one renamed into its place, put back if that fails, and only then is the old one deleted)."""
    output_dir = Path(config.run.output_dir)
    if work_dir == output_dir:
        return
    carry_split_file(work_dir, output_dir, config.data.split_file)
    replace_folder(work_dir, output_dir)
