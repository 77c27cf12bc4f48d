"""Issue 37 items 7 and 11: `translandseg predict` at a terminal. A tiles bar wherever a person sees standard error
(a terminal that reports no size included) and none in a log; Ctrl-C ends the run with one `interrupted:` line,
exit status 130 and no partial outputs, temporary files or claims; a note shared by many inputs is said once, with
their count."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest
from helpers.processes import sigint_as_in_a_terminal
from helpers.rasters import random_rgb, write_raster

from translandseg_hf.cli import main
from translandseg_hf.errors import EXIT_INTERRUPTED

INTERRUPTED_LINE = "interrupted: stopped by Ctrl-C; what was finished is kept, nothing partial was left\n"
SCENE_OUTPUTS = {"scene_probability.tif", "scene_mask.tif", "scene_landslides.geojson", "scene_landslides.gpkg",
                 "scene_quicklook.png"}


def predict(model: Path, inputs: Path, output: Path, *extra: str) -> int:
    """`translandseg predict` in this process; a KeyboardInterrupt escaping it is what the user saw as a traceback."""
    try:
        return main(["predict", str(inputs), "--model", str(model), "--output", str(output), "--device", "cpu",
                     "--batch_size", "1", *extra])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped `translandseg predict` as a KeyboardInterrupt: the user sees a traceback")


def raise_on_call(monkeypatch, owner, name: str, call: int, action) -> None:
    """Make `owner.name` run as before, then `action()` after its `call`-th call (1-based)."""
    original, calls = getattr(owner, name), []

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == call:
            action()
        return result

    monkeypatch.setattr(owner, name, wrapped)


def ctrl_c():
    raise KeyboardInterrupt


def real_sigint():
    os.kill(os.getpid(), signal.SIGINT)  # Python runs its handler in the main thread at its next instruction


def where(name: str):
    """The object a stage lives on, imported when the row runs."""
    import translandseg_hf.inference.predictor as predictor
    import translandseg_hf.inference.scene as scene
    import translandseg_hf.io_utils as io_utils

    return {"model": predictor.TileRunner, "polygons": scene, "rename": io_utils}[name]


INTERRUPTS = [  # (where Ctrl-C comes, owner, attribute, after which call, how, the scene's maps left afterwards)
    ("after the first of 4 tiles", "model", "__call__", 1, ctrl_c, set()),
    ("while the polygons are written, every tile mapped", "polygons", "save_polygons", 1, ctrl_c, set()),
    # a real SIGINT after the first output is renamed into place: the rest follow, so the maps are whole
    ("between the renames that put the maps in place", "rename", "_publish", 1, real_sigint, SCENE_OUTPUTS),
]


@pytest.mark.parametrize("when, owner, name, call, action, left", INTERRUPTS, ids=[row[0] for row in INTERRUPTS])
def test_ctrl_c_ends_with_one_line_status_130_and_nothing_partial(
        tiny_sam_folder, tmp_path, capsys, monkeypatch, when, owner, name, call, action, left):
    scene = write_raster(tmp_path / "scene.tif", random_rgb(300))  # 4 tiles of 256 px
    raise_on_call(monkeypatch, where(owner), name, call, action)
    code = predict(tiny_sam_folder, scene, tmp_path / "maps")
    captured = capsys.readouterr()
    assert code == EXIT_INTERRUPTED == 130
    assert captured.err.endswith(INTERRUPTED_LINE) and captured.err.count("interrupted") == 1
    assert "Traceback" not in captured.err + captured.out and "KeyboardInterrupt" not in captured.err
    left_behind = {path.name for path in (tmp_path / "maps").iterdir()}
    assert left_behind == left, f"{when}: no temporary files, claims (.scene.lock) or half the maps"


def test_a_second_input_interrupted_keeps_the_first_ones_maps(tiny_sam_folder, tmp_path, capsys, monkeypatch):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for stem in ("a", "b"):
        write_raster(inputs / f"{stem}.tif", random_rgb(300))
    raise_on_call(monkeypatch, where("model"), "__call__", 5, ctrl_c)  # b's first tile (a takes 4)
    assert predict(tiny_sam_folder, inputs, tmp_path / "maps") == 130
    assert capsys.readouterr().err.endswith(INTERRUPTED_LINE)
    assert {p.name for p in (tmp_path / "maps").iterdir()} == {name.replace("scene", "a") for name in SCENE_OUTPUTS}


# ----------------------------------------------------------------------------------------------- the tiles bar
def terminal(columns: int, rows: int):
    """A pseudo-terminal (reader end, writer end) whose window size is `columns` x `rows` (0 x 0: one opened with
    no size, as `script -c` opens it)."""
    reader, writer = os.openpty()
    fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return reader, writer


def drain(reader: int, into: list) -> None:
    while True:
        try:
            chunk = os.read(reader, 65536)
        except OSError:  # EIO: the writer end is closed
            return
        if not chunk:
            return
        into.append(chunk)


TERMINALS = [(0, 0), (100, 30)]  # (columns, rows): tqdm drew nothing on the first before


@pytest.mark.parametrize("columns, rows", TERMINALS, ids=["terminal-without-a-size", "terminal-100x30"])
def test_a_terminal_shows_the_tiles_bar(tiny_sam_folder, tmp_path, monkeypatch, columns, rows):
    scene = write_raster(tmp_path / "scene.tif", random_rgb(300))
    reader, writer = terminal(columns, rows)
    screen: list[bytes] = []
    drainer = threading.Thread(target=drain, args=(reader, screen), daemon=True)
    drainer.start()
    stream = open(writer, "w", buffering=1, encoding="utf-8", closefd=True)
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.delenv("TRANSLANDSEG_PROGRESS", raising=False)
    try:
        code = predict(tiny_sam_folder, scene, tmp_path / "maps")
    finally:
        monkeypatch.undo()
        stream.close()
        drainer.join(timeout=10)
        os.close(reader)
    shown = b"".join(screen).decode("utf-8", "replace")
    assert code == 0
    # the bar knows the scene's 4 tiles; which count it last drew depends on tqdm's redraw interval (it is cleared
    # when the input is done), so any of 0/4 .. 4/4 shows it
    assert "tiles:" in shown and re.search(r"\b[0-4]/4\b", shown), \
        f"no tiles bar on a {columns} x {rows} terminal: {shown[-300:]!r}"


def test_a_log_gets_no_bar(tiny_sam_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TRANSLANDSEG_PROGRESS", raising=False)
    scene = write_raster(tmp_path / "scene.tif", random_rgb(300))
    assert predict(tiny_sam_folder, scene, tmp_path / "maps") == 0
    captured = capsys.readouterr()
    assert "tiles" not in captured.err.replace("tile(s)", "") and "\r" not in captured.err + captured.out


# ------------------------------------------------------------------------------- a real Ctrl-C on a real process
def test_sigint_to_a_mapping_process_exits_130_leaving_nothing_partial(tiny_sam_folder, tmp_path):
    scene = write_raster(tmp_path / "scene.tif", random_rgb(1024))  # 25 tiles, one a batch: seconds to map
    maps = tmp_path / "maps"
    command = [sys.executable, "-m", "translandseg_hf.cli", "predict", str(scene), "--model", str(tiny_sam_folder),
               "--output", str(maps), "--device", "cpu", "--batch_size", "1", "--progress", "json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"}, preexec_fn=sigint_as_in_a_terminal)
    timer = threading.Timer(240, process.kill)  # bounded: a hung run fails the test instead of stalling it
    timer.start()
    try:
        for line in process.stdout:  # the events say when mapping has begun: Ctrl-C then lands mid-scene
            event = json.loads(line)
            if event["event"] == "tiles" and event["done"] > 0:
                process.send_signal(signal.SIGINT)
                break
        _, stderr = process.communicate()
    finally:
        timer.cancel()
    assert process.returncode == 130, stderr[-2000:]
    assert stderr.endswith(INTERRUPTED_LINE) and "Traceback" not in stderr
    assert list(maps.iterdir()) == []


# ------------------------------------------------------------------------------ item 11: one line per kind of note
def test_a_note_shared_by_three_pngs_is_said_once_with_their_count(tiny_sam_folder, tmp_path, capsys):
    from PIL import Image

    inputs = tmp_path / "pngs"
    inputs.mkdir()
    for index in range(3):
        Image.fromarray(random_rgb(100, seed=index).transpose(1, 2, 0)).save(inputs / f"p{index}.png")
    assert predict(tiny_sam_folder, inputs, tmp_path / "maps") == 0
    captured = capsys.readouterr()
    said = [line for line in captured.err.splitlines() if "no GeoJSON" in line]
    assert said == [f"warning: {inputs / 'p0.png'}: no GeoJSON: the image has no georeferencing, so its polygons "
                    "are in pixel coordinates, which GeoJSON cannot state; they are in p0_landslides.gpkg with an "
                    "undefined CRS",
                    "warning: no GeoJSON for 3 inputs (said above for p0.png; each input's notes are in the "
                    "summary)"]
    summary_notes = [line for line in captured.out.splitlines() if line.strip().startswith("note: no GeoJSON")]
    assert len(summary_notes) == 3 and all("_landslides.gpkg" in line for line in summary_notes)
