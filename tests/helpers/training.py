"""The tiny training run: recipes/train.py with demo.yaml at test size, and what two runs must share."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# demo.yaml at test size: 32 px inputs, 2 blocks, 24 synthetic scenes (4 training steps an epoch)
TINY_DATA = ["--synthetic_samples", "24", "--synthetic_image_size", "32", "--synthetic_seed", "0"]
TINY = [
    "--config", str(ROOT / "recipes" / "configs" / "demo.yaml"), *TINY_DATA,
    "--random_sam_hidden_size", "32", "--random_sam_num_hidden_layers", "2",
    "--image_size", "32", "--epochs", "2", "--batch_size", "4",
]


def comparable(metrics):
    """What a resumed run must repeat exactly: each epoch's loss and validation scores, and the test scores."""
    return [(epoch["epoch"], epoch["train_loss"], epoch["validation"]) for epoch in metrics["epochs"]], metrics["test"]
