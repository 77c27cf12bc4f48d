#!/usr/bin/env python
"""Gather runs' metrics.json into the paper's comparison tables and Figure 9, listing what is missing.

    python recipes/compare.py runs/bijie runs/bijie-unet runs/bijie-sam-zero-shot ... --output_dir runs/comparison

Reads the `metrics.json` written by recipes/train.py (test scores, parameters) and recipes/zero_shot.py (one row per
variant). Writes to `output_dir`: `comparison.md` (Tables I/II: scores per model on one dataset each; Table III:
parameters; Table IV: ablation presets; and the missing runs), one CSV per table, and `figure9-DATASET.png`
(trainable parameters against MIoU, log x axis). Nothing missing is invented: absent runs are listed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Optional, Sequence

from translandseg_hf.atl.presets import PRESETS
from translandseg_hf.choices import DISPLAY_NAMES as DISPLAY
from translandseg_hf.metrics import TABLE_COLUMNS, TABLE_NOTE, table_header, table_row
from translandseg_hf.errors import run_reporting_errors
from translandseg_hf.io_utils import atomic_write_bytes, atomic_write_text

SCORED_MODELS = ("pspnet", "deeplabv3plus", "unet", "ccnet", "translandseg")  # the rows of Tables I and II
PAPER_DATASETS = {"bijie": "Table I", "landslide4sense": "Table II"}
ABLATION_DATASET = "bijie"  # Table IV ablates on Bijie
PAPER_INPUT_SIZE = 1024  # the paper's input side; runs at another size are named with theirs


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folders holding a metrics.json")
    parser.add_argument("--output_dir", default="runs/comparison")
    return parser.parse_args(argv)


def read_rows(run_dirs: Sequence[str]) -> tuple[list[dict], list[str]]:
    """One row per scored model (a zero-shot run gives one per variant), and notes on runs that could not be read."""
    rows, notes = [], []
    for run_dir in run_dirs:
        path = Path(run_dir) / "metrics.json"
        if not path.is_file():
            notes.append(f"{run_dir}: no metrics.json (run missing or not finished)")
            continue
        metrics = json.loads(path.read_text())
        config = metrics.get("config") or {}
        model = metrics.get("model") or config.get("model", "translandseg")
        dataset = metrics.get("dataset") or config.get("dataset")
        preset = metrics.get("preset") or (config.get("preset") if model == "translandseg" else None)
        base = dict(run=str(run_dir), model=model, dataset=dataset, preset=preset,
                    parameters=metrics.get("parameters"))
        if "variants" in metrics:
            for variant, scores in metrics["variants"].items():
                name = f"SAM zero-shot ({variant})"
                rows.append({**base, "name": name, "key": f"{model}-{variant}", "scores": scores})
        elif metrics.get("test"):
            name = DISPLAY.get(model, model) if model != "translandseg" or preset in (None, "translandseg") else preset
            key = model if model != "translandseg" else f"translandseg:{preset}"
            channels = metrics.get("input_channels") or 3
            if channels > 3:  # multispectral runs sit beside the RGB ones
                name, key = f"{name} ({channels} bands)", f"{key}+{channels}"
            size = config.get("image_size")
            if size not in (None, PAPER_INPUT_SIZE):  # a native-resolution run is its own row beside the paper's
                name, key = f"{name} ({size} px)", f"{key}@{size}"
            rows.append({**base, "name": name, "key": key, "scores": metrics["test"]})
        else:
            notes.append(f"{run_dir}: metrics.json has no test scores (training not finished, or no test split)")
    return rows, notes


def unique(rows: list[dict], notes: list[str]) -> list[dict]:
    """The first run of each (dataset, model, preset); later duplicates are noted, not averaged."""
    seen, kept = {}, []
    for row in rows:
        key = (row["dataset"], row["key"])
        if key in seen:
            notes.append(f"{row['run']}: duplicate of {seen[key]} ({row['name']} on {row['dataset']}); not used")
            continue
        seen[key] = row["run"]
        kept.append(row)
    return kept


def score_table(rows: list[dict], first_column: str) -> tuple[list[str], list[list]]:
    """Markdown lines (`TABLE_NOTE`, then the table) and CSV rows (percent) of `TABLE_COLUMNS`: the paper's class
    means and the landslide-class IoU and F1 (a score older metrics files lack reads "n/a")."""
    lines = [TABLE_NOTE, "", table_header(first_column)] + [table_row(row["name"], row["scores"]) for row in rows]
    csv_rows = [[first_column] + [name for name, _ in TABLE_COLUMNS]]
    csv_rows += [[row["name"]] + [csv_percent(row["scores"].get(key)) for _, key in TABLE_COLUMNS] for row in rows]
    return lines, csv_rows


def csv_percent(score):
    return "n/a" if score is None else round(100 * score, 4)


def parameter_table(rows: list[dict]) -> tuple[list[str], list[list]]:
    """Table III: total and trainable parameters, one row per model (counts do not depend on the dataset)."""
    lines = ["| model | total parameters | trainable parameters | total (M) | trainable (M) |",
             "|---|---:|---:|---:|---:|"]
    csv_rows = [["model", "total", "trainable"]]
    seen = set()
    for row in rows:
        counts = row["parameters"]
        name = row["name"] if not row["name"].startswith("SAM zero-shot") else "SAM (zero-shot)"
        if counts is None or name in seen:
            continue
        seen.add(name)
        lines.append(f"| {name} | {counts['total']:,} | {counts['trainable']:,} | {counts['total'] / 1e6:.2f} | "
                     f"{counts['trainable'] / 1e6:.2f} |")
        csv_rows.append([name, counts["total"], counts["trainable"]])
    return lines, csv_rows


def figure9(rows: list[dict], path: Path, dataset: str) -> bool:
    """Trainable parameters (log x) against MIoU, one labelled point per model; False when nothing trained."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(row["parameters"]["trainable"], 100 * row["scores"]["miou"], row["name"]) for row in rows
              if row["parameters"] and row["parameters"]["trainable"] > 0]  # zero-shot has nothing on a log axis
    if not points:
        return False
    figure, axes = plt.subplots(figsize=(6, 4))
    for trainable, miou, name in points:
        axes.scatter(trainable, miou)
        axes.annotate(name, (trainable, miou), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes.set_xscale("log")
    axes.margins(x=0.25, y=0.15)  # room for the labels of the outermost points
    axes.set(xlabel="trainable parameters", ylabel="MIoU (%)", title=f"Trainable parameters and MIoU ({dataset})")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=150)
    plt.close(figure)
    atomic_write_bytes(path, image.getvalue())
    return True


