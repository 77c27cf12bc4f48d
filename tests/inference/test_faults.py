"""Faults while writing maps: a full disk names the output and leaves nothing half-written, a folder that cannot be
written fails before any work, and two runs on one output folder never write the same outputs at once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from rio_cogeo.cogeo import cog_validate

from helpers.rasters import random_rgb, write_raster

from translandseg_hf.cli import main


def write_scene(path, side: int):
    return write_raster(path, random_rgb(side, seed=side))


def run_cli(*arguments, limit_bytes=None):
    """`translandseg predict` in a subprocess, optionally with a file-size limit (a full disk, as GDAL sees it)."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        if {limit_bytes!r} is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
            resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes!r}, {limit_bytes!r}))
        from translandseg_hf.cli import main
        sys.exit(main({list(map(str, arguments))!r}))
        """)
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment,
                          timeout=300)


def test_a_full_disk_names_the_output_and_keeps_earlier_outputs(model_dir, tmp_path):
    inputs, maps = tmp_path / "in", tmp_path / "maps"
    inputs.mkdir()
    write_scene(inputs / "a_small.tif", 60)
    write_scene(inputs / "b_large.tif", 1600)  # a 10 MB float32 work file: over the 4 MB limit
    result = run_cli("predict", "--model", model_dir, inputs, "--output", maps, limit_bytes=4_000_000)
    assert result.returncode == 1, result.stderr[-2000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("failed:"))
    assert re.search(r"b_large\.tif: writing its outputs in .*maps failed: .*b_large_(probability|mask)\.tif", line)
    assert ".tmp" not in line and ".work" not in line  # the output, not a temporary file, is named
    names = sorted(path.name for path in maps.iterdir())
    assert not any(name.startswith("b_large") or name.startswith(".") for name in names), names
    assert cog_validate(str(maps / "a_small_probability.tif"))[0]  # the earlier output is whole


def test_a_folder_that_cannot_be_written_fails_before_any_work(model_dir, tmp_path, capsys):
    scene = write_scene(tmp_path / "scene.tif", 60)
    assert main(["predict", "--model", str(model_dir), str(scene), "--output", "/proc/translandseg-maps"]) == 1
    assert "error: /proc/translandseg-maps: cannot write outputs there" in capsys.readouterr().err


def test_two_runs_on_one_folder_map_each_input_once_and_completely(model_dir, tmp_path):
    inputs, maps = tmp_path / "in", tmp_path / "maps"
    inputs.mkdir()
    stems = [f"scene_{index}" for index in range(6)]
    for index, stem in enumerate(stems):
        if index % 2:
            write_scene(inputs / f"{stem}.tif", 200)
        else:
            Image.fromarray(np.full((150, 160, 3), 30 * index, np.uint8)).save(inputs / f"{stem}.png")
    command = [sys.executable, "-m", "translandseg_hf.cli", "predict", "--model", str(model_dir), str(inputs),
               "--output", str(maps)]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
            for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err[-1500:] for _, err in outputs]
    done = [line.split(":")[1].strip() for out, _ in outputs for line in out.splitlines()
            if line.strip().startswith("done:")]
    assert sorted(os.path.basename(path).rsplit(".", 1)[0] for path in done) == stems  # each input mapped once
    with warnings.catch_warnings():  # the PNGs' maps are in pixel coordinates, as intended
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        for stem in stems:
            for suffix in ("probability.tif", "mask.tif"):
                assert cog_validate(str(maps / f"{stem}_{suffix}"))[0]
    assert not [name for name in os.listdir(maps) if name.startswith(".")]  # no claims or temporaries left
