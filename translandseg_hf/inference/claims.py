"""Several `translandseg predict` processes on one output folder: each input is claimed by one process at a time,
so two runs never write the same outputs at once; a claim left by a killed run is taken over and that run's work
files removed; and an output folder that cannot be written, or whose disk is full, fails before any work.

A claim is `.STEM.lock` held with `flock`: the kernel releases it when its process ends, however it ends, so a
claim never outlives its run (a PID in a file can: after a reboot, or in a container, another process gets it). The
file records who holds it (PID, process start, host, boot), only to name the holder in messages. Network file
systems: Linux's NFS client turns `flock` into NFS byte-range locks, shared between machines where the server's lock
service runs (NFSv4, or NFSv3 with lockd); a mount with `nolock` (or `local_lock=all`) keeps locks on each machine,
so runs on two machines could then map the same input at once (their outputs still appear whole, each renamed into
place). Where `fcntl` is missing (Windows), `msvcrt.locking` holds the claim the same way."""

from __future__ import annotations

import errno
import json
import os
import re
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from ..io_utils import create_beside, create_file, shared_hidden_name

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

HELD = "held by another run"
PROBE_BYTES = 2**20  # written and removed before any work: a full disk fails here, not after minutes of mapping
CLAIM_ATTEMPTS = 5  # a claim released (its file removed) between our open and our lock: open the new file again
DISK_FULL = {errno.ENOSPC: "the disk is full (No space left on device)",
             errno.EDQUOT: "the disk quota is exceeded (Disk quota exceeded)"}
DISK_FULL_TEXTS = ("No space left on device", "Free disk space available is", "Disk quota exceeded")


def check_writable(output_dir: Path) -> None:
    """A clear error before any work when the output folder cannot be created or written, or its disk is full (a
    probe file with a megabyte in it: permission bits say nothing for root or on read-only mounts, and an empty file
    fits on a full disk)."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_probe(output_dir)
    except OSError as error:
        why = DISK_FULL.get(error.errno) or error.strerror or str(error)
        raise PermissionError(f"{output_dir}: cannot write outputs there: {why}.") from error


def write_probe(folder: Path, size: int = PROBE_BYTES) -> None:
    """Write `size` bytes to a new hidden file in `folder`, flushed to disk, then remove it; raises OSError."""
    path, descriptor = create_beside(folder / "write-check", "tmp", create_file)
    try:
        chunk = b"\0" * min(size, 2**16)
        for _ in range(0, size, len(chunk)):
            os.write(descriptor, chunk)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
        path.unlink(missing_ok=True)


def disk_full_reason(folder: Path, error: BaseException) -> Optional[str]:
    """Why writing into `folder` failed, where the reason is a full disk (or quota): from the error chain's errno or
    text (GDAL's write errors say only "Write failed"), else from a probe. None otherwise. Call it before the failed
    run's files are removed: removing them frees the space."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_FULL:
            return DISK_FULL[seen.errno]
        if any(text in str(seen) for text in DISK_FULL_TEXTS):
            return DISK_FULL[errno.EDQUOT if "quota" in str(seen) else errno.ENOSPC]
        seen = seen.__cause__ or seen.__context__
    try:
        write_probe(folder)
    except OSError as probe_error:
        return DISK_FULL.get(probe_error.errno)
    return None


def disk_full_message(path, output_dir: Path, staged, error: BaseException) -> Optional[str]:
    """For a scene whose outputs could not be written because the disk is full: "OUTPUT: the disk is full (...);
    nothing was written for this input (INPUT) ...", naming the output being written (`error.output`, set by the
    writer) or a staged file the error names, else the folder. None for any other failure. Call it before
    `staged.discard()`, which frees the space the work files held."""
    if isinstance(error, (FileNotFoundError, NotADirectoryError)) or str(error).startswith(str(path)):
        return None  # about the input
    why = disk_full_reason(output_dir, error)
    if why is None:
        return None
    output = getattr(error, "output", None) or staged_output_named(staged, error) or output_dir
    return (f"{output}: {why}; nothing was written for this input ({path}) and mapping it stopped at the first "
            f"failed write: free space in {output_dir} and map it again.")


def staged_output_named(staged, error: BaseException) -> Optional[Path]:
    """The output whose temporary or work file an error in `error`'s chain names (GDAL names the file it writes)."""
    files = {**{temporary: target for target, temporary in staged.temporary.items()}, **staged.scratch_targets}
    seen = error
    while seen is not None:
        named = [target for temporary, target in files.items() if str(temporary) in str(seen)]
        if named:
            return named[0]
        seen = seen.__cause__ or seen.__context__
    return None


@contextmanager
def claim(output_dir: Path, stem: str) -> Iterator[Optional[Path]]:
    """Hold `.STEM.lock` in the output folder while an input's outputs are written; yields None (and writes
    nothing) while another live run holds it. A claim whose run was killed is taken over, and that run's work files
    for this input removed (`remove_leftovers`)."""
    lock = lock_path(output_dir, stem)
    taken = take_lock(lock)
    if taken is None:
        yield None
        return
    descriptor, stale = taken
    try:
        if stale:
            remove_leftovers(output_dir, stem)
        yield lock
    finally:
        release_lock(lock, descriptor)


def take_lock(lock: Path) -> Optional[tuple[int, bool]]:
    """(open descriptor holding `lock`, whether a killed run left it) or None where a live run holds it. The file
    may be removed by its holder between our open and our lock: the lock is then on a file nobody else sees, so we
    check the locked file is still the one at `lock`, and open again if not."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(CLAIM_ATTEMPTS):
        try:
            descriptor = os.open(lock, flags, 0o644)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise OSError(f"{lock}: the claim file is a link; remove it (claims are never links).") from error
            raise
        if not lock_nonblocking(descriptor):
            os.close(descriptor)
            return None
        try:
            same = os.path.samestat(os.fstat(descriptor), os.stat(lock, follow_symlinks=False))
        except FileNotFoundError:
            same = False
        if not same:
            os.close(descriptor)
            continue
        stale = os.fstat(descriptor).st_size > 0  # a live holder's record is removed with its file; this one died
        write_record(descriptor)
        return descriptor, stale
    return None


def lock_nonblocking(descriptor: int) -> bool:
    """Lock the whole file for this open file, without waiting; False where another holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK):
            return False
        raise
    return True


