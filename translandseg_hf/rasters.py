"""Opening rasters through rasterio, one way for every reader and writer: the GDAL options, the warning a plain image
raises, what GDAL's errors mean, and the size of a pixel."""

from __future__ import annotations

import os
import re
import threading
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


# The formats a stranger's file may be read as (the app): GDAL picks a driver from the content, not the suffix, and a
# VRT or WMS description named `.tif` reads other files or URLs. A COG is read by the GTiff driver.
UNTRUSTED_DRIVERS = ("GTiff", "PNG", "JPEG")
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


COG_BLOCK = 256
COG_DEFLATE_LEVEL = 1  # half the time of GDAL's default level 6 on a probability map, for files 6% larger


def cog_predictor(dtype: str) -> int:
    """TIFF predictor of a COG band: floating point (3) for float32, none (1) otherwise."""
    return 3 if dtype == "float32" else 1


def compressed_tiles(dtype: str) -> dict:
    """GTiff creation options whose tiles are encoded exactly as `write_cog` encodes them (DEFLATE level, block
    size, predictor), compressed by every core, so `inference.cog_layout` can copy them into a COG as they are."""
    return dict(tiled=True, blockxsize=COG_BLOCK, blockysize=COG_BLOCK, compress="deflate", zlevel=COG_DEFLATE_LEVEL,
                predictor=cog_predictor(dtype), num_threads="all_cpus")


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


# ---------------------------------------------------------------------------------------------------- remote inputs
# URL schemes GDAL reads through its virtual file systems, in windows (HTTP range requests), nothing downloaded whole.
VSI_PREFIXES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/", "az": "/vsiaz/"}
# GDAL settings for remote reads; each applies only where the user has not set it (their environment wins).
REMOTE_DEFAULTS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no listing of the "folder" (object stores have none)
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.jp2,.JP2,.png,.jpg,.jpeg,.json,.xml,.vrt",
    "GDAL_HTTP_MAX_RETRY": "4",  # retries on 429 and 5xx (GDAL's own back-off)
    "GDAL_HTTP_RETRY_DELAY": "1",  # seconds before the first retry, doubling
    "GDAL_HTTP_TIMEOUT": "60",  # seconds for a request
    "GDAL_HTTP_CONNECTTIMEOUT": "10",  # seconds to connect: an unreachable host fails quickly
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "VSI_CACHE": "TRUE",  # a per-file block cache: a tile read twice (overlaps, masks) is fetched once
    "VSI_CACHE_SIZE": str(64 * 2**20),
}


def is_remote(path) -> bool:
    """Whether `path` names a remote file: http(s)://, s3://, gs://, az:// or one of GDAL's /vsicurl/ ... paths."""
    if isinstance(path, RemotePath):
        return True
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    scheme, sep, _ = text.partition("://")
    return (bool(sep) and scheme.lower() in VSI_PREFIXES) or text.startswith(tuple(set(VSI_PREFIXES.values())))


class RemotePath:
    """A remote input where the code expects a `Path`: `name` and `stem` are the last part of the URL's path (outputs
    are named by it), `str()` is the URL without its query string (which may hold a signature: messages never show
    it), and `os.fspath()` is the path GDAL reads (`/vsicurl/https://...`, `/vsis3/bucket/key`)."""

    def __init__(self, url: str):
        self.url = str(url)

    @property
    def gdal_path(self) -> str:
        if self.url.startswith("/vsi"):
            return self.url  # already GDAL's path (`/vsicurl/http://...` holds a "://" of its own)
        scheme, _, rest = self.url.partition("://")
        prefix = VSI_PREFIXES[scheme.lower()]
        return prefix + (self.url if prefix == "/vsicurl/" else rest)

    @property
    def network_url(self) -> str:
        """The URL itself (`http(s)://`, `s3://` ...) where it is given as GDAL's path (`/vsicurl/https://...`,
        `/vsis3/bucket/key`): what is fetched without GDAL (a STAC item) and whose host credentials are kept for."""
        for scheme, prefix in VSI_PREFIXES.items():
            if self.url.startswith(prefix):
                rest = self.url[len(prefix):]
                return rest if prefix == "/vsicurl/" else f"{scheme}://{rest}"
        return self.url

    @property
    def name(self) -> str:
        return self.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    def __fspath__(self) -> str:
        return self.gdal_path

    def __str__(self) -> str:
        return self.url.split("?", 1)[0]

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RemotePath) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    # What local paths answer, for code written for them: a remote file's existence is known only on opening it.
    def is_file(self) -> bool:
        return True

    def is_dir(self) -> bool:
        return False

    def exists(self) -> bool:
        return True

    def resolve(self) -> "RemotePath":
        return self