def write_csv(path: Path, rows: list[list]) -> None:
    text = io.StringIO(newline="")
    csv.writer(text).writerows(rows)
    atomic_write_text(path, text.getvalue())


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows, notes = read_rows(args.run_dirs)
    rows = unique(rows, notes)
    datasets = sorted({row["dataset"] for row in rows}, key=lambda d: (d not in PAPER_DATASETS, d))
    missing = [f"{dataset}: no runs ({table})" for dataset, table in PAPER_DATASETS.items() if dataset not in datasets]
    markdown, files = ["# Comparison", ""], []
    for dataset in datasets:
        here = [row for row in rows if row["dataset"] == dataset]
        main_rows = [row for row in here if row["model"] != "translandseg" or row["preset"] in (None, "translandseg")]
        order = {name: index for index, name in enumerate(SCORED_MODELS)}
        main_rows.sort(key=lambda row: (order.get(row["model"], -1), row["name"]))
        present = {row["model"] for row in main_rows}
        missing += [f"{dataset}: {DISPLAY[model]}" for model in SCORED_MODELS if model not in present]
        title = PAPER_DATASETS.get(dataset, "Scores")
        lines, csv_rows = score_table(main_rows, "model")
        markdown += [f"## {title}: {dataset} (test split, %)", "", *lines, ""]
        write_csv(output_dir / f"scores-{dataset}.csv", csv_rows)
        files.append(f"scores-{dataset}.csv")
        ablation = [row for row in here if row["model"] == "translandseg"]
        if ablation:
            preset_order = {preset: index for index, preset in enumerate(PRESETS)}
            ablation.sort(key=lambda row: preset_order.get(row["preset"], len(preset_order)))
            lines, csv_rows = score_table([{**row, "name": row["preset"]} for row in ablation], "preset")
            markdown += [f"## Table IV: ATL presets on {dataset} (test split, %)", "", *lines, ""]
            write_csv(output_dir / f"ablation-{dataset}.csv", csv_rows)
            files.append(f"ablation-{dataset}.csv")
            if dataset == ABLATION_DATASET:
                found = {row["preset"] for row in ablation}
                missing += [f"{dataset}: preset {preset}" for preset in PRESETS if preset not in found]
        if figure9(main_rows, output_dir / f"figure9-{dataset}.png", dataset):
            files.append(f"figure9-{dataset}.png")
    lines, csv_rows = parameter_table(rows)
    markdown += ["## Table III: parameters", "", *lines, ""]
    write_csv(output_dir / "parameters.csv", csv_rows)
    files.append("parameters.csv")
    markdown += ["## Missing", ""] + [f"- {item}" for item in missing + notes or ["nothing"]]
    atomic_write_text(output_dir / "comparison.md", "\n".join(markdown) + "\n")
    print("\n".join(markdown))
    return {"rows": rows, "missing": missing, "notes": notes, "files": files + ["comparison.md"]}


if __name__ == "__main__":
    run_reporting_errors(main)
