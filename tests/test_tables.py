"""The printed score tables (evaluate, compare, model cards): the paper's class means and, named apart, the
landslide-class F1 the Landslide4Sense 2022 competition ranked."""

from __future__ import annotations

from translandseg_hf.cards import scores_table
from translandseg_hf.metrics import segmentation_scores, table_header, table_row

TP, FP, FN, TN = 6, 2, 4, 88  # a small confusion: landslide F1 2*6 / (2*6 + 2 + 4) = 66.67 %
LANDSLIDE_F1 = 100 * 12 / 18
CLASS_MEAN_F1 = 100 * (12 / 18 + 176 / 182) / 2  # background F1: 2*88 / (2*88 + 4 + 2)


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_the_table_has_a_landslide_f1_column_beside_the_class_mean_f1():
    header = cells(table_header().splitlines()[0])
    row = dict(zip(header, cells(table_row("m", segmentation_scores(TP, FP, FN, TN)))))
    assert header == ["model", "P", "REC", "F1", "OA", "MIoU", "landslide IoU", "landslide F1"]
    assert row["landslide F1"] == f"{LANDSLIDE_F1:.2f}" == "66.67"
    assert row["F1"] == f"{CLASS_MEAN_F1:.2f}" == "81.68"
    assert table_header().splitlines()[1].count("|") == len(header) + 1


def test_scores_saved_before_landslide_f1_read_n_a():
    scores = segmentation_scores(TP, FP, FN, TN)
    del scores["landslide_f1"]
    assert cells(table_row("old", scores))[-1] == "n/a"


def test_the_card_names_both_kinds_of_score():
    table = scores_table({"test": segmentation_scores(TP, FP, FN, TN)}, {"test": 100})
    assert "| split | P | REC | F1 | OA | MIoU | landslide IoU | landslide F1 |" in table
    assert "| 66.67 |" in table and "81.68" in table
    assert "P, REC, F1 and MIoU are means over background and landslide, as the paper's" in table
    assert "landslide F1 is the score the Landslide4Sense 2022 competition ranked" in table

