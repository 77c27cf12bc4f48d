"""transformers' `Trainer` on a package loader (issue 38, section 1): `SegmentationTrainer` trains a tiny TransLandSeg
with default-ish `TrainingArguments`, writes adapter-only checkpoints that `TransLandSegModel.from_pretrained` loads,
and resumes to the weights of an uninterrupted run. (Plain `Trainer` fails at its first save with "Some tensors
share memory": SAM's position embedding has two names.)"""

from __future__ import annotations

import itertools

import pytest
import torch
from transformers import SamModel, TrainerCallback, TrainingArguments, default_data_collator

from helpers.datasets import write_bijie
from helpers.models import tiny_atl
from translandseg_hf import TransLandSegModel
from translandseg_hf.data import collate_fn, load_bijie, prepare_dataset
from translandseg_hf.data.transforms import transform_of
from translandseg_hf.sam_configs import tiny_sam_config
from translandseg_hf.training.hf_trainer import SegmentationTrainer

ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors"}
STEPS = 4  # 8 training samples in batches of 2: one epoch


@pytest.fixture(scope="module")
def train_split(tmp_path_factory):
    """Bijie's layout, 8 samples, all in train, prepared as the package's loop prepares them (augmented, seeded)."""
    tmp = tmp_path_factory.mktemp("bijie")
    root = write_bijie(tmp / "bijie", stems=[f"df{n:03d}" for n in range(8)])
    return prepare_dataset(load_bijie(root, split="train", cache_dir=tmp / "cache"), 64, seed=0)["train"]


def tiny_model() -> TransLandSegModel:
    torch.manual_seed(0)
    return TransLandSegModel.from_sam(SamModel(tiny_sam_config()), tiny_atl("translandseg"))


def trainer_for(output_dir, dataset, callbacks=(), data_collator=None, eval_dataset=None, compute_metrics=None,
                **arguments) -> SegmentationTrainer:
    """Default TrainingArguments but for the run's length, its checkpoints, the batch and the CPU."""
    arguments = {"max_steps": STEPS, "save_steps": 2, "per_device_train_batch_size": 2, **arguments}
    args = TrainingArguments(output_dir=str(output_dir), report_to="none", use_cpu=True, **arguments)
    return SegmentationTrainer(model=tiny_model(), args=args, train_dataset=dataset, eval_dataset=eval_dataset,
                               data_collator=data_collator, compute_metrics=compute_metrics, callbacks=list(callbacks))


def adapter_weights(model: TransLandSegModel) -> dict[str, torch.Tensor]:
    """A copy of the trained tensors (on a CPU, `trainable_state_dict` shares the live parameters' memory)."""
    return {name: tensor.clone() for name, tensor in model.trainable_state_dict().items()}


