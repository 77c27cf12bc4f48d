#!/usr/bin/env python
"""Fine-tune TransLandSeg (SAM + ATL adapters) on landslide data, as in Hou et al. 2024, or train one of the paper's
CNN baselines (`--model unet | deeplabv3plus | pspnet | ccnet`) with the same data, loss, schedule and metrics.

    accelerate launch recipes/train.py --config recipes/configs/bijie.yaml [--key value ...]
    accelerate launch --multi_gpu --num_processes 2 recipes/train.py --config recipes/configs/demo.yaml
    accelerate launch recipes/train.py --config recipes/configs/unet-bijie.yaml --data_dir PATH/TO/Bijie
    python recipes/train.py --config recipes/configs/demo.yaml --epochs 2 --resume_from_checkpoint latest

Writes to `output_dir`: `model/` (the best adapter by validation landslide IoU, adapter-only, loadable with
`TransLandSegModel.from_pretrained(output_dir + "/model")`; any kind loads with
`translandseg_hf.auto.load_segmentation_model`), `metrics.json` and `checkpoints/`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Optional, Sequence

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from peft import set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from translandseg_hf.data import collate_fn
from translandseg_hf.evaluation import evaluate_loader
from translandseg_hf.io_utils import atomic_write_json
from translandseg_hf.training import TrainConfig, TrainingProgress, load_config, mark_complete, resolve_checkpoint
from translandseg_hf.training.builders import (
    RANDOM_BASE,
    build_datasets,
    build_model,
    check_inputs_exist,
    make_random_base,
)
from translandseg_hf.training.checkpoints import checkpoints_dir, remove_incomplete_checkpoints
from translandseg_hf.cli import run_reporting_errors

TRAINABLE_WEIGHTS = "trainable_parameters.safetensors"  # checkpoints hold what trains, not the frozen base


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN or infinite loss; the checkpoints written before it are kept."""


