#!/usr/bin/env python
"""Score plain SAM used zero-shot (the paper's Figure 10) on the same split and metrics as the trained models.

    python recipes/zero_shot.py --model facebook/sam-vit-large --dataset bijie --data_dir data/Bijie \
        --split_file runs/bijie/split.json --split test --output_dir runs/bijie-sam-zero-shot
    python recipes/zero_shot.py --model random --dataset synthetic --output_dir runs/sam-zero-shot-demo

Three variants, each scored at SAM's input size like `recipes/evaluate.py`:
- `points`: one positive point per ground-truth landslide component, at its pixel farthest from the border (SAM
  then gets the landslides' locations from the labels: an upper bound for prompting, not a prompt-free result);
- `automatic`: SAM's automatic mask generation (a grid of point prompts, masks kept by predicted IoU and stability),
  the union of every kept mask as the landslide prediction;
- `automatic_oracle`: the union of the kept masks of which more than half (of the mask's area) is landslide, an
  upper bound on picking the right automatic masks.
The automatic generator is written here (no mask NMS: a union does not need de-duplication) rather than taken from
transformers' mask-generation pipeline, so it uses the same square resize as training and runs on a tiny random SAM.
Writes `output_dir/metrics.json` ("variants": scores per variant) for `recipes/compare.py`, and with
`--grid_samples N` (Figure 10) `output_dir/grid-VARIANT.png`: image | ground truth | SAM's mask for the first N samples.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader
from transformers import SamModel

from translandseg_hf.data import DATASET_NAMES, SamTransform, collate_fn, load_named_dataset
from translandseg_hf.io_utils import atomic_write_json
from translandseg_hf.metrics import ConfusionCounter, table_header, table_row
from translandseg_hf.sam_configs import tiny_sam_config
from translandseg_hf.sam_loading import load_sam
from translandseg_hf.cli import run_reporting_errors

VARIANTS = ("points", "automatic", "automatic_oracle")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="SAM: Hub id, SamModel folder, Meta .pth, or 'random'")
    parser.add_argument("--random_sam", type=yaml.safe_load, default={}, help="tiny_sam_config arguments for 'random'")
    parser.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    parser.add_argument("--data_dir")
    parser.add_argument("--dataset_options", type=yaml.safe_load, default={}, help="YAML mapping for the loader")
    parser.add_argument("--split_file", help="JSON split: the same split as the trained models")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max_samples", type=int)
    parser.add_argument("--batch_size", type=int, default=2, help="images embedded at once")
    # SAM's automatic mask generator defaults (segment-anything `SamAutomaticMaskGenerator`)
    parser.add_argument("--points_per_side", type=int, default=32, help="grid of 32 x 32 point prompts")
    parser.add_argument("--points_per_batch", type=int, default=64, help="prompts decoded at once (memory)")
    parser.add_argument("--pred_iou_thresh", type=float, default=0.88, help="keep masks SAM rates above this IoU")
    parser.add_argument("--stability_score_thresh", type=float, default=0.95, help="IoU of the mask at logit +-1")
    parser.add_argument("--oracle_overlap", type=float, default=0.5, help="landslide share of a mask for the oracle")
    parser.add_argument("--seed", type=int, default=42, help="seed of the 'random' SAM")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--grid_samples", type=int, default=0, help="rows of the grid-VARIANT.png figures (0: none)")
    return parser.parse_args(argv)


def load_base(args: argparse.Namespace) -> tuple[SamModel, str]:
    if args.model == "random":
        torch.manual_seed(args.seed)
        return SamModel(tiny_sam_config(**args.random_sam)), "random"
    sam, name = load_sam(args.model)
    return sam, name or str(args.model)


def component_points(mask: np.ndarray) -> np.ndarray:
    """(N, 2) x, y of one point per connected landslide component: its pixel farthest from the component's border
    (the image edge counts as border, so the point stays inside the visible landslide)."""
    from scipy import ndimage

    components, count = ndimage.label(mask)
    if count == 0:
        return np.zeros((0, 2), dtype=np.int64)
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    positions = ndimage.maximum_position(distance, components, index=np.arange(1, count + 1))  # (y, x) each
    return np.array([(x, y) for y, x in positions], dtype=np.int64)


def point_grid(points_per_side: int, size: int) -> np.ndarray:
    """SAM's grid: cell centres of an n x n grid over the input, (n*n, 2) x, y in pixels."""
    centres = (np.arange(points_per_side) + 0.5) / points_per_side * size
    xs, ys = np.meshgrid(centres, centres)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def decode(sam: SamModel, embedding: torch.Tensor, points: np.ndarray, size: int, multimask: bool):
    """Mask logits (N, M, S, S) and SAM's IoU estimates (N, M) for N single-point positive prompts."""
    input_points = torch.as_tensor(points, dtype=torch.float32, device=embedding.device)[None, :, None, :]
    input_labels = torch.ones(input_points.shape[:3], dtype=torch.long, device=embedding.device)
    outputs = sam(image_embeddings=embedding, input_points=input_points, input_labels=input_labels,
                  multimask_output=multimask)
    low_res = outputs.pred_masks[0]  # (N, M, S/4, S/4)
    logits = F.interpolate(low_res.float(), size=(size, size), mode="bilinear", align_corners=False)
    return logits, outputs.iou_scores[0]


