"""Throughput of `translandseg predict` on a synthetic GeoTIFF scene: tiles/s, km2/h, and time spent outside the model.

    python benchmarks/predict_scene.py --size 2048 --resolution 0.8            # tiny random SAM (64 px input), CPU
    python benchmarks/predict_scene.py --model runs/demo/model --size 2048    # the demo's trained model
    python benchmarks/predict_scene.py --model user/repo --size 8192 --device cuda --precision bf16
    python benchmarks/predict_scene.py --model zero-cost --size 8192     # the pipeline alone, serial vs pipelined
    python benchmarks/predict_scene.py --model sleep:auto --size 8192    # a model as slow as the pipeline

"Outside the model" is everything but `model(pixel_values)`: reading, scaling, tiling, blending, writing the rasters,
polygons and the quicklook. The scene is a mosaic of the demo's synthetic landslide scenes, so the demo model maps
landslides on it; the untrained tiny SAM predicts salt-and-pepper masks instead, the worst case for polygons.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from types import SimpleNamespace
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin

from translandseg_hf.data import make_synthetic_scene
from translandseg_hf.inference import PredictionOptions, load_model, predict_file
from translandseg_hf.inference.options import DEFAULT_OVERLAP_DIVISOR
from translandseg_hf.inference.stages import STAGES


def synthetic_scene(path: Path, size: int, resolution: float, seed: int = 0, patch: int = 64) -> None:
    """A size x size uint8 RGB GeoTIFF (UTM 48N): a mosaic of the demo's synthetic landslide scenes (`patch` px
    each, the demo model's training size), written in strips of rows so the scene never sits in memory whole."""
    profile = dict(
        driver="GTiff", height=size, width=size, count=3, dtype="uint8", crs="EPSG:32648",
        transform=from_origin(500_000.0, 3_000_000.0, resolution, resolution), tiled=True, blockxsize=256,
        blockysize=256, compress="deflate",
    )
    columns = -(-size // patch)
    with rasterio.open(path, "w", **profile) as dataset:
        for row, top in enumerate(range(0, size, patch)):
            scenes = [make_synthetic_scene(patch, seed=seed * 1_000_003 + row * columns + column)[0]
                      for column in range(columns)]
            strip = np.concatenate(scenes, axis=1)[: min(patch, size - top), :size]  # (h, W, 3)
            window = rasterio.windows.Window(0, top, size, strip.shape[0])
            dataset.write(np.ascontiguousarray(strip.transpose(2, 0, 1)), window=window)


def fast_scene(path: Path, size: int, resolution: float) -> None:
    """A size x size uint8 RGB GeoTIFF of smooth gradients and noise, written in strips: for the pipeline alone."""
    profile = dict(driver="GTiff", height=size, width=size, count=3, dtype="uint8", crs="EPSG:32648",
                   transform=from_origin(500_000.0, 3_000_000.0, resolution, resolution), tiled=True,
                   blockxsize=256, blockysize=256, compress="deflate")
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dataset:
        for top in range(0, size, 512):
            height = min(512, size - top)
            ramp = (np.arange(size)[None, :] * 255 // size + np.arange(top, top + height)[:, None] * 97 // size) % 256
            strip = np.stack([ramp, ramp[::-1], 255 - ramp]).astype(np.uint8)
            strip = strip + rng.integers(0, 12, strip.shape, dtype=np.uint8)
            dataset.write(strip, window=rasterio.windows.Window(0, top, size, height))


class ZeroCostModel(torch.nn.Module):
    """A model that computes nothing (zero logits), optionally after sleeping a fixed time per batch as a GPU would:
    what remains is the pipeline around the model."""

    def __init__(self, image_size: int, sleep: float = 0.0):
        super().__init__()
        self.image_size, self.sleep = image_size, sleep
        self.register_buffer("anchor", torch.zeros(1))

    def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        if self.sleep:
            time.sleep(self.sleep)
        return SimpleNamespace(logits=torch.zeros(pixel_values.shape[0], 1, *pixel_values.shape[-2:]))


def bare_io_seconds(scene: Path, folder: Path) -> float:
    """Read the scene once and write one float32 and one uint8 tiled, DEFLATE GeoTIFF of its size, strip by strip."""
    start = time.perf_counter()
    with rasterio.open(scene) as source:
        profile = dict(driver="GTiff", height=source.height, width=source.width, count=1, tiled=True,
                       blockxsize=256, blockysize=256, compress="deflate", crs=source.crs, transform=source.transform)
        with rasterio.open(folder / "f.tif", "w", dtype="float32", predictor=3, **profile) as floats, \
                rasterio.open(folder / "u.tif", "w", dtype="uint8", **profile) as bytes_:
            for top in range(0, source.height, 1024):
                window = rasterio.windows.Window(0, top, source.width, min(1024, source.height - top))
                band = source.read(1, window=window)
                floats.write(band.astype(np.float32) / 255, 1, window=window)
                bytes_.write((band > 127).astype(np.uint8), 1, window=window)
    return time.perf_counter() - start


def run(model, scene: Path, folder: Path, options: PredictionOptions, device: str, repeats: int = 1):
    """The run with the median time of `repeats` (this 2-core machine's timings vary by 20% from run to run)."""
    results = []
    for _ in range(repeats):
        shutil.rmtree(folder, ignore_errors=True)
        results.append(predict_file(model, scene, folder, options, device=device))
    return sorted(results, key=lambda result: result.seconds)[len(results) // 2]


def pipeline_report(args, scene: Path, folder: Path) -> None:
    """`--model zero-cost` or `sleep:SECONDS|auto`: megapixels per second of the pipeline, against bare I/O, serial
    (before) and pipelined (after) in one run; with a sleeping model, the overlap efficiency."""
    megapixels = args.size * args.size / 1e6
    bare = sorted(bare_io_seconds(scene, folder) for _ in range(args.repeats))[args.repeats // 2]
    print(f"scene: {args.size} x {args.size} px ({megapixels:.1f} MP), tiles of {args.tile_size} px, batch "
          f"{args.batch_size}; medians of {args.repeats} runs; bare I/O (read once, write float32 + uint8 tiled "
          f"GeoTIFFs): {bare:.2f} s")
    print("| model | I/O | total (s) | in the model (s) | pipeline MP/s | x bare I/O | overlap efficiency |")
    print("|---|---|---:|---:|---:|---:|---:|")
    zero = ZeroCostModel(args.tile_size)
    pipeline, breakdown = {}, {}
    for pipelined in (False, True):
        options = PredictionOptions(batch_size=args.batch_size, pipelined=pipelined, tile_size=args.tile_size)
        result = run(zero, scene, folder / "out", options, args.device, args.repeats)
        pipeline[pipelined] = result.seconds
        breakdown[f"zero-cost, {'pipelined' if pipelined else 'serial'}"] = result
        print(f"| zero-cost | {'pipelined' if pipelined else 'serial'} | {result.seconds:.2f} | "
              f"{result.seconds_in_model:.2f} | {megapixels / result.seconds:.1f} | {result.seconds / bare:.2f} | |")
    if not args.model.startswith("sleep:"):
        print_stages(breakdown)
        return
    side = round(result.tiles ** 0.5)  # a square scene: as many tile rows as columns
    batches = side * -(-side // args.batch_size)
    value = args.model.split(":", 1)[1]
    sleep = pipeline[True] / batches if value == "auto" else float(value)
    for pipelined in (False, True):
        options = PredictionOptions(batch_size=args.batch_size, pipelined=pipelined, tile_size=args.tile_size)
        result = run(ZeroCostModel(args.tile_size, sleep), scene, folder / "out", options, args.device, args.repeats)
        efficiency = max(result.seconds_in_model, pipeline[pipelined]) / result.seconds
        breakdown[f"sleep, {'pipelined' if pipelined else 'serial'}"] = result
        print(f"| sleep {sleep:.3f} s/batch | {'pipelined' if pipelined else 'serial'} | {result.seconds:.2f} | "
              f"{result.seconds_in_model:.2f} | | | {efficiency:.2f} |")
    print_stages(breakdown)


def print_stages(results: dict) -> None:
    """Seconds per stage of each run (summed over threads, so they overlap), and the tail after the model."""
    print("\nwhere the seconds go (each stage summed over the threads that run it; stages overlap in time):")
    print("| stage | " + " | ".join(results) + " |")
    print("|---|" + "---:|" * len(results))
    for stage in STAGES:
        print(f"| {stage} | " + " | ".join(f"{result.stage_seconds[stage]:.2f}" for result in results.values()) + " |")
    print("| after the model's last batch | " + " | ".join(
        f"{result.seconds_after_model:.2f}" for result in results.values()) + " |")
    print("| total (wall) | " + " | ".join(f"{result.seconds:.2f}" for result in results.values()) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="A saved model folder or Hub id, zero-cost (computes nothing), or "
                        "sleep:SECONDS|auto (sleeps per batch; auto: as long as the pipeline). Default: a tiny SAM.")
    parser.add_argument("--size", type=int, default=2048, help="Scene side in pixels.")
    parser.add_argument("--resolution", type=float, default=0.8, help="Ground resolution in metres (Bijie: 0.8).")
    parser.add_argument("--tile_size", type=int, default=1024, help="Tile side for zero-cost and sleep models.")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="Runs per row of zero-cost and sleep models; the "
                        "median is reported.")
    parser.add_argument("--overlap", type=int, help="Tile overlap in pixels (default: tile / "
                        f"{DEFAULT_OVERLAP_DIVISOR}).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scene = Path(folder) / "scene.tif"
        if args.model and (args.model == "zero-cost" or args.model.startswith("sleep:")):
            fast_scene(scene, args.size, args.resolution)
            pipeline_report(args, scene, Path(folder))
            return
        model_report(args, scene, Path(folder))


def model_report(args, scene: Path, folder: Path) -> None:
    """A real model (or the tiny random SAM) on the synthetic landslide mosaic: tiles/s, km2/h, share outside."""
    if args.model:
        model = load_model(args.model)
    else:
        from transformers import SamModel

        from translandseg_hf import TransLandSegModel
        from translandseg_hf.sam_configs import tiny_sam_config

        torch.manual_seed(0)
        model = TransLandSegModel.from_sam(SamModel(tiny_sam_config()))
    model = model.to(args.device).eval()
    options = PredictionOptions(batch_size=args.batch_size, overlap=args.overlap, precision=args.precision)
    synthetic_scene(scene, args.size, args.resolution)
    result = predict_file(model, scene, folder / "out", options, device=args.device)
    area_km2 = (args.size * args.resolution) ** 2 / 1e6
    outside = result.seconds - result.seconds_in_model
    print(f"scene: {args.size} x {args.size} px at {args.resolution} m = {area_km2:.3f} km2; "
          f"model input {model.image_size} px; {result.tiles} tiles; device {args.device}, {args.precision}")
    print(f"total: {result.seconds:.2f} s; in the model: {result.seconds_in_model:.2f} s")
    print(f"tiles per second: {result.tiles / result.seconds:.2f}")
    print(f"km2 per hour: {area_km2 / result.seconds * 3600:.2f}")
    print(f"outside the model: {outside:.2f} s = {100 * outside / result.seconds:.1f}% of the whole")
    print(f"  after the model's last batch (COGs, the polygons' merge and files, quicklook): "
          f"{result.seconds_after_model:.2f} s = {100 * result.seconds_after_model / result.seconds:.1f}% of the whole")
    print_stages({"this run": result})


if __name__ == "__main__":
    main()
