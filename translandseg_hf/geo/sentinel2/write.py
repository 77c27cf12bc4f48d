"""`translandseg stack`'s output: a stack written as a Cloud-Optimized GeoTIFF, strip by strip, published atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union

import rasterio
from rasterio.windows import Window

from ...io_utils import StagedFiles
from ..cog import cog_tiles, write_cog
from ..strips import strips
from .stack import Sentinel2Stack

STRIP_ROWS = 128  # rows stacked at once: a 10,980 px wide strip of 14 float32 channels is 79 MB
GDAL_CACHE_BYTES = 128 * 2**20  # GDAL's block cache while stacking (rasterio takes bytes), not 5% of RAM


def write_stack(stack: Sentinel2Stack, output: Union[str, os.PathLike], overwrite: bool = False,
                on_rows: Optional[Callable[[int], None]] = None) -> Path:
    """Write every channel of `stack` to `output` (float32, NaN nodata, a description per band, the grid's CRS and
    transform), strip by strip into a work file tiled as the COG is (uncompressed: `cog_tiles`), then as a COG
    (`write_cog`); nothing is at `output` until it is whole."""
    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it.")
    output.parent.mkdir(parents=True, exist_ok=True)
    staged = StagedFiles()
    work = staged.scratch_for(output)
    profile = dict(driver="GTiff", height=stack.height, width=stack.width, count=stack.count, dtype="float32",
                   nodata=float("nan"), crs=stack.crs, transform=stack.transform, interleave="band",
                   BIGTIFF="IF_SAFER", **cog_tiles())
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            with rasterio.open(work, "w", **profile) as target:
                target.update_tags(**stack.tags())
                for index, name in enumerate(stack.descriptions, start=1):
                    target.set_band_description(index, name)
                for top, rows in strips(stack.height, STRIP_ROWS):
                    window = Window(0, top, stack.width, rows)
                    target.write(stack.read(window=window), window=window)
                    if on_rows is not None:
                        on_rows(int(window.height))
            write_cog(work, staged.path_for(output), "float32", "AVERAGE")
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    return output


__all__ = ["write_stack"]
