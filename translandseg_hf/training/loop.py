"""The training loop of every model kind: epochs under Accelerate, evaluate-and-keep-best, resumable checkpoints,
the final test and save. The segmentation interface carries the differences between kinds, so nothing here asks
which kind it trains."""

from __future__ import annotations

import math
import os
import shutil
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, gather_object, set_seed
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..cards import card_dataset
from ..console import interactive, quiet_progress_bars_when_logged
from ..data import SamTransform, collate_fn
from ..errors import CheckpointSaveError, NonFiniteLossError
from ..evaluation import evaluate_loader
from ..io_utils import atomic_write_json, give_new_file_mode
from ..segmentation import SegmentationModel
from .builders import build_datasets, build_model, check_inputs_exist
from .checkpoints import (
    TrainingProgress,
    checkpoint_number,
    checkpoints_dir,
    find_latest_checkpoint,
    mark_complete,
    numbered_checkpoints,
    remove_incomplete_checkpoints,
    resolve_checkpoint,
    rotate_checkpoints,
)
from .config import TrainConfig
from .outputs import choose_work_dir, removed_on_failure, replace_run, start_staging

CHECKPOINT_WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)  # how a full disk shows in each writer
TRAINABLE_WEIGHTS = "trainable_parameters.safetensors"  # checkpoints hold what trains, not the frozen base


@dataclass
class TrainingRun:
    """Everything an epoch needs, prepared once by `prepare_run`."""

    config: TrainConfig
    accelerator: Accelerator
    model: torch.nn.Module  # wrapped by Accelerate (DDP under several processes)
    unwrapped: SegmentationModel
    optimizer: torch.optim.Optimizer
    scheduler: object
    train_loader: DataLoader
    eval_loaders: dict[str, DataLoader]
    train_transform: SamTransform
    split_sizes: dict[str, int]
    progress: TrainingProgress
    steps_per_epoch: int
    work_dir: Path  # where the run writes: output_dir, or the sibling a replacing run trains in
    local_loss: list = field(default_factory=lambda: [0.0, 0])  # this process's loss sum and batches since a fold
    checkpoints_deleted: int = 0  # older checkpoints rotated out (`checkpoint_total_limit`), reported at the end

    @property
    def output_dir(self) -> Path:
        """Where the run ends up (the work_dir is moved here once the run completes)."""
        return Path(self.config.run.output_dir)

    @property
    def model_dir(self) -> Path:
        return self.work_dir / "model"


def train(config: TrainConfig) -> dict:
    """Train, keep the best epoch by validation landslide IoU, score it on the test split; `metrics.json`'s dict."""
    check_inputs_exist(config)
    work_dir = choose_work_dir(config)  # refuses to overwrite or restart a run unless told to
    quiet_progress_bars_when_logged()
    with removed_on_failure(work_dir), numerics(config.run.deterministic):  # a failed run blocks no other
        run = prepare_run(config, work_dir)
        resume(run)
        progress = run.progress
        bar = tqdm(total=run.steps_per_epoch * config.optimization.epochs, initial=progress.global_step,
                   disable=not (run.accelerator.is_main_process and interactive()))
        for epoch in range(progress.epoch, config.optimization.epochs):
            train_epoch(run, epoch, bar)
            end_epoch(run, epoch, bar)
        bar.close()
        return finish(run)


@contextmanager
def numerics(deterministic: bool):
    """With `deterministic`, kernels that have a deterministic implementation use it (on a GPU with cuBLAS's fixed
    workspace; an op that has none is named in a warning rather than stopping the run). The process's own settings
    and CPU thread count, which a resume may change, come back afterwards, for callers in the same process."""
    threads = torch.get_num_threads()
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.set_num_threads(threads)


