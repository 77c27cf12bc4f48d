"""`translandseg predict --progress json`: one JSON object per line on standard output, and nothing else there, as
`translandseg_hf/inference/progress.py` documents it (the QGIS plugin reads it)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from rasterio.transform import from_origin

from helpers.rasters import random_rgb, write_raster

from translandseg_hf.cli import main
from translandseg_hf.inference.progress import PROTOCOL, JsonProgress


def write_scene(path: Path, side: int) -> Path:
    """An 8-bit RGB GeoTIFF in UTM 45N at 1 m."""
    return write_raster(path, random_rgb(side), crs="EPSG:32645", transform=from_origin(300_000, 3_100_000, 1.0, 1.0))


def predict_json(model: Path, inputs: Path, output: Path) -> tuple[int, list[dict], str]:
    """Exit status, the events (every line of standard output parsed as JSON) and standard error of one run."""
    command = [sys.executable, "-m", "translandseg_hf.cli", "predict", "--model", str(model), str(inputs),
               "--output", str(output), "--device", "cpu", "--progress", "json"]
    ran = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                         timeout=300)
    return ran.returncode, [json.loads(line) for line in ran.stdout.splitlines()], ran.stderr


def test_predict_writes_its_progress_as_json_lines_and_nothing_else_on_stdout(tiny_sam_folder, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a_broken.tif").write_bytes(b"not a tiff at all")
    scene = write_scene(inputs / "b_scene.tif", 300)  # 4 tiles of 256 px
    broken = inputs / "a_broken.tif"
    status, events, stderr = predict_json(tiny_sam_folder, inputs, tmp_path / "maps")
    assert status == 1
    assert [event["event"] for event in events[:3]] == ["start", "file", "result"]
    assert events[0] == {"event": "start", "protocol": PROTOCOL, "total": 2}
    assert events[1] == {"event": "file", "input": str(broken), "index": 0, "total": 2}
    assert events[2]["input"] == str(broken) and events[2]["status"] == "failed" and events[2]["index"] == 0
    assert events[3] == {"event": "file", "input": str(scene), "index": 1, "total": 2}
    tiles = [event for event in events if event["event"] == "tiles"]
    assert tiles[0] == {"event": "tiles", "input": str(scene), "done": 0, "total": 4}
    assert [event["done"] for event in tiles] == sorted(event["done"] for event in tiles) and tiles[-1]["done"] == 4
    assert {event["total"] for event in tiles} == {4}
    assert events[-2] == {"event": "result", "input": str(scene), "index": 1, "status": "done", "message": ""}
    summary = events[-1]
    assert {key: summary[key] for key in ("event", "done", "skipped", "failed", "exit_status")} == {
        "event": "summary", "done": 1, "skipped": 0, "failed": 1, "exit_status": 1}
    assert summary["text"].startswith("1 done, 0 skipped, 1 failed")
    assert [event["event"] for event in events].count("summary") == 1
    # The human lines went to standard error, as text: the failed input's line among them, no JSON.
    assert f"failed: {broken}: " in stderr and '"event"' not in stderr

    status, events, _ = predict_json(tiny_sam_folder, scene, tmp_path / "maps")  # its outputs exist: skipped
    assert status == 0 and [event["event"] for event in events] == ["start", "file", "result", "summary"]
    assert events[2]["status"] == "skipped" and events[2]["message"].startswith("outputs exist")
    assert (events[3]["done"], events[3]["skipped"], events[3]["failed"]) == (0, 1, 0)


def test_a_refused_option_writes_no_event_and_one_error_line(tiny_sam_folder, tmp_path, capsys):
    scene = write_scene(tmp_path / "scene.tif", 40)
    code = main(["predict", "--model", str(tiny_sam_folder), str(scene), "--output", str(tmp_path / "maps"),
                 "--progress", "json", "--percentiles", "low,high"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1


def test_events_under_accelerate_name_their_process():
    stream = io.StringIO()
    progress = JsonProgress(stream, process=1)
    with progress.over([Path("a.tif")]):
        progress.file(0, Path("a.tif"))
        progress.plan(2)
        progress.tiles(2)
        progress.result(0, SimpleNamespace(path=Path("a.tif"), status="done", message=""))
    progress.summary([SimpleNamespace(status="done")], "1 done, 0 skipped, 0 failed", 0)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [event["event"] for event in events] == ["start", "file", "tiles", "tiles", "result", "summary"]
    assert {event["process"] for event in events} == {1}
    assert events[3] == {"event": "tiles", "input": "a.tif", "done": 2, "total": 2, "process": 1}