def write_record(descriptor: int) -> None:
    """Who holds the claim, for messages (`holder`): PID, the process's start, host and boot."""
    record = {"pid": os.getpid(), "host": socket.gethostname(), "boot_id": read_text("/proc/sys/kernel/random/boot_id"),
              "started": process_start(os.getpid())}
    os.ftruncate(descriptor, 0)
    os.lseek(descriptor, 0, os.SEEK_SET)
    os.write(descriptor, (json.dumps(record) + "\n").encode())


def release_lock(lock: Path, descriptor: int) -> None:
    """Remove the claim file while still holding it, then let go (Windows cannot remove an open file: close first)."""
    if fcntl is None:
        os.close(descriptor)
    try:
        lock.unlink(missing_ok=True)
    except OSError:
        pass  # Windows: another run has it open; it takes the claim over as a stale one
    if fcntl is not None:
        os.close(descriptor)


def lock_path(output_dir: Path, stem: str) -> Path:
    """`.STEM.lock`: a fixed hidden name, so that every run mapping into `output_dir` finds the same claim."""
    return shared_hidden_name(output_dir / stem, "lock")


def holder(output_dir: Path, stem: str) -> str:
    """The run holding `stem`'s claim, as its record names it ("PID 12 on HOST"), or "" where it cannot be read."""
    try:
        record = json.loads(lock_path(output_dir, stem).read_text())
        return f"PID {int(record['pid'])} on {record['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def held_message(output_dir: Path, stem: str) -> str:
    """Why an input was skipped: another live run holds its claim (and so is writing its outputs)."""
    who = holder(output_dir, stem)
    return f"{HELD}{f' ({who})' if who else ''}, which is writing its outputs"


def leftover_pattern(stem: str) -> re.Pattern:
    """The names `io_utils.hidden_name` gives an input's temporary and work files (`keep_extension`)
    (`.STEM_probability.<12 hex>.work.tif`, `.STEM_landslides.<12 hex>.tmp.gpkg`, `.STEM_mask.<12 hex>.work.vrt`),
    with the side files GDAL and SQLite make beside them, and nothing else."""
    from .scene import EVERY_OUTPUT_SUFFIX as suffixes  # scene imports this module

    names = sorted({os.path.splitext(suffix)[0] for suffix in suffixes})
    extensions = sorted({os.path.splitext(suffix)[1] for suffix in suffixes} | {".vrt"})
    return re.compile(rf"\.{re.escape(stem)}(?:{'|'.join(map(re.escape, names))})\.[0-9a-f]{{12}}\.(?:tmp|work)"
                      rf"(?:{'|'.join(map(re.escape, extensions))})(?:\.aux\.xml|\.ovr|-journal|-wal|-shm)?")


def remove_leftovers(output_dir: Path, stem: str) -> list[Path]:
    """Remove the temporary and work files a killed run left for `stem` (files only, matched by name exactly);
    returns them. Only called while holding `stem`'s claim: no live run is writing them."""
    pattern, removed = leftover_pattern(stem), []
    with os.scandir(output_dir) as entries:
        for entry in entries:
            if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path))
    return removed


def read_text(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> Optional[int]:
    """When process `pid` started, in clock ticks since boot (/proc/PID/stat field 22); None off Linux."""
    stat = read_text(f"/proc/{pid}/stat")
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None
