#!/usr/bin/env python
"""Peak memory of `translandseg stack` on a whole Sentinel-2 tile: a synthetic product (a folder of per-band
GeoTIFFs B01.tif ... B12.tif at their native 10/20/60 m, tiled and DEFLATE-compressed, smooth uint16 digital
numbers) and a 30 m DEM, stacked for the 14-band Landslide4Sense contract (12 bands, slope and elevation).

    python benchmarks/stack_memory.py --size 2048          # a quick look first
    python benchmarks/stack_memory.py --workdir /tmp/s2    # 10,980 x 10,980 px, the data reused if present

The data is made in one child process and stacked by `python -m translandseg_hf.cli stack` in another, whose own
peak RSS (os.wait4) is reported, with the RSS of a child that only imports what the command imports. This process
stays small (no torch, no data): a child's ru_maxrss counts the memory it was forked with. Goal: well under
2 GB for a whole tile.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from translandseg_hf.geo.sentinel2.bands import BAND_RESOLUTION  # noqa: E402

CRS = "EPSG:32645"
ORIGIN = (300_000.0, 3_100_020.0)  # a UTM 45N tile corner (T45RUL's), so the grid is a real one
ORDER = (3, 2, 1, 0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)  # RGB first, as the 14-band recipe trains
BANDS = [f"B{n}" for n in range(1, 13)]  # B8A is not in the contract, so not in the product
DEM_RESOLUTION, DEM_MARGIN = 30.0, 600.0  # metres; the DEM overhangs the tile so its slope has neighbours
WINDOW_ROWS = 1024


def smooth_field(rows: np.ndarray, cols: np.ndarray, metres: float, seed: int) -> np.ndarray:
    """A deterministic smooth field in [-1, 1] of ground coordinates (so bands of any resolution agree): a few
    sines of different wavelengths, like fields and relief, which compress as real scenes do (noise would not)."""
    y, x = np.meshgrid(rows * metres, cols * metres, indexing="ij")
    phase = seed * 0.7
    return (0.5 * np.sin(x / 3100.0 + phase) * np.cos(y / 2300.0 - phase)
            + 0.3 * np.sin((x + y) / 610.0 + 2 * phase) + 0.2 * np.cos((x - 2 * y) / 170.0 + phase))


def write_band(path: Path, band: str, size: int) -> None:
    """One band at its native resolution: uint16 DNs around 1000 + reflectance x 10,000 (baseline 04.00 scale)."""
    metres = BAND_RESOLUTION[band]
    side = size * 10 // metres
    profile = dict(driver="GTiff", height=side, width=side, count=1, dtype="uint16", nodata=0, crs=CRS,
                   transform=from_origin(*ORIGIN, metres, metres), tiled=True, blockxsize=512, blockysize=512,
                   compress="deflate", BIGTIFF="IF_SAFER")
    seed = BANDS.index(band)
    with rasterio.open(path, "w", **profile) as dataset:
        for top in range(0, side, WINDOW_ROWS):
            height = min(WINDOW_ROWS, side - top)
            field = smooth_field(np.arange(top, top + height), np.arange(side), metres, seed)
            dn = 1000 + (30 + 10 * field if band == "B10" else 1500 + 150 * seed + 1200 * field)  # B10: cirrus
            dataset.write(dn.astype(np.uint16)[None], window=Window(0, top, side, height))


def write_dem(path: Path, size: int) -> None:
    """Elevation in metres at 30 m, covering the tile with a margin: smooth relief of 200-2,800 m."""
    side = int(np.ceil((size * 10 + 2 * DEM_MARGIN) / DEM_RESOLUTION))
    profile = dict(driver="GTiff", height=side, width=side, count=1, dtype="float32", nodata=-9999.0, crs=CRS,
                   transform=from_origin(ORIGIN[0] - DEM_MARGIN, ORIGIN[1] + DEM_MARGIN, DEM_RESOLUTION,
                                         DEM_RESOLUTION), tiled=True, blockxsize=512, blockysize=512,
                   compress="deflate", predictor=3)
    with rasterio.open(path, "w", **profile) as dataset:
        for top in range(0, side, WINDOW_ROWS):
            height = min(WINDOW_ROWS, side - top)
            field = smooth_field(np.arange(top, top + height), np.arange(side), DEM_RESOLUTION, 99)
            dataset.write((1500 + 1300 * field).astype(np.float32)[None], window=Window(0, top, side, height))


def write_product(folder: Path, size: int) -> tuple[Path, Path]:
    """The product folder and the DEM, written once per size and reused (a whole tile takes minutes)."""
    product, dem = folder / f"product_{size}", folder / f"dem_{size}.tif"
    done = product / ".complete"
    if not done.exists():  # in a fresh process, for the reason `write_model` gives
        maker = multiprocessing.get_context("spawn").Process(target=write_bands_and_dem, args=(product, dem, size))
        maker.start()
        maker.join()
        if maker.exitcode != 0:
            raise SystemExit(f"making the product failed (exit code {maker.exitcode})")
        done.touch()
    return product, dem


def write_bands_and_dem(product: Path, dem: Path, size: int) -> None:
    product.mkdir(parents=True, exist_ok=True)
    for band in BANDS:
        write_band(product / f"B{int(band[1:]):02d}.tif", band, size)
    write_dem(dem, size)


MODEL_CODE = """
import sys
from translandseg_hf.data.landslide4sense import LANDSLIDE4SENSE_MEAN, LANDSLIDE4SENSE_STD
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.geo.sentinel2.bands import landslide4sense_source
order, rest = {order}, {order}[3:]
TransLandSegImageProcessor(
    bands=[c + 1 for c in order], scale="divisor", divisor=10, tile_size=128, ground_resolution=10,
    band_mean=[LANDSLIDE4SENSE_MEAN[c] for c in rest], band_std=[LANDSLIDE4SENSE_STD[c] for c in rest],
    **landslide4sense_source(order)).save_pretrained(sys.argv[1])
