"""transformers' `Trainer` for the package's models: `SegmentationTrainer` saves and resumes them as their own
`save_pretrained` folders, and trains on the package's loaders with default `TrainingArguments`.

    trainer = SegmentationTrainer(model=model, args=TrainingArguments("runs/trainer"), train_dataset=prepared["train"])
    trainer.train()  # checkpoint-N/ folders load with TransLandSegModel.from_pretrained; resume_from_checkpoint=True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch
from datasets import Dataset
from transformers import Trainer, TrainerCallback
from transformers.trainer import TRAINING_ARGS_NAME

from ..data.transforms import SamTransform, collate_fn
from ..segmentation import SegmentationModel


class SegmentationTrainer(Trainer):
    """`Trainer` for a `SegmentationModel` (TransLandSeg or a CNN baseline); `data_collator` defaults to the
    package's `collate_fn`.

    Why a subclass: plain `Trainer` saves a model that is not a `PreTrainedModel`/`PeftModel` as its whole
    `state_dict()` in `model.safetensors`, which fails on SAM's two names for one position embedding and would hold
    the frozen base; it resumes by reading that file back, and no hook lets a model choose its own files. Here every
    checkpoint and `save_model()` is the model's `save_pretrained` folder (TransLandSeg: the adapter files only),
    and resuming or `load_best_model_at_end` reads it back with `load_weights`. The datasets of `prepare_dataset`
    keep their columns (`image`, `mask`, `id`: what the transform reads, not what `forward` takes); with
    `remove_unused_columns` the collated batch is filtered by `forward`'s signature instead, as `Trainer` does for
    datasets that are not `datasets.Dataset`. DeepSpeed and FSDP checkpoints (sharded weights) are not supported.
    """

    def __init__(self, model: Optional[SegmentationModel] = None, args=None, data_collator=None, **kwargs):
        if not isinstance(model, SegmentationModel):
            raise TypeError(f"SegmentationTrainer trains a SegmentationModel (such as TransLandSegModel), got "
                            f"{type(model).__name__}; use transformers.Trainer for other models.")
        super().__init__(model=model, args=args, data_collator=data_collator or collate_fn, **kwargs)
        if self.args.remove_unused_columns:
            self.data_collator = self._get_collator_with_removed_columns(self.data_collator)
        self.add_callback(AugmentationEpochCallback())

    def _remove_unused_columns(self, dataset: Dataset, description: Optional[str] = None) -> Dataset:
        """A dataset with a transform (`prepare_dataset`'s) keeps its columns: the transform reads them."""
        if dataset.format.get("type") == "custom":
            return dataset
        return super()._remove_unused_columns(dataset, description)

    def _save(self, output_dir: Optional[str] = None, state_dict: Optional[dict] = None) -> None:
        """The model's `save_pretrained` folder, the processing class if any, and the training arguments."""
        if state_dict is not None:
            raise NotImplementedError("SegmentationTrainer saves the live model with save_pretrained; DeepSpeed, FSDP "
                                      "and SageMaker model-parallel state dicts are not supported.")
        if not self.args.should_save:
            return
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        self.accelerator.unwrap_model(self.model, keep_torch_compile=False).save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Optional[torch.nn.Module] = None) -> None:
        """Put a checkpoint's trained tensors into the live model (the frozen base is the model's own)."""
        model = self.accelerator.unwrap_model(model if model is not None else self.model, keep_torch_compile=False)
        folder = Path(resume_from_checkpoint)
        missing = [name for name in model.saved_files if not (folder / name).is_file()]
        if missing:
            raise ValueError(f"{folder} is not a checkpoint of this {type(model).__name__}: {', '.join(missing)} "
                             "missing (it is written by SegmentationTrainer or save_pretrained).")
        model.load_weights(folder)

    def _load_best_model(self) -> None:
        self._load_from_checkpoint(self.state.best_model_checkpoint)


class AugmentationEpochCallback(TrainerCallback):
    """Tell the training split's `SamTransform` the epoch, as the package's loop does: with a seed, its draws
    depend on seed, epoch and sample, so each epoch augments anew and a resumed run draws what an uninterrupted one
    drew (`Trainer` sets the epoch of samplers and iterable datasets only)."""

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        dataset = getattr(train_dataloader, "dataset", None)
        transform = dataset.format.get("format_kwargs", {}).get("transform") if isinstance(dataset, Dataset) else None
        if isinstance(transform, SamTransform):
            transform.set_epoch(int(state.epoch or 0))
