"""Remote inputs (http(s)://, s3://, gs://, az://): their names, the GDAL settings they are read with, and what a
failed remote read means, in words. Plain Python: STAC items and product discovery use it without GDAL."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Union

from .failures import open_failure

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


# How a failed remote read is worded, for rasters here and for STAC items (geo/sentinel2/stac_io.py).
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
