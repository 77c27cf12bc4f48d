"""The paper's metrics against hand-computed confusion matrices, empty classes included, and the evaluate module."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from translandseg_hf.metrics import SCORE_KEYS, ConfusionCounter, confusion_counts, metric_path, segmentation_scores


def test_hand_computed_matrix():
    # tp=6 fp=2 fn=4 tn=88 (100 pixels)
    scores = segmentation_scores(tp=6, fp=2, fn=4, tn=88)
    landslide_iou, background_iou = 6 / 12, 88 / 94
    assert scores["landslide_iou"] == pytest.approx(landslide_iou)
    assert scores["miou"] == pytest.approx((landslide_iou + background_iou) / 2)
    assert scores["precision"] == pytest.approx((6 / 8 + 88 / 92) / 2)
    assert scores["recall"] == pytest.approx((6 / 10 + 88 / 90) / 2)
    assert scores["f1"] == pytest.approx((12 / 18 + 176 / 182) / 2)
    assert scores["oa"] == pytest.approx(0.94)
    assert scores["landslide_f1"] == pytest.approx(12 / 18)
    assert (scores["landslide_precision"], scores["landslide_recall"]) == pytest.approx((0.75, 0.6))


def test_paper_bijie_row_is_consistent():
    # The paper's Bijie IoUs (78.83 landslide, 97.37 background) give its F1 93.41 and MIoU 88.10: build counts
    # with those IoUs and FP = FN, then check the class-mean definitions reproduce the published figures.
    tp, fp_plus_fn = 7883, 10000 - 7883
    fp = fn = fp_plus_fn / 2
    tn = 0.9737 * fp_plus_fn / (1 - 0.9737)
    scores = segmentation_scores(round(tp * 100), round(fp * 100), round(fn * 100), round(tn * 100))
    assert round(100 * scores["f1"], 2) == 93.41
    assert round(100 * scores["miou"], 2) == 88.10


@pytest.mark.parametrize(
    "counts, expected",
    [
        # landslide-free tile predicted empty: landslide class is perfect, not NaN
        ((0, 0, 0, 50), dict(landslide_iou=1.0, landslide_precision=1.0, landslide_f1=1.0, miou=1.0, f1=1.0)),
        # landslides missed entirely: nothing predicted, precision is 0 (not undefined), recall 0
        ((0, 0, 10, 40), dict(landslide_iou=0.0, landslide_precision=0.0, landslide_recall=0.0, oa=0.8)),
        # false alarm on a landslide-free tile
        ((0, 5, 0, 45), dict(landslide_iou=0.0, landslide_recall=0.0, landslide_precision=0.0)),
        # all landslide, all found: background class absent from both -> 1.0
        ((20, 0, 0, 0), dict(landslide_iou=1.0, miou=1.0, precision=1.0, recall=1.0)),
    ],
)
def test_empty_classes_are_defined(counts, expected):
    scores = segmentation_scores(*counts)
    assert set(scores) == set(SCORE_KEYS)
    assert all(not math.isnan(value) and 0.0 <= value <= 1.0 for value in scores.values())
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value), key


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="Cannot score an empty evaluation: no pixels were counted"):
        segmentation_scores(0, 0, 0, 0)
    with pytest.raises(ValueError, match="Confusion counts must be non-negative, got tp=-1, fp=0, fn=0, tn=3"):
        segmentation_scores(-1, 0, 0, 3)


def test_streaming_counter_equals_one_pass():
    generator = torch.Generator().manual_seed(0)
    predictions = torch.rand(6, 1, 16, 16, generator=generator) > 0.5
    references = torch.rand(6, 1, 16, 16, generator=generator) > 0.6
    counter = ConfusionCounter()
    for start in range(0, 6, 2):  # batches
        counter.update(predictions[start : start + 2], references[start : start + 2])
    whole = confusion_counts(predictions, references)
    assert [counter.tp, counter.fp, counter.fn, counter.tn] == whole.tolist()
    assert sum(whole.tolist()) == 6 * 16 * 16
    gathered = ConfusionCounter()
    gathered.add(torch.stack([confusion_counts(predictions[:3], references[:3]),
                              confusion_counts(predictions[3:], references[3:])]))  # as from 2 processes
    assert gathered.scores() == counter.scores()


def test_evaluate_module_loads_offline(tmp_path):
    script = (
        "import json, evaluate; from translandseg_hf.metrics import metric_path\n"
        "m = evaluate.load(metric_path())\n"
        "s = m.compute(predictions=[[[0, 1], [1, 1]], [[0, 0], [0, 0]]],\n"
        "              references=[[[0, 1], [0, 1]], [[0, 0], [0, 0]]])\n"
        "print(m.name); print(json.dumps(s))\n"
    )
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    name, scores = result.stdout.splitlines()[-2:]
    assert name == "landslide_segmentation_metric"
    # tp=2 fp=1 fn=0 tn=5; background: precision 5/5, recall 5/6, F1 10/11, IoU 5/6
    assert json.loads(scores) == pytest.approx({
        "precision": (2 / 3 + 1) / 2, "recall": (1 + 5 / 6) / 2, "f1": (4 / 5 + 10 / 11) / 2, "oa": 7 / 8,
        "miou": (2 / 3 + 5 / 6) / 2, "landslide_iou": 2 / 3, "landslide_precision": 2 / 3, "landslide_recall": 1.0,
        "landslide_f1": 4 / 5,
    })
    # evaluate loads a folder by the script named after it; pyproject ships the folder's *.py files.
    folder = Path(metric_path())
    assert sorted(p.name for p in folder.glob("*.py")) == [f"{folder.name}.py"] == ["landslide_segmentation_metric.py"]


@pytest.fixture(scope="module")
def landslide_metric():
    """The evaluate module's metric, kept in memory (what `evaluate.load(metric_path())` builds, without its cache)."""
    from translandseg_hf.landslide_segmentation_metric.landslide_segmentation_metric import (
        LandslideSegmentationMetric,
    )

    return LandslideSegmentationMetric(keep_in_memory=True)


