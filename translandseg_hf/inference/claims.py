"""Several `translandseg predict` processes on one output folder: each input is claimed by one process at a time,
so two runs never write the same outputs at once; and an output folder that cannot be written fails before work."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional


def check_writable(output_dir: Path) -> None:
    """A clear error before any work when the output folder cannot be created or written (a probe file, since
    permission bits say nothing for root or on read-only mounts)."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write-check."):
            pass
    except OSError as error:
        raise PermissionError(f"{output_dir}: cannot write outputs there ({error.strerror or error}).") from error


def _holder_alive(lock: Path) -> bool:
    """Whether the process that wrote `lock` still runs (a crashed run leaves a stale claim behind)."""
    try:
        pid = int(lock.read_text().strip() or 0)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, FileNotFoundError):
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextmanager
def claim(output_dir: Path, stem: str) -> Iterator[Optional[Path]]:
    """Hold `.STEM.lock` in the output folder while an input's outputs are written; yields None (and writes
    nothing) when a live process holds it. The lock is created with O_EXCL: atomic, also on network file systems."""
    lock = output_dir / f".{stem}.lock"
    for _ in range(2):  # a second try after removing a stale claim
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _holder_alive(lock):
                yield None
                return
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(descriptor, "w") as handle:
            handle.write(str(os.getpid()))
        try:
            yield lock
        finally:
            lock.unlink(missing_ok=True)
        return
    yield None
