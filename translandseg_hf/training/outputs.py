"""Where a run writes: a second run into a folder that holds one refuses, resumes it, or (`overwrite_output_dir`)
trains beside it and replaces it only once complete, so nothing of the two runs is lost or mixed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .checkpoints import find_latest_checkpoint
from .config import TrainConfig

RUN_FILES = ("metrics.json", "model", "checkpoints", "base_model")  # what a run writes into output_dir


def run_files(folder: Path) -> list[str]:
    """The names of RUN_FILES present in `folder`: any of them means a run has written there."""
    return [name for name in RUN_FILES if (folder / name).exists()]


def sibling(output_dir: Path, suffix: str) -> Path:
    """`.NAME.SUFFIX` beside output_dir (on its file system, so renames between them are atomic); a fixed name, so
    every process of a run agrees on it."""
    output_dir = Path(os.path.normpath(output_dir))
    return output_dir.parent / f".{output_dir.name}.{suffix}"


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
    if run.resume_from_checkpoint == "latest" and "metrics.json" in found and find_latest_checkpoint(output_dir) is None:
        raise ValueError(f"{output_dir} holds a run with no complete checkpoint to continue from: pass "
                         "--overwrite_output_dir true to train it again from the start and replace it.")
    return output_dir


def check_replaceable(output_dir: Path, config: TrainConfig) -> None:
    """Replacing output_dir removes everything in it: refuse where that includes the working folder or the data."""
    target = output_dir.resolve()
    keep = {"the working directory": Path.cwd()}
    if config.data.data_dir:
        keep["data_dir"] = Path(config.data.data_dir).resolve()
    for what, path in keep.items():
        if path == target or target in path.parents:
            raise ValueError(f"--overwrite_output_dir would delete {what} ({path}), which is inside "
                             f"output_dir {output_dir}: choose another output_dir.")


def start_staging(work_dir: Path, output_dir: Path, resuming: bool) -> None:
    """Clear what an earlier replacing run left in the staging folder, unless this run continues it."""
    if work_dir != output_dir and not resuming:
        shutil.rmtree(work_dir, ignore_errors=True)


def replace_run(work_dir: Path, output_dir: Path) -> None:
    """Put a completed run in place of the old one: the old folder is renamed aside, the new one renamed into its
    place (put back if that fails), and only then is the old one deleted."""
    if work_dir == output_dir:
        return
    aside = sibling(output_dir, "replaced")
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(output_dir, aside)
    try:
        os.replace(work_dir, output_dir)
    except BaseException:
        os.replace(aside, output_dir)
        raise
    if aside.is_symlink():  # output_dir was a link: the run it pointed to stays where it is
        aside.unlink()
    else:
        shutil.rmtree(aside)
