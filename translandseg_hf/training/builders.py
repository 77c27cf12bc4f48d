"""Model and data of a run, built from its `TrainConfig`."""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import DatasetDict
from transformers import SamModel

from ..atl import ATLConfig
from ..data import SamTransform, load_named_dataset
from ..losses import LossConfig
from ..modeling_translandseg import TransLandSegModel
from ..sam_configs import tiny_sam_config
from .config import TrainConfig

RANDOM_BASE = "random"
RANDOM_BASE_FOLDER = "base_model"  # where a run keeps the small random SAM it made


def check_inputs_exist(config: TrainConfig) -> None:
    """Fail before any work when the data folder or a local base model is missing."""
    if config.data_dir is not None and not Path(config.data_dir).is_dir():
        raise FileNotFoundError(f"data_dir {config.data_dir} does not exist (dataset {config.dataset!r}).")
    base = config.base_model
    looks_local = base.endswith(".pth") or base.startswith((".", "/", "~")) or base.count("/") > 1
    if base != RANDOM_BASE and looks_local and not Path(base).expanduser().exists():
        raise FileNotFoundError(f"base_model {base} does not exist.")


def make_random_base(config: TrainConfig, output_dir: Path) -> Path:
    """Create (once) and save the run's small random SAM, so the saved model can name it."""
    folder = output_dir / RANDOM_BASE_FOLDER
    if not (folder / "config.json").is_file():
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(config.seed)
        SamModel(tiny_sam_config(**config.random_sam)).save_pretrained(str(folder))
        torch.random.set_rng_state(generator_state)
    return folder


def build_model(config: TrainConfig, base: str):
    """TransLandSeg on `base` with the run's ATL structure, or a CNN baseline (`base` unused); with the run's loss."""
    loss_config = LossConfig(config.bce_weight, config.dice_weight, config.pos_weight)
    if config.model != "translandseg":
        return build_baseline(config, loss_config)
    model = TransLandSegModel.from_sam(base, ATLConfig.from_preset(config.preset, **config.atl))
    if model.image_size != config.image_size:
        raise ValueError(
            f"image_size is {config.image_size} but the SAM base takes {model.image_size} x {model.image_size} inputs."
        )
    model.loss_config = loss_config
    return model


def build_baseline(config: TrainConfig, loss_config: LossConfig):
    """A CNN baseline at the run's image size, fully trainable, with the same loss as TransLandSeg."""
    from ..baselines import BASELINE_MODELS, BaselineConfig, BaselineSegmentationModel

    if config.model not in BASELINE_MODELS:
        raise ValueError(f"Unknown model {config.model!r}; valid models are translandseg and {list(BASELINE_MODELS)}.")
    if config.gradient_checkpointing:
        raise ValueError(f"gradient_checkpointing applies to TransLandSeg's SAM encoder, not to {config.model!r}.")
    baseline = BaselineConfig(config.model, config.encoder_name, config.encoder_weights, config.image_size)
    return BaselineSegmentationModel(baseline, loss_config)


def build_datasets(config: TrainConfig) -> tuple[DatasetDict, SamTransform]:
    """The run's splits with lazy SAM preprocessing, and the training split's transform (augmentation seeded by
    run seed, epoch and sample, so a resumed run draws what an uninterrupted one draws)."""
    splits = load_named_dataset(config.dataset, config.data_dir, config.split_file, **config.dataset_options)
    limits = {"train": config.max_train_samples}
    for name in splits:
        limit = limits.get(name, config.max_eval_samples)
        if limit is not None:
            splits[name] = splits[name].select(range(min(limit, len(splits[name]))))
    if "train" not in splits or len(splits["train"]) == 0:
        raise ValueError(f"Dataset {config.dataset!r} in {config.data_dir} has no training samples.")
    train_transform = SamTransform(config.image_size, train=config.augment, seed=config.seed)
    evaluation_transform = SamTransform(config.image_size)
    prepared = DatasetDict(
        {name: split.with_transform(train_transform if name == "train" else evaluation_transform)
         for name, split in splits.items()}
    )
    return prepared, train_transform