def assert_same_weights(actual: dict, expected: dict) -> None:
    assert expected and set(expected) <= set(actual)
    different = [name for name in expected if not torch.equal(actual[name], expected[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


class StopAt(TrainerCallback):
    """Interrupt a run after `step` optimiser steps (after that step's checkpoint is written)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = state.global_step >= self.step


@pytest.fixture(scope="module")
def finished(train_split, tmp_path_factory):
    """An uninterrupted run: its trainer, output folder and the adapter's weights before training."""
    output_dir = tmp_path_factory.mktemp("trainer-run")
    trainer = trainer_for(output_dir, train_split)
    initial = adapter_weights(trainer.model)
    trainer.train()
    return trainer, output_dir, initial


def test_training_changes_the_adapter(finished):
    trainer, _, initial = finished
    assert trainer.state.global_step == STEPS
    trained = adapter_weights(trainer.model)
    assert any(not torch.equal(trained[name], initial[name]) for name in initial)


@pytest.mark.parametrize("checkpoint", ["checkpoint-2", f"checkpoint-{STEPS}"])
def test_checkpoints_are_adapter_folders(finished, checkpoint):
    _, output_dir, _ = finished
    folder = output_dir / checkpoint
    names = {path.name for path in folder.iterdir()}
    assert ADAPTER_FILES <= names
    assert "model.safetensors" not in names  # no copy of the frozen base
    assert {"optimizer.pt", "scheduler.pt", "trainer_state.json"} <= names  # what resuming needs besides
    TransLandSegModel.from_pretrained(folder)


def test_save_model_writes_a_loadable_adapter(finished, tmp_path):
    trainer, _, _ = finished
    trainer.save_model(str(tmp_path / "final"))
    assert ADAPTER_FILES <= {path.name for path in (tmp_path / "final").iterdir()}
    assert "model.safetensors" not in {path.name for path in (tmp_path / "final").iterdir()}
    loaded = TransLandSegModel.from_pretrained(tmp_path / "final")
    assert_same_weights(loaded.state_dict(), adapter_weights(trainer.model))  # loaded frozen, for inference


def test_resume_continues_to_the_uninterrupted_weights(finished, train_split, tmp_path):
    first = trainer_for(tmp_path, train_split, callbacks=[StopAt(2)])
    first.train()
    assert first.state.global_step == 2 and not (tmp_path / f"checkpoint-{STEPS}").exists()
    resumed = trainer_for(tmp_path, train_split)
    resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == STEPS
    assert_same_weights(adapter_weights(resumed.model), adapter_weights(finished[0].model))


def test_load_best_model_at_end_reads_the_best_checkpoint(train_split, tmp_path):
    evaluations = itertools.count()  # a score that falls with each evaluation: the first checkpoint is the best
    trainer = trainer_for(tmp_path, train_split, eval_dataset=train_split, eval_strategy="steps", eval_steps=2,
                          load_best_model_at_end=True, metric_for_best_model="order", greater_is_better=True,
                          compute_metrics=lambda _: {"order": -next(evaluations)})
    trainer.train()
    assert trainer.state.best_model_checkpoint == str(tmp_path / "checkpoint-2")
    last = TransLandSegModel.from_pretrained(tmp_path / f"checkpoint-{STEPS}").state_dict()
    assert any(not torch.equal(last[name], tensor) for name, tensor in adapter_weights(trainer.model).items())
    assert_same_weights(TransLandSegModel.from_pretrained(tmp_path / "checkpoint-2").state_dict(),
                        adapter_weights(trainer.model))


def test_each_epoch_draws_new_augmentations(train_split, tmp_path):
    """The seeded transform draws by seed, epoch and sample: Trainer must tell it the epoch, as the package's loop does."""
    trainer = trainer_for(tmp_path, train_split, max_steps=STEPS + 1, save_strategy="no")  # into a second epoch
    trainer.train()
    assert transform_of(train_split).epoch == 1


def test_resume_from_a_folder_without_the_adapter_is_refused(train_split, tmp_path):
    (tmp_path / "checkpoint-2").mkdir()
    trainer = trainer_for(tmp_path, train_split)
    with pytest.raises(ValueError, match=r"checkpoint-2 is not a checkpoint of this TransLandSegModel: "
                                         r"adapter_config\.json, adapter_model\.safetensors missing"):
        trainer.train(resume_from_checkpoint=True)


# Column handling and collators: (TrainingArguments overrides, data_collator); each trains one step.
ROUTES = {
    "defaults": ({}, None),
    "keep columns": ({"remove_unused_columns": False}, None),
    "package collator, all columns": ({"remove_unused_columns": False}, collate_fn),
    "transformers' default collator": ({}, default_data_collator),
}


@pytest.mark.parametrize("route", ROUTES, ids=list(ROUTES))
def test_trains_through_each_collator_route(route, train_split, tmp_path):
    arguments, collator = ROUTES[route]
    trainer = trainer_for(tmp_path, train_split, data_collator=collator, **{**arguments, "max_steps": 1})
    trainer.train()
    assert trainer.state.global_step == 1 and trainer.state.log_history[-1]["train_loss"] > 0


def test_forward_takes_the_package_collators_batch(train_split):
    batch = collate_fn([train_split[0], train_split[1]])
    assert batch["id"] == ["df000", "df001"]
    assert tiny_model()(**batch).loss > 0


def test_a_model_that_is_not_a_segmentation_model_is_refused(tmp_path):
    with pytest.raises(TypeError, match="SegmentationTrainer trains a SegmentationModel .*got SamModel"):
        SegmentationTrainer(model=SamModel(tiny_sam_config()), args=TrainingArguments(str(tmp_path), use_cpu=True))