def make_accelerator(config: TrainConfig, work_dir: Path) -> Accelerator:
    return Accelerator(
        cpu=not torch.cuda.is_available(),  # real DDP over gloo under `accelerate launch --multi_gpu` on a CPU
        mixed_precision=config.run.mixed_precision,
        gradient_accumulation_steps=config.optimization.gradient_accumulation_steps,
        # The shuffle order of an epoch depends on the seed and the epoch only, so a resumed run sees the same order.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        log_with=None if config.run.report_to == "none" else config.run.report_to,
        # No total_limit: Accelerate would delete the oldest checkpoint before writing the next, so a failed save
        # could leave none; `rotate_checkpoints` deletes old ones once the new one is complete.
        project_config=ProjectConfiguration(project_dir=str(work_dir), automatic_checkpoint_naming=True),
        # SAM's IoU head trains but gets no gradient from the prompt-free loss.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def prepare_run(config: TrainConfig, work_dir: Path) -> TrainingRun:
    """Model, data, optimiser and cosine schedule, prepared by Accelerate, with trainable-only checkpoints."""
    accelerator = make_accelerator(config, work_dir)
    accelerator.wait_for_everyone()  # every process has chosen its work_dir before the first write to it
    set_seed(config.run.seed)
    optim = config.optimization
    with accelerator.main_process_first():  # only the main process creates or downloads shared files
        if accelerator.is_main_process:
            start_staging(work_dir, Path(config.run.output_dir), resuming=bool(config.run.resume_from_checkpoint))
            remove_incomplete_checkpoints(work_dir)
        model = build_model(config, work_dir)
        splits, train_transform = build_datasets(config)
        model.set_image_processor(train_transform.processor)  # saved with the model: its input contract
    loader = lambda name, batch: DataLoader(splits[name], batch_size=batch, shuffle=name == "train",  # noqa: E731
                                            collate_fn=collate_fn, num_workers=config.run.num_workers)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=optim.learning_rate,
                                  weight_decay=optim.weight_decay)
    wrapped, optimizer, train_loader = accelerator.prepare(model, optimizer, loader("train", optim.batch_size))
    eval_names = [name for name in ("validation", "test") if name in splits]
    eval_loaders = {name: accelerator.prepare(loader(name, optim.eval_batch_size)) for name in eval_names}
    steps_per_epoch = math.ceil(len(train_loader) / optim.gradient_accumulation_steps)
    scheduler = accelerator.prepare(torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=steps_per_epoch * optim.epochs * accelerator.num_processes,  # stepped once per process
        eta_min=optim.min_learning_rate))
    progress = TrainingProgress(num_threads=torch.get_num_threads())
    accelerator.register_for_checkpointing(progress)
    register_trainable_only_checkpoints(accelerator)
    sizes = {name: len(split) for name, split in splits.items()}
    return TrainingRun(config, accelerator, wrapped, accelerator.unwrap_model(wrapped), optimizer, scheduler,
                       train_loader, eval_loaders, train_transform, sizes, progress, steps_per_epoch, work_dir)


def register_trainable_only_checkpoints(accelerator: Accelerator) -> None:
    """Checkpoints store the model's `trainable_state_dict` (about 4M tensors' worth on ViT-L, not 312M)."""

    def save_hook(models, weights, output_dir):
        if accelerator.is_main_process:
            state = accelerator.unwrap_model(models[0]).trainable_state_dict()
            path = Path(output_dir) / TRAINABLE_WEIGHTS
            save_file(state, str(path))
            give_new_file_mode([path])
        weights.clear()

    def load_hook(models, input_dir):
        model = accelerator.unwrap_model(models.pop())
        state = load_file(str(Path(input_dir) / TRAINABLE_WEIGHTS))
        _, unexpected = model.load_state_dict(state, strict=False)
        missing = set(model.trainable_state_dict()) - set(state)
        if unexpected or missing:
            raise ValueError(f"{input_dir} does not match this model: unexpected {unexpected[:5]}, "
                             f"missing {sorted(missing)[:5]}.")

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def resume(run: TrainingRun) -> None:
    """Continue from `resume_from_checkpoint` ('latest' or a folder) when there is one to continue from."""
    config, accelerator = run.config, run.accelerator
    if not config.run.resume_from_checkpoint:
        return
    checkpoint = resolve_checkpoint(config.run.resume_from_checkpoint, run.work_dir, config.to_dict())
    if checkpoint is None:
        return
    accelerator.load_state(str(checkpoint))
    numbered = numbered_checkpoints(run.work_dir)  # none when resuming another run's checkpoint in a new folder
    accelerator.project_configuration.iteration = checkpoint_number(numbered[-1]) + 1 if numbered else 0
    accelerator.print(f"Resumed from {checkpoint} at epoch {run.progress.epoch + 1}, "
                      f"step {run.progress.step_in_epoch}")
    match_thread_count(run, checkpoint)


