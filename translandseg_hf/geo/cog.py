"""The one Cloud-Optimized GeoTIFF profile (DEFLATE, 256 px blocks, internal overviews) and its writer, for every
producer: the mapping outputs, the app's maps and Sentinel-2 stacks."""

from __future__ import annotations

import os
from typing import Optional, Union

import rasterio
import rasterio.shutil

COG_BLOCK = 256  # tile side of every COG, and its overviews' stop: GDAL's COG default, what map viewers fetch
COG_DEFLATE_LEVEL = 1  # half the time of GDAL's default level 6 on a probability map, for files 6% larger


def cog_predictor(dtype: str) -> int:
    """TIFF predictor of a COG band: floating point (3) for float32, none (1) otherwise."""
    return 3 if dtype == "float32" else 1


def cog_tiles() -> dict:
    """GTiff creation options for a work file tiled as the COG is (COG_BLOCK px square tiles), uncompressed: for
    writers whose strips are shorter than a tile, so a tile GDAL's cache evicts half-written is finished in place
    (compressed, it would be decoded, re-encoded and appended again)."""
    return dict(tiled=True, blockxsize=COG_BLOCK, blockysize=COG_BLOCK)


def compressed_tiles(dtype: str) -> dict:
    """GTiff creation options whose tiles are encoded exactly as `write_cog` encodes them (DEFLATE level, block
    size, predictor), compressed by every core, so `geo.map_files.cog_layout` can copy them into a COG as they are."""
    return dict(cog_tiles(), compress="deflate", zlevel=COG_DEFLATE_LEVEL, predictor=cog_predictor(dtype),
                num_threads="all_cpus")


def write_cog(source: Union[str, os.PathLike], target: Union[str, os.PathLike], dtype: str, resampling: str,
              overviews: Optional[Union[str, os.PathLike]] = None, sparse: bool = False) -> None:
    """A Cloud-Optimized GeoTIFF of `source`: DEFLATE (with the floating-point predictor for float32), 256 px
    blocks, internal overviews down to one block, written with every core. `overviews`: a VRT of `source` with its
    overviews already made (`vrt_with_overviews`), so GDAL only compresses them. `sparse`: blocks that are all
    nodata are not written (for an empty source: the COG's header and directories alone)."""
    options = dict(driver="COG", COMPRESS="DEFLATE", LEVEL=COG_DEFLATE_LEVEL, BLOCKSIZE=COG_BLOCK,
                   RESAMPLING=resampling, NUM_THREADS="ALL_CPUS", BIGTIFF="IF_SAFER",
                   PREDICTOR="FLOATING_POINT" if cog_predictor(dtype) == 3 else "NO", SPARSE_OK=sparse)
    if overviews is not None:
        source, options["OVERVIEWS"] = overviews, "FORCE_USE_EXISTING"
    # No warnings filter: GDAL copies a plain image without rasterio's NotGeoreferencedWarning, and this runs in
    # threads, where catch_warnings (which swaps the process-wide filter list) would race.
    rasterio.shutil.copy(source, target, **options)
