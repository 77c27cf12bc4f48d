#!/usr/bin/env python
"""Speed of the data pipeline: synthetic scenes, building and reloading the Arrow datasets, and a DataLoader epoch.

    python benchmarks/data_loading.py                                      # synthetic data only, CPU
    python benchmarks/data_loading.py --bijie ../shared/data/bijie         # also a Bijie folder
    python benchmarks/data_loading.py --num_samples 200 --image_size 1024 --num_workers 4

All in a fresh datasets cache in a temporary folder; nothing is downloaded. The rows:
- one synthetic scene (`make_synthetic_scene`, what the demo and the tests draw), median over `--repeats` seeds;
- `load_synthetic` (and `load_bijie` with `--bijie`) with an empty cache (decode, check, write Arrow), then again with
  the cache filled (what every later run pays);
- a DataLoader pass over the prepared train split, plain and with the training augmentation, at the model's input
  size (`SamTransform`: decode, resize, normalise), median of `--passes`. Compare these with the training step's time
  (benchmarks/train_step.py) to see whether data loading can hold the accelerator back.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import datasets
import torch

from translandseg_hf.data import collate_fn, load_bijie, load_synthetic, make_synthetic_scene, prepare_dataset


def timed(function, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def scene_seconds(size: int, repeats: int) -> float:
    """Median seconds per `make_synthetic_scene(size)` over `repeats` seeds, after one warm-up."""
    make_synthetic_scene(size, seed=repeats)  # a seed not timed
    times = []
    for seed in range(repeats):
        _, seconds = timed(make_synthetic_scene, size, seed=seed)
        times.append(seconds)
    return statistics.median(times)


def epoch_seconds(split: datasets.Dataset, batch_size: int, num_workers: int, passes: int) -> float:
    """Median seconds of `passes` passes over `split` (a prepared split) in batches, as the training loop reads it.

    The first pass in a process is slower (allocating the large resized tensors): the median leaves it out.
    """
    loader = torch.utils.data.DataLoader(split, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_fn)
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        for _ in loader:
            pass
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def loader_rows(name: str, load, args: argparse.Namespace, cache: Path) -> list[tuple[str, int, float]]:
    """Build (empty cache), reload (filled cache), then one DataLoader pass with and without augmentation."""
    dataset_dict, cold = timed(load, cache)
    _, warm = timed(load, cache)
    count = sum(split.num_rows for split in dataset_dict.values())
    rows = [(f"{name}: build (empty cache)", count, cold), (f"{name}: reload (cache filled)", count, warm)]
    for augment, label in ((False, "plain"), (True, "augmented")):
        train = prepare_dataset(dataset_dict, image_size=args.image_size, augment_train=augment, seed=0)["train"]
        seconds = epoch_seconds(train, args.batch_size, args.num_workers, args.passes)
        label = f"{name}: DataLoader pass, train split, {label}, {args.image_size} px (median of {args.passes})"
        rows.append((label, train.num_rows, seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene_sizes", default="64,256,512", help="comma-separated synthetic scene sides (px)")
    parser.add_argument("--repeats", type=int, default=10, help="synthetic scenes timed per size (median reported)")
    parser.add_argument("--num_samples", type=int, default=100, help="size of the synthetic dataset")
    parser.add_argument("--synthetic_size", type=int, default=256, help="side of the synthetic dataset's scenes (px)")
    parser.add_argument("--bijie", type=Path, help="a Bijie dataset folder to time as well (e.g. ../shared/data/bijie)")
    parser.add_argument("--image_size", type=int, default=1024, help="the model's input size the transform resizes to")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--num_workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--passes", type=int, default=3, help="DataLoader passes timed per setting (median reported)")
    args = parser.parse_args()
    datasets.disable_progress_bars()

    rows = []
    for size in (int(s) for s in args.scene_sizes.split(",")):
        rows.append((f"synthetic scene, {size} px (median of {args.repeats})", 1, scene_seconds(size, args.repeats)))
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder)
        rows += loader_rows(
            f"load_synthetic ({args.synthetic_size} px)",
            lambda c: load_synthetic(num_samples=args.num_samples, image_size=args.synthetic_size, seed=0,
                                     cache_dir=c / "synthetic"),
            args, cache,
        )  # fmt: skip
        if args.bijie:
            rows += loader_rows("load_bijie", lambda c: load_bijie(args.bijie, cache_dir=c / "bijie"), args, cache)

    print(f"data loading, batch {args.batch_size}, {args.num_workers} DataLoader worker(s), "
          f"{torch.get_num_threads()} torch thread(s)")
    print("| step | items | seconds | ms per item | items per second |")
    print("|---|---:|---:|---:|---:|")
    for label, count, seconds in rows:
        print(f"| {label} | {count} | {seconds:.3f} | {1000 * seconds / count:.1f} | {count / seconds:.1f} |")


if __name__ == "__main__":
    main()
