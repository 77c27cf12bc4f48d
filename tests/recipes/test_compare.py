"""recipes/compare.py on metrics files written here: the paper's tables with checked values, Figure 9, missing runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import load_recipe


# The row layout (P, REC, F1, OA, MIoU, landslide IoU, landslide F1 in percent) for `scores(0.86)`, written by hand.
ABLATION = "| translandseg-4 | 90.00 | 80.00 | 85.00 | 95.00 | 86.00 | 76.00 | 65.00 |"


def scores(miou: float) -> dict:
    return {"precision": 0.9, "recall": 0.8, "f1": 0.85, "oa": 0.95, "miou": miou, "landslide_iou": miou - 0.1,
            "landslide_precision": 0.7, "landslide_recall": 0.6, "landslide_f1": 0.65}


def write_run(folder: Path, **metrics) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def run_compare(tmp_path: Path, run_dirs: list) -> dict:
    return load_recipe("compare").main([*map(str, run_dirs), "--output_dir", str(tmp_path / "out")])


def test_tables_figure_and_missing_runs(tmp_path):
    params = {"translandseg": (312_435_024, 4_150_532), "translandseg-4": (312_460_368, 4_175_876)}
    runs = [
        write_run(tmp_path / "tls", model="translandseg", preset="translandseg", dataset="bijie", test=scores(0.88),
                  parameters=dict(zip(("total", "trainable"), params["translandseg"]))),
        write_run(tmp_path / "tls4", model="translandseg", preset="translandseg-4", dataset="bijie",
                  test=scores(0.86), parameters=dict(zip(("total", "trainable"), params["translandseg-4"]))),
        write_run(tmp_path / "unet", model="unet", preset=None, dataset="bijie", test=scores(0.80),
                  parameters={"total": 32_521_250, "trainable": 32_521_250}),
        write_run(tmp_path / "sam", model="sam-zero-shot", preset=None, dataset="bijie",
                  parameters={"total": 312_343_088, "trainable": 0},
                  variants={"points": scores(0.6), "automatic": scores(0.4)}),
        write_run(tmp_path / "unfinished", model="pspnet", dataset="bijie", test=None, parameters=None),
        tmp_path / "never-ran",
    ]
    result = run_compare(tmp_path, runs)
    out = tmp_path / "out"
    markdown = (out / "comparison.md").read_text()
    for line in ("| model | P | REC | F1 | OA | MIoU | landslide IoU | landslide F1 |",
                 "| UNet | 90.00 | 80.00 | 85.00 | 95.00 | 80.00 | 70.00 | 65.00 |",
                 "| TransLandSeg | 90.00 | 80.00 | 85.00 | 95.00 | 88.00 | 78.00 | 65.00 |",
                 "| SAM zero-shot (points) | 90.00 | 80.00 | 85.00 | 95.00 | 60.00 | 50.00 | 65.00 |", ABLATION,
                 "| UNet | 32,521,250 | 32,521,250 | 32.52 | 32.52 |",
                 "| TransLandSeg | 312,435,024 | 4,150,532 | 312.44 | 4.15 |",
                 "| SAM (zero-shot) | 312,343,088 | 0 | 312.34 | 0.00 |"):
        assert line in markdown, line
    assert ABLATION not in markdown.split("## Table IV")[0]  # ablations: Table IV only
    assert markdown.count("landslide F1 is the score the Landslide4Sense 2022 competition ranked") == 2  # I, IV
    with (out / "scores-bijie.csv").open() as handle:
        rows = {row["model"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"UNet", "TransLandSeg", "SAM zero-shot (points)", "SAM zero-shot (automatic)"}
    assert float(rows["UNet"]["MIoU"]) == 80.0 and float(rows["TransLandSeg"]["landslide IoU"]) == 78.0
    assert float(rows["UNet"]["landslide F1"]) == 65.0 and float(rows["UNet"]["F1"]) == 85.0
    with (out / "ablation-bijie.csv").open() as handle:
        assert [row["preset"] for row in csv.DictReader(handle)] == ["translandseg", "translandseg-4"]
    missing = result["missing"] + result["notes"]
    for expected in ("bijie: PSPNet", "bijie: DeepLabv3+", "bijie: CCNet", "landslide4sense: no runs",
                     "bijie: preset translandseg-1", "unfinished: metrics.json has no test scores",
                     "never-ran: no metrics.json"):
        assert any(expected in item for item in missing), expected
    assert not any("bijie: UNet" in item or "preset translandseg-4" in item for item in missing)
    assert (out / "figure9-bijie.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_duplicate_runs_are_noted_not_merged(tmp_path):
    first = write_run(tmp_path / "a", model="unet", dataset="bijie", test=scores(0.8),
                      parameters={"total": 10, "trainable": 10})
    second = write_run(tmp_path / "b", model="unet", dataset="bijie", test=scores(0.7),
                       parameters={"total": 10, "trainable": 10})
    result = run_compare(tmp_path, [first, second])
    assert [row["run"] for row in result["rows"]] == [str(first)]
    assert any("duplicate" in note and str(second) in note for note in result["notes"])


def test_a_native_resolution_run_is_a_row_of_its_own(tmp_path):
    counts = {"total": 312_435_024, "trainable": 4_150_532}
    runs = [write_run(tmp_path / f"l4s-{size}", model="translandseg", preset="translandseg", dataset="landslide4sense",
                      test=scores(miou), parameters=counts, config={"image_size": size})
            for size, miou in ((1024, 0.76), (256, 0.74))]
    run_compare(tmp_path, runs)
    table = (tmp_path / "out" / "comparison.md").read_text()
    assert "| TransLandSeg | 90.00 | 80.00 | 85.00 | 95.00 | 76.00 | 66.00 |" in table
    assert "| TransLandSeg (256 px) | 90.00 | 80.00 | 85.00 | 95.00 | 74.00 | 64.00 |" in table
    assert "duplicate" not in table


def test_rgb_and_14_band_runs_sit_side_by_side(tmp_path):
    counts = {"total": 312_435_024, "trainable": 4_150_532}
    runs = [write_run(tmp_path / name, model="unet", preset=None, dataset="landslide4sense", test=scores(miou),
                      parameters=counts, input_channels=channels)
            for name, channels, miou in (("rgb", 3, 0.70), ("bands", 14, 0.72))]
    run_compare(tmp_path, runs)
    table = (tmp_path / "out" / "comparison.md").read_text()
    assert "| UNet | 90.00 | 80.00 | 85.00 | 95.00 | 70.00 | 60.00 |" in table
    assert "| UNet (14 bands) | 90.00 | 80.00 | 85.00 | 95.00 | 72.00 | 62.00 |" in table


def test_every_output_is_written_atomically(tmp_path, monkeypatch):
    """Each table, the figure and comparison.md appear by one rename of a complete file: with the renames held
    back, the earlier comparison is left exactly as it was."""
    from translandseg_hf import io_utils

    runs = [write_run(tmp_path / "unet", model="unet", preset=None, dataset="bijie", test=scores(0.80),
                      parameters={"total": 32_521_250, "trainable": 32_521_250})]
    first = run_compare(tmp_path, runs)
    out = tmp_path / "out"
    before = {name: (out / name).read_bytes() for name in first["files"]}
    assert "figure9-bijie.png" in before and before["figure9-bijie.png"].startswith(b"\x89PNG")
    renamed = []
    monkeypatch.setattr(io_utils.os, "replace", lambda source, target: renamed.append(Path(target).name))
    run_compare(tmp_path, [*runs, write_run(tmp_path / "pspnet", model="pspnet", preset=None, dataset="bijie",
                                            test=scores(0.70), parameters={"total": 1, "trainable": 1})])
    assert sorted(renamed) == sorted(first["files"])
    assert {name: (out / name).read_bytes() for name in first["files"]} == before
