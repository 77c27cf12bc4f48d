"""The paper's metrics from streaming confusion counts: P, REC, F1, OA, MIoU, landslide IoU and landslide F1.

The paper's P, REC and F1 are means over the two classes (background and landslide): Bijie's landslide IoU 78.83 and
background IoU 97.37 give its F1 93.41 and MIoU 88.10. Landslide IoU is TP / (TP + FP + FN) (eq. 20 of the paper
misprints FN as TN). The landslide-class F1 (`landslide_f1`) is the Landslide4Sense competition's score.

Empty classes: a ratio whose denominator is zero is 1.0 when its class is absent from both the ground truth and the
prediction (nothing to find and nothing found: e.g. landslide IoU on a landslide-free tile predicted empty), and 0.0
otherwise (e.g. landslide precision when landslides exist but none were predicted). No score is ever NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SCORE_KEYS = (
    "precision", "recall", "f1", "oa", "miou", "landslide_iou",
    "landslide_precision", "landslide_recall", "landslide_f1",
)


def _ratio(numerator: int, denominator: int, class_absent: bool) -> float:
    if denominator == 0:
        return 1.0 if class_absent else 0.0
    return numerator / denominator


def _class_scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall, F1 and IoU of one class, seen as the positive class."""
    absent = tp + fp + fn == 0
    return {
        "precision": _ratio(tp, tp + fp, absent),
        "recall": _ratio(tp, tp + fn, absent),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, absent),
        "iou": _ratio(tp, tp + fp + fn, absent),
    }


def segmentation_scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Scores as fractions in [0, 1] (tables print percent) from landslide-positive confusion counts."""
    tp, fp, fn, tn = (int(value) for value in (tp, fp, fn, tn))
    if min(tp, fp, fn, tn) < 0:
        raise ValueError(f"Confusion counts must be non-negative, got tp={tp}, fp={fp}, fn={fn}, tn={tn}.")
    total = tp + fp + fn + tn
    if total == 0:
        raise ValueError("Cannot score an empty evaluation: no pixels were counted.")
    landslide = _class_scores(tp, fp, fn)
    background = _class_scores(tn, fn, fp)  # background as the positive class swaps FP and FN
    return {
        "precision": (landslide["precision"] + background["precision"]) / 2,
        "recall": (landslide["recall"] + background["recall"]) / 2,
        "f1": (landslide["f1"] + background["f1"]) / 2,
        "oa": (tp + tn) / total,
        "miou": (landslide["iou"] + background["iou"]) / 2,
        "landslide_iou": landslide["iou"],
        "landslide_precision": landslide["precision"],
        "landslide_recall": landslide["recall"],
        "landslide_f1": landslide["f1"],
    }


def confusion_counts(predictions: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """(TP, FP, FN, TN) as an int64 tensor of shape (4,), from binary masks of the same shape."""
    if predictions.shape != references.shape:
        raise ValueError(f"Predictions {tuple(predictions.shape)} and references {tuple(references.shape)} differ.")
    predicted, actual = predictions.bool(), references.bool()
    tp = (predicted & actual).sum()
    fp = (predicted & ~actual).sum()
    fn = (~predicted & actual).sum()
    tn = (~predicted & ~actual).sum()
    return torch.stack([tp, fp, fn, tn]).to(torch.int64)


@dataclass
class ConfusionCounter:
    """Streaming TP/FP/FN/TN: add per batch, sum across processes, score once; no list of masks is kept."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, counts: torch.Tensor) -> None:
        """Add counts of shape (4,) or (N, 4) (for example gathered from several processes)."""
        counts = counts.reshape(-1, 4).sum(0).tolist()
        self.tp += counts[0]
        self.fp += counts[1]
        self.fn += counts[2]
        self.tn += counts[3]

    def update(self, predictions: torch.Tensor, references: torch.Tensor) -> None:
        self.add(confusion_counts(predictions, references))

    def scores(self) -> dict[str, float]:
        return segmentation_scores(self.tp, self.fp, self.fn, self.tn)


def metric_path() -> str:
    """Folder of the `evaluate` module of these metrics: `evaluate.load(metric_path())` needs no network."""
    from pathlib import Path

    return str(Path(__file__).parent / "landslide_segmentation_metric")


# The paper's table columns (Tables I, II, IV), then the landslide-class F1 the Landslide4Sense 2022 competition
# ranked (the paper's F1 is a class mean: the two differ, and both are always printed), in percent.
TABLE_COLUMNS = (("P", "precision"), ("REC", "recall"), ("F1", "f1"), ("OA", "oa"), ("MIoU", "miou"),
                 ("landslide IoU", "landslide_iou"), ("landslide F1", "landslide_f1"))
TABLE_NOTE = ("Scores in percent: P, REC, F1 and MIoU are means over background and landslide, as the paper's; "
              "landslide IoU and landslide F1 are the landslide class's alone (landslide F1 is the score the "
              "Landslide4Sense 2022 competition ranked).")


def table_header(first_column: str = "model") -> str:
    """Markdown header of a row of `table_row`."""
    names = [first_column] + [name for name, _ in TABLE_COLUMNS]
    return "| " + " | ".join(names) + " |\n" + "|---" + "|---:" * len(TABLE_COLUMNS) + "|"


def table_row(name: str, scores: dict) -> str:
    """One Markdown row of `TABLE_COLUMNS` in percent; a score that scores saved before it was recorded lack (an
    older `metrics.json` has no landslide F1) reads "n/a"."""
    return f"| {name} | " + " | ".join(percent(scores.get(key)) for _, key in TABLE_COLUMNS) + " |"


def percent(score) -> str:
    return "n/a" if score is None else f"{100 * score:.2f}"
