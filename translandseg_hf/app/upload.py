"""What an upload is, read from its header before any model work: a PNG, JPEG or GeoTIFF (by its content: GDAL picks a
driver from the bytes, and a VRT or WMS description named `.tif` would read other files or URLs), not too many pixels,
and the bands the model's contract reads. Each problem is a ValueError naming the file (never the server's folders),
shown in the page as it is."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..geo import (OPEN_ERRORS, RASTER_SUFFIXES, UNTRUSTED_DRIVERS, RasterError, RemotePath, as_input, is_remote,
                   gdal_reason, only_drivers, open_failure, open_raster, remote_failure)
from ..image_processing import InputRefused, TransLandSegImageProcessor
from ..inference import SceneReader, tile_count
from ..inference.inputs import classify
from ..inference.contract import plan_tiles
from ..inference.options import PredictionOptions
from . import DEFAULT_MAX_PIXELS


@dataclass
class SceneHeader:
    """An accepted upload: its size, whether it is georeferenced, and the tiles `predict_file` will run."""

    path: "Path | RemotePath"  # a local file, or a URL read in windows
    height: int
    width: int
    bands: int
    georeferenced: bool
    tiles: int
    tile_size: int


HEAD_BYTES = 1024  # read of a local upload to tell its format
ACCEPTED_SIGNATURES = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # TIFF, BigTIFF
# Formats GDAL (or a user) might take a file for, named in the refusal: (how the file starts, lower case; its name).
OTHER_FORMATS = (
    (b"<vrtdataset", "a VRT file"), (b"<gdal_wms", "a GDAL WMS description"), (b"<wms_capabilities", "a WMS document"),
    (b"<gdal_wcs", "a GDAL WCS description"), (b"<?xml", "an XML file"), (b"<", "an XML file"), (b"{", "a JSON file"),
    (b"pk\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip file"), (b"\x00\x00\x00\x0cjp  ", "a JPEG 2000 file"),
    (b"\xffo\xffq", "a JPEG 2000 file"), (b"gif8", "a GIF image"), (b"riff", "a RIFF (WebP) file"), (b"%pdf", "a PDF file"),
    (b"\x89hdf", "an HDF5 file"), (b"cdf\x01", "a netCDF file"), (b"cdf\x02", "a netCDF file"),
    (b"sqlite format 3", "an SQLite or GeoPackage file"), (b"bm", "a BMP image"), (b"/vsi", "a GDAL path"),
)


def foreign_format(head: bytes) -> Optional[str]:
    """The name of the format a file's first bytes show when it is not a PNG, JPEG or TIFF ("a VRT file"); None for
    those three and for bytes of no known format (the allow-listed open then says it is not readable)."""
    if head.startswith(ACCEPTED_SIGNATURES):
        return None
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()  # XML may follow a byte-order mark or blank lines
    if start.startswith(b"<?xml") or start.startswith(b"<!--"):
        start = re.sub(rb"^(<\?.*?\?>|<!--.*?-->|\s)+", b"", start, flags=re.S) or start
    return next((name for signature, name in OTHER_FORMATS if start.startswith(signature)), None)


def local_head(path: Path) -> bytes:
    """The first bytes of a local upload; an unreadable one is "not a readable image", by name."""
    try:
        with open(path, "rb") as file:
            return file.read(HEAD_BYTES)
    except OSError:
        raise ValueError(f"{path.name}: not a readable image or raster.") from None


def check_format(path, head: Optional[bytes]) -> None:
    """Refuse, by name, a file whose content is not a PNG, JPEG or GeoTIFF whatever its suffix. `head`: a remote
    file's first bytes where they were fetched (a local file's are read here)."""
    if path.suffix.lower() not in RASTER_SUFFIXES:
        raise ValueError(f"{path.name}: not an image; upload a PNG, JPEG or (Geo)TIFF.")
    if is_remote(path) and not head:
        return  # an object store's file: its format is left to the allow-listed open
    what = foreign_format(head if is_remote(path) else local_head(path))
    if what is not None:
        raise ValueError(f"{path.name}: {what}, not a PNG, JPEG or GeoTIFF; the app maps only those.")


def check_upload(
    path, contract: TransLandSegImageProcessor, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
    head: Optional[bytes] = None,
) -> SceneHeader:
    """The upload's header, or a ValueError saying, by file name, why the model cannot map it. `path` may be a URL
    (https://, s3://, ...) the app's URL policy let through: it is read in windows, as `translandseg predict` reads
    one, and `head` holds its first bytes where they were fetched (else they are not checked: the allow-listed open
    refuses other formats). Every open here reads only PNG, JPEG and GeoTIFF."""
    header, reader = open_upload(path, contract, max_pixels, head)
    reader.close()
    return header


def open_upload(path, contract: TransLandSegImageProcessor, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
                head: Optional[bytes] = None) -> tuple[SceneHeader, SceneReader]:
    """`check_upload`, keeping the reader it opened (the upload classified, its stretch fitted) for mapping the
    upload with: it is opened once for checking and mapping. The caller closes the reader."""
    path = as_input(path)
    check_format(path, head)
    with only_drivers(UNTRUSTED_DRIVERS):
        return read_header(path, contract, max_pixels)


def read_header(path, contract: TransLandSegImageProcessor, max_pixels: Optional[int]
                ) -> tuple[SceneHeader, SceneReader]:
    """check_upload's reading: size from the header, then the contract's bands against the file, in the reader
    that then maps it (returned open)."""
    scene = classify(path)  # an upload with a raster's suffix: a local raster or image, or a remote raster
    try:
        dataset = open_raster(scene.path, UNTRUSTED_DRIVERS)
    except OPEN_ERRORS as error:
        if scene.is_remote:
            raise RasterError(path, remote_failure(path, error)) from None
        raise RasterError(path.name, open_failure(without_folders(gdal_reason(error, scene.path)))) from None
    height, width, bands = dataset.height, dataset.width, dataset.count
    if max_pixels and height * width > max_pixels:  # None or 0: no limit
        dataset.close()
        raise ValueError(f"{path.name}: {width} x {height} px is {height * width:,} pixels, more than this app's "
                         f"limit of {max_pixels:,}; map it with `translandseg predict` instead.")
    try:
        reader = SceneReader(scene, contract, dataset=dataset)  # checks the contract's bands against the file
    except ValueError as error:
        raise by_name(for_the_app(error), path) from None
    try:
        plan = plan_tiles(contract, reader.resolution)
    except ValueError as error:  # the scene's resolution against the training's: named here, as the page shows it
        reader.close()
        raise by_name(ValueError(f"{path}: {for_the_app(error)}"), path) from None
    tiles = tile_count(height, width, plan.size, PredictionOptions().overlap_for(plan.size))
    return SceneHeader(path, height, width, bands, reader.georeferenced, tiles, plan.size), reader


# An absolute local path's folders ("/tmp/gradio/ab12/", "/home/me/"): not after ":", "/" or a word character, so a
# URL's path ("https://host/a/b.tif") is left whole.
SERVER_FOLDERS = re.compile(r"(?<![:/\w.~-])/(?:[^/\s'\"]+/)+")


def without_folders(message: str) -> str:
    """The message with every absolute path cut to its last part: the page never shows the server's folders."""
    return SERVER_FOLDERS.sub("", message)


def for_the_app(error: Exception) -> Exception:
    """A refusal worded for the app, naming its own controls rather than `translandseg predict`'s flags."""
    return error.worded_for("app") if isinstance(error, InputRefused) else error


def by_name(error: Exception, path) -> Exception:
    """The error with the upload's temporary path shortened to its file name, as the page shows it, and no other
    server folder either (a URL is shown whole: it is what the user typed, less any query string)."""
    message = str(error) if is_remote(path) else str(error).replace(str(path), path.name)
    return type(error)(without_folders(message))
