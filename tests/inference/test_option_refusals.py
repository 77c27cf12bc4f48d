"""Options that would map nothing useful are refused where they are given: a threshold outside (0, 1) (50, a
percentage, gave an all-0 mask; NaN likewise; a negative value marked everything), a batch of no tiles, a negative
overlap or one the planned tile cannot hold. PredictionOptions refuses them for the Python API and the app;
`translandseg predict` and `event` before any work (exit 2, one `error:` line), the model never loaded."""

from __future__ import annotations

import re

import pytest
from helpers.rasters import random_rgb, write_raster

from translandseg_hf.cli import main
from translandseg_hf.inference.options import PredictionOptions

THRESHOLD = r"threshold must be a probability between 0 and 1 \(exclusive\), got "
REFUSED = [  # (PredictionOptions' keywords, the predict flags giving them, what the refusal says)
    ({"threshold": 50.0}, ["--threshold", "50"], THRESHOLD + r"50\.0 \(a percentage\? 50% is 0\.5\)\."),
    ({"threshold": float("nan")}, ["--threshold", "nan"], THRESHOLD + r"nan\."),
    ({"threshold": -0.1}, ["--threshold", "-0.1"], THRESHOLD + r"-0\.1\."),
    ({"threshold": 1.0}, ["--threshold", "1"], THRESHOLD + r"1\.0\."),
    ({"threshold": 0.0}, ["--threshold", "0"], THRESHOLD + r"0\.0\."),
    ({"threshold": float("inf")}, ["--threshold", "inf"], THRESHOLD + r"inf\."),
    ({"batch_size": 0}, ["--batch_size", "0"], r"batch_size must be a whole number of tiles, at least 1, got 0\."),
    ({"overlap": -3}, ["--overlap", "-3"], r"overlap must be a whole number of scene px, 0 or more, got -3\."),
    ({"overlap": 64, "tile_size": 64}, ["--overlap", "64", "--tile_size", "64"],
     r"overlap must be less than the tile side, 64 px here, got 64: neighbouring tiles would not advance\."),
]


@pytest.mark.parametrize("keywords, flags, said", REFUSED)
def test_prediction_options_refuse_values_that_map_nothing_useful(keywords, flags, said):
    with pytest.raises(ValueError, match=said):
        PredictionOptions(**keywords)


@pytest.mark.parametrize("keywords, flags, said", REFUSED)
def test_predict_refuses_them_before_loading_the_model(tmp_path, capsys, keywords, flags, said):
    scene = write_raster(tmp_path / "scene.tif", random_rgb(16))
    code = main(["predict", str(scene), "--model", str(tmp_path / "no-model"), "--output", str(tmp_path / "maps"),
                 "--device", "cpu", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert re.search(said, err), err  # not the missing model: it was never loaded
    assert not (tmp_path / "maps").exists()


@pytest.mark.parametrize("flags, said", [(flags, said) for _, flags, said in REFUSED[:1] + REFUSED[6:7]])
def test_event_refuses_them_before_any_work(tmp_path, capsys, flags, said):
    code = main(["event", "--model", str(tmp_path / "no-model"), "--date", "2023-08-10", "--bbox",
                 "85.1,27.9,85.2,28.0", "--output", str(tmp_path / "event"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and re.search("error: " + said, err), err
    assert not (tmp_path / "event").exists()


def test_usable_values_pass():
    options = PredictionOptions(threshold=0.01, batch_size=1, overlap=0, tile_size=1)
    assert (options.threshold, options.overlap_for(1), PredictionOptions(overlap=63).overlap_for(64)) == (0.01, 0, 63)
    assert PredictionOptions().overlap_for(64) == 8  # the default: an eighth of the tile


def test_an_overlap_the_planned_tile_cannot_hold_fails_that_scene_before_the_model_runs(model_dir, tmp_path, capsys):
    """The tile is planned per scene (from its resolution): the overlap is checked against it there, by name."""
    scene = write_raster(tmp_path / "scene.tif", random_rgb(40))
    code = main(["predict", str(scene), "--model", str(model_dir), "--output", str(tmp_path / "maps"), "--device",
                 "cpu", "--overlap", "5000"])
    out = capsys.readouterr()
    assert code == 1, out
    assert "scene.tif: overlap must be less than the tile side, " in out.out + out.err
    assert not list((tmp_path / "maps").glob("scene_*"))
