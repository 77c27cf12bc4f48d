#!/usr/bin/env python
"""Peak memory of calibrating int8 (`translandseg export --quantize int8 --calibration DATA`) with onnxruntime's
calibration session in its default order beside the order the package uses (`calibration.reductions_run_early`:
PRIORITY_BASED, each ReduceMin/ReduceMax run as soon as its tensor exists), and whether the two give the same int8
graph (every initializer, scales and zero points included, byte for byte).

    python benchmarks/calibration_memory.py --image_size 256 512 1024 --default_up_to 512

SAM ViT-B's shape with random weights (`onnx_cpu.random_sam`), exported fp32 once per side; each calibration runs
in a process of its own (as `export` runs it) on the same random tiles and reports its own peak resident memory
(ru_maxrss). `--default_up_to`: the largest side the default order is run at (it passed 24 GB at 1024 px on the
project's machine, where the system killed it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ORDERS = ("default", "priority")
# The calibration child as `export` runs it, with the package's order, or onnxruntime's default order for comparison;
# it prints its own peak resident memory (Linux: ru_maxrss in KiB).
CHILD = """
import contextlib, json, resource, sys
import translandseg_hf.onnx_backend.calibration as calibration
if sys.argv[1] == "default":
    calibration.reductions_run_early = contextlib.nullcontext
status = calibration.main(sys.argv[2:])
print(json.dumps({"status": status, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def export_fp32(size: int, folder: Path) -> Path:
    from onnx_cpu import random_sam

    from translandseg_hf.onnx_backend import export_onnx

    return Path(export_onnx(random_sam(size, "vit_b"), folder, check=False)) / "model.onnx"


def calibrate(order: str, source: Path, tiles: Path, target: Path) -> dict:
    answer = target.with_suffix(".json")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", CHILD, order, str(source), str(target), str(tiles), "pixel_values",
                           "3600", str(answer)], capture_output=True, text=True, timeout=7200)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        return {"order": order, "failed": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    child = json.loads(done.stdout.strip().splitlines()[-1])
    return {"order": order, "peak_gb": child["peak_kib"] * 1024 / 1e9, "seconds": seconds,
            "answer": json.loads(answer.read_text())}


def same_graph(first: Path, second: Path) -> bool:
    """Whether two int8 graphs hold the same initializers (weights, scales, zero points) and nodes."""
    import onnx

    a, b = (onnx.load(str(path)).graph for path in (first, second))
    return ([(t.name, t.raw_data) for t in a.initializer] == [(t.name, t.raw_data) for t in b.initializer]
            and [n.SerializeToString() for n in a.node] == [n.SerializeToString() for n in b.node])


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image_size", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--default_up_to", type=int, default=512, help="largest side run in the default order")
    parser.add_argument("--tiles", type=int, default=5, help="calibration tiles (as many held back are not used)")
    args = parser.parse_args()
    print("| side | order | peak (GB) | seconds | same int8 graph |\n|---|---|---|---|---|")
    for size in args.image_size:
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            source = export_fp32(size, scratch / "fp32")
            tiles = scratch / "tiles.npy"
            np.save(tiles, np.random.default_rng(0).standard_normal((args.tiles, 3, size, size)).astype(np.float32))
            orders = ORDERS if size <= args.default_up_to else ORDERS[1:]
            rows = [calibrate(order, source, tiles, scratch / f"{order}.onnx") for order in orders]
            same = same_graph(scratch / "default.onnx", scratch / "priority.onnx") if len(rows) == 2 else None
            for row in rows:
                if "failed" in row:
                    print(f"| {size} | {row['order']} | {row['failed']} | | |")
                    continue
                label = "n/a" if same is None else ("yes" if same else "NO")
                print(f"| {size} | {row['order']} | {row['peak_gb']:.2f} | {row['seconds']:.0f} | {label} |",
                      flush=True)


if __name__ == "__main__":
    main()
