"""Opening rasters through rasterio, one way for every reader and writer: the GDAL options, the warning a plain image
raises, what GDAL's errors mean, and the size of a pixel."""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Union

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Read through rasterio (GDAL) even where PIL reads the rest: PIL cannot read many band layouts GDAL writes.
GDAL_ONLY_SUFFIXES = (".tif", ".tiff")
# GDAL's whole-image PNG shortcut ignores libpng's errors and returns uninitialised memory for a truncated PNG, where
# reading row by row fails as it should. GDAL reads the option both when opening and when reading.
READ_OPTIONS = {"GDAL_PNG_WHOLE_IMAGE_OPTIM": "NO"}


@contextmanager
def plain_images():
    """No NotGeoreferencedWarning: a plain image (no georeferencing) means pixel coordinates, as intended."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def open_raster(path: Union[str, os.PathLike]):
    """rasterio.open with the READ_OPTIONS and without the warning a plain image raises. `path` is passed as given
    (a URL stays a URL)."""
    with plain_images(), rasterio.Env(**READ_OPTIONS):
        return rasterio.open(path)


@contextmanager
def reading(path: Union[str, os.PathLike], what: str):
    """A read that fails says why: rasterio's own message is "Read failed. See previous exception for details.",
    and GDAL's reason is the exception it chains (a truncated or corrupt file)."""
    try:
        with rasterio.Env(**READ_OPTIONS):
            yield
    except RasterioIOError as error:
        cause = error.__cause__ or error.__context__
        reason = gdal_reason(cause if cause is not None else error, path)
        raise ValueError(f"{path}: {decode_failure(what, reason)}") from error


def gdal_reason(error: BaseException, path: Union[str, os.PathLike]) -> str:
    """GDAL's message without the file's name, which the error names once, in front. A failed read says only "Read
    failed. See previous exception for details.": its reason is the exception it chains."""
    cause = error.__cause__ or error.__context__
    if str(error).startswith("Read failed") and cause is not None:
        error = cause
    message, name = str(error), Path(path).name
    for named in (f"'{path}' ", f"{path}:", f"{name}, ", f"{name}: "):
        message = message.replace(named, "")
    return message.replace(str(path), "the file").strip()


def failed_read(error: BaseException) -> bool:
    """Whether a rasterio error is a read that failed (a truncated or corrupt file), not an open."""
    return str(error).startswith("Read failed") and (error.__cause__ or error.__context__) is not None


def decode_failure(what: str, reason: str) -> str:
    return f"cannot decode {what} ({reason}); the file is truncated or corrupt."


def open_failure(reason: str) -> str:
    return f"not a readable image or raster ({reason})."


def pixel_area(transform) -> float:
    """The area of one pixel in the CRS's units squared (a rotated or sheared grid included)."""
    return abs(transform.a * transform.e - transform.b * transform.d)


def pixel_size_m(crs, transform) -> Optional[float]:
    """Metres per pixel side in a projected CRS; None for plain images and geographic (degree) coordinates."""
    if crs is None or not crs.is_projected:
        return None
    return float(np.sqrt(pixel_area(transform))) * crs.linear_units_factor[1]


def write_cog(source: Union[str, os.PathLike], target: Union[str, os.PathLike], dtype: str, resampling: str, overviews: Optional[Union[str, os.PathLike]] = None) -> None:
    """A Cloud-Optimized GeoTIFF of `source`: DEFLATE (with the floating-point predictor for float32), 256 px
    blocks, internal overviews down to one block, written with every core. DEFLATE level 1: half the time of the
    default level 6 on a probability map, for files 6% larger. `overviews`: a VRT of `source` with its overviews
    already made (`vrt_with_overviews`), so GDAL only compresses them."""
    options = dict(driver="COG", COMPRESS="DEFLATE", LEVEL=1, BLOCKSIZE=256, RESAMPLING=resampling,
                   NUM_THREADS="ALL_CPUS", BIGTIFF="IF_SAFER", PREDICTOR="FLOATING_POINT" if dtype == "float32" else "NO")
    if overviews is not None:
        source, options["OVERVIEWS"] = overviews, "FORCE_USE_EXISTING"
    # No warnings filter: GDAL copies a plain image without rasterio's NotGeoreferencedWarning, and this runs in
    # threads, where catch_warnings (which swaps the process-wide filter list) would race.
    rasterio.shutil.copy(source, target, **options)
