"""Atomic writes: an interrupted run never leaves a half-written file where a reader would take it as whole.

Temporary files and folders are made with modes 0o666 and 0o777, so the kernel applies the umask and what is renamed
into place has the mode any other file gets (0644 and 0755 under the usual umask), not mkstemp's private 0600;
`move_files_into` gives that mode to files their writers made private (safetensors' `save_file` writes 0600).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any, Callable, TypeVar, Union

PathLike = Union[str, os.PathLike]
Made = TypeVar("Made")
NAME_ATTEMPTS = 100


def create_unused(directory: Path, prefix: str, suffix: str, create: Callable[[Path], Made]) -> tuple[Path, Made]:
    """`create(path)` at the first unused random name in `directory`; `create` raises FileExistsError where the name
    is taken (O_EXCL, mkdir), so two threads or processes never get the same one."""
    for _ in range(NAME_ATTEMPTS):
        path = directory / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            return path, create(path)
        except FileExistsError:
            continue
    raise FileExistsError(f"No unused temporary name in {directory} after {NAME_ATTEMPTS} attempts.")


def create_file(path: Path) -> int:
    """A new empty file, opened for writing, with the umask's mode (O_EXCL: never one that already exists)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)


def umask_file_mode(directory: Path) -> int:
    """The mode a new file gets in `directory` (0o666 less the umask), read off a probe file: `os.umask` can only be
    read by setting it, which races with other threads."""
    probe, descriptor = create_unused(directory, ".mode-probe.", ".tmp", create_file)
    try:
        return stat.S_IMODE(os.fstat(descriptor).st_mode)
    finally:
        os.close(descriptor)
        probe.unlink(missing_ok=True)


def give_new_file_mode(paths) -> None:
    """Each file gets the mode a new file gets in its folder: for files their writers made private (safetensors'
    `save_file` writes 0600), so weights are shared like every other file a run writes."""
    modes: dict[Path, int] = {}
    for path in map(Path, paths):
        if path.parent not in modes:
            modes[path.parent] = umask_file_mode(path.parent)
        os.chmod(path, modes[path.parent])


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary, descriptor = create_unused(path.parent, f".{path.name}.", ".tmp", create_file)
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
    """Move every file of `source_dir` (written completely beforehand) into `target_dir`, each by an atomic rename,
    with the mode the umask gives new files."""
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    mode = umask_file_mode(target_dir)
    for item in sorted(source_dir.rglob("*")):
        if item.is_file():
            destination = target_dir / item.relative_to(source_dir)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(item, mode)
            os.replace(item, destination)
    shutil.rmtree(source_dir, ignore_errors=True)


def staging_dir_for(target_dir: PathLike) -> Path:
    """A fresh temporary folder on the same file system as `target_dir`, so renames into it are atomic."""
    target_dir = Path(target_dir)
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    return create_unused(target_dir.parent, f".{target_dir.name}.", ".tmp", lambda path: path.mkdir(0o777))[0]