def parse_args(argv: Optional[Sequence[str]] = None) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file of TrainConfig keys (recipes/configs/*.yaml)")
    args, overrides = parser.parse_known_args(argv)
    return load_config(args.config, overrides)


def make_loader(dataset, config: TrainConfig, train: bool) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=config.batch_size if train else config.eval_batch_size,
        shuffle=train,
        collate_fn=collate_fn,
        num_workers=config.num_workers,
    )


def register_trainable_only_checkpoints(accelerator: Accelerator, with_buffers: bool = False) -> None:
    """Checkpoints store the trainable tensors (about 4M on ViT-L) instead of the 312M-parameter model; with
    `with_buffers`, also the buffers (a CNN baseline's BatchNorm statistics, which a resumed run needs)."""

    def save_hook(models, weights, output_dir):
        if accelerator.is_main_process:
            unwrapped = accelerator.unwrap_model(models[0])
            trainable = {n: p.detach().cpu().contiguous() for n, p in unwrapped.named_parameters() if p.requires_grad}
            if with_buffers:
                trainable.update({n: b.detach().cpu().contiguous() for n, b in unwrapped.named_buffers()})
            save_file(trainable, str(Path(output_dir) / TRAINABLE_WEIGHTS))
        weights.clear()

    def load_hook(models, input_dir):
        model = accelerator.unwrap_model(models.pop())
        state = load_file(str(Path(input_dir) / TRAINABLE_WEIGHTS))
        missing, unexpected = model.load_state_dict(state, strict=False)
        expected = {n for n, p in model.named_parameters() if p.requires_grad}
        if unexpected or expected - set(state):
            raise ValueError(f"{input_dir} does not match this model: unexpected {unexpected[:5]}.")

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


class LocalLoss:
    """This process's training loss since the last fold; folding sums it over processes into the saved progress."""

    def __init__(self):
        self.sum, self.batches = 0.0, 0

    def add(self, loss: torch.Tensor) -> None:
        self.sum += loss.detach().float().item()
        self.batches += 1

    def fold_into(self, progress: TrainingProgress, accelerator: Accelerator) -> None:
        local = torch.tensor([self.sum, self.batches], dtype=torch.float64, device=accelerator.device)
        totals = accelerator.reduce(local, "sum")  # float64: the sum does not depend on where checkpoints fell
        progress.loss_sum += totals[0].item()
        progress.loss_batches += int(totals[1].item())
        self.sum, self.batches = 0.0, 0


def check_finite(accelerator: Accelerator, loss: torch.Tensor, batch: dict, progress: TrainingProgress) -> None:
    """Stop every process together on a NaN/inf loss, naming the step and the samples of the offending batch."""
    losses = accelerator.gather(loss.detach().float().reshape(1))
    if torch.isfinite(losses).all():
        return
    from accelerate.utils import gather_object

    ids = gather_object([list(batch.get("id", []))]) if accelerator.num_processes > 1 else [batch.get("id", [])]
    raise NonFiniteLossError(
        f"Loss became {losses.tolist()} at epoch {progress.epoch + 1}, optimiser step {progress.global_step + 1}, "
        f"on samples {ids}. Training stopped; the last good checkpoint is kept."
    )


def save_model(model, model_dir: Path, config: TrainConfig, metrics: Optional[dict]) -> None:
    """The best model in its own format: an adapter-only TransLandSeg folder, or a baseline's full weights."""
    name = f"TransLandSeg ({config.preset})" if config.model == "translandseg" else model.display_name
    card = dict(datasets=[config.dataset], model_name=f"{name} on {config.dataset}", metrics=metrics)
    if config.model == "translandseg":
        card["save_base"] = config.base_model == RANDOM_BASE
    model.save_pretrained(model_dir, **card)


def load_best_weights(model, model_dir: Path, config: TrainConfig) -> None:
    """Put the best epoch's weights back, to evaluate the best model rather than the last one."""
    if config.model == "translandseg":
        set_peft_model_state_dict(model.peft_model, load_file(str(model_dir / "adapter_model.safetensors")))
    else:
        model.load_weights(model_dir)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    config = parse_args(argv)
    check_inputs_exist(config)
    output_dir = Path(config.output_dir)
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),  # real DDP over gloo under `accelerate launch --multi_gpu` on a CPU
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        # The shuffle order of an epoch depends on the seed and the epoch only, so a resumed run sees the same order.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        log_with=None if config.report_to == "none" else config.report_to,
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), automatic_checkpoint_naming=True, total_limit=config.checkpoint_total_limit
        ),
        # The IoU head of the mask decoder trains but gets no gradient from the prompt-free loss.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    set_seed(config.seed)
    config_dict = config.to_dict()

    with accelerator.main_process_first():  # only the main process creates or downloads shared files
        if accelerator.is_main_process:
            remove_incomplete_checkpoints(output_dir)
        base = config.base_model
        if config.model == "translandseg" and base == RANDOM_BASE:  # the CNN baselines need no SAM base
            base = str(make_random_base(config, output_dir))
        model = build_model(config, base)
        splits, train_transform = build_datasets(config)
    if config.gradient_checkpointing:
        model.sam.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})

    train_loader = make_loader(splits["train"], config, train=True)
    eval_loaders = {name: make_loader(splits[name], config, False) for name in ("validation", "test") if name in splits}
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=config.weight_decay
    )
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    eval_loaders = {name: accelerator.prepare(loader) for name, loader in eval_loaders.items()}
    steps_per_epoch = math.ceil(len(train_loader) / config.gradient_accumulation_steps)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer,
        T_max=steps_per_epoch * config.epochs * accelerator.num_processes,  # Accelerate steps it once per process
        eta_min=config.min_learning_rate,
    )
    scheduler = accelerator.prepare(scheduler)
    progress = TrainingProgress()
    accelerator.register_for_checkpointing(progress)
    register_trainable_only_checkpoints(accelerator, with_buffers=config.model != "translandseg")

    if config.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(config.resume_from_checkpoint, output_dir, config_dict)
        if checkpoint is not None:
            accelerator.load_state(str(checkpoint))
            existing = [int(p.name.split("_")[1]) for p in checkpoints_dir(output_dir).glob("checkpoint_*")]
            accelerator.project_configuration.iteration = max(existing) + 1
            accelerator.print(f"Resumed from {checkpoint} at epoch {progress.epoch + 1}, step {progress.step_in_epoch}")

    if config.report_to != "none":
        accelerator.init_trackers("translandseg", config={k: str(v) for k, v in config_dict.items()})

    def save_checkpoint() -> None:
        location = Path(accelerator.save_state())
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            mark_complete(location, config_dict, progress)
        accelerator.wait_for_everyone()

    def write_metrics(test_scores=None) -> dict:
        metrics = {"num_processes": accelerator.num_processes, "epochs": progress.history, "test": test_scores}
        metrics["best_validation_landslide_iou"] = progress.best_landslide_iou if progress.best_landslide_iou >= 0 else None
        metrics.update(model=config.model, preset=config.preset if config.model == "translandseg" else None,
                       dataset=config.dataset, parameters=parameters)  # what recipes/compare.py tabulates
        metrics["config"] = config_dict
        if accelerator.is_main_process:
            atomic_write_json(output_dir / "metrics.json", metrics)
        return metrics

    unwrapped = accelerator.unwrap_model(model)
    counts = unwrapped.parameter_counts()
    parameters = {"total": counts["total"], "trainable": counts["trainable"]}
    model_dir = output_dir / "model"
    bar = tqdm(total=steps_per_epoch * config.epochs, initial=progress.global_step, disable=not accelerator.is_main_process)
    for epoch in range(progress.epoch, config.epochs):
        model.train()
        train_loader.set_epoch(epoch)
        train_transform.set_epoch(epoch)
        loader = train_loader
        if progress.step_in_epoch:
            loader = accelerator.skip_first_batches(train_loader, progress.step_in_epoch)
        local_loss = LocalLoss()
        for batch in loader:
            with accelerator.accumulate(model):
                loss = model(batch["pixel_values"], labels=batch["labels"]).loss
                check_finite(accelerator, loss, batch, progress)
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            local_loss.add(loss)
            progress.step_in_epoch += 1
            if accelerator.sync_gradients:
                progress.global_step += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
                accelerator.log({"train/loss": loss.item(), "lr": scheduler.get_last_lr()[0]}, step=progress.global_step)
                if config.checkpointing_steps and progress.global_step % config.checkpointing_steps == 0:
                    local_loss.fold_into(progress, accelerator)
                    save_checkpoint()

        local_loss.fold_into(progress, accelerator)
        epoch_loss = progress.loss_sum / max(progress.loss_batches, 1)
        validation = evaluate_loader(model, eval_loaders["validation"], accelerator, config.threshold) if (
            "validation" in eval_loaders) else None
        progress.history.append({"epoch": epoch + 1, "train_loss": epoch_loss, "validation": validation})
        progress.epoch, progress.step_in_epoch, progress.loss_sum, progress.loss_batches = epoch + 1, 0, 0.0, 0
        improved = validation is None or validation["landslide_iou"] > progress.best_landslide_iou
        if improved:
            progress.best_landslide_iou = validation["landslide_iou"] if validation else progress.best_landslide_iou
            if accelerator.is_main_process:
                save_model(unwrapped, model_dir, config, {"validation": validation} if validation else None)
        accelerator.log({"train/epoch_loss": epoch_loss, **{f"validation/{k}": v for k, v in (validation or {}).items()}},
                        step=progress.global_step)
        write_metrics()
        save_checkpoint()
    bar.close()

    accelerator.wait_for_everyone()
    load_best_weights(unwrapped, model_dir, config)
    test = evaluate_loader(model, eval_loaders["test"], accelerator, config.threshold) if "test" in eval_loaders else None
    metrics = write_metrics(test)
    if test is not None and accelerator.is_main_process:
        validation = progress.history[-1]["validation"]
        save_model(unwrapped, model_dir, config, {k: v for k, v in (("validation", validation), ("test", test)) if v})
    if config.push_to_hub and accelerator.is_main_process:
        unwrapped.push_to_hub(config.push_to_hub, datasets=[config.dataset], metrics={"test": test} if test else None)
    accelerator.wait_for_everyone()  # end_training tears the process group down: every rank must be there
    accelerator.end_training()
    return metrics


if __name__ == "__main__":
    run_reporting_errors(main, (NonFiniteLossError,))
