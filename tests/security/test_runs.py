"""Issue 35 §4, stuck runs and lost maps: a claim whose process is gone (its PID reused by another process) is taken
over and the killed run's work files removed; an input another live run holds is waited for, then counted, with exit
status 3; a folder mapped into itself never maps its own maps and never replaces an input with an output; and a full
disk stops the input at the first failed write, naming the output and the full disk."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from translandseg_hf.cli import main
from translandseg_hf.inference import claims, runner

from helpers.rasters import random_rgb, write_raster

ENVIRONMENT = {**os.environ, "HF_HUB_OFFLINE": "1"}
HIDDEN_WORK = re.compile(r"\.scene_\w+\.[0-9a-f]{12}\.(tmp|work)\.\w+")


def write_scene(path: Path, side: int) -> Path:
    return write_raster(path, random_rgb(side, seed=side))


def predict(model_dir, *arguments) -> list[str]:
    return ["predict", "--model", str(model_dir), *map(str, arguments)]


# ------------------------------------------------------------------------------------------- claims of other runs
HOLDER = textwrap.dedent("""
    import fcntl, json, os, socket, sys, time
    descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    os.write(descriptor, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    """)  # a run holding the claim: exits (the kernel releases the lock) after argv[2] seconds


def start_holder(lock: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    ready, _, _ = select.select([holder.stdout], [], [], 30)
    assert ready and holder.stdout.readline().strip() == "locked"
    return holder


def stale_pid_lock(lock: Path, live_pid: int) -> None:
    """What an older run, killed, left: its PID, now another live process's (a reboot, a container)."""
    lock.write_text(str(live_pid))


def stale_record_lock(lock: Path, live_pid: int) -> None:
    """What a killed run of this version left: its record, the PID now another live process's."""
    lock.write_text(json.dumps({"pid": live_pid, "host": socket.gethostname(), "boot_id": "an-earlier-boot"}))


# (name, lock planted, seconds a holder keeps it (None: no holder), seconds this run waits, exit status, summary)
CLAIM_CASES = [
    ("a lock naming a live unrelated PID is stale", stale_pid_lock, None, 5, 0, r"1 done, 0 skipped, 0 failed"),
    ("a record naming a live unrelated PID is stale", stale_record_lock, None, 5, 0, r"1 done, 0 skipped, 0 failed"),
    ("a run holding it past the wait: skipped, counted, exit 3", None, 120, 1, 3,
     r"0 done, 1 skipped \(1 held by another run\), 0 failed(.|\n)*  skipped: .*scene\.tif: held by another run "
     r"\(PID \d+ on .+\), which is writing its outputs"),
    ("a run holding it that ends without outputs: mapped once it ends", None, 4, 60, 0,
     r"1 done, 0 skipped, 0 failed"),
]


@pytest.mark.parametrize("name, plant, held_seconds, wait_seconds, status, expected", CLAIM_CASES,
                         ids=[case[0] for case in CLAIM_CASES])
def test_claims_of_other_runs(name, plant, held_seconds, wait_seconds, status, expected, model_dir, tmp_path,
                              monkeypatch, capsys):
    scene, maps = write_scene(tmp_path / "scene.tif", 64), tmp_path / "maps"
    maps.mkdir()
    lock = maps / ".scene.lock"
    monkeypatch.setattr(runner, "WAIT_FOR_OTHER_RUNS_SECONDS", wait_seconds)
    unrelated = subprocess.Popen(["sleep", "60"])  # a live process that holds no claim
    holder = start_holder(lock, held_seconds) if held_seconds else None
    held_until = time.time() + (held_seconds or 0)
    try:
        if plant is not None:
            plant(lock, unrelated.pid)
        assert main(predict(model_dir, scene, "--output", maps)) == status
    finally:
        for process in filter(None, (unrelated, holder)):
            process.kill()
            process.wait(timeout=30)
    assert re.search(expected, capsys.readouterr().out)
    assert (maps / "scene_probability.tif").exists() == (status == 0)
    if status == 0 and held_seconds:  # mapped once the holder had ended, not beside it
        assert (maps / "scene_probability.tif").stat().st_mtime >= held_until - 0.5
    assert not (maps / ".scene.lock").exists() or status == 3  # a released claim leaves no file behind


def test_two_runs_wait_for_each_other_and_both_exit_0(model_dir, tmp_path):
    """Two runs over the same inputs: the one that ends first waits for the other's last input instead of
    reporting it unmapped."""
    inputs, maps = tmp_path / "in", tmp_path / "maps"
    inputs.mkdir()
    for index in range(3):
        write_scene(inputs / f"scene_{index}.tif", 200)
    command = [sys.executable, "-m", "translandseg_hf.cli", *predict(model_dir, inputs, "--output", maps)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENVIRONMENT)
            for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-1500:] for _, err in outputs]
    done = sum(out.count("  done: ") for out, _ in outputs)
    assert done == 3 and not [name for name in os.listdir(maps) if name.startswith(".")]


# ------------------------------------------------------------------------------------------- a killed run's files
KILLED_RUN_UNRELATED = [
    "notes.txt",  # the user's
    ".other_probability.0123456789ab.work.tif",  # another input's work file, named as ours are: not this input's
    ".scene_probability.backup.tif",  # hidden, this input's name, but not the package's naming
    ".scenery_mask.0123456789ab.work.tif",  # a longer stem
]


