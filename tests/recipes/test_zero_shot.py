"""recipes/zero_shot.py: prompts from the ground truth, automatic masks, and the whole script on a tiny random SAM."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import SamModel

from translandseg_hf.sam_configs import tiny_sam_config

from conftest import load_recipe

zero_shot = load_recipe("zero_shot")


@pytest.fixture(scope="module")
def scipy():
    return pytest.importorskip("scipy", reason="SAM zero-shot point prompts need scipy: pip install scipy")


def test_one_point_per_component_at_its_centre(scipy):
    mask = np.zeros((40, 40), dtype=np.uint8)
    mask[5:16, 4:25] = 1  # a rectangle: its farthest-from-border pixel is on the middle row, column 7..21
    mask[30:35, 30:35] = 1  # a square: its centre (32, 32)
    points = zero_shot.component_points(mask)
    assert len(points) == 2
    assert {tuple(p) for p in points} >= {(32, 32)}
    (x, y), = [p for p in points if tuple(p) != (32, 32)]
    assert y == 10 and 9 <= x <= 19 and mask[y, x] == 1
    assert len(zero_shot.component_points(np.zeros((8, 8), dtype=np.uint8))) == 0


@pytest.fixture(scope="module")
def sam_and_embedding():
    torch.manual_seed(0)
    sam = SamModel(tiny_sam_config()).eval()
    with torch.no_grad():
        return sam, sam.get_image_embeddings(torch.randn(1, 3, 64, 64))


def test_point_prompts_predict_nothing_without_landslides(scipy, sam_and_embedding):
    sam, embedding = sam_and_embedding
    with torch.no_grad():
        empty = zero_shot.point_prompt_prediction(sam, embedding, np.zeros((64, 64), dtype=np.uint8), 64, 8)
        truth = np.zeros((64, 64), dtype=np.uint8)
        truth[20:40, 20:40] = 1
        prompted = zero_shot.point_prompt_prediction(sam, embedding, truth, 64, 8)
    assert not empty.any() and prompted.any()


def test_oracle_keeps_only_automatic_masks_mostly_inside_landslides(sam_and_embedding):
    sam, embedding = sam_and_embedding
    truth = torch.zeros(64, 64, dtype=torch.bool)
    truth[:, :32] = True
    keep_all = SimpleNamespace(points_per_side=4, points_per_batch=8, pred_iou_thresh=-1e9,
                               stability_score_thresh=-1.0, oracle_overlap=0.5)
    with torch.no_grad():
        union, oracle = zero_shot.automatic_predictions(sam, embedding, truth, 64, keep_all)
        none = zero_shot.automatic_predictions(sam, embedding, truth, 64, SimpleNamespace(**{
            **vars(keep_all), "pred_iou_thresh": 1e9}))
    assert union.any() and not (oracle & ~union).any()  # the oracle picks among the kept masks
    assert oracle.sum() < union.sum()  # and leaves out those mostly outside the landslide
    assert not none[0].any() and not none[1].any()


def test_zero_shot_script_on_a_tiny_random_sam(scipy, tmp_path):
    result = zero_shot.main([
        "--model", "random", "--image_size", "64", "--random_sam_hidden_size", "32",
        "--random_sam_num_hidden_layers", "2", "--dataset", "synthetic", "--synthetic_samples", "20",
        "--synthetic_image_size", "64", "--synthetic_seed", "0",
        "--max_samples", "3", "--points_per_side", "4", "--points_per_batch", "16", "--pred_iou_thresh=-1e9",
        "--stability_score_thresh=-1", "--output_dir", str(tmp_path), "--grid_samples", "2"])
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert set(written["variants"]) == {"points", "automatic", "automatic_oracle"}
    assert written["num_samples"] == 3 and written["dataset"] == "synthetic"
    assert written["parameters"]["trainable"] == 0 and written["parameters"]["total"] > 0
    for scores in written["variants"].values():
        assert all(0.0 <= value <= 1.0 for value in scores.values())
    automatic = written["variants"]["automatic"]
    assert automatic["landslide_recall"] >= written["variants"]["automatic_oracle"]["landslide_recall"]
    assert result["variants"] == written["variants"]
    for variant in written["variants"]:
        assert Image.open(tmp_path / f"grid-{variant}.png").size[1] > 2 * 64  # two rows of the Figure 10 grid
