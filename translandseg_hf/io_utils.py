"""Atomic writes: an interrupted run never leaves a half-written file where a reader would take it as whole."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Union

PathLike = Union[str, os.PathLike]


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_json(path: PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def move_files_into(source_dir: PathLike, target_dir: PathLike) -> None:
    """Move every file of `source_dir` (written completely beforehand) into `target_dir`, each by an atomic rename."""
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    for item in sorted(source_dir.rglob("*")):
        if item.is_file():
            destination = target_dir / item.relative_to(source_dir)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(item, destination)
    shutil.rmtree(source_dir, ignore_errors=True)


def staging_dir_for(target_dir: PathLike) -> Path:
    """A fresh temporary folder on the same file system as `target_dir`, so renames into it are atomic."""
    target_dir = Path(target_dir)
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.", suffix=".tmp", dir=target_dir.parent))