def match_thread_count(run: TrainingRun, checkpoint: Path) -> None:
    """On a CPU, a kernel splits its sums between threads, so the thread count sets the order of float additions: a
    resume with another count (`accelerate launch` sets OMP_NUM_THREADS=1 where plain `python` uses every core)
    drifts from the uninterrupted run in the last bits, and training amplifies that. With `deterministic` the resume
    computes with the checkpoint's count; without, a warning says what will differ."""
    saved, current = run.progress.num_threads, torch.get_num_threads()
    if run.accelerator.device.type == "cpu" and saved and saved != current:
        if run.config.run.deterministic:
            torch.set_num_threads(saved)
            run.accelerator.print(f"Computing with {saved} CPU threads, as the checkpoint was (deterministic).")
        else:
            warnings.warn(
                f"{checkpoint} was computed with {saved} CPU threads and this process has {current}: sums are added "
                "in another order, so the weights will differ from an uninterrupted run's by float rounding, which "
                f"training amplifies. Pass --deterministic true to resume with {saved} threads (or set "
                f"OMP_NUM_THREADS={saved}).", stacklevel=2)
    run.progress.num_threads = torch.get_num_threads()


def train_epoch(run: TrainingRun, epoch: int, bar: tqdm) -> None:
    """One epoch's optimiser steps, from where a resumed run stopped; step checkpoints when configured."""
    accelerator, progress, model = run.accelerator, run.progress, run.model
    model.train()
    run.train_loader.set_epoch(epoch)
    run.train_transform.set_epoch(epoch)
    loader = run.train_loader
    if progress.step_in_epoch:
        loader = accelerator.skip_first_batches(run.train_loader, progress.step_in_epoch)
    every = run.config.run.checkpointing_steps
    for batch in loader:
        with accelerator.accumulate(model):
            loss = model(batch["pixel_values"], labels=batch["labels"]).loss
            check_finite(accelerator, loss, batch, progress)
            accelerator.backward(loss)
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad()
        run.local_loss[0] += loss.detach().float().item()
        run.local_loss[1] += 1
        progress.step_in_epoch += 1
        if accelerator.sync_gradients:
            progress.global_step += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
            accelerator.log({"train/loss": loss.item(), "lr": run.scheduler.get_last_lr()[0]}, step=progress.global_step)
            if every and progress.global_step % every == 0:
                save_checkpoint(run)