def point_prompt_prediction(sam, embedding, truth: np.ndarray, size: int, batch: int) -> torch.Tensor:
    """Union of SAM's masks for one point in each ground-truth landslide (empty where there are none)."""
    prediction = torch.zeros(size, size, dtype=torch.bool, device=embedding.device)
    points = component_points(truth)
    for start in range(0, len(points), batch):
        logits, _ = decode(sam, embedding, points[start : start + batch], size, multimask=False)
        prediction |= (logits > 0).any(dim=(0, 1))
    return prediction


def automatic_predictions(sam, embedding, truth: torch.Tensor, size: int, args) -> tuple[torch.Tensor, torch.Tensor]:
    """Union of all kept automatic masks, and union of those kept masks that are mostly landslide."""
    union = torch.zeros(size, size, dtype=torch.bool, device=embedding.device)
    oracle = union.clone()
    grid = point_grid(args.points_per_side, size)
    for start in range(0, len(grid), args.points_per_batch):
        logits, iou = decode(sam, embedding, grid[start : start + args.points_per_batch], size, multimask=True)
        logits, iou = logits.flatten(0, 1), iou.flatten()  # (N*3, S, S), (N*3,)
        stability = (logits > 1.0).sum((1, 2)) / (logits > -1.0).sum((1, 2)).clamp(min=1)  # SAM's offset of 1
        masks = logits[(iou > args.pred_iou_thresh) & (stability > args.stability_score_thresh)] > 0
        if len(masks) == 0:
            continue
        union |= masks.any(0)
        landslide_share = (masks & truth).sum((1, 2)) / masks.sum((1, 2)).clamp(min=1)
        oracle |= masks[landslide_share > args.oracle_overlap].any(0)
    return union, oracle


def save_grids(split, shown: list, folder: Path) -> None:
    """Figure 10: one grid per variant, image | ground truth | SAM's prediction (at SAM's input size)."""
    from translandseg_hf.visualization import prediction_grid

    examples = [split[index] for index in range(len(shown))]
    images, names = [example["image"] for example in examples], [example["id"] for example in examples]
    for position, variant in enumerate(VARIANTS):
        predictions = [masks[position] for _, masks in shown]
        prediction_grid(images, [truth for truth, _ in shown], predictions, names).save(folder / f"grid-{variant}.png")


@torch.no_grad()
def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    sam, name = load_base(args)
    sam = sam.to(args.device).eval()
    size = sam.config.vision_config.image_size
    splits = load_named_dataset(args.dataset, args.data_dir, args.split_file, **args.dataset_options)
    if args.split not in splits:
        raise ValueError(f"Split {args.split!r} not found; the dataset has {list(splits)}.")
    split = splits[args.split]
    if args.max_samples is not None:
        split = split.select(range(min(args.max_samples, len(split))))
    loader = DataLoader(split.with_transform(SamTransform(size)), batch_size=args.batch_size, collate_fn=collate_fn)
    counters = {variant: ConfusionCounter() for variant in VARIANTS}
    shown = []  # (truth, predictions by variant) of the first grid_samples samples
    for batch in loader:
        embeddings = sam.get_image_embeddings(batch["pixel_values"].to(args.device))
        for embedding, labels in zip(embeddings, batch["labels"]):
            truth = labels[0].bool().to(args.device)  # (S, S)
            embedding = embedding[None]
            points = point_prompt_prediction(sam, embedding, truth.cpu().numpy(), size, args.points_per_batch)
            union, oracle = automatic_predictions(sam, embedding, truth, size, args)
            for variant, prediction in zip(VARIANTS, (points, union, oracle)):
                counters[variant].update(prediction, truth)
            if len(shown) < args.grid_samples:
                shown.append((truth.cpu().numpy(), [p.cpu().numpy().astype(np.uint8) for p in (points, union, oracle)]))
    scores = {variant: counter.scores() for variant, counter in counters.items()}
    print(table_header("SAM zero-shot"))
    for variant, values in scores.items():
        print(table_row(f"{variant} ({args.dataset} {args.split}, n={len(split)})", values))
    total = sum(p.numel() for p in sam.parameters())
    result = {"model": "sam-zero-shot", "preset": None, "dataset": args.dataset, "split": args.split,
              "base_model": name, "num_samples": len(split), "parameters": {"total": total, "trainable": 0},
              "variants": scores, "settings": {k: v for k, v in vars(args).items() if k not in ("device",)}}
    atomic_write_json(Path(args.output_dir) / "metrics.json", result)
    if shown:
        save_grids(split, shown, Path(args.output_dir))
    return result


if __name__ == "__main__":
    run_reporting_errors(main)
