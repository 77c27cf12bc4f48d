"""Resumable runs: progress saved with Accelerate's `save_state`, and only complete checkpoints taken as `latest`."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..io_utils import atomic_write_json
from .config import config_differences

COMPLETE_MARKER = "checkpoint_complete.json"  # written last: a folder without it is an interrupted save


@dataclass
class TrainingProgress:
    """Where a run stands; registered with `accelerator.register_for_checkpointing`, so it is saved in every state."""

    epoch: int = 0  # epochs finished
    step_in_epoch: int = 0  # batches of the current epoch already trained
    global_step: int = 0  # optimiser steps
    best_landslide_iou: float = -1.0
    best_epoch: Optional[int] = None  # the epoch whose weights `model/` holds
    best_validation: Optional[dict] = None  # its validation scores
    loss_sum: float = 0.0  # training loss of the current epoch, summed over processes, up to the last checkpoint
    loss_batches: int = 0
    history: list = field(default_factory=list)  # one entry per finished epoch, as in metrics.json
    num_threads: Optional[int] = None  # torch's CPU threads: on a CPU, sums are ordered by them (None: not recorded)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def checkpoints_dir(output_dir: str | Path) -> Path:
    """Accelerate's automatic checkpoint naming writes `output_dir/checkpoints/checkpoint_N`."""
    return Path(output_dir) / "checkpoints"


def mark_complete(checkpoint: Path, config: dict[str, Any], progress: TrainingProgress) -> None:
    """Record the config and progress of a fully written checkpoint; only then may `latest` pick it."""
    atomic_write_json(checkpoint / COMPLETE_MARKER, {"config": config, "progress": progress.state_dict()})


def checkpoint_number(folder: Path) -> int:
    """N of `checkpoint_N`; -1 for any other name."""
    match = re.fullmatch(r"checkpoint_(\d+)", folder.name)
    return int(match.group(1)) if match else -1


def numbered_checkpoints(output_dir: str | Path) -> list[Path]:
    """A run's `checkpoint_N` folders, complete or not, oldest first (none if the run has no checkpoints)."""
    folder = checkpoints_dir(output_dir)
    if not folder.is_dir():
        return []
    return sorted((path for path in folder.iterdir() if checkpoint_number(path) >= 0), key=checkpoint_number)


def is_complete(checkpoint: Path) -> bool:
    return (checkpoint / COMPLETE_MARKER).is_file()


def find_latest_checkpoint(output_dir: str | Path) -> Optional[Path]:
    """The newest complete checkpoint of a run, or None."""
    complete = [path for path in numbered_checkpoints(output_dir) if is_complete(path)]
    return complete[-1] if complete else None


def resolve_checkpoint(resume_from: str, output_dir: str | Path, current_config: dict[str, Any]) -> Optional[Path]:
    """The checkpoint to resume from ('latest' or a path), after checking it is complete and made with this config."""
    if resume_from == "latest":
        checkpoint = find_latest_checkpoint(output_dir)
        if checkpoint is None:
            return None  # nothing to resume: start from the beginning
    else:
        checkpoint = Path(resume_from)
        if not is_complete(checkpoint):
            raise FileNotFoundError(f"{checkpoint} is not a complete checkpoint (no {COMPLETE_MARKER}).")
    saved = json.loads((checkpoint / COMPLETE_MARKER).read_text())["config"]
    differing = config_differences(saved, current_config)
    if differing:
        details = ", ".join(f"{key}: {saved.get(key)!r} -> {current_config.get(key)!r}" for key in differing)
        raise ValueError(f"{checkpoint} was made with another config; differing keys: {details}.")
    return checkpoint


def remove_incomplete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Delete interrupted saves: they hold disk space, and a resume numbers its next checkpoint after them."""
    removed = [path for path in numbered_checkpoints(output_dir) if not is_complete(path)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def rotate_checkpoints(output_dir: str | Path, keep: Optional[int]) -> list[Path]:
    """Delete all but the newest `keep` (at least 1; None: all) complete checkpoints, and any incomplete one older
    than them: called after a save completes, so a failed save never costs the checkpoint before it."""
    if keep is None:
        return []
    numbered = numbered_checkpoints(output_dir)
    complete = [path for path in numbered if is_complete(path)]
    if len(complete) <= keep:
        return []
    oldest_kept = checkpoint_number(complete[-max(keep, 1)])
    removed = [path for path in numbered if checkpoint_number(path) < oldest_kept]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
