"""The training configuration: a dataclass filled from YAML, then overridden by `--key value` on the command line."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from ..data.named import DATASET_NAMES as DATASETS
MODELS = ("translandseg", "unet", "deeplabv3plus", "pspnet", "ccnet")
# Keys that may change between a run and its resumption without changing what is computed.
RESUMABLE_KEYS = frozenset({"resume_from_checkpoint", "report_to", "push_to_hub", "num_workers", "output_dir"})


@dataclass
class TrainConfig:
    """Everything a run depends on; `metrics.json` and each checkpoint record it."""

    # model
    model: str = "translandseg"  # translandseg (SAM + ATL) or a baseline: unet | deeplabv3plus | pspnet | ccnet
    base_model: str = "facebook/sam-vit-large"  # Hub id, SamModel folder, Meta .pth, or "random" (a small random SAM)
    random_sam: dict = field(default_factory=dict)  # tiny_sam_config() arguments when base_model is "random"
    preset: str = "translandseg"  # ATL structure (Table IV)
    atl: dict = field(default_factory=dict)  # ATLConfig fields overriding the preset
    encoder_name: str = "resnet50"  # CNN baselines only: their ResNet encoder (the paper's baselines use ResNets)
    encoder_weights: Optional[str] = "imagenet"  # CNN baselines only: pretrained encoder (null: random, offline)
    # data
    dataset: str = "bijie"  # bijie | landslide4sense | folder | synthetic
    data_dir: Optional[str] = None
    dataset_options: dict = field(default_factory=dict)  # extra arguments of the dataset's loader
    split_file: Optional[str] = None  # JSON split to read, or to write the default seeded split to
    image_size: int = 1024  # SAM's input size; the paper resizes every image to 1024 x 1024
    augment: bool = True  # flips, 90-degree rotations, colour jitter on training images only
    max_train_samples: Optional[int] = None  # first N samples only (quick checks)
    max_eval_samples: Optional[int] = None
    # optimisation (the paper: AdamW 2e-4, cosine decay, 50 epochs, batch 2, 0.5 BCE + 0.5 Dice)
    epochs: int = 50
    batch_size: int = 2
    eval_batch_size: int = 2
    learning_rate: float = 2e-4
    min_learning_rate: float = 1e-7
    weight_decay: float = 0.01
    gradient_accumulation_steps: int = 1
    bce_weight: float = 0.5
    dice_weight: float = 0.5
    pos_weight: Optional[float] = None
    threshold: float = 0.5
    # run
    seed: int = 42
    mixed_precision: str = "no"  # no | fp16 | bf16
    gradient_checkpointing: bool = False  # recompute the frozen encoder blocks in backward: less memory, more time
    num_workers: int = 0
    output_dir: str = "runs/translandseg"
    checkpointing_steps: Optional[int] = None  # save_state every N optimiser steps as well as at each epoch's end
    checkpoint_total_limit: int = 2
    resume_from_checkpoint: Optional[str] = None  # "latest" or a checkpoint folder
    report_to: str = "none"  # none | tensorboard | wandb | all
    push_to_hub: Optional[str] = None  # repository id to upload the best model to

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"Unknown dataset {self.dataset!r}; valid datasets are {list(DATASETS)}.")
        if self.dataset != "synthetic" and not self.data_dir:
            raise ValueError(f"dataset {self.dataset!r} needs data_dir (the folder holding it).")
        if self.model not in MODELS:
            raise ValueError(f"Unknown model {self.model!r}; valid models are {list(MODELS)}.")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}.")
        for name in ("epochs", "batch_size", "eval_batch_size", "gradient_accumulation_steps", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_keys() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def load_config(path: Optional[str] = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML file, then apply `--key value` pairs (values parsed as YAML: numbers, booleans, lists, null)."""
    values = read_yaml_config(Path(path)) if path is not None else {}
    values.update(parse_overrides(overrides))
    unknown = sorted(set(values) - set(config_keys()))
    if unknown:
        raise ValueError(f"Unknown config key(s) {unknown} in {path or 'the command line'}; valid keys: {config_keys()}.")
    return TrainConfig(**values)


def read_yaml_config(path: Path, _seen: tuple = ()) -> dict[str, Any]:
    """A YAML config; `inherit: other.yaml` (relative to this file) reads that one first and overrides it."""
    if not path.is_file():
        raise FileNotFoundError(f"Config file {path} does not exist.")
    if path.resolve() in _seen:
        raise ValueError(f"Config {path} inherits from itself.")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of config keys, got {type(values).__name__}.")
    parent = values.pop("inherit", None)
    if parent is None:
        return values
    return {**read_yaml_config(path.parent / parent, _seen + (path.resolve(),)), **values}


def parse_overrides(arguments: Sequence[str]) -> dict[str, Any]:
    """`['--epochs', '3', '--atl', '{residual: false}']` -> {'epochs': 3, 'atl': {'residual': False}}."""
    overrides, index = {}, 0
    arguments = list(arguments)
    while index < len(arguments):
        key = arguments[index]
        if not key.startswith("--"):
            raise ValueError(f"Expected --key value pairs, got {key!r}.")
        key = key[2:].replace("-", "_")
        if "=" in key:
            key, raw = key.split("=", 1)
            index += 1
        elif index + 1 < len(arguments) and not arguments[index + 1].startswith("--"):
            raw = arguments[index + 1]
            index += 2
        else:
            raw, index = "true", index + 1  # a bare flag
        overrides[key] = yaml.safe_load(raw) if raw != "" else None
    return overrides


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Keys whose values differ between a checkpoint's config and this run's, ignoring RESUMABLE_KEYS."""
    keys = (set(saved) | set(current)) - RESUMABLE_KEYS
    return sorted(key for key in keys if saved.get(key) != current.get(key))