MASK = [[0, 1], [1, 1]]
SCALED = [[0, 255], [255, 255]]  # a mask as a PNG holds it: 0/255
REFUSED_MASKS = [
    # (predictions, references, the refusal): the module once scored 255 as 1 without a word
    ([MASK], [SCALED], r"references hold values other than 0 and 1 \(largest 255\).*divide 0/255 masks by 255"),
    ([SCALED], [MASK], r"predictions hold values other than 0 and 1 \(largest 255\)"),
    ([MASK, [[2, 0]]], [MASK, [[1, 0]]], r"predictions hold values other than 0 and 1 \(largest 2\)"),
    ([MASK], [[[0, 1, 1], [1, 1, 0]]], r"image 0: predictions of shape \(2, 2\) and references of shape \(2, 3\)"),
    # probabilities as lists were truncated to 0 by a uint8 column, and scored landslide IoU 0 without a word
    ([[[0.7, 0.2], [0.9, 0.6]]], [[[1, 0], [1, 1]]], r"predictions hold values other than 0 and 1 \(e\.g\. 0\.7\).*"
                                                     r"threshold probabilities first"),
    ([MASK], [[[-1, 0], [1, 1]]], r"references hold values other than 0 and 1 \(e\.g\. -1\)"),  # uint8 wrapped it
]


@pytest.mark.parametrize("predictions, references, match", REFUSED_MASKS)
def test_evaluate_module_refuses_masks_other_than_0_1(landslide_metric, predictions, references, match):
    with pytest.raises(ValueError, match=match):
        landslide_metric.compute(predictions=predictions, references=references)


def test_evaluate_module_agrees_with_the_counter_over_batches_of_mixed_sizes(landslide_metric):
    """Scores from several `add_batch` calls (several Arrow chunks) and images of different shapes are the counter's."""
    generator = torch.Generator().manual_seed(3)
    shapes = [(7, 5), (16, 16), (1, 9), (32, 3)]
    pairs = [((torch.rand(s, generator=generator) > 0.6).to(torch.uint8),
              (torch.rand(s, generator=generator) > 0.7).to(torch.uint8)) for s in shapes]
    counter = ConfusionCounter()
    for prediction, reference in pairs:
        counter.update(prediction, reference)
        landslide_metric.add_batch(predictions=[prediction.numpy()], references=[reference.numpy()])
    assert landslide_metric.compute() == pytest.approx(counter.scores())


AS_GIVEN = {"int lists": list, "float32 arrays": lambda rows: np.array(rows, dtype=np.float32),
            "bool arrays": lambda rows: np.array(rows) > 0}


@pytest.mark.parametrize("as_given", AS_GIVEN.values(), ids=AS_GIVEN.keys())
def test_evaluate_module_scores_0_1_masks_of_any_type(landslide_metric, as_given):
    """0/1 given as ints, floats or bools: the thresholded example the float refusal names scores landslide IoU 1."""
    scores = landslide_metric.compute(predictions=[as_given([[1, 0], [1, 1]]), as_given([[0, 1], [1, 1]])],
                                      references=[as_given([[1, 0], [1, 1]]), as_given([[0, 1], [0, 1]])])
    assert scores["landslide_iou"] == pytest.approx(5 / 6)  # tp 5, fp 1, fn 0
