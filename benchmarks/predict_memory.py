#!/usr/bin/env python
"""Peak memory of `translandseg predict` on scenes larger than memory: a mostly uniform 3-band GeoTIFF (tiled,
DEFLATE, cheap to make at any size) mapped by a model that computes nothing, so what is measured is the pipeline's
own memory: strips, blending, work files, COGs, polygons and the quicklook.

    python benchmarks/predict_memory.py --sizes 10000 20000 40000

The scene is made in one process and mapped in a fresh one, whose peak RSS is reported, with the mapping's own
memory: that peak minus the RSS once the package is imported and the (zero-cost) model made. Goals (issue 25): the
mapping's own memory at most 512 MiB at 10k, 20k and 40k px, growing by at most 10% from the smallest to the largest.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

BENCHMARKS = Path(__file__).parent


def uniform_scene(path: Path, size: int) -> None:
    """A size x size uint8 RGB GeoTIFF, one value with a bright square per 4096 px block: compresses to little."""
    profile = dict(driver="GTiff", height=size, width=size, count=3, dtype="uint8", crs="EPSG:32648",
                   transform=from_origin(500_000.0, 3_000_000.0, 0.8, 0.8), tiled=True, blockxsize=512,
                   blockysize=512, compress="deflate", BIGTIFF="YES")
    with rasterio.open(path, "w", **profile) as dataset:
        for top in range(0, size, 2048):
            height = min(2048, size - top)
            strip = np.full((3, height, size), 90, np.uint8)
            strip[0, : height // 4, ::4096] = 250
            dataset.write(strip, window=rasterio.windows.Window(0, top, size, height))


def _measure(scene: Path, output: Path, tile: int, queue) -> None:
    """In a fresh process: map the scene, report this process's peak RSS (and the RSS once the package is
    imported, which no scene size changes). Only this process imports torch: a child's ru_maxrss counts the memory
    it was forked with, so the parent stays small."""
    sys.path.insert(0, str(BENCHMARKS))
    from predict_scene import ZeroCostModel  # the same zero-cost model as the throughput benchmark

    from translandseg_hf.inference import PredictionOptions, predict_file

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = predict_file(ZeroCostModel(tile), scene, output, PredictionOptions(tile_size=tile))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"tiles": result.tiles, "seconds": seconds, "peak_mb": peak, "before_mb": before})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 40_000])
    parser.add_argument("--tile_size", type=int, default=1024)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    print("| scene (px) | megapixels | tiles | seconds | peak RSS (MiB) | RSS with the package imported (MiB) | "
          "mapping's own (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    own = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory(dir=Path.cwd()) as folder:
            scene = Path(folder) / "scene.tif"
            maker = context.Process(target=uniform_scene, args=(scene, size))  # its memory is not the pipeline's
            maker.start()
            maker.join()
            queue = context.Queue()
            mapper = context.Process(target=_measure, args=(scene, Path(folder) / "out", args.tile_size, queue))
            mapper.start()
            row = queue.get()
            mapper.join()
        own.append(row["peak_mb"] - row["before_mb"])
        print(f"| {size:,} x {size:,} | {size * size / 1e6:,.0f} | {row['tiles']} | {row['seconds']:.1f} | "
              f"{row['peak_mb']:.0f} | {row['before_mb']:.0f} | {own[-1]:.0f} |", flush=True)
    growth = 100.0 * (own[-1] - own[0]) / own[0]
    print(f"mapping's own memory: at most {max(own):.0f} MiB (aim: 512 MiB or less: "
          f"{'met' if max(own) <= 512 else 'missed'}); {growth:+.1f}% from {args.sizes[0]:,} to {args.sizes[-1]:,} px "
          f"(aim: at most +10%: {'met' if growth <= 10 else 'missed'})")


if __name__ == "__main__":
    main()
