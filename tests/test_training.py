"""recipes/train.py end to end on a tiny random SAM and synthetic scenes: outputs, resume, processes, faults."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from translandseg_hf import TransLandSegModel
from translandseg_hf.data import load_synthetic
from translandseg_hf.training import find_latest_checkpoint, load_config
from translandseg_hf.training.checkpoints import COMPLETE_MARKER

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = ROOT / "recipes" / "train.py"
# demo.yaml at test size: 32 px inputs, 2 blocks, 24 synthetic scenes (4 training steps an epoch)
TINY = [
    "--config", str(ROOT / "recipes" / "configs" / "demo.yaml"),
    "--random_sam", "{image_size: 32, patch_size: 4, hidden_size: 32, num_hidden_layers: 2}",
    "--dataset_options", "{num_samples: 24, image_size: 32, seed: 0}",
    "--image_size", "32", "--epochs", "2", "--batch_size", "4",
]


def load_train_module():
    spec = importlib.util.spec_from_file_location("translandseg_train_recipe", TRAIN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train(output_dir, *extra):
    return load_train_module().main([*TINY, "--output_dir", str(output_dir), *extra])


def comparable(metrics):
    return [(epoch["epoch"], epoch["train_loss"], epoch["validation"]) for epoch in metrics["epochs"]], metrics["test"]


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    metrics = train(output_dir, "--epochs", "3")
    return output_dir, metrics


def test_demo_run_writes_a_loadable_model_and_metrics(uninterrupted_run):
    output_dir, metrics = uninterrupted_run
    written = json.loads((output_dir / "metrics.json").read_text())
    assert written["num_processes"] == 1 and len(written["epochs"]) == 3
    for epoch in written["epochs"]:
        assert set(epoch) >= {"epoch", "train_loss", "validation"}
        assert all(0.0 <= value <= 1.0 for value in epoch["validation"].values())
    assert written["test"] is not None and 0.0 <= written["test"]["landslide_iou"] <= 1.0
    losses = [epoch["train_loss"] for epoch in written["epochs"]]
    assert losses[-1] < losses[0], losses  # the training loss falls
    model = TransLandSegModel.from_pretrained(output_dir / "model")  # no other argument: the base is beside it
    assert model.image_size == 32
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).logits.shape == (1, 1, 32, 32)


@pytest.mark.parametrize("stop_after_checkpoints, extra", [(1, []), (1, ["--checkpointing_steps", "3"])],
                         ids=["after-epoch-1", "mid-epoch"])
def test_interrupted_run_resumes_to_the_same_end(tmp_path, uninterrupted_run, stop_after_checkpoints, extra):
    _, expected = uninterrupted_run
    module = load_train_module()
    real_mark_complete = module.mark_complete
    saved = []

    class Interrupted(Exception):
        pass

    def mark_then_stop(*args, **kwargs):
        real_mark_complete(*args, **kwargs)
        saved.append(args[0])
        if len(saved) == stop_after_checkpoints:
            raise Interrupted

    module.mark_complete = mark_then_stop
    with pytest.raises(Interrupted):
        module.main([*TINY, "--epochs", "3", "--output_dir", str(tmp_path), *extra])
    module.mark_complete = real_mark_complete
    if extra:  # 4 steps an epoch: the first checkpoint is 3 steps into the first epoch
        progress = json.loads((saved[-1] / COMPLETE_MARKER).read_text())["progress"]
        assert progress["step_in_epoch"] > 0
    resumed = module.main([*TINY, "--epochs", "3", "--output_dir", str(tmp_path), "--resume_from_checkpoint", "latest",
                           *extra])
    assert comparable(resumed) == comparable(expected)


def test_two_processes_train_with_ddp(tmp_path):
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(TRAIN_SCRIPT), *TINY, "--epochs", "1", "--output_dir", str(tmp_path)]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_processes"] == 2
    TransLandSegModel.from_pretrained(tmp_path / "model")


def test_nan_loss_stops_naming_step_and_samples_and_keeps_checkpoint(tmp_path, monkeypatch):
    import translandseg_hf.losses as losses

    real_loss, calls = losses.segmentation_loss, []

    def loss_that_breaks(*args, **kwargs):
        calls.append(1)
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(losses, "segmentation_loss", loss_that_breaks)
    module = load_train_module()
    with pytest.raises(module.NonFiniteLossError, match=r"optimiser step 3.*synthetic-\d{4}"):
        module.main([*TINY, "--output_dir", str(tmp_path), "--checkpointing_steps", "1"])
    latest = find_latest_checkpoint(tmp_path)
    assert latest is not None and (latest / COMPLETE_MARKER).is_file()
    assert json.loads((latest / COMPLETE_MARKER).read_text())["progress"]["global_step"] == 2


def test_half_written_checkpoint_is_never_latest(tmp_path):
    complete = tmp_path / "checkpoints" / "checkpoint_0"
    complete.mkdir(parents=True)
    (complete / COMPLETE_MARKER).write_text("{}")
    (tmp_path / "checkpoints" / "checkpoint_1").mkdir()  # interrupted while saving: no marker
    assert find_latest_checkpoint(tmp_path) == complete


def test_resume_with_another_config_names_the_differing_keys(tmp_path):
    train(tmp_path, "--epochs", "1")
    with pytest.raises(ValueError, match=r"differing keys: .*learning_rate.*preset|differing keys: .*preset"):
        train(tmp_path, "--epochs", "1", "--resume_from_checkpoint", "latest", "--preset", "translandseg-4",
              "--learning_rate", "0.1")


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (["--dataset", "bijie", "--data_dir", "/nonexistent/bijie"], FileNotFoundError, "/nonexistent/bijie"),
        (["--base_model", "/nonexistent/sam_vit_l.pth"], FileNotFoundError, "sam_vit_l.pth"),
        (["--learnig_rate", "0.1"], ValueError, r"learnig_rate.*valid keys.*learning_rate"),
        (["--image_size", "48"], ValueError, "image_size is 48"),
    ],
)
def test_bad_input_fails_before_training(tmp_path, overrides, error, message):
    with pytest.raises(error, match=message):
        train(tmp_path, *overrides)
    assert not (tmp_path / "checkpoints").exists()


def test_cli_overrides_parse_yaml_values():
    config = load_config(str(ROOT / "recipes" / "configs" / "demo.yaml"), ["--epochs", "3", "--atl", "{residual: false}",
                                                                          "--pos_weight=2.5", "--augment", "false"])
    assert (config.epochs, config.atl, config.pos_weight, config.augment) == (3, {"residual": False}, 2.5, False)


def test_evaluate_recipe_reproduces_the_test_scores_and_draws_the_grid(tmp_path, uninterrupted_run):
    output_dir, metrics = uninterrupted_run
    spec = importlib.util.spec_from_file_location("translandseg_evaluate_recipe", ROOT / "recipes" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--model", str(output_dir / "model"), "--dataset", "synthetic",
                          "--dataset_options", "{num_samples: 24, image_size: 32, seed: 0}", "--split", "test",
                          "--output_json", str(tmp_path / "eval.json"), "--save_predictions", str(tmp_path / "pred")])
    assert result["scores"] == pytest.approx(metrics["test"])
    test_size = len(load_synthetic(num_samples=24, image_size=32, seed=0)["test"])
    assert json.loads((tmp_path / "eval.json").read_text())["num_samples"] == test_size > 0
    assert (tmp_path / "pred" / "grid.png").is_file()
    assert len(list((tmp_path / "pred").glob("synthetic-*.png"))) == test_size


@pytest.mark.parametrize("path", sorted((ROOT / "recipes" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = load_config(str(path), ["--data_dir", str(ROOT)])
    if path.name.startswith("ablation-"):
        assert config.preset == path.stem.removeprefix("ablation-")
        assert (config.dataset, config.base_model, config.epochs) == ("bijie", "facebook/sam-vit-large", 50)
    if path.stem in ("bijie", "landslide4sense"):
        assert (config.learning_rate, config.min_learning_rate, config.batch_size, config.image_size) == (
            2e-4, 1e-7, 2, 1024)


def test_command_line_reports_bad_input_in_one_line_and_exits_1(tmp_path):
    result = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), "--config", str(ROOT / "recipes" / "configs" / "bijie.yaml"),
         "--data_dir", str(tmp_path / "no-such-bijie"), "--output_dir", str(tmp_path / "run")],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: data_dir")
    assert "Traceback" not in result.stderr and "no-such-bijie" in result.stderr