def test_a_run_taking_over_a_killed_runs_claim_removes_its_work_files(model_dir, tmp_path, capsys):
    scene, maps = write_scene(tmp_path / "scene.tif", 1024), tmp_path / "maps"
    killed = subprocess.Popen([sys.executable, "-m", "translandseg_hf.cli", *predict(model_dir, scene, "--output",
                              maps)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENVIRONMENT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (maps.is_dir() and any(map(HIDDEN_WORK.fullmatch,
                                                                              os.listdir(maps)))):
            time.sleep(0.05)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    leftovers = [name for name in os.listdir(maps) if HIDDEN_WORK.fullmatch(name)]
    assert leftovers and (maps / ".scene.lock").exists(), os.listdir(maps)  # killed mid-run, as the issue saw it
    for name in KILLED_RUN_UNRELATED:
        (maps / name).write_text("keep me")
    assert main(predict(model_dir, scene, "--output", maps)) == 0
    assert "1 done, 0 skipped, 0 failed" in capsys.readouterr().out
    hidden = sorted(name for name in os.listdir(maps) if name.startswith("."))
    assert hidden == sorted(name for name in KILLED_RUN_UNRELATED if name.startswith("."))
    assert all((maps / name).read_text() == "keep me" for name in KILLED_RUN_UNRELATED)


def test_leftover_names_are_matched_exactly():
    pattern = claims.leftover_pattern("scene")
    ours = [".scene_probability.0123456789ab.work.tif", ".scene_mask.abcdefabcdef.tmp.tif",
            ".scene_landslides.0123456789ab.tmp.gpkg", ".scene_landslides.0123456789ab.tmp.gpkg-journal",
            ".scene_probability.0123456789ab.work.vrt", ".scene_quicklook.0123456789ab.tmp.png",
            ".scene_uncertainty.0123456789ab.work.tif.aux.xml"]
    others = [*KILLED_RUN_UNRELATED, "scene_probability.tif", ".scene.lock", ".scene_mask.0123456789ab.work.tif.bak",
              ".scene_probability.0123456789a.work.tif", ".scene_other.0123456789ab.work.tif"]
    assert [name for name in ours + others if pattern.fullmatch(name)] == ours


# ------------------------------------------------------------------------------------- a folder mapped into itself
def map_twice_into_itself(model_dir, folder: Path) -> list:
    write_scene(folder / "a.tif", 64)
    main(predict(model_dir, folder, "--output", folder))
    return predict(model_dir, folder, "--output", folder)


def input_named_like_an_output(model_dir, folder: Path) -> list:
    write_scene(folder / "a.tif", 64)
    write_scene(folder / "a_mask.tif", 64)  # the user's own file, no a_landslides.gpkg beside it
    return predict(model_dir, folder, "--output", folder, "--overwrite")


def users_file_named_like_an_output(model_dir, folder: Path) -> list:
    write_scene(folder / "area_mask.tif", 64)  # no area_landslides.gpkg beside it: an input like any other
    return predict(model_dir, folder, "--output", folder.parent / "maps")


# (name, set-up returning the arguments, exit status, text expected on stdout or stderr)
FOLDER_CASES = [
    ("yesterday's maps are not inputs", map_twice_into_itself, 0, r"^0 done, 1 skipped, 0 failed\n"),
    ("an input an output would replace is refused", input_named_like_an_output, 1,
     r"error: \S+/a_mask\.tif is an input and also an output of \S+/a\.tif \(a_mask\.tif in \S+\): mapping would "
     r"replace it; map into another --output folder, or rename it\."),
    ("a user's file named like an output is still mapped", users_file_named_like_an_output, 0,
     r"^1 done, 0 skipped, 0 failed\n"),
]


@pytest.mark.parametrize("name, arrange, status, expected", FOLDER_CASES, ids=[case[0] for case in FOLDER_CASES])
def test_a_folder_mapped_into_itself(name, arrange, status, expected, model_dir, tmp_path, capsys):
    folder = tmp_path / "scenes"
    folder.mkdir()
    arguments = arrange(model_dir, folder)
    before = {path.name: path.read_bytes() for path in folder.glob("*.tif")}
    capsys.readouterr()
    assert main(arguments) == status
    output = capsys.readouterr()
    assert re.search(expected, output.out + output.err, re.MULTILINE), output
    if status:
        assert {path.name: path.read_bytes() for path in folder.glob("*.tif")} == before  # nothing replaced


# --------------------------------------------------------------------------------------------------- a full disk
@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MB file system (tmpfs), where writes fail with ENOSPC as on a full disk."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def fill(folder: Path) -> None:
    """Fill the disk: write until ENOSPC (bounded: 2 MB of 64 kB chunks and a few more)."""
    with open(folder / "filler", "wb") as handle:
        for _ in range(64):
            try:
                handle.write(b"\0" * 2**16)
                handle.flush()
            except OSError:
                return


# (name, the scene's side, fill the disk first, exit status, message expected)
DISK_CASES = [
    ("a disk that fills while mapping stops at the first failed write", 1024, False, 1,
     r"failed: \S+scene\.tif: \S+/maps/scene_(probability|mask)\.tif: the disk is full \(No space left on device\); "
     r"nothing was written for this input \(\S+scene\.tif\) and mapping it stopped at the first failed write: free "
     r"space in \S+/maps and map it again\."),
    ("a disk already full fails before any work", 64, True, 1,
     r"error: \S+/maps: cannot write outputs there: the disk is full \(No space left on device\)\."),
]


@pytest.mark.parametrize("name, side, full_first, status, expected", DISK_CASES, ids=[case[0] for case in DISK_CASES])
def test_a_full_disk(name, side, full_first, status, expected, model_dir, small_disk, tmp_path, capsys):
    scene, maps = write_scene(tmp_path / "scene.tif", side), small_disk / "maps"
    maps.mkdir()
    if full_first:
        fill(small_disk)
    assert main(predict(model_dir, scene, "--output", maps)) == status
    output = capsys.readouterr()
    assert re.search(expected, output.out + output.err), output.out + output.err[-2000:]
    assert os.listdir(maps) == []  # no half-written output, no work files, no claim
