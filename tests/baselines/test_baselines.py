"""CNN baselines: CCNet's criss-cross attention pattern, and each baseline training, saving and reloading through the
same recipe as TransLandSeg."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import ROOT, load_recipe

from translandseg_hf.baselines.ccnet import CrissCrossAttention
from translandseg_hf.cards import contract_lines
from translandseg_hf.training import loop
NEEDS_SMP = "CNN baselines need segmentation-models-pytorch and torchvision: pip install segmentation-models-pytorch"


def changed_positions(passes: int) -> torch.Tensor:
    """Where the output of `passes` criss-cross attention passes changes when one input position (2, 3) changes."""
    torch.manual_seed(0)
    attention = CrissCrossAttention(16).eval()
    attention.gamma.data.fill_(1.0)  # a fresh module is the identity (gamma = 0): give it context to add
    x = torch.randn(1, 16, 6, 7)
    perturbed = x.clone()
    perturbed[:, :, 2, 3] += 5.0
    with torch.no_grad():
        a, b = x, perturbed
        for _ in range(passes):
            a, b = attention(a), attention(b)
    return (a - b).abs().sum(1)[0] > 1e-5  # (H, W)


def test_one_criss_cross_pass_reaches_only_the_row_and_column():
    rows, columns = torch.meshgrid(torch.arange(6), torch.arange(7), indexing="ij")
    expected = (rows == 2) | (columns == 3)
    assert torch.equal(changed_positions(1), expected)


def test_two_recurrences_reach_every_position():
    assert changed_positions(2).all()


@pytest.fixture(scope="module")
def smp():
    return pytest.importorskip("segmentation_models_pytorch", reason=NEEDS_SMP)


@pytest.mark.parametrize("model_name", ["unet", "deeplabv3plus", "pspnet", "ccnet"])
def test_baseline_trains_then_reloads_with_the_same_logits(tmp_path, smp, model_name):
    from translandseg_hf.auto import load_segmentation_model
    from translandseg_hf.baselines import BaselineConfig, BaselineSegmentationModel

    torch.manual_seed(0)
    model = BaselineSegmentationModel(BaselineConfig(model_name, "resnet18", None, image_size=64))
    pixel_values = torch.randn(4, 3, 64, 64)
    labels = (torch.rand(4, 1, 64, 64) > 0.7).float()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    losses = []
    for _ in range(3):
        output = model(pixel_values, labels=labels)
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(output.loss.item())
    assert output.logits.shape == (4, 1, 64, 64)
    assert losses[-1] < losses[0], losses
    model.eval()
    model.save_pretrained(tmp_path / "model")
    reloaded = load_segmentation_model(tmp_path / "model")
    assert isinstance(reloaded, BaselineSegmentationModel) and reloaded.config == model.config
    with torch.no_grad():
        assert torch.equal(reloaded(pixel_values).logits, model(pixel_values).logits)
    counts = reloaded.parameter_counts()
    assert counts["total"] == counts["trainable"] == sum(p.numel() for p in model.parameters())
    assert reloaded.predict([torch.zeros(40, 50, 3, dtype=torch.uint8).numpy()])[0].shape == (40, 50)
    card = (tmp_path / "model" / "README.md").read_text()
    assert "library_name: translandseg-hf" in card and "base_model:" not in card and "segmentation" in card


def test_bad_baseline_inputs_name_the_problem(smp):
    from translandseg_hf.baselines import BaselineConfig, BaselineSegmentationModel

    with pytest.raises(ValueError, match="image_size must be a multiple of 32"):
        BaselineConfig("unet", "resnet18", None, image_size=48)
    with pytest.raises(ValueError, match="Unknown baseline model 'segformer'"):
        BaselineConfig("segformer")
    model = BaselineSegmentationModel(BaselineConfig("unet", "resnet18", None, image_size=64))
    with pytest.raises(ValueError, match=r"pixel_values must have shape \(batch, 3, 64, 64\)"):
        model(torch.zeros(1, 3, 32, 32))


def test_the_model_card_is_the_cards_module_s_with_the_contract_and_scores(smp):
    """`generate_model_card` (what `ModelHubMixin` calls) delegates to `cards.model_card`, which fills the template
    with the contract's lines (`cards.contract_lines`) and the scores table."""
    from translandseg_hf.baselines import BaselineConfig, BaselineSegmentationModel
    from translandseg_hf.cards import model_card, scores_table
    from translandseg_hf.image_processing import TransLandSegImageProcessor

    model = BaselineSegmentationModel(BaselineConfig("unet", "resnet18", None, image_size=64))
    model.set_image_processor(TransLandSegImageProcessor(bands=[4, 3, 2], scale="divisor", divisor=10, input_size=64,
                                                         tile_size=128, ground_resolution=10))
    scores = {"test": {"precision": 0.9, "recall": 0.8, "f1": 0.85, "oa": 0.99, "miou": 0.7, "landslide_iou": 0.6}}
    card_kwargs = dict(repo_id="lab/x", datasets=["l4s"], metrics=scores, split_sizes={"test": 5}, best_epoch=3)
    text = str(model.generate_model_card(**card_kwargs))
    assert text == str(model_card(model, **card_kwargs))
    assert "".join(f"- {line}\n" for line in contract_lines(model.image_processor)) in text
    assert scores_table(scores, {"test": 5}, 3) in text and "| test (n=5) | 90.00 | 80.00 |" in text
    assert "lab/x" in text and "- l4s" in text


