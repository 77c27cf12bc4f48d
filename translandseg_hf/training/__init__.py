"""Building blocks of `recipes/train.py`: configuration, model and data builders, resumable checkpoints."""

from .checkpoints import TrainingProgress, find_latest_checkpoint, mark_complete, resolve_checkpoint
from .config import TrainConfig, config_differences, load_config

__all__ = [
    "TrainConfig",
    "TrainingProgress",
    "config_differences",
    "find_latest_checkpoint",
    "load_config",
    "mark_complete",
    "resolve_checkpoint",
]
