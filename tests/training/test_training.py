"""recipes/train.py end to end on a tiny random SAM and synthetic scenes: outputs, resume, processes, faults."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT, load_recipe
from helpers.training import TINY, TINY_DATA, comparable

from translandseg_hf import TransLandSegModel
from translandseg_hf.data import load_synthetic
from translandseg_hf.errors import NonFiniteLossError
from translandseg_hf.training import find_latest_checkpoint, loop, parse_config
from translandseg_hf.training.checkpoints import COMPLETE_MARKER

TRAIN_SCRIPT = ROOT / "recipes" / "train.py"
def train(output_dir, *extra):
    return load_recipe("train").main([*TINY, "--output_dir", str(output_dir), *extra])


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
    contract = json.loads((output_dir / "model" / "preprocessor_config.json").read_text())
    assert (contract["bands"], contract["scale"], contract["input_size"], contract["tile_size"]) == (
        [1, 2, 3], "none", 32, 32)  # synthetic scenes: 8-bit RGB, 32 px each
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).logits.shape == (1, 1, 32, 32)


def test_every_file_a_run_writes_gets_the_umask_mode(tmp_path):
    """Weights (safetensors writes 0600), metrics and checkpoints are shared like any file the user makes."""
    previous = os.umask(0o022)
    try:
        train(tmp_path / "run", "--epochs", "1")
    finally:
        os.umask(previous)
    files = [path for path in (tmp_path / "run").rglob("*") if path.is_file()]
    assert any(path.name == "adapter_model.safetensors" for path in files)
    assert any("checkpoints" in path.parts and path.suffix == ".safetensors" for path in files)
    modes = {str(path.relative_to(tmp_path)): oct(path.stat().st_mode & 0o777) for path in files}
    assert {name: mode for name, mode in modes.items() if mode != "0o644"} == {}


@pytest.mark.parametrize("stop_after_checkpoints, extra", [(1, []), (1, ["--checkpointing_steps", "3"])],
                         ids=["after-epoch-1", "mid-epoch"])
def test_interrupted_run_resumes_to_the_same_end(tmp_path, monkeypatch, uninterrupted_run, stop_after_checkpoints,
                                                 extra):
    _, expected = uninterrupted_run
    real_mark_complete = loop.mark_complete
    saved = []

    class Interrupted(Exception):
        pass

    def mark_then_stop(*args, **kwargs):
        real_mark_complete(*args, **kwargs)
        saved.append(args[0])
        if len(saved) == stop_after_checkpoints:
            raise Interrupted

    monkeypatch.setattr(loop, "mark_complete", mark_then_stop)
    with pytest.raises(Interrupted):
        train(tmp_path, "--epochs", "3", *extra)
    monkeypatch.setattr(loop, "mark_complete", real_mark_complete)
    if extra:  # 4 steps an epoch: the first checkpoint is 3 steps into the first epoch
        progress = json.loads((saved[-1] / COMPLETE_MARKER).read_text())["progress"]
        assert progress["step_in_epoch"] > 0
    resumed = train(tmp_path, "--epochs", "3", "--resume_from_checkpoint", "latest", *extra)
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
    with pytest.raises(NonFiniteLossError, match=r"optimiser step 3.*synthetic-\d{4}"):
        train(tmp_path, "--checkpointing_steps", "1")
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
    with pytest.raises(ValueError, match=r"made with another config; differing keys: learning_rate: 0\.002 -> 0\.1, "
                                         r"preset: 'translandseg' -> 'translandseg-4'\.$"):
        train(tmp_path, "--epochs", "1", "--resume_from_checkpoint", "latest", "--preset", "translandseg-4",
              "--learning_rate", "0.1")


def folder_contents(folder):
    """Every file under `folder` with its bytes: what a run left, to compare before and after another run."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def finished_run(tmp_path, uninterrupted_run):
    """A copy of the finished 3-epoch run, with a stray file in it, for a second run into the same output_dir."""
    output_dir = tmp_path / "run"
    shutil.copytree(uninterrupted_run[0], output_dir)
    (output_dir / "stray-from-the-first-run.txt").write_text("first run")
    return output_dir, folder_contents(output_dir)


