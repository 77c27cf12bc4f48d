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

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import SamModel

from translandseg_hf.data import SamTransform, collate_fn, load_named_dataset
from translandseg_hf.errors import run_reporting_errors
from translandseg_hf.io_utils import atomic_write_json
from translandseg_hf.metrics import ConfusionCounter, table_header, table_row
from translandseg_hf.sam_configs import tiny_sam_config
from translandseg_hf.sam_loading import load_sam
from translandseg_hf.training.config import DataArguments, RandomSamArguments, config_keys, option, parse_sections

VARIANTS = ("points", "automatic", "automatic_oracle")


@dataclass
class ZeroShotArguments:
    """Which SAM, which split, and the automatic mask generator's settings (segment-anything's defaults)."""

    model: str = dataclasses.field(metadata={"help": "SAM: Hub id, SamModel folder, Meta .pth, or 'random'."})
    output_dir: str = dataclasses.field(metadata={"help": "Folder for metrics.json and the grids."})
    image_size: int = option(64, "Input side of the 'random' SAM.")
    split: str = option("test", "Split to score.")
    max_samples: Optional[int] = option(None, "Score the first N samples only.")
    batch_size: int = option(2, "Images embedded at once.")
    points_per_side: int = option(32, "Grid of N x N point prompts.")
    points_per_batch: int = option(64, "Prompts decoded at once (memory).")
    pred_iou_thresh: float = option(0.88, "Keep masks SAM rates above this IoU.")
    stability_score_thresh: float = option(0.95, "Keep masks whose IoU at logit +-1 is above this.")
    oracle_overlap: float = option(0.5, "Landslide share of a mask for the oracle.")
    seed: int = option(42, "Seed of the 'random' SAM.")
    device: str = option("cuda" if torch.cuda.is_available() else "cpu", "Device to run SAM on.")
    grid_samples: int = option(0, "Rows of the grid-VARIANT.png figures (0: none).")


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[ZeroShotArguments, DataArguments, RandomSamArguments]:
    """`--config` may be a training config: its data keys are used, the others ignored."""
    args, data, random_sam = parse_sections((ZeroShotArguments, DataArguments, RandomSamArguments), argv, __doc__,
                                            config_keys())
    return args, data, random_sam


def load_base(args: ZeroShotArguments, random_sam: RandomSamArguments) -> tuple[SamModel, str]:
    if args.model == "random":
        torch.manual_seed(args.seed)
        return SamModel(tiny_sam_config(**random_sam.tiny_sam_arguments(args.image_size))), "random"
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
    args, data, random_sam = parse_args(argv)
    sam, name = load_base(args, random_sam)
    sam = sam.to(args.device).eval()
    size = sam.config.vision_config.image_size
    splits = load_named_dataset(data.dataset, data.data_dir, data.split_file, **data.loader_options())
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
        print(table_row(f"{variant} ({data.dataset} {args.split}, n={len(split)})", values))
    total = sum(p.numel() for p in sam.parameters())
    result = {"model": "sam-zero-shot", "preset": None, "dataset": data.dataset, "split": args.split,
              "base_model": name, "num_samples": len(split), "parameters": {"total": total, "trainable": 0},
              "variants": scores, "settings": {k: v for k, v in dataclasses.asdict(args).items() if k != "device"}}
    atomic_write_json(Path(args.output_dir) / "metrics.json", result)
    if shown:
        save_grids(split, shown, Path(args.output_dir))
    return result


if __name__ == "__main__":
    run_reporting_errors(main)
