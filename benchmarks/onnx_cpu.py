#!/usr/bin/env python
"""Tiles per second of TransLandSeg (SAM + ATL, prompt-free) on the CPU: torch eager fp32 beside onnxruntime fp32 and
int8 (`translandseg export`, `--quantize int8`), with the achieved GFLOP/s and their share of the CPU's peak.

    python benchmarks/onnx_cpu.py --image_size 256 --batch_size 1 4 --repeats 3
    python benchmarks/onnx_cpu.py --image_size 1024 --batch_size 1 4 --repeats 1 --warmup 0

SAM ViT-B's shape with random weights (drawn at 0.02, so the encoder sees the image; nothing is downloaded), the
model's own input side. FLOPs are counted on one torch forward pass of one tile (torch.utils.flop_counter: matmuls,
convolutions, attention; 2 per multiply-add) and hold for every backend. The peak is worked out from /proc/cpuinfo
and printed with its assumptions; the max |probability difference| is each backend's against torch on one batch.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import tempfile
import time
from pathlib import Path

BACKENDS = ("torch fp32", "onnxruntime fp32", "onnxruntime int8")
FMA_UNITS = 2  # FMA pipes per core on current x86 server cores (Zen 4/5, Ice Lake and later Xeons): an assumption


def cpu_peak() -> tuple[float, str]:
    """cores x FMA units x fp32 lanes x 2 FLOPs x clock, from /proc/cpuinfo; (GFLOP/s, how it was worked out)."""
    text = Path("/proc/cpuinfo").read_text()
    flags = set(next(line for line in text.splitlines() if line.startswith("flags")).split(":")[1].split())
    mhz = max(float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz"))
    cores = len(os.sched_getaffinity(0))
    lanes, isa = (16, "avx512f") if "avx512f" in flags else (8, "avx2+fma") if {"avx2", "fma"} <= flags else (4, "sse")
    peak = cores * FMA_UNITS * lanes * 2 * mhz / 1000
    how = (f"{cores} cores x {FMA_UNITS} FMA units (assumed) x {lanes} fp32 lanes ({isa}) x 2 FLOPs per FMA x "
           f"{mhz / 1000:.3f} GHz (cpu MHz) = {peak:.0f} GFLOP/s; a core that runs AVX-512 on 256-bit halves (Zen 4) "
           "has half that")
    return peak, how


def vit_b(size: int):
    import torch
    from transformers import SamModel

    from translandseg_hf import TransLandSegModel
    from translandseg_hf.sam_configs import sam_config

    torch.manual_seed(0)
    sam = SamModel(sam_config("vit_b", size))
    with torch.no_grad():
        for module in sam.vision_encoder.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                torch.nn.init.normal_(module.weight, std=0.02)
    return TransLandSegModel.from_sam(sam).eval()


def flops_per_tile(model, size: int) -> tuple[float, "object"]:
    """FLOPs of one tile's forward pass, and the torch probabilities of that seeded tile (for the differences)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:  # not under no_grad: its module tracker then fails on the prompt encoder's outputs (torch 2.14)
        logits = model(seeded_tiles(1, size)).logits
    return counter.get_total_flops(), torch.sigmoid(logits).detach().numpy()


def seeded_tiles(batch: int, size: int):
    import torch

    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def time_backend(model, batch: int, size: int, warmup: int, repeats: int) -> float:
    """The fastest of `repeats` calls on `batch` tiles, after `warmup` untimed calls: other processes share this
    machine's cores, and the fastest call is the one they disturbed least."""
    import torch

    tiles = seeded_tiles(batch, size)
    times = []
    with torch.no_grad():
        for index in range(warmup + repeats):
            start = time.perf_counter()
            model(tiles)
            if index >= warmup:
                times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image_size", type=int, nargs="+", default=[256, 1024], help="input sides, smallest first")
    parser.add_argument("--batch_size", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per configuration (the fastest reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (0 at 1024 px saves minutes)")
    args = parser.parse_args()

    import numpy as np
    import onnxruntime
    import torch

    from translandseg_hf.onnx_backend import OnnxSegmentationModel, export_onnx

    peak, how = cpu_peak()
    print(f"CPU peak: {how}")
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__} "
          f"(as many intra-op threads); SAM ViT-B + ATL (translandseg preset), random weights; fastest of "
          f"{args.repeats} call(s) after {args.warmup} warm-up(s)\n")
    rows = []
    for size in args.image_size:
        model = vit_b(size)
        flops, reference = flops_per_tile(model, size)
        with tempfile.TemporaryDirectory() as scratch:
            folders = {}
            for name, quantize in (("onnxruntime fp32", None), ("onnxruntime int8", "int8")):
                start = time.perf_counter()
                folders[name] = export_onnx(model, Path(scratch) / name.replace(" ", "-"), quantize=quantize,
                                            check=False)
                print(f"exported {name} at {size} px in {time.perf_counter() - start:.0f} s "
                      f"({sum(p.stat().st_size for p in folders[name].iterdir()) / 2**20:.0f} MB)")
            for name in BACKENDS:  # one session at a time: each keeps its memory arena's peak until it is deleted
                backend = model if name == "torch fp32" else OnnxSegmentationModel(folders[name])
                with torch.no_grad():
                    difference = float(np.abs(torch.sigmoid(backend(seeded_tiles(1, size)).logits).numpy()
                                              - reference).max())
                for batch in args.batch_size:
                    seconds = time_backend(backend, batch, size, args.warmup, args.repeats)
                    rows.append(dict(size=size, batch=batch, backend=name, seconds=seconds, difference=difference,
                                     gflops=flops * batch / seconds / 1e9))
                    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
                    print(f"  {size} px, batch {batch}, {name}: {seconds:.2f} s per call (process peak RSS so far "
                          f"{peak_rss:.1f} GiB)", flush=True)
                del backend
                gc.collect()
        print(f"{size} px: {flops / 1e9:.1f} GFLOP per tile (FlopCounterMode, one torch forward)\n")
    print_table(rows, peak)


def print_table(rows: list[dict], peak: float) -> None:
    torch_seconds = {(r["size"], r["batch"]): r["seconds"] for r in rows if r["backend"] == "torch fp32"}
    print("| input (px) | batch | backend | s per call | tiles/s | x torch | GFLOP/s | of peak | max abs prob diff |\n"
          "|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = torch_seconds[(r["size"], r["batch"])] / r["seconds"]
        print(f"| {r['size']} | {r['batch']} | {r['backend']} | {r['seconds']:.2f} | {r['batch'] / r['seconds']:.3g} "
              f"| {ratio:.2f} | {r['gflops']:.0f} | {r['gflops'] / peak:.0%} | {r['difference']:.2g} |")


if __name__ == "__main__":
    main()
