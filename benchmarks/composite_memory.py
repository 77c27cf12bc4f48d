"""Peak RSS of `geo.sentinel2.composite.composite` over a 50 km x 50 km AOI at 10 m from 4 synthetic L2A scenes.

    python benchmarks/composite_memory.py [--side 5000] [--folder /tmp/composite-bench]

Two tiles x two dates of RGB STAC items with SCL (one date cloudy over a corner) are written first, then the composite
runs in a fresh process, so its peak RSS (ru_maxrss) is the composite's alone. The issue asks for under 2 GiB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
DATES, TILES = 2, ("A", "B")


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def prepare(folder: Path, side: int) -> None:
    """The scenes: tile B starts a quarter of the side east of tile A, so they overlap by half a tile."""
    import numpy as np
    import pystac
    from helpers.rasters import write_raster
    from helpers.sentinel2 import GRID_10M, UTM_45N, write_stac_item
    from rasterio.transform import Affine

    yy, xx = np.mgrid[0:side, 0:side // 2 + side // 4]
    for date in range(DATES):
        for tile, first in zip(TILES, (0, side // 4)):
            path = folder / f"{tile}{date}" / "item.json"
            if path.exists():
                continue
            transform = GRID_10M @ Affine.translation(first, 0)
            dn = {band: ((yy + xx * (i + 1) + date * 7) % 3000 + 1200).astype(np.uint16)
                  for i, band in enumerate(("B2", "B3", "B4"))}
            write_stac_item(path, dn, UTM_45N, transform)
            scl = np.full((side // 2, xx.shape[1] // 2), 4, np.uint8)
            scl[: side // 4, : side // 8] = 9 if date == 0 else 4  # a cloud (class 9) on the first date only
            write_raster(path.parent / "SCL.tif", scl, crs=UTM_45N, transform=transform @ Affine.scale(2), nodata=None)
            item = pystac.Item.from_file(str(path))
            item.add_asset("scl", pystac.Asset(href="./SCL.tif", media_type=pystac.MediaType.COG, roles=["data"]))
            item.save_object(include_self_link=False, dest_href=str(path))


def run(folder: Path, side: int) -> None:
    import pystac
    import shapely
    from helpers.sentinel2 import GRID_10M, UTM_45N
    from rasterio.warp import transform_bounds

    from translandseg_hf.geo.aoi import Aoi
    from translandseg_hf.geo.sentinel2.composite import composite
    from translandseg_hf.geo.sentinel2.stack import StackRecipe
    from translandseg_hf.geo.stac_search import Scene

    scenes = []
    for date in range(DATES):
        for tile in TILES:
            item = pystac.Item.from_file(str(folder / f"{tile}{date}" / "item.json"))
            scenes.append(Scene(f"{tile}{date}", dt.datetime(2023, 1, 1 + date, tzinfo=dt.timezone.utc), "s2a", 1.0,
                                shapely.box(*item.bbox), item))
    inner = (GRID_10M.c + 100, GRID_10M.f - 10 * side + 100, GRID_10M.c + 10 * side - 100, GRID_10M.f - 100)
    aoi = Aoi(shapely.box(*transform_bounds(UTM_45N, "EPSG:4326", *inner)), "bench")
    contract = StackRecipe(("B4", "B3", "B2"), (10000.0, 10000.0, 10000.0))
    before, start = peak_gib(), time.perf_counter()
    result = composite(scenes, aoi, contract, folder / "out", ground_resolution=10, cloud_mask_kind="scl")
    print(f"composite: grid {result.grid.width} x {result.grid.height} px from {len(scenes)} scenes, "
          f"{time.perf_counter() - start:.1f} s, peak RSS {peak_gib():.2f} GiB (after imports {before:.2f} GiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=5000, help="the AOI's side in 10 m pixels (5000: 50 km)")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/composite-bench"))
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)  # the measured child process
    args = parser.parse_args()
    if args.run:
        return run(args.folder, args.side)
    args.folder.mkdir(parents=True, exist_ok=True)
    prepare(args.folder, args.side)
    print(f"load: {Path('/proc/loadavg').read_text().split()[:3]} (1, 5, 15 min) on {__import__('os').cpu_count()} cores")
    subprocess.run([sys.executable, __file__, "--run", "--side", str(args.side), "--folder", str(args.folder)],
                   check=True)


if __name__ == "__main__":
    main()
