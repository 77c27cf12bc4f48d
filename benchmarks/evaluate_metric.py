#!/usr/bin/env python
"""Speed of the `evaluate` module (`landslide_segmentation_metric`) against the package's own `ConfusionCounter`.

    python benchmarks/evaluate_metric.py                                   # 32 masks of 256 x 256, 9 rounds
    python benchmarks/evaluate_metric.py --num_masks 64 --size 512 --rounds 15
    python benchmarks/evaluate_metric.py --module /tmp/old_metric          # another copy of the module folder

The same random 0/1 uint8 masks are scored three ways, interleaved round by round (A, B, C, A, B, C, ...) so that a
change in the machine's load hits all alike; each row is the median over the rounds:
- counter, per mask: `ConfusionCounter.update` on each mask as a tensor (as a loop over images would);
- counter, one batch: one `update` on the stacked masks (as the evaluation loop does per batch);
- the module: `metric.compute(predictions=, references=)` of the module kept in memory (Arrow writing included).
The ratio printed is module / counter per mask and module / counter in one batch; `uptime`'s load is printed beside
them, since on a shared machine the absolute times move with it.

Measured 2026-12-06 on a shared machine (2 CPU cores, `uptime` load average 11-12 from other jobs, so absolute times
moved 2-3x between runs: compare the ratios of one run), defaults (32 masks of 256 x 256, 9 rounds), two runs each,
the old module run with `--module` on a copy of it from git:
- before (masks read back as nested Python lists, counted one by one as int64 tensors): module / counter per mask
  22.2x and 9.0x, / counter in one batch 28.9x and 31.5x (issue 38 measured 7x on a quieter machine);
- now (masks read as Arrow columns, checked to be 0/1 and counted in one pass): module / counter per mask 0.87x and
  1.30x, / counter in one batch 1.56x and 1.67x (the rest is `evaluate` writing the masks to Arrow).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import evaluate
import numpy as np
import torch

from translandseg_hf.metrics import ConfusionCounter, metric_path


def counter_per_mask(predictions, references) -> dict:
    counter = ConfusionCounter()
    for prediction, reference in zip(predictions, references):
        counter.update(torch.from_numpy(prediction), torch.from_numpy(reference))
    return counter.scores()


def counter_one_batch(predictions, references) -> dict:
    counter = ConfusionCounter()
    counter.update(torch.from_numpy(np.stack(predictions)), torch.from_numpy(np.stack(references)))
    return counter.scores()


def interleaved(functions: dict, rounds: int) -> dict[str, float]:
    """Median seconds of each function, the functions run in turn in every round after one warm-up round."""
    times = {name: [] for name in functions}
    for round_index in range(rounds + 1):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            if round_index:  # round 0 warms up (imports, allocations)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_masks", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--module", default=metric_path(), help="the evaluate module's folder (default: the package's)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.size, args.size)
    predictions = [(rng.random(shape) > 0.7).astype(np.uint8) for _ in range(args.num_masks)]
    references = [(rng.random(shape) > 0.8).astype(np.uint8) for _ in range(args.num_masks)]
    metric = evaluate.load(args.module, keep_in_memory=True)
    expected = counter_per_mask(predictions, references)
    scores = metric.compute(predictions=predictions, references=references)
    assert scores == expected, (scores, expected)  # the same figures, or timing them means nothing
    medians = interleaved({
        "counter, per mask": lambda: counter_per_mask(predictions, references),
        "counter, one batch": lambda: counter_one_batch(predictions, references),
        "evaluate module": lambda: metric.compute(predictions=predictions, references=references),
    }, args.rounds)
    load = os.getloadavg()
    print(f"{args.num_masks} masks of {args.size} x {args.size}, median of {args.rounds} interleaved rounds, "
          f"torch threads {torch.get_num_threads()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for name, seconds in medians.items():
        print(f"{name:>20}: {1000 * seconds:8.1f} ms")
    module = medians["evaluate module"]
    print(f"module / counter per mask: {module / medians['counter, per mask']:.2f}x; "
          f"module / counter in one batch: {module / medians['counter, one batch']:.2f}x")


if __name__ == "__main__":
    main()