def test_a_second_run_into_a_finished_run_is_refused_before_any_work(finished_run, monkeypatch):
    output_dir, before = finished_run
    monkeypatch.setattr(loop, "prepare_run", lambda *args: pytest.fail("the second run started"))
    with pytest.raises(ValueError, match=(
            rf"^{re.escape(str(output_dir))} already holds a run \(metrics\.json, model, checkpoints, base_model\): "
            r"pass --overwrite_output_dir true to replace it once the new run completes, or "
            r"--resume_from_checkpoint latest to continue it\.$")):
        train(output_dir)
    assert folder_contents(output_dir) == before


def test_resuming_a_finished_run_whose_checkpoints_are_gone_is_refused(finished_run, monkeypatch):
    output_dir, _ = finished_run
    shutil.rmtree(output_dir / "checkpoints")
    monkeypatch.setattr(loop, "prepare_run", lambda *args: pytest.fail("the run started again from scratch"))
    with pytest.raises(ValueError, match=(
            rf"^{re.escape(str(output_dir))} holds a run with no complete checkpoint to continue from: pass "
            r"--overwrite_output_dir true to train it again from the start and replace it\.$")):
        train(output_dir, "--resume_from_checkpoint", "latest")


def test_overwrite_replaces_the_finished_run_only_once_the_new_one_completes(finished_run, monkeypatch):
    output_dir, before = finished_run
    real_end_epoch, first_run_whole = loop.end_epoch, []

    def end_epoch_then_look_at_the_first_run(run, epoch, bar):
        real_end_epoch(run, epoch, bar)
        first_run_whole.append(folder_contents(output_dir) == before)

    monkeypatch.setattr(loop, "end_epoch", end_epoch_then_look_at_the_first_run)
    split_file = output_dir / "split.json"  # an input kept in output_dir, as bijie.yaml keeps runs/bijie/split.json
    split_file.write_text('{"train": []}')
    before = folder_contents(output_dir)
    metrics = train(output_dir, "--epochs", "1", "--overwrite_output_dir", "true", "--split_file", str(split_file))
    assert first_run_whole == [True]  # after the new run's only epoch, its checkpoint and model/ were written
    assert sorted(path.name for path in output_dir.iterdir()) == [
        "base_model", "checkpoints", "metrics.json", "model", "split.json"]  # the stray file is gone, the split kept
    assert split_file.read_text() == '{"train": []}'
    assert [path.name for path in (output_dir / "checkpoints").iterdir()] == ["checkpoint_0"]
    assert [path.name for path in output_dir.parent.iterdir()] == ["run"]  # no staging or old folder left beside it
    written = json.loads((output_dir / "metrics.json").read_text())
    assert [epoch["epoch"] for epoch in written["epochs"]] == [1] and written["best_epoch"] == 1
    assert written["test"] == pytest.approx(metrics["test"]) and metrics["test"] is not None
    weights = "model/adapter_model.safetensors"
    assert (output_dir / weights).read_bytes() != before[weights]
    TransLandSegModel.from_pretrained(output_dir / "model")


def test_a_failing_replacement_leaves_the_first_run_whole_and_resumes_where_it_stopped(finished_run, monkeypatch):
    output_dir, before = finished_run
    real_evaluate = loop.evaluate_split

    def test_split_unreadable(run, name):
        if name == "test":
            raise OSError("test split unreadable")
        return real_evaluate(run, name)

    monkeypatch.setattr(loop, "evaluate_split", test_split_unreadable)
    with pytest.raises(OSError, match="^test split unreadable$"):  # at the very end: training itself completed
        train(output_dir, "--epochs", "1", "--overwrite_output_dir", "true")
    assert folder_contents(output_dir) == before
    staged = output_dir.parent / ".run.overwrite"
    assert find_latest_checkpoint(staged) == staged / "checkpoints" / "checkpoint_0"

    monkeypatch.setattr(loop, "evaluate_split", real_evaluate)
    monkeypatch.setattr(loop, "train_epoch", lambda *args: pytest.fail("the finished epoch was trained again"))
    metrics = train(output_dir, "--epochs", "1", "--overwrite_output_dir", "true", "--resume_from_checkpoint", "latest")
    assert [epoch["epoch"] for epoch in metrics["epochs"]] == [1] and metrics["test"] is not None
    assert json.loads((output_dir / "metrics.json").read_text())["test"] == pytest.approx(metrics["test"])
    assert not (output_dir / "stray-from-the-first-run.txt").exists()
    assert [path.name for path in output_dir.parent.iterdir()] == ["run"]


