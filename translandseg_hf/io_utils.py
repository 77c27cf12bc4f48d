"""Atomic writes: an interrupted run never leaves a half-written file where a reader would take it as whole.

Every temporary file or folder the package makes beside its target is named by one convention, `hidden_name`:
`.NAME.HEX.ROLE` (`.metrics.json.0123456789ab.tmp`), or `.STEM.HEX.ROLE.EXT` for a file whose writer picks its format
by the extension (`.scene_mask.0123456789ab.work.tif`); a name every process of a run must agree on has no HEX
(`.NAME.ROLE`, `shared_hidden_name`).

Temporary files and folders are made with modes 0o666 and 0o777, so the kernel applies the umask and what is renamed
into place has the mode any other file gets (0644 and 0755 under the usual umask), not mkstemp's private 0600;
`move_files_into` gives that mode to files their writers made private (safetensors' `save_file` writes 0600).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any, BinaryIO, Callable, TypeVar, Union

PathLike = Union[str, os.PathLike]
Made = TypeVar("Made")
NAME_ATTEMPTS = 100


def hidden_name(target: PathLike, role: str, keep_extension: bool = False) -> Path:
    """A random hidden name beside `target` (its file system, so renames are atomic; random, so nothing planted at a
    known name is written through): `.NAME.HEX.ROLE`, or with `keep_extension` `.STEM.HEX.ROLE.EXT`."""
    target = Path(target)
    if keep_extension:
        return target.with_name(f".{target.stem}.{secrets.token_hex(6)}.{role}{target.suffix}")
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.{role}")


def shared_hidden_name(target: PathLike, role: str) -> Path:
    """`.NAME.ROLE` beside `target`: a fixed hidden name, where every process of a run must find the same one."""
    target = Path(target)
    return target.with_name(f".{target.name}.{role}")


def create_beside(target: Path, role: str, create: Callable[[Path], Made],
                  keep_extension: bool = False) -> tuple[Path, Made]:
    """`create(path)` at the first unused `hidden_name` beside `target`; `create` raises FileExistsError where the
    name is taken (O_EXCL, mkdir), so two threads or processes never get the same one."""
    for _ in range(NAME_ATTEMPTS):
        path = hidden_name(target, role, keep_extension)
        try:
            return path, create(path)
        except FileExistsError:
            continue
    raise FileExistsError(f"No unused temporary name in {Path(target).parent} after {NAME_ATTEMPTS} attempts.")


def create_file(path: Path) -> int:
    """A new empty file, opened for writing, with the umask's mode (O_EXCL: never one that already exists)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)


def umask_file_mode(directory: Path) -> int:
    """The mode a new file gets in `directory` (0o666 less the umask), read off a probe file: `os.umask` can only be
    read by setting it, which races with other threads."""
    probe, descriptor = create_beside(directory / "mode-probe", "tmp", create_file)
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


def fsync_file(path: PathLike) -> None:
    """Flush a complete file to disk, whoever wrote it (GDAL, pyogrio and PIL close their own handles)."""
    descriptor = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)  # Windows syncs writable handles only
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_folder(folder: PathLike) -> None:
    """Flush a folder's entries (the renames into it) to disk; a no-op where folders cannot be opened (Windows) or
    synced (some network file systems)."""
    if os.name == "nt":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(descriptor)


def _publish(temporary: Path, target: Path, sync_folder: bool = True) -> None:
    """Put a complete file in place: its bytes reach the disk before the rename, so a crash leaves the old file or
    the new one, never an empty or partial one under the target's name."""
    fsync_file(temporary)
    os.replace(temporary, target)
    if sync_folder:
        fsync_folder(target.parent)


def free_name_beside(target: Path, kind: str) -> Path:  # kind: "tmp" or "work"
    """An unused hidden name in `target`'s folder (same file system, so renames are atomic), made and removed at
    once: GDAL, pyogrio and PIL create the file themselves, with the mode the umask gives."""
    target.parent.mkdir(parents=True, exist_ok=True)
    name, descriptor = create_beside(target, kind, create_file, keep_extension=True)
    os.close(descriptor)
    os.unlink(name)
    return name


