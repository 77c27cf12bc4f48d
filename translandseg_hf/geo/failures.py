"""Why a raster could not be read, in words: one `RasterError(path, reason)` composes "PATH: reason" itself (as
TorchGeo's `DatasetNotFoundError` does), and GDAL's messages are reworded with the file named once, in front."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union


class NamedFailure(Exception):
    """A failure about one file: `path` and `reason` are kept apart, and the message "PATH: reason" is composed here
    alone, so whoever reports it again (by name, or without the name) takes the fields instead of parsing text."""

    def __init__(self, path: Union[str, os.PathLike], reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):  # rebuilt from its fields (a DataLoader worker's or a thread's error crosses a pickle)
        return type(self), (self.path, self.reason)


class RasterError(NamedFailure, ValueError):
    """A raster that cannot be opened or decoded. A ValueError, as the messages it replaces were."""


class RasterReadError(NamedFailure, OSError):
    """A remote raster or STAC item, or a Sentinel-2 product's file, that cannot be fetched or opened. An OSError,
    as a failure of the network or of the files beside the one named is."""


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


def names(error: BaseException, path: Union[str, os.PathLike]) -> bool:
    """Whether `error` is a `NamedFailure` about `path`: its message already names the file, in front."""
    return isinstance(error, NamedFailure) and str(error.path) == str(path)  # as the message names it
