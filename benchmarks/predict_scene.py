"""Throughput of `translandseg predict` on a synthetic GeoTIFF scene: tiles/s, km2/h, and time spent outside the model.

    python benchmarks/predict_scene.py --size 2048 --resolution 0.8            # tiny random SAM (64 px input), CPU
    python benchmarks/predict_scene.py --model runs/demo/model --size 2048    # the demo's trained model
    python benchmarks/predict_scene.py --model user/repo --size 8192 --device cuda --precision bf16

"Outside the model" is everything but `model(pixel_values)`: reading, scaling, tiling, blending, writing the rasters,
polygons and the quicklook. The scene is a mosaic of the demo's synthetic landslide scenes, so the demo model maps
landslides on it; the untrained tiny SAM predicts salt-and-pepper masks instead, the worst case for polygons.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin

from translandseg_hf.data import make_synthetic_scene
from translandseg_hf.inference import PredictionOptions, load_model, predict_file


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="A saved TransLandSeg folder or Hub id (default: a tiny random SAM).")
    parser.add_argument("--size", type=int, default=2048, help="Scene side in pixels.")
    parser.add_argument("--resolution", type=float, default=0.8, help="Ground resolution in metres (Bijie: 0.8).")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--overlap", type=int, help="Tile overlap in pixels (default: input size / 8).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    args = parser.parse_args()

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
    with tempfile.TemporaryDirectory() as folder:
        scene = Path(folder) / "scene.tif"
        synthetic_scene(scene, args.size, args.resolution)
        result = predict_file(model, scene, Path(folder) / "out", options, device=args.device)
    area_km2 = (args.size * args.resolution) ** 2 / 1e6
    outside = result.seconds - result.seconds_in_model
    print(f"scene: {args.size} x {args.size} px at {args.resolution} m = {area_km2:.3f} km2; "
          f"model input {model.image_size} px; {result.tiles} tiles; device {args.device}, {args.precision}")
    print(f"total: {result.seconds:.2f} s; in the model: {result.seconds_in_model:.2f} s")
    print(f"tiles per second: {result.tiles / result.seconds:.2f}")
    print(f"km2 per hour: {area_km2 / result.seconds * 3600:.2f}")
    print(f"outside the model: {outside:.2f} s = {100 * outside / result.seconds:.1f}% of the whole")
    rest = outside - result.seconds_in_polygons
    print(f"  of which polygons: {result.seconds_in_polygons:.2f} s; reading, tiling, blending, writing, quicklook: "
          f"{rest:.2f} s = {100 * rest / result.seconds:.1f}% of the whole")


if __name__ == "__main__":
    main()
