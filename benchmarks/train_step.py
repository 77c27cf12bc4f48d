#!/usr/bin/env python
"""Time and peak memory of one TransLandSeg training step beside plain SAM's forward pass.

    python benchmarks/train_step.py --architecture vit_b --image_size 512 --batch_size 1 --steps 3
    python benchmarks/train_step.py --architecture vit_b --image_size 1024 256 --kinds train_step --steps 2
    python benchmarks/train_step.py --architecture vit_l --image_size 1024 256 --device cuda --precision bf16

Several sizes (the first is the reference) add a table of step time and peak memory at each size, with the ratios:
the cost of training at a native resolution (a 256 px input, as `from_sam(..., image_size=256)` resamples SAM to)
against the paper's 1024 px.

Each measurement runs in a fresh process, so its peak memory (max RSS on a CPU, max allocated on a GPU) is its own.
Backward through the frozen encoder needs input gradients only, so a step costs about 2x the forward pass at best.
Weights are random (the architecture is what costs, not the values): nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
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


def _current_memory_mb(device: str) -> float:
    import psutil
    import torch

    if device.startswith("cuda"):
        return torch.cuda.memory_allocated() / 2**20
    return psutil.Process().memory_info().rss / 2**20


def _measure(kind: str, args: dict, queue) -> None:
    """One configuration: 'sam_forward', 'train_step' or 'train_step_checkpointed'."""
    import torch
    from transformers import SamModel

    from translandseg_hf import ATLConfig, TransLandSegModel
    from translandseg_hf.sam_configs import sam_config

    torch.manual_seed(0)
    device = args["device"]
    size, extra = args["size"], args["bands"]
    sam = SamModel(sam_config(args["architecture"], size)).to(device)
    pixel_values = torch.randn(args["batch_size"], 3 + (0 if kind == "sam_forward" else extra), size, size,
                               device=device)
    labels = (torch.rand(args["batch_size"], 1, size, size, device=device) > 0.9).float()
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args["precision"]]
    autocast = torch.autocast(device.split(":")[0], dtype=dtype) if dtype else contextlib.nullcontext()
    if kind == "sam_forward":
        sam.eval()

        def run():
            with torch.no_grad(), autocast:
                sam(pixel_values=pixel_values, multimask_output=False)
    else:
        atl_config = ATLConfig.from_preset(args["preset"], extra_bands=extra)
        model = TransLandSegModel.from_sam(sam, atl_config).to(device).train()
        if kind == "train_step_checkpointed":
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)

        def run():
            with autocast:
                loss = model(pixel_values, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    loaded_mb = _current_memory_mb(device)  # model, inputs and optimiser built: what a step adds comes on top
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
    peak = _peak_memory_mb(device)
    queue.put({"kind": kind, "size": size, "seconds": statistics.median(times), "peak_mb": peak,
               "step_mb": peak - loaded_mb})


def measure(kind: str, args: dict) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_measure, args=(kind, args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


LABELS = {"sam_forward": "plain SAM forward (no grad)", "train_step": "training step",
          "train_step_checkpointed": "training step, gradient checkpointing"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", default="vit_b", choices=["vit_b", "vit_l", "vit_h"])
    parser.add_argument("--image_size", type=int, nargs="+", default=[512], help="one or more input sides")
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--preset", default="translandseg")
    parser.add_argument("--kinds", nargs="+", default=list(LABELS), choices=list(LABELS))
    parser.add_argument("--steps", type=int, default=3, help="timed repetitions (median reported) after a warm-up")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"], help="autocast dtype")
    parser.add_argument("--extra_bands", type=int, default=0,
                        help="also time the training step with this many bands beyond RGB (11: Landslide4Sense's 14)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = vars(parser.parse_args())
    results = {size: {kind: measure(kind, {**args, "size": size, "bands": 0}) for kind in args["kinds"]}
               for size in args["image_size"]}
    for size, by_kind in results.items():
        print_size_table(args, size, by_kind)
    if len(results) > 1:
        print_size_comparison(args, results)
    if args["extra_bands"]:
        print_band_comparison(args, results)
    if args["json"]:
        with open(args["json"], "w") as handle:
            json.dump({"args": args, "results": {str(k): v for k, v in results.items()}}, handle, indent=2)


def print_size_table(args: dict, size: int, by_kind: dict) -> None:
    forward = by_kind.get("sam_forward", {}).get("seconds")
    print(f"SAM {args['architecture']} at {size} px, batch {args['batch_size']}, preset {args['preset']}, device "
          f"{args['device']}, {args['precision']}, median of {args['steps']} after a warm-up")
    print("| measurement | seconds | x SAM forward | peak memory (MiB) | of which the step (MiB) |\n"
          "|---|---:|---:|---:|---:|")
    for kind, result in by_kind.items():
        ratio = f"{result['seconds'] / forward:.2f}" if forward else ""
        print(f"| {LABELS[kind]} | {result['seconds']:.2f} | {ratio} | {result['peak_mb']:.0f} | "
              f"{result['step_mb']:.0f} |")
    print()


def print_size_comparison(args: dict, results: dict) -> None:
    """Each measurement at each size against the first size: how many times cheaper in time and memory."""
    reference = args["image_size"][0]
    print(f"| measurement | input (px) | seconds | time: {reference} px / this | peak memory (MiB) | "
          f"peak: {reference} px / this | step memory (MiB) | step memory: {reference} px / this |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in args["kinds"]:
        base = results[reference][kind]
        for size in args["image_size"]:
            r = results[size][kind]
            print(f"| {LABELS[kind]} | {size} | {r['seconds']:.2f} | {base['seconds'] / r['seconds']:.1f}x | "
                  f"{r['peak_mb']:.0f} | {base['peak_mb'] / r['peak_mb']:.1f}x | {r['step_mb']:.0f} | "
                  f"{base['step_mb'] / max(r['step_mb'], 1.0):.1f}x |")


def print_band_comparison(args: dict, results: dict) -> None:
    """The training step with extra bands against the RGB step, at each size, in the same run."""
    print(f"\n| input (px) | RGB step (s) | RGB + {args['extra_bands']} bands step (s) | time ratio | "
          "RGB step memory (MiB) | with bands (MiB) | memory ratio |\n|---:|---:|---:|---:|---:|---:|---:|")
    for size in args["image_size"]:
        rgb = results[size].get("train_step") or measure("train_step", {**args, "size": size, "bands": 0})
        bands = measure("train_step", {**args, "size": size, "bands": args["extra_bands"]})
        print(f"| {size} | {rgb['seconds']:.2f} | {bands['seconds']:.2f} | {bands['seconds'] / rgb['seconds']:.3f} | "
              f"{rgb['step_mb']:.0f} | {bands['step_mb']:.0f} | {bands['step_mb'] / max(rgb['step_mb'], 1.0):.3f} |")


if __name__ == "__main__":
    main()