def test_a_training_batch_of_one_image_works(smp):
    """An odd training split ends in a batch of one; DeepLabv3+'s image pooling must not stop the run there."""
    from translandseg_hf.baselines import BaselineConfig, BaselineSegmentationModel

    model = BaselineSegmentationModel(BaselineConfig("deeplabv3plus", "resnet18", None, image_size=64)).train()
    loss = model(torch.randn(1, 3, 64, 64), labels=torch.ones(1, 1, 64, 64)).loss
    loss.backward()
    assert torch.isfinite(loss)


DATA = ["--synthetic_samples", "40", "--synthetic_image_size", "64", "--synthetic_seed", "0"]  # 28 training scenes
BASELINE_RUN = ["--config", str(ROOT / "recipes" / "configs" / "demo.yaml"), "--model", "deeplabv3plus",
                "--encoder_name", "resnet18", "--encoder_weights", "null", *DATA, "--batch_size", "4"]


def test_train_recipe_runs_a_baseline_and_evaluate_reproduces_it(tmp_path, smp):
    metrics = load_recipe("train").main([*BASELINE_RUN, "--epochs", "1", "--output_dir", str(tmp_path / "run")])
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (written["model"], written["preset"], written["dataset"]) == ("deeplabv3plus", None, "synthetic")
    assert written["parameters"]["total"] == written["parameters"]["trainable"] > 1_000_000
    assert not (tmp_path / "run" / "base_model").exists()  # no SAM made for a CNN
    result = load_recipe("evaluate").main([
        "--model", str(tmp_path / "run" / "model"), "--dataset", "synthetic", *DATA,
        "--split", "test", "--output_json", str(tmp_path / "eval.json")])
    assert result["scores"] == pytest.approx(metrics["test"])


def test_interrupted_baseline_run_resumes_to_the_same_end(tmp_path, monkeypatch, smp):
    """Checkpoints keep a baseline's BatchNorm statistics as well as its weights, so resuming changes nothing."""
    module = load_recipe("train")
    expected = module.main([*BASELINE_RUN, "--epochs", "2", "--output_dir", str(tmp_path / "whole")])
    real_mark_complete = loop.mark_complete

    class Interrupted(Exception):
        pass

    def mark_then_stop(*args, **kwargs):
        real_mark_complete(*args, **kwargs)
        raise Interrupted

    monkeypatch.setattr(loop, "mark_complete", mark_then_stop)
    with pytest.raises(Interrupted):
        module.main([*BASELINE_RUN, "--epochs", "2", "--output_dir", str(tmp_path / "resumed")])
    monkeypatch.setattr(loop, "mark_complete", real_mark_complete)
    resumed = module.main([*BASELINE_RUN, "--epochs", "2", "--output_dir", str(tmp_path / "resumed"),
                           "--resume_from_checkpoint", "latest"])
    assert resumed["epochs"] == expected["epochs"] and resumed["test"] == expected["test"]


def test_unknown_encoder_is_a_value_error_naming_it(tmp_path, smp):
    """segmentation-models-pytorch answers an unknown encoder with a KeyError; the recipe turns it into one line."""
    message = "segmentation-models-pytorch has no 'deeplabv3plus' with encoder_name 'resnet-5'"
    with pytest.raises(ValueError, match=message):
        load_recipe("train").main([*BASELINE_RUN, "--encoder_name", "resnet-5", "--output_dir", str(tmp_path)])


def test_no_baseline_module_depends_on_the_sam_model():
    """The baselines implement the shared interface beside TransLandSeg, not by borrowing its methods."""
    import ast

    for path in (ROOT / "translandseg_hf" / "baselines").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any("modeling_translandseg" in name or "sam_loading" in name for name in imported), path
