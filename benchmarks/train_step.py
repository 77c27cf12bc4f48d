#!/usr/bin/env python
"""Time and peak memory of one TransLandSeg training step beside plain SAM's forward pass.

    python benchmarks/train_step.py --architecture vit_b --image_size 512 --batch_size 1 --steps 3

Each measurement runs in a fresh process, so its peak memory (max RSS on a CPU, max allocated on a GPU) is its own.
Backward through the frozen encoder needs input gradients only, so a step costs about 2x the forward pass at best.
Weights are random (the architecture is what costs, not the values): nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import time


def _peak_memory_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _measure(kind: str, args: dict, queue) -> None:
    """One configuration: 'sam_forward', 'train_step' or 'train_step_checkpointed'."""
    import torch
    from transformers import SamModel

    from translandseg_hf import ATLConfig, TransLandSegModel
    from translandseg_hf.sam_configs import sam_config

    torch.manual_seed(0)
    device = args["device"]
    sam = SamModel(sam_config(args["architecture"], args["image_size"])).to(device)
    pixel_values = torch.randn(args["batch_size"], 3, args["image_size"], args["image_size"], device=device)
    labels = (torch.rand(args["batch_size"], 1, args["image_size"], args["image_size"], device=device) > 0.9).float()
    if kind == "sam_forward":
        sam.eval()

        def run():
            with torch.no_grad():
                sam(pixel_values=pixel_values, multimask_output=False)
    else:
        model = TransLandSegModel.from_sam(sam, ATLConfig.from_preset(args["preset"])).to(device).train()
        if kind == "train_step_checkpointed":
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)

        def run():
            model(pixel_values, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    run()  # warm-up (allocations, kernels)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args["steps"]):
        start = time.perf_counter()
        run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    queue.put({"kind": kind, "seconds": statistics.median(times), "peak_mb": _peak_memory_mb(device)})


def measure(kind: str, args: dict) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_measure, args=(kind, args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", default="vit_b", choices=["vit_b", "vit_l", "vit_h"])
    parser.add_argument("--image_size", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--preset", default="translandseg")
    parser.add_argument("--steps", type=int, default=3, help="timed repetitions (median reported) after a warm-up")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = vars(parser.parse_args())
    results = {kind: measure(kind, args) for kind in ("sam_forward", "train_step", "train_step_checkpointed")}
    forward = results["sam_forward"]["seconds"]
    print(f"SAM {args['architecture']} at {args['image_size']} px, batch {args['batch_size']}, preset "
          f"{args['preset']}, device {args['device']}, median of {args['steps']} after a warm-up")
    print("| measurement | seconds | x SAM forward | peak memory (MiB) |")
    print("|---|---:|---:|---:|")
    for kind, label in (("sam_forward", "plain SAM forward (no grad)"), ("train_step", "training step"),
                        ("train_step_checkpointed", "training step, gradient checkpointing")):
        result = results[kind]
        print(f"| {label} | {result['seconds']:.2f} | {result['seconds'] / forward:.2f} | {result['peak_mb']:.0f} |")
    if args["json"]:
        with open(args["json"], "w") as handle:
            json.dump({"args": args, "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
