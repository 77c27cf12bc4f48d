"""Training: the typed configuration, model and data builders, the loop, and resumable checkpoints."""

from .checkpoints import TrainingProgress, find_latest_checkpoint, mark_complete, resolve_checkpoint
from .config import TrainConfig, config_differences, parse_config, parse_sections


def train(config: TrainConfig) -> dict:
    """Run the training loop (`translandseg_hf.training.loop.train`); imported late, as it needs Accelerate."""
    from .loop import train as run_loop

    return run_loop(config)


__all__ = [
    "TrainConfig",
    "TrainingProgress",
    "config_differences",
    "find_latest_checkpoint",
    "mark_complete",
    "parse_config",
    "parse_sections",
    "resolve_checkpoint",
    "train",
]
