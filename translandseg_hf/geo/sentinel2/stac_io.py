"""Reading STAC JSON from where catalogues keep it, and what an item read from the network may name.

Local files are read through pystac's own reader, HTTP(S) through urllib, S3 through botocore. pystac's own HTTP
reader waits without a timeout and turns every HTTP error into a bare Exception quoting the whole URL (a signed URL's
signature too); so URLs are fetched here, with GDAL's timeout and retry variables (GDAL_HTTP_CONNECTTIMEOUT for each
wait, GDAL_HTTP_TIMEOUT for the whole read, GDAL_HTTP_MAX_RETRY, GDAL_HTTP_RETRY_DELAY), at most MAX_ITEM_BYTES,
failing with an OSError that says which failure and never the URL. GDAL (which reads the rasters) gives Python no way
to read a whole small file; so an `s3://` item is fetched with botocore, with the same variables GDAL uses for its
rasters: AWS_S3_ENDPOINT (host[:port], as GDAL takes it), AWS_HTTPS, AWS_VIRTUAL_HOSTING, AWS_NO_SIGN_REQUEST,
AWS_REQUESTER_PAYS, AWS_REGION / AWS_DEFAULT_REGION, and the usual credentials. The item's JSON is fetched without
any of GDAL's HTTP credentials.

An item read from the network is a stranger's text: its assets may only be on the network (`network_href`), and the
user's GDAL HTTP credentials (set for their own catalogue) are kept from assets on another host
(`keep_credentials_from`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import http.client
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Optional

import pystac
from pystac.stac_io import DefaultStacIO

from ..remote import ACCESS_DENIED, NO_ANSWER, NOT_FOUND, REMOTE_DEFAULTS, RemotePath

RETRIED_STATUSES = (429, 500, 502, 503, 504)  # as GDAL retries them
MAX_ITEM_BYTES = 16 * 2**20  # a STAC item is kilobytes; an endless body must not fill the memory
TOO_LARGE = (f"it is larger than {MAX_ITEM_BYTES // 2**20} MiB, where a STAC item is kilobytes; pass the URL of one "
             "item's JSON")
CHUNK = 64 * 2**10
NETWORK_SCHEMES = ("http", "https", "s3", "gs", "az")


class RemoteStacIO(DefaultStacIO):
    """pystac's reader for local files; `http(s)://` and `s3://` hrefs (GDAL's `/vsicurl/` ones too) read here."""

    def read_text_from_href(self, href: str) -> str:
        href = RemotePath(href).network_url
        if href.startswith("s3://"):
            return read_s3_text(href)
        if href.lower().startswith(("http://", "https://")):
            return read_http_text(href)
        return super().read_text_from_href(href)


def gdal_setting(name: str) -> str:
    return os.environ.get(name, REMOTE_DEFAULTS[name])


def whole_read_seconds() -> float:
    """GDAL_HTTP_TIMEOUT, for the whole read of an item; its 0 (curl's "no limit") is the default instead: a
    stranger's server must not hold the run forever."""
    return float(gdal_setting("GDAL_HTTP_TIMEOUT")) or float(REMOTE_DEFAULTS["GDAL_HTTP_TIMEOUT"])


def too_slow(seconds: float) -> str:
    return (f"the server did not send all of it within {seconds:g} s (GDAL_HTTP_TIMEOUT); try again later, or raise "
            "GDAL_HTTP_TIMEOUT")


def read_http_text(href: str) -> str:
    """The text at a URL; 429 and 5xx are asked again as GDAL does (GDAL_HTTP_MAX_RETRY times, the delay doubling).
    The whole read, retries included, ends within GDAL_HTTP_TIMEOUT seconds: a server that trickles must not hang
    the run."""
    request = urllib.request.Request(href, headers={"User-Agent": f"translandseg (pystac {pystac.__version__})"})
    retries, delay = int(gdal_setting("GDAL_HTTP_MAX_RETRY")), float(gdal_setting("GDAL_HTTP_RETRY_DELAY"))
    timeout = float(gdal_setting("GDAL_HTTP_CONNECTTIMEOUT"))  # urllib's timeout bounds each socket wait
    seconds = whole_read_seconds()
    deadline = time.monotonic() + seconds
    for attempt in range(retries + 1):
        try:
            return fetch_before(request, min(timeout, seconds), deadline, seconds).decode("utf-8")
        except urllib.error.HTTPError as error:
            if error.code not in RETRIED_STATUSES or attempt == retries:
                raise OSError(f"HTTP {error.code}" + (f", also after {retries} retries" if attempt else "")) \
                    from error
        except (urllib.error.URLError, TimeoutError, http.client.HTTPException) as error:
            raise OSError(f"{NO_ANSWER} ({getattr(error, 'reason', error)})") from error
        if time.monotonic() + delay * 2 ** attempt >= deadline:
            raise OSError(too_slow(seconds))
        time.sleep(delay * 2 ** attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


class SocketWatch:
    """The sockets of one fetch, shut down at its deadline: a blocked read then returns, however slowly the server
    sends (a socket timeout alone bounds each wait, not their sum)."""

    def __init__(self):
        self.sockets: list = []
        self.expired = False
        self._lock = threading.Lock()

    def add(self, sock) -> None:
        with self._lock:
            self.sockets.append(sock)
            if self.expired:
                self._shut(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self.sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


def watched_handlers(watch: SocketWatch) -> list:
    """urllib's HTTP and HTTPS handlers whose connections give their sockets to `watch`."""

    def watched(connection_class):
        class Watched(connection_class):
            def connect(self):
                super().connect()
                watch.add(self.sock)
        return Watched

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(watched(http.client.HTTPConnection), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(watched(http.client.HTTPSConnection), req, context=self._context)

    return [HTTP(), HTTPS()]


def fetch_before(request, timeout: float, deadline: float, seconds: float) -> bytes:
    """The body of one request, at most MAX_ITEM_BYTES, all of it before `deadline` (time.monotonic)."""
    watch = SocketWatch()
    timer = threading.Timer(max(deadline - time.monotonic(), 0.0), watch.expire)
    timer.daemon = True
    timer.start()
    try:
        with urllib.request.build_opener(*watched_handlers(watch)).open(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_ITEM_BYTES:
                raise OSError(TOO_LARGE)
            body = bytearray()
            while chunk := response.read1(CHUNK):
                body += chunk
                if len(body) > MAX_ITEM_BYTES:
                    raise OSError(TOO_LARGE)
            if watch.expired:
                raise OSError(too_slow(seconds))
            return bytes(body)
    except (OSError, http.client.HTTPException):
        if watch.expired:
            raise OSError(too_slow(seconds)) from None
        raise
    finally:
        timer.cancel()


def read_s3_text(href: str) -> str:
    try:
        import botocore.session
        from botocore import UNSIGNED
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise OSError(f"{href}: reading a STAC item from S3 needs botocore (pip install boto3); rasters on S3 "
                      "need only GDAL") from None
    bucket, _, key = href[len("s3://"):].partition("/")
    endpoint = os.environ.get("AWS_S3_ENDPOINT")
    if endpoint and "://" not in endpoint:
        endpoint = ("http://" if os.environ.get("AWS_HTTPS", "YES").upper() in ("NO", "FALSE", "OFF") else
                    "https://") + endpoint
    unsigned = os.environ.get("AWS_NO_SIGN_REQUEST", "NO").upper() in ("YES", "TRUE", "ON")
    virtual = os.environ.get("AWS_VIRTUAL_HOSTING", "TRUE").upper() not in ("NO", "FALSE", "OFF")
    config = Config(signature_version=UNSIGNED if unsigned else None,
                    s3={"addressing_style": "virtual" if virtual and not endpoint else "path"},
                    connect_timeout=10, read_timeout=whole_read_seconds(),
                    retries={"max_attempts": 4, "mode": "standard"})
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    client = botocore.session.get_session().create_client("s3", endpoint_url=endpoint, region_name=region,
                                                           config=config)
    extra = {"RequestPayer": "requester"} if os.environ.get("AWS_REQUESTER_PAYS", "").upper() in ("YES", "TRUE") \
        else {}
    try:
        return capped_s3_body(client.get_object(Bucket=bucket, Key=key, **extra)).decode("utf-8")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        raise OSError(f"HTTP {status} {code}") from error
    except BotoCoreError as error:
        raise OSError(f"{NO_ANSWER} ({error})") from error


def capped_s3_body(answer: dict) -> bytes:
    """An S3 object's body, at most MAX_ITEM_BYTES: refused from its declared length, else read no further."""
    body = answer["Body"]
    try:
        if int(answer.get("ContentLength") or 0) > MAX_ITEM_BYTES:
            raise OSError(TOO_LARGE)
        data = body.read(MAX_ITEM_BYTES + 1)
        if len(data) > MAX_ITEM_BYTES:
            raise OSError(TOO_LARGE)
        return data
    finally:
        body.close()


def read_failure(error: BaseException) -> str:
    """An HTTP or S3 failure in words: not found, access denied, or no answer."""
    status = getattr(error, "code", None) if isinstance(error, urllib.error.HTTPError) else None
    text = str(error)
    if status == 404 or text.startswith("HTTP 404"):
        return NOT_FOUND
    if status == 403 or text.startswith("HTTP 403"):
        return ACCESS_DENIED
    if isinstance(error, urllib.error.URLError):
        return f"{NO_ANSWER} ({error.reason})"
    if text.startswith(tuple(f"HTTP {code}" for code in RETRIED_STATUSES)):
        return f"the server did not serve it ({text}); try again later, or raise GDAL_HTTP_MAX_RETRY"
    return text


# ------------------------------------------------------------------------------------ what a remote item may name
def network_href(item_url: str, key: str, href: str) -> str:
    """An asset's href in an item read from `item_url`, made absolute against the item's URL; a local file (a
    `file://` href, an absolute path, a drive letter, a GDAL `/vsi...` path) or another scheme is refused, naming the
    item and the asset: a stranger's item must not make the run read the user's own files."""
    scheme = urllib.parse.urlsplit(href).scheme.lower()
    if scheme in NETWORK_SCHEMES:
        return href
    if scheme == "file" or len(scheme) == 1 or href.startswith(("/", "\\")):
        raise ValueError(f"{item_url}: asset {key!r} names a local file ({href}); an item read from the network "
                         "may only name files on the network (http(s)://, s3://, gs://, az://, or a path relative "
                         "to the item).")
    if scheme:
        raise ValueError(f"{item_url}: asset {key!r} has an href of scheme {scheme!r} ({href}); an item read from "
                         "the network may only name http(s)://, s3://, gs:// or az:// files, or a path relative to "
                         "the item.")
    return relative_to(item_url, href)


def relative_to(item_url: str, href: str) -> str:
    """`href` resolved against the item's URL as a browser would (`..` stops at the bucket or host), its query
    dropped (a signed item URL's signature is not the asset's)."""
    split = urllib.parse.urlsplit(item_url)
    base = urllib.parse.urlunsplit(("http", split.netloc, split.path, "", ""))
    joined = urllib.parse.urlsplit(urllib.parse.urljoin(base, href))
    return urllib.parse.urlunsplit((split.scheme, split.netloc, joined.path, joined.query, joined.fragment))


def origin(url: str) -> tuple:
    """Scheme, host and port: what a credential is scoped to (browsers' same-origin rule)."""
    split = urllib.parse.urlsplit(url)
    scheme = split.scheme.lower()
    try:
        port = split.port
    except ValueError:
        port = None
    return scheme, (split.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def gdal_prefix(url: str) -> str:
    """The start of the GDAL path of `url` up to its host: GDAL's path-specific options apply to paths that start so.
    Cut from the URL as written (GDAL matches the text, case and all)."""
    scheme_end = url.index("://") + 3
    path_start = len(url)
    for mark in "/?#":
        found = url.find(mark, scheme_end)
        path_start = found if 0 <= found < path_start else path_start
    return RemotePath(url[:path_start] + "/").gdal_path


# ------------------------------------------------------------------------------------------ credentials' scope
# GDAL's settings that carry secrets or identity to every host it reads: set by the user for their own catalogue.
CREDENTIAL_SETTINGS = ("GDAL_HTTP_USERPWD", "GDAL_HTTP_AUTH", "GDAL_HTTP_BEARER", "GDAL_HTTP_HEADERS",
                       "GDAL_HTTP_HEADER_FILE", "GDAL_HTTP_COOKIE", "GDAL_HTTP_COOKIEFILE")


def credentials_set() -> list:
    """The CREDENTIAL_SETTINGS the user has set (environment, or GDAL's own settings through rasterio.Env)."""
    from rasterio.env import get_gdal_config

    return [name for name in CREDENTIAL_SETTINGS
            if os.environ.get(name) or get_gdal_config(name, normalize=False)]


def blanked(names: list) -> dict:
    """Values of the settings in `names` that send nothing: empty, and with a user and password set, only
    challenge-answering schemes (curl sends "Authorization: Basic" of an empty user otherwise)."""
    values = {name: "" for name in names}
    if "GDAL_HTTP_USERPWD" in names:
        values["GDAL_HTTP_AUTH"] = "ANYSAFE"
    return values


def keep_credentials_from(item_url: str, assets: dict) -> None:
    """The user's GDAL HTTP credentials go to the item's own host only: for an asset (`assets`: key -> absolute
    href) on another scheme, host or port, GDAL is told, for that host's paths, that none are set (GDAL's
    path-specific options, 3.6+, for the rest of the process). Where GDAL cannot be told, such an asset is refused,
    naming the settings."""
    names = credentials_set()
    foreign = {key: href for key, href in assets.items() if origin(href) != origin(item_url)}
    if not names or not foreign:
        return
    set_option = path_specific_setter()
    for key, href in foreign.items():
        if set_option is None:
            raise ValueError(
                f"{item_url}: asset {key!r} is on another host ({origin_text(href)}) than the item, and "
                f"{', '.join(names)} would be sent there: this GDAL ({gdal_version()}) cannot keep them from it "
                "(GDAL 3.6 or later can). Unset them to read this item, or pass an item on the host they are for.")
        for name, value in blanked(names).items():
            set_option(gdal_prefix(href), name, value)


def origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def gdal_version() -> str:
    import rasterio

    return rasterio.__gdal_version__


@functools.lru_cache(maxsize=1)
def path_specific_setter():
    """VSISetPathSpecificOption(prefix, name, value) of the libgdal rasterio uses (rasterio does not wrap it), or
    None where GDAL is older than 3.6 or that library is not found."""
    import rasterio  # noqa: F401  (loads rasterio's libgdal)

    version = tuple(int(part) for part in gdal_version().split(".")[:2] if part.isdigit())
    if version < (3, 6):
        return None
    for path in gdal_library_candidates():
        library = rasterio_gdal(path)
        if library is not None:
            setter = library.VSISetPathSpecificOption
            setter.argtypes, setter.restype = [ctypes.c_char_p] * 3, None
            return lambda prefix, name, value: setter(prefix.encode(), name.encode(), value.encode())
    return None


def gdal_library_candidates() -> list:
    """Where rasterio's libgdal may be: the one this process has loaded (Linux), the wheels' folders, the system's."""
    import rasterio

    loaded = []
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
                loaded = sorted({line.split()[-1] for line in maps if "libgdal" in line and "/" in line})
        except OSError:
            pass
    package = os.path.dirname(rasterio.__file__)
    bundled = [*glob.glob(package + ".libs/*gdal*"), *glob.glob(os.path.join(package, ".dylibs", "*gdal*"))]
    system = [found] if (found := ctypes.util.find_library("gdal")) else []
    return loaded + bundled + system


def rasterio_gdal(path: str) -> Optional[ctypes.CDLL]:
    """The library at `path` if it is the very copy rasterio uses (a setting made through it is read by rasterio),
    else None: setting options in another copy would protect nothing."""
    from rasterio.env import get_gdal_config

    try:
        library = ctypes.CDLL(path)
        set_config = library.CPLSetConfigOption
        library.VSISetPathSpecificOption  # noqa: B018  (missing before GDAL 3.6)
    except (OSError, AttributeError):
        return None
    set_config.argtypes, set_config.restype = [ctypes.c_char_p, ctypes.c_char_p], None
    probe, value = b"TRANSLANDSEG_GDAL_PROBE", f"{os.getpid()}-{id(library)}"
    set_config(probe, value.encode())
    try:
        return library if get_gdal_config(probe.decode(), normalize=False) == value else None
    finally:
        set_config(probe, None)