def as_input(path) -> Union[Path, RemotePath]:
    """A local `Path`, or a `RemotePath` for a URL (a `Path` would fold its `//`)."""
    if isinstance(path, (Path, RemotePath)):
        return path
    return RemotePath(str(path)) if is_remote(path) else Path(path)


# Settings GDAL reads only when it opens a file: given to the remote open alone, as in the environment they would
# hold for local files too (no listing of a local folder means no .aux.xml, .ovr or world file found beside a PNG),
# and the allowed extensions only where the URL has one of them (else GDAL refuses an extension-less download URL
# without asking the server, saying it "does not exist").
OPEN_TIME_SETTINGS = ("GDAL_DISABLE_READDIR_ON_OPEN", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS")


def configure_remote_reads() -> dict:
    """Give GDAL the REMOTE_DEFAULTS the user has not set (GDAL reads its settings from the environment too, on every
    request, so these hold for reads long after the open); returns those of OPEN_TIME_SETTINGS, for the open."""
    for name, value in REMOTE_DEFAULTS.items():
        if name not in OPEN_TIME_SETTINGS:
            os.environ.setdefault(name, value)
    return {name: REMOTE_DEFAULTS[name] for name in OPEN_TIME_SETTINGS if name not in os.environ}


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


# How a failed remote read is worded, for rasters here and for STAC items (sentinel2/stac_io.py).
NOT_FOUND = "not found (HTTP 404)"
ACCESS_DENIED = ("access denied (HTTP 403): check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or "
                 "AWS_NO_SIGN_REQUEST=YES for a public bucket)")
NO_ANSWER = "no answer from the server"
# What GDAL's messages say of a failed remote open (HTTP codes, and the S3 / GCS / Azure error texts it passes on).
REMOTE_FAILURES = (
    (("response code: 404", "http error code: 404", "nosuchkey", "specified key does not exist", "nosuchbucket",
      "specified bucket does not exist", "blobnotfound"), NOT_FOUND),
    (("response code: 403", "http error code: 403", "accessdenied", "access denied", "invalidaccesskeyid",
      "signaturedoesnotmatch", "expiredtoken", "authorizationfailure"), ACCESS_DENIED),
    (("response code: 401", "http error code: 401"), "not authorised (HTTP 401): check the credentials"),
    (("timed out", "timeout", "couldn't connect", "could not connect", "failed to connect", "connection refused",
      "resolve host", "could not resolve"), NO_ANSWER),
)
_QUERY = re.compile(r"\?[^\s'\"]*")
_BUSY = re.compile(r"(?:response code|http error code):?\s*(429|5\d\d)")


def remote_failure(path, error: BaseException) -> str:
    """Why a remote open failed, in words: not found, access denied, or no answer; never the URL's query string."""
    remote = as_input(path)
    message = str(error)
    for name in (os.fspath(remote), remote.url, str(remote)):
        message = message.replace(name, "the file")
    message = _QUERY.sub("", message).strip()  # a signature GDAL may quote in some other form of the URL
    lowered = message.lower()
    busy = _BUSY.search(lowered)
    if busy:
        retries = os.environ.get("GDAL_HTTP_MAX_RETRY", REMOTE_DEFAULTS["GDAL_HTTP_MAX_RETRY"])
        return (f"the server did not serve it (HTTP {busy[1]}, also after {retries} retries); try again later, or "
                "raise GDAL_HTTP_MAX_RETRY / GDAL_HTTP_RETRY_DELAY")
    for signs, words in REMOTE_FAILURES:
        if any(sign in lowered for sign in signs):
            return f"{words} ({message})" if words == NO_ANSWER else words
    return open_failure(message)
