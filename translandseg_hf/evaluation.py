"""Scoring a model on a data loader with streaming confusion counts, summed across processes."""

from __future__ import annotations

from typing import Optional

import torch

from .metrics import ConfusionCounter, confusion_counts


def per_sample_counts(logits: torch.Tensor, labels: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(B, 4) TP/FP/FN/TN of each sample, so `gather_for_metrics` can drop the padding samples of a last batch."""
    predictions = torch.sigmoid(logits.float()) > threshold
    return torch.stack([confusion_counts(p, l) for p, l in zip(predictions, labels.bool())])


@torch.no_grad()
def evaluate_loader(model, loader, accelerator=None, threshold: float = 0.5) -> Optional[dict]:
    """The paper's scores of `model` over `loader` (labels at the model's input size); None for an empty loader."""
    model.eval()
    counter = ConfusionCounter()
    for batch in loader:
        counts = per_sample_counts(model(batch["pixel_values"]).logits, batch["labels"], threshold)
        if accelerator is not None:
            counts = accelerator.gather_for_metrics(counts)
        counter.add(counts)
    if counter.tp + counter.fp + counter.fn + counter.tn == 0:
        return None
    return counter.scores()
