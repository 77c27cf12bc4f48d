#!/usr/bin/env python
"""Score a trained TransLandSeg model or CNN baseline on a dataset split, in the layout of the paper's tables.

    python recipes/evaluate.py --model runs/demo/model --dataset synthetic --split test
    python recipes/evaluate.py --model user/translandseg-bijie --dataset bijie --data_dir data/Bijie \
        --split test --save_predictions runs/bijie/predictions

Prints one row (P, REC, F1, OA, MIoU, landslide IoU in percent) and writes the scores (fractions) as JSON;
`--save_predictions DIR` writes each predicted mask as a PNG and `grid.png` (image | ground truth | prediction).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import yaml
from PIL import Image
from torch.utils.data import DataLoader

from translandseg_hf.auto import load_segmentation_model
from translandseg_hf.data import DATASET_NAMES, SamTransform, collate_fn, load_named_dataset
from translandseg_hf.evaluation import evaluate_loader
from translandseg_hf.io_utils import atomic_write_json
from translandseg_hf.metrics import table_header, table_row
from translandseg_hf.cli import run_reporting_errors


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="folder of a saved model, or a Hub repository id")
    parser.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    parser.add_argument("--data_dir", help="folder of the dataset (all but synthetic)")
    parser.add_argument("--dataset_options", type=yaml.safe_load, default={}, help="YAML mapping for the loader")
    parser.add_argument("--split_file", help="JSON split, to evaluate on the same split as training")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output_json", help="where to write the scores (default: next to the model if local)")
    parser.add_argument("--save_predictions", help="folder for predicted masks and grid.png")
    parser.add_argument("--grid_samples", type=int, default=8, help="rows of grid.png")
    return parser.parse_args(argv)


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
    args = parse_args(argv)
    model = load_segmentation_model(args.model).to(args.device)  # TransLandSeg or a CNN baseline
    splits = load_named_dataset(args.dataset, args.data_dir, args.split_file, **args.dataset_options)
    if args.split not in splits:
        raise ValueError(f"Split {args.split!r} not found; the dataset has {list(splits)}.")
    split = splits[args.split]
    if "mask" not in split.column_names:
        raise ValueError(f"Split {args.split!r} has no masks to score against.")
    loader = DataLoader(split.with_transform(SamTransform(model.image_size)), batch_size=args.batch_size,
                        collate_fn=collate_fn)
    device_loader = ({k: v.to(args.device) if torch.is_tensor(v) else v for k, v in b.items()} for b in loader)
    scores = evaluate_loader(model, device_loader, threshold=args.threshold)
    print(table_header())
    print(table_row(f"{Path(str(args.model)).name} ({args.dataset} {args.split}, n={len(split)})", scores))
    result = {"model": str(args.model), "dataset": args.dataset, "split": args.split, "num_samples": len(split),
              "threshold": args.threshold, "scores": scores}
    output = args.output_json or (Path(args.model) / f"eval_{args.dataset}_{args.split}.json"
                                  if Path(args.model).is_dir() else f"eval_{args.dataset}_{args.split}.json")
    atomic_write_json(output, result)
    if args.save_predictions:
        save_predictions(model, split, Path(args.save_predictions), args.threshold, args.grid_samples)
    return result


if __name__ == "__main__":
    run_reporting_errors(main)