"""


def write_model(folder: Path) -> Path:
    """A model folder holding only the 14-band Landslide4Sense contract: all that `stack` reads of a model. It is
    written in a child process: this one must not import torch, because a child's peak RSS (ru_maxrss) includes the
    memory it was forked with, so a heavy parent would put a floor under every figure measured."""
    from translandseg_hf.geo.sentinel2.stack import recipe_of
    from translandseg_hf.saved_contract import model_contract

    model = folder / "model"
    subprocess.run([sys.executable, "-c", MODEL_CODE.format(order=ORDER), str(model)], cwd=REPO, check=True)
    recipe_of(model_contract(model), folder)  # the command's own read of the contract, here outside the timing
    return model


def measured(command: list[str]) -> tuple[float, float, int]:
    """Run `command` as a child: (seconds, its peak RSS in MiB, exit status). os.wait4 reports that one child's
    rusage, so no other child of this process counts."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, child.returncode


IMPORTS = ("import translandseg_hf.cli; "  # what `translandseg stack` imports (no torch: it reads the JSON contract)
           "from translandseg_hf.geo.sentinel2.stack import Sentinel2Stack; "
           "from translandseg_hf.saved_contract import model_contract; "
           "from translandseg_hf.geo.sentinel2.write import write_stack")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_980, help="The 10 m bands' side in pixels (10,980: a tile).")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/stack_memory"), help="Where the synthetic "
                        "product is kept (several GB at full size: delete it after).")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    product, dem = write_product(args.workdir, args.size)
    print(f"product: {product} ({time.perf_counter() - start:.0f} s to make or find)", flush=True)
    model = write_model(args.workdir)
    output = args.workdir / f"stack_{args.size}.tif"
    command = [sys.executable, "-m", "translandseg_hf.cli", "stack", "--model", str(model), "--sentinel2",
               str(product), "--dem", str(dem), "--offset", "-1000", "--output", str(output), "--overwrite"]
    print("$", shlex.join(command), flush=True)
    _, import_mb, _ = measured([sys.executable, "-c", IMPORTS])
    seconds, peak_mb, status = measured(command)
    if status != 0:
        raise SystemExit(f"the stack command failed with exit status {status}")
    with rasterio.open(output) as stack:
        bands, side = stack.count, f"{stack.width:,} x {stack.height:,}"
    megapixels = args.size * args.size / 1e6
    print("| stack (px) | bands | seconds | peak RSS (MiB) | RSS with the imports only (MiB) | output (MiB) | MP/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {side} | {bands} | {seconds:.1f} | {peak_mb:.0f} | {import_mb:.0f} | "
          f"{output.stat().st_size / 2**20:,.0f} | {megapixels / seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