def end_epoch(run: TrainingRun, epoch: int, bar: tqdm) -> None:
    """Score the validation split, keep the model if it improved, record the epoch and checkpoint it."""
    accelerator, progress = run.accelerator, run.progress
    fold_local_loss(run)
    epoch_loss = progress.loss_sum / max(progress.loss_batches, 1)
    validation = evaluate_split(run, "validation")
    progress.history.append({"epoch": epoch + 1, "train_loss": epoch_loss, "validation": validation})
    progress.epoch, progress.step_in_epoch, progress.loss_sum, progress.loss_batches = epoch + 1, 0, 0.0, 0
    if validation is None or validation["landslide_iou"] > progress.best_landslide_iou:
        progress.best_epoch, progress.best_validation = epoch + 1, validation
        progress.best_landslide_iou = validation["landslide_iou"] if validation else progress.best_landslide_iou
        save_best_model(run, test=None)
    scores = f", validation landslide IoU {validation['landslide_iou']:.4f} F1 {validation['f1']:.4f}" if (
        validation) else ""
    if accelerator.is_main_process:
        tqdm.write(f"epoch {epoch + 1}: train loss {epoch_loss:.4f}{scores}")  # above the bar, or plain in a log
    accelerator.log({"train/epoch_loss": epoch_loss, **{f"validation/{k}": v for k, v in (validation or {}).items()}},
                    step=progress.global_step)
    write_metrics(run)
    save_checkpoint(run)


def finish(run: TrainingRun) -> dict:
    """Put the best epoch's weights back, score them on the test split, and save them with their scores."""
    accelerator = run.accelerator
    accelerator.wait_for_everyone()
    run.unwrapped.load_weights(run.model_dir)
    test = evaluate_split(run, "test")
    metrics = write_metrics(run, test)
    if test is not None:
        save_best_model(run, test)
    repo_id = run.config.run.push_to_hub
    if repo_id and accelerator.is_main_process:
        run.unwrapped.push_to_hub(repo_id, model_card_kwargs=card_kwargs(run, test))
    accelerator.wait_for_everyone()  # the run is complete: only now may it replace the one in output_dir
    if accelerator.is_main_process:
        replace_run(run.work_dir, run.config)
        best = run.progress.best_epoch
        accelerator.print(f"Best epoch {best} (validation {scores_line(run.progress.best_validation)}); "
                          f"test {scores_line(test)}. Model: {run.output_dir / 'model'}, "
                          f"metrics: {run.output_dir / 'metrics.json'}")
        if run.checkpoints_deleted:
            accelerator.print(f"Checkpoints: the last {run.config.run.checkpoint_total_limit} kept in "
                              f"{checkpoints_dir(run.output_dir)} ({run.checkpoints_deleted} older checkpoint"
                              f"{'' if run.checkpoints_deleted == 1 else 's'} deleted).")
    accelerator.wait_for_everyone()  # end_training tears the process group down: every rank must be there
    accelerator.end_training()
    return metrics


def scores_line(scores: Optional[dict]) -> str:
    if not scores:
        return "not scored"
    return f"landslide IoU {scores['landslide_iou']:.4f}, F1 {scores['f1']:.4f}, MIoU {scores['miou']:.4f}"


def evaluate_split(run: TrainingRun, name: str) -> Optional[dict]:
    loader = run.eval_loaders.get(name)
    return None if loader is None else evaluate_loader(run.model, loader, run.accelerator, run.config.optimization.threshold)


def card_kwargs(run: TrainingRun, test: Optional[dict]) -> dict:
    """The model card's fields: the best epoch's validation scores, and test scores once scored (the Hub shows
    these), on the dataset by its Hub id where training read one."""
    scores = {"validation": run.progress.best_validation, "test": test}
    name = f"{run.unwrapped.display_name} on {run.config.data.dataset}"
    dataset = card_dataset(run.config.data.dataset, run.config.data.data_dir)
    return dict(model_name=name, datasets=[dataset], metrics=scores, split_sizes=run.split_sizes,
                best_epoch=run.progress.best_epoch)


def save_best_model(run: TrainingRun, test: Optional[dict]) -> None:
    if run.accelerator.is_main_process:
        run.unwrapped.save_pretrained(run.model_dir, model_card_kwargs=card_kwargs(run, test))


