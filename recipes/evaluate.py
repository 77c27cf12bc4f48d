#!/usr/bin/env python
"""Score a trained TransLandSeg model or CNN baseline on a dataset split, in the layout of the paper's tables.

    python recipes/evaluate.py --model runs/demo/model --dataset synthetic --split test
    python recipes/evaluate.py --model user/translandseg-bijie --dataset bijie --data_dir data/Bijie \
        --split test --save_predictions runs/bijie/predictions

Prints one row (P, REC, F1, OA, MIoU: class means as the paper's; landslide IoU and landslide F1, the
Landslide4Sense competition's score: the landslide class alone; in percent) and writes the scores (fractions) as JSON;
`--save_predictions DIR` writes each predicted mask as a PNG and `grid.png` (image | ground truth | prediction).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from translandseg_hf import load_segmentation_model
from translandseg_hf.console import quiet_progress_bars_when_logged
from translandseg_hf.data import SamTransform, collate_fn, load_named_dataset
from translandseg_hf.errors import run_reporting_errors
from translandseg_hf.evaluation import evaluate_loader
from translandseg_hf.hub import local_path
from translandseg_hf.inference.tta import TestTimeAugmentation
from translandseg_hf.io_utils import atomic_write_json
from translandseg_hf.metrics import TABLE_NOTE, table_header, table_row
from translandseg_hf.training.config import DataArguments, config_keys, option, parse_sections


@dataclass
class EvaluationArguments:
    """What to score and where to write it; the data comes from DataArguments (or a training --config)."""

    model: str = dataclasses.field(metadata={"help": "Folder of a saved model, or a Hub repository id."})
    split: str = option("test", "Split to score.")
    batch_size: int = option(4, "Images per forward pass.")
    threshold: float = option(0.5, "Probability above which a pixel is landslide.")
    device: str = option("cuda" if torch.cuda.is_available() else "cpu", "Device to run the model on.")
    output_json: Optional[str] = option(None, "Where to write the scores (default: beside the model if local).")
    save_predictions: Optional[str] = option(None, "Folder for predicted masks and grid.png.")
    grid_samples: int = option(8, "Rows of grid.png.")
    tta: bool = option(False, "Test-time augmentation: score the mean logits of the 8 flips and rotations.")


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[EvaluationArguments, DataArguments]:
    """`--config` may be a training config: its data keys are used, the others ignored."""
    evaluation, data = parse_sections((EvaluationArguments, DataArguments), argv, __doc__, config_keys())
    return evaluation, data


def save_predictions(model, split, folder: Path, threshold: float, grid_samples: int) -> None:
    """Predicted masks at each image's own size (PNG, 0/255) and a grid figure of the first samples."""
    from translandseg_hf.visualization import prediction_grid

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for example in split:
        mask = model.predict([example["image"]], threshold=threshold)[0]
        Image.fromarray(mask * 255).save(folder / f"{example['id']}.png")
        if len(rows) < grid_samples:
            truth = np.asarray(example["mask"]) if example.get("mask") is not None else None
            rows.append((example["image"], truth, mask, example["id"]))
    images, truths, masks, names = zip(*rows)
    prediction_grid(images, truths, masks, names).save(folder / "grid.png")


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args, data = parse_args(argv)
    quiet_progress_bars_when_logged()
    model = load_segmentation_model(args.model).to(args.device)  # TransLandSeg or a CNN baseline
    splits = load_named_dataset(data.dataset, data.data_dir, data.split_file, **data.loader_options())
    if args.split not in splits:
        raise ValueError(f"Split {args.split!r} not found; the dataset has {list(splits)}.")
    split = splits[args.split]
    if "mask" not in split.column_names:
        raise ValueError(f"Split {args.split!r} has no masks to score against.")
    loader = DataLoader(split.with_transform(SamTransform(model.image_processor)), batch_size=args.batch_size,
                        collate_fn=collate_fn)
    device_loader = ({k: v.to(args.device) if torch.is_tensor(v) else v for k, v in b.items()} for b in loader)
    scored = TestTimeAugmentation(model) if args.tta else model
    scores = evaluate_loader(scored, device_loader, threshold=args.threshold)
    print(TABLE_NOTE)
    print(table_header())
    print(table_row(f"{Path(str(args.model)).name} ({data.dataset} {args.split}, n={len(split)})", scores))
    result = {"model": str(args.model), "dataset": data.dataset, "split": args.split, "num_samples": len(split),
              "threshold": args.threshold, "tta": args.tta, "scores": scores}
    folder = local_path(args.model, "a saved model")  # None for a Hub id: the scores go to the working folder
    output = args.output_json or (folder or Path(".")) / f"eval_{data.dataset}_{args.split}.json"
    atomic_write_json(output, result)
    if args.save_predictions:
        save_predictions(model, split, Path(args.save_predictions), args.threshold, args.grid_samples)
    return result


if __name__ == "__main__":
    run_reporting_errors(main)