def test_overwrite_refuses_to_delete_the_working_directory(finished_run, monkeypatch):
    output_dir, before = finished_run
    monkeypatch.chdir(output_dir / "model")
    with pytest.raises(ValueError, match=(
            rf"^--overwrite_output_dir would delete the working directory \({re.escape(str(Path.cwd()))}\), which is "
            rf"inside output_dir {re.escape(str(output_dir))}: choose another output_dir\.$")):
        train(output_dir, "--overwrite_output_dir", "true")
    assert folder_contents(output_dir) == before


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (["--dataset", "bijie", "--data_dir", "/nonexistent/bijie"], FileNotFoundError, "/nonexistent/bijie"),
        (["--base_model", "/nonexistent/sam_vit_l.pth"], FileNotFoundError, "sam_vit_l.pth"),
        (["--model", "unet", "--image_size", "48"], ValueError, "image_size must be a multiple of 32"),
    ],
)
def test_bad_input_fails_before_training(tmp_path, overrides, error, message):
    with pytest.raises(error, match=message):
        train(tmp_path, *overrides)
    assert not (tmp_path / "checkpoints").exists()


def test_an_image_size_sam_cannot_take_fails_before_training(tmp_path, tiny_sam):
    tiny_sam.save_pretrained(tmp_path / "sam-64")
    with pytest.raises(ValueError, match=r"image_size must be a multiple of 16 \(and of the patch size 4\) of at "
                                         r"least 64, got 32"):
        train(tmp_path / "run", "--base_model", str(tmp_path / "sam-64"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_training_resamples_a_pretrained_base_to_the_configured_size(tmp_path, tiny_sam):
    tiny_sam.save_pretrained(tmp_path / "sam-64")
    train(tmp_path / "run", "--base_model", str(tmp_path / "sam-64"), "--image_size", "128",
          "--synthetic_image_size", "64", "--epochs", "1")
    config = json.loads((tmp_path / "run" / "model" / "adapter_config.json").read_text())
    assert config["image_size"] == 128 and config["base_model_name_or_path"] == str((tmp_path / "sam-64").resolve())
    assert TransLandSegModel.from_pretrained(tmp_path / "run" / "model").image_size == 128


def test_command_line_overrides_the_yaml_file_with_typed_values():
    config = parse_config(["--config", str(ROOT / "recipes" / "configs" / "demo.yaml"), "--epochs", "3",
                           "--atl_residual", "false", "--pos_weight=2.5", "--augment", "false",
                           "--atl_middle_layers", "m", "c"])
    assert (config.optimization.epochs, config.optimization.pos_weight, config.data.augment) == (3, 2.5, False)
    assert config.atl.overrides() == {"residual": False, "middle_layers": ["m", "c"]}
    assert (config.model.image_size, config.data.synthetic_samples) == (64, 120)  # from the YAML file
    assert config.random_sam.tiny_sam_arguments(64)["hidden_size"] == 64


@pytest.mark.parametrize("argument", ["--learnig_rate", "--epoch"], ids=["misspelt", "abbreviated"])
def test_unknown_or_abbreviated_key_is_a_command_line_error(argument, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_config([argument, "0.1"])
    assert exited.value.code == 2
    assert f"unrecognized arguments: {argument} 0.1" in capsys.readouterr().err


def test_unknown_key_in_the_yaml_file_names_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("dataset: synthetic\nlearnig_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"Unknown config key\(s\) \['learnig_rate'\] in .*run.yaml.*learning_rate"):
        parse_config(["--config", str(path)])


def test_checkpoint_total_limit_is_at_least_one_or_null_for_all(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("dataset: synthetic\ncheckpoint_total_limit: null\n")
    assert parse_config(["--config", str(path)]).run.checkpoint_total_limit is None
    with pytest.raises(ValueError, match="checkpoint_total_limit must be at least 1, got 0"):
        parse_config(["--dataset", "synthetic", "--checkpoint_total_limit", "0"])


def test_yaml_values_outside_their_choices_are_refused(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("dataset: synthetic\nmodel: resnet\n")
    with pytest.raises(ValueError, match=r"model must be one of \['translandseg', 'unet'.*got 'resnet'"):
        parse_config(["--config", str(path)])


def test_help_lists_every_key_with_type_default_and_help():
    from translandseg_hf.training.config import SECTIONS, config_keys, make_parser

    text = make_parser(SECTIONS).format_help()  # what parse_sections' parser prints for --help
    for key in config_keys():
        assert f"--{key}" in text, key
    assert "--learning_rate FLOAT" in text and "AdamW learning rate" in text and "(default: 0.0002)" in text


def test_evaluate_recipe_reproduces_the_test_scores_and_draws_the_grid(tmp_path, uninterrupted_run, capsys):
    output_dir, metrics = uninterrupted_run
    result = load_recipe("evaluate").main([
        "--model", str(output_dir / "model"), "--dataset", "synthetic", *TINY_DATA, "--split", "test",
        "--output_json", str(tmp_path / "eval.json"), "--save_predictions", str(tmp_path / "pred")])
    assert result["scores"] == pytest.approx(metrics["test"])
    printed = capsys.readouterr().out  # both kinds of score, named: the paper's class means, L4S's landslide F1
    assert "| model | P | REC | F1 | OA | MIoU | landslide IoU | landslide F1 |" in printed
    test_scores = metrics["test"]
    assert f"{100 * test_scores['f1']:.2f} |" in printed and f"{100 * test_scores['landslide_f1']:.2f} |\n" in printed
    assert "landslide F1 is the score the Landslide4Sense 2022 competition ranked" in printed
    test_size = len(load_synthetic(num_samples=24, image_size=32, seed=0)["test"])
    assert json.loads((tmp_path / "eval.json").read_text())["num_samples"] == test_size > 0
    assert (tmp_path / "pred" / "grid.png").is_file()
    assert len(list((tmp_path / "pred").glob("synthetic-*.png"))) == test_size


@pytest.mark.parametrize("path", sorted((ROOT / "recipes" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = parse_config(["--config", str(path), "--data_dir", str(ROOT)])
    if path.name.startswith("ablation-"):
        assert config.model.preset == path.stem.removeprefix("ablation-")
        assert (config.data.dataset, config.model.base_model, config.optimization.epochs) == (
            "bijie", "facebook/sam-vit-large", 50)
    if path.stem in ("bijie", "landslide4sense"):
        optimization = config.optimization
        assert (optimization.learning_rate, optimization.min_learning_rate, optimization.batch_size,
                config.model.image_size) == (2e-4, 1e-7, 2, 1024)


def test_command_line_reports_bad_input_in_one_line_and_exits_1(tmp_path):
    result = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), "--config", str(ROOT / "recipes" / "configs" / "bijie.yaml"),
         "--data_dir", str(tmp_path / "no-such-bijie"), "--output_dir", str(tmp_path / "run")],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: data_dir")
    assert "Traceback" not in result.stderr and "no-such-bijie" in result.stderr


def test_model_card_and_metrics_carry_the_best_epoch_not_the_last(tmp_path, monkeypatch):
    """Validation landslide IoU falls after epoch 1: model/ holds epoch 1, and its card shows epoch 1's scores."""
    real_evaluate, validations = loop.evaluate_split, []

    def falling_validation(run, name):
        scores = real_evaluate(run, name)
        if name == "validation":
            scores = {**scores, "landslide_iou": 0.9 - 0.1 * len(validations)}
            validations.append(scores)
        return scores

    monkeypatch.setattr(loop, "evaluate_split", falling_validation)
    metrics = train(tmp_path, "--epochs", "3")
    assert metrics["best_epoch"] == 1 and metrics["best_validation"] == validations[0]
    assert [epoch["validation"]["landslide_iou"] for epoch in metrics["epochs"]] == pytest.approx([0.9, 0.8, 0.7])
    card = (tmp_path / "model" / "README.md").read_text()
    validation_row = next(line for line in card.splitlines() if line.startswith("| validation"))
    landslide_f1 = 100 * metrics["best_validation"]["landslide_f1"]
    assert validation_row.endswith(f"| 90.00 | {landslide_f1:.2f} |") and "(n=" in validation_row  # IoU, F1
    assert "epoch 1, the best by validation landslide IoU" in card