def write_metrics(run: TrainingRun, test: Optional[dict] = None) -> dict:
    """`metrics.json`: per-epoch history, the best epoch and its scores, test scores, what trained, the config."""
    progress, counts = run.progress, run.unwrapped.parameter_counts()
    metrics = {"num_processes": run.accelerator.num_processes, "epochs": progress.history, "test": test,
               "best_epoch": progress.best_epoch, "best_validation": progress.best_validation,
               "best_validation_landslide_iou": progress.best_landslide_iou if progress.best_landslide_iou >= 0 else None,
               **run.unwrapped.describe(), "dataset": run.config.data.dataset, "split_sizes": run.split_sizes,
               "parameters": {"total": counts["total"], "trainable": counts["trainable"]},
               "config": run.config.to_dict()}
    if run.accelerator.is_main_process:
        atomic_write_json(run.work_dir / "metrics.json", metrics)
    return metrics


def fold_local_loss(run: TrainingRun) -> None:
    """Sum this process's loss since the last fold over processes into the saved progress (float64, so the sum does
    not depend on where checkpoints fell)."""
    local = torch.tensor(run.local_loss, dtype=torch.float64, device=run.accelerator.device)
    run.local_loss = [0.0, 0]
    totals = run.accelerator.reduce(local, "sum")
    run.progress.loss_sum += totals[0].item()
    run.progress.loss_batches += int(totals[1].item())


def save_checkpoint(run: TrainingRun) -> None:
    """Save the state, mark it complete, then rotate out the oldest checkpoints; a failed save (a full disk) removes
    its incomplete folder and says which checkpoint a resume would continue from."""
    fold_local_loss(run)
    accelerator = run.accelerator
    folder = checkpoints_dir(run.work_dir) / f"checkpoint_{accelerator.save_iteration}"
    error = on_every_process(accelerator, accelerator.save_state)
    if error is None:
        error = on_every_process(accelerator, lambda: accelerator.is_main_process and mark_complete(
            folder, run.config.to_dict(), run.progress))
    if error is not None:
        if accelerator.is_main_process:
            shutil.rmtree(folder, ignore_errors=True)
        accelerator.wait_for_everyone()
        latest = find_latest_checkpoint(run.work_dir)
        flags = "--overwrite_output_dir true --resume_from_checkpoint latest" if (
            run.work_dir != run.output_dir) else "--resume_from_checkpoint latest"
        resume_note = (f"{latest} is the last complete one: {flags} continues from it"
                       if latest else "no checkpoint of this run is complete")
        raise CheckpointSaveError(f"{folder}: saving the checkpoint failed ({error}); is the disk full? The "
                                  f"incomplete checkpoint was removed; {resume_note}.") from error
    if accelerator.is_main_process:
        run.checkpoints_deleted += len(rotate_checkpoints(run.work_dir, run.config.run.checkpoint_total_limit))


def on_every_process(accelerator: Accelerator, action) -> Optional[BaseException]:
    """Run `action` on every process and share whether any failed, so that none waits at a barrier for one that
    stopped; this process's error, or one saying another process failed."""
    try:
        action()
        error = None
    except CHECKPOINT_WRITE_ERRORS as caught:  # safetensors and torch.save do not raise OSError when a write fails
        error = caught
    failures = accelerator.reduce(torch.tensor([float(error is not None)], device=accelerator.device), "sum")
    if error is None and failures.item():
        error = OSError("another process could not write its part of the checkpoint")
    return error


def check_finite(accelerator: Accelerator, loss: torch.Tensor, batch: dict, progress: TrainingProgress) -> None:
    """Stop every process together on a NaN/inf loss, naming the step and the samples of the offending batch."""
    losses = accelerator.gather(loss.detach().float().reshape(1))
    if torch.isfinite(losses).all():
        return
    ids = gather_object([list(batch.get("id", []))]) if accelerator.num_processes > 1 else [batch.get("id", [])]
    raise NonFiniteLossError(
        f"Loss became {losses.tolist()} at epoch {progress.epoch + 1}, optimiser step {progress.global_step + 1}, "
        f"on samples {ids}. Training stopped; the last good checkpoint is kept."
    )