class StagedFiles:
    """Temporary paths beside each output; `commit` puts them all in place (each synced to disk, then renamed, then
    its folder synced), `discard` deletes them."""

    def __init__(self):
        self.temporary: dict[Path, Path] = {}
        self.scratch: list[Path] = []
        self.scratch_targets: dict[Path, Path] = {}

    def path_for(self, target: Path) -> Path:
        """The temporary path that becomes `target` on commit (safe to call from several threads)."""
        temporary = free_name_beside(Path(target), "tmp")
        self.temporary[Path(target)] = temporary
        return temporary

    def scratch_for(self, target: Path) -> Path:
        """A temporary working file beside `target`, deleted on commit and on discard."""
        scratch = free_name_beside(Path(target), "work")
        self.scratch.append(scratch)
        self.scratch_targets[scratch] = Path(target)
        return scratch

    def explain(self, error: BaseException) -> str:
        """`error`'s message with each temporary file named by the output it was becoming."""
        message = str(error)
        for temporary, target in [*((t, o) for o, t in self.temporary.items()), *self.scratch_targets.items()]:
            message = message.replace(str(temporary), target.name)
        return message

    def commit(self) -> None:
        for target, temporary in self.temporary.items():
            _publish(temporary, target, sync_folder=False)
        for folder in dict.fromkeys(target.parent for target in self.temporary):
            fsync_folder(folder)
        self.temporary.clear()
        self._drop_scratch()

    def discard(self) -> None:
        for temporary in self.temporary.values():
            temporary.unlink(missing_ok=True)
        self.temporary.clear()
        self._drop_scratch()

    def _drop_scratch(self) -> None:
        for scratch in self.scratch:
            scratch.unlink(missing_ok=True)
        self.scratch.clear()


def _atomic_write(path: PathLike, data: Union[str, bytes]) -> None:
    """Write `data` to a new temporary file beside `path`, then publish it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary, descriptor = create_beside(path, "tmp", create_file)
    try:
        text = isinstance(data, str)
        with os.fdopen(descriptor, "w" if text else "wb", encoding="utf-8" if text else None) as handle:
            handle.write(data)
        _publish(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_through(path: PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """`write(handle)` fills a new temporary file beside `path`, which then replaces `path`; for writers that take a
    file object (zipfile). The temporary's name is unique and made with O_EXCL, so a file or link planted beside
    `path` under a predictable name is never written through; it is removed if `write` fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary, descriptor = create_beside(path, "tmp", create_file)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
        _publish(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write `text` (UTF-8) to a temporary file beside `path`, then rename it over `path`."""
    _atomic_write(path, text)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    _atomic_write(path, bytes(data))


def atomic_write_json(path: PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def move_files_into(source_dir: PathLike, target_dir: PathLike) -> None:
    """Move every file of `source_dir` (written completely beforehand) into `target_dir`, each synced to disk and
    renamed atomically, with the mode the umask gives new files."""
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    mode = umask_file_mode(target_dir)
    folders = {}
    for item in sorted(source_dir.rglob("*")):
        if item.is_file():
            destination = target_dir / item.relative_to(source_dir)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(item, mode)
            _publish(item, destination, sync_folder=False)
            folders[destination.parent] = None
    for folder in folders:
        fsync_folder(folder)
    shutil.rmtree(source_dir, ignore_errors=True)


def staging_dir_for(target_dir: PathLike) -> Path:
    """A fresh temporary folder on the same file system as `target_dir`, so renames into it are atomic."""
    target_dir = Path(target_dir)
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    return create_beside(target_dir, "tmp", lambda path: path.mkdir(0o777))[0]


def replace_folder(staging: PathLike, target: PathLike) -> None:
    """Put the complete folder `staging` in place of `target`: the old folder is renamed aside (`.NAME.HEX.replaced`,
    a random name, so a link planted at a known name is never written through), the new one renamed into its place
    (the old one put back if that fails), and only then is the old one deleted. A `target` that is a link is
    unlinked, so the folder it pointed to stays where it is. Where there is no `target` yet, `staging` is renamed
    there."""
    staging, target = Path(staging), Path(os.path.normpath(target))
    if not (target.exists() or target.is_symlink()):
        os.replace(staging, target)
        fsync_folder(target.parent)
        return
    aside = hidden_name(target, "replaced")
    os.replace(target, aside)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(aside, target)
        raise
    fsync_folder(target.parent)
    if aside.is_symlink():
        aside.unlink()
    else:
        shutil.rmtree(aside)
