"""Opening rasters through rasterio, one way for every reader: the GDAL options, the warning a plain image raises,
the drivers a stranger's file may be read with, and a failed read worded as a `RasterError`."""

from __future__ import annotations

import os
import threading
import warnings
from contextlib import contextmanager
from typing import Optional, Union

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError
from rasterio.windows import Window  # noqa: F401 (a window of rows and columns, for the readers outside geo)

from .failures import RasterError, RasterReadError, decode_failure, gdal_reason, open_failure
from .formats import READ_OPTIONS, UNTRUSTED_DRIVERS
from .remote import as_input, configure_remote_reads, is_remote, remote_failure

RASTER_ERRORS = (RasterioError,)  # what rasterio raises for a file it cannot open, read or write
OPEN_ERRORS = (RasterioIOError,)  # what it raises for a file it cannot open


@contextmanager
def plain_images():
    """No NotGeoreferencedWarning: a plain image (no georeferencing) means pixel coordinates, as intended."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


_driver_limits: list[tuple[str, ...]] = []  # `only_drivers` in force, in every thread (the readers' threads too)
_driver_lock = threading.Lock()


@contextmanager
def only_drivers(drivers=UNTRUSTED_DRIVERS):
    """While this holds, every `open_raster` in the process opens with `drivers` alone (a file in any other format is
    "not recognized"): the app maps a stranger's file inside it, whichever reader opens it."""
    drivers = tuple(drivers)
    with _driver_lock:
        _driver_limits.append(drivers)
    try:
        yield
    finally:
        with _driver_lock:
            _driver_limits.remove(drivers)


def open_with_drivers(gdal_path: str, drivers: Optional[tuple[str, ...]]):
    """rasterio.open, trying only `drivers` where given (rasterio takes one driver name at a time)."""
    if not drivers:
        return rasterio.open(gdal_path)
    for name in drivers[:-1]:
        try:
            return rasterio.open(gdal_path, driver=name)
        except RasterioIOError as error:
            if "not recognized as" not in str(error):
                raise
    return rasterio.open(gdal_path, driver=drivers[-1])


def open_raster(path: Union[str, os.PathLike], drivers: Optional[tuple[str, ...]] = None):
    """rasterio.open with the READ_OPTIONS and without the warning a plain image raises. A remote path (a URL,
    s3://, a `RemotePath`) is read through GDAL's virtual file systems, with REMOTE_DEFAULTS where unset. `drivers`:
    the GDAL drivers it may be read with (default: those of `only_drivers` in force, else any)."""
    drivers = tuple(drivers) if drivers else (_driver_limits[-1] if _driver_limits else None)
    if is_remote(path):
        return open_remote(path, drivers)
    with plain_images(), rasterio.Env(**READ_OPTIONS):
        return open_with_drivers(os.fspath(path), drivers)


def open_checked(path: Union[str, os.PathLike], drivers: Optional[tuple[str, ...]] = None):
    """`open_raster`, its failure worded: a `RasterError` naming the file and GDAL's reason, or for a remote file a
    `RasterReadError` (an OSError) saying not found, access denied or no answer."""
    try:
        return open_raster(path, drivers)
    except RasterioIOError as error:
        if is_remote(path):
            raise RasterReadError(path, remote_failure(path, error)) from error
        raise RasterError(path, open_failure(gdal_reason(error, path))) from error


def gdal_settings(**options):
    """GDAL settings for the reads and writes made inside it (a context manager: `rasterio.Env`)."""
    return rasterio.Env(**options)


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
        raise RasterError(path, decode_failure(what, reason)) from error


def open_remote(path, drivers: Optional[tuple[str, ...]] = None):
    """`open_raster` for a remote path. GDAL remembers, for the life of the process, a URL it could not open and
    the next open says only "does not exist" (the reader opens a scene twice; the app lives long): such an open is
    asked of the server again, uncached, for the real reason, or for the file where it has appeared since."""
    open_settings = configure_remote_reads()
    remote = as_input(path)
    allowed = open_settings.get("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", "").lower().split(",")
    if remote.suffix.lower() not in allowed:
        open_settings.pop("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", None)
    gdal_path = os.fspath(remote)
    with plain_images(), rasterio.Env(**READ_OPTIONS, **open_settings):
        try:
            return open_with_drivers(gdal_path, drivers)
        except RasterioIOError as error:
            if "does not exist in the file system" not in str(error):
                raise
        with rasterio.Env(CPL_VSIL_CURL_NON_CACHED=gdal_path):
            return open_with_drivers(gdal_path, drivers)
