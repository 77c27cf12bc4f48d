"""Reading STAC JSON from where catalogues keep it: local files through pystac's own reader, HTTP(S) through urllib,
and S3 through botocore.

pystac's own HTTP reader waits without a timeout and turns every HTTP error into a bare Exception quoting the whole
URL (a signed URL's signature too); so URLs are fetched here, with GDAL's timeout and retry variables
(GDAL_HTTP_CONNECTTIMEOUT, GDAL_HTTP_MAX_RETRY, GDAL_HTTP_RETRY_DELAY), failing with an OSError that says which
failure and never the URL. GDAL (which reads the rasters) gives Python no way to read a whole small file; so an
`s3://` item is fetched with botocore, with the same variables GDAL uses for its rasters:
AWS_S3_ENDPOINT (host[:port], as GDAL takes it), AWS_HTTPS, AWS_VIRTUAL_HOSTING, AWS_NO_SIGN_REQUEST,
AWS_REQUESTER_PAYS, AWS_REGION / AWS_DEFAULT_REGION, and the usual credentials.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request

import pystac
from pystac.stac_io import DefaultStacIO

from translandseg_hf.rasters import ACCESS_DENIED, NO_ANSWER, NOT_FOUND, REMOTE_DEFAULTS

RETRIED_STATUSES = (429, 500, 502, 503, 504)  # as GDAL retries them


class RemoteStacIO(DefaultStacIO):
    """pystac's reader for local files; `http(s)://` and `s3://` hrefs read here."""

    def read_text_from_href(self, href: str) -> str:
        if href.startswith("s3://"):
            return read_s3_text(href)
        if href.lower().startswith(("http://", "https://")):
            return read_http_text(href)
        return super().read_text_from_href(href)


def gdal_setting(name: str) -> str:
    return os.environ.get(name, REMOTE_DEFAULTS[name])


def read_http_text(href: str) -> str:
    """The text at a URL; 429 and 5xx are asked again as GDAL does (GDAL_HTTP_MAX_RETRY times, the delay doubling)."""
    request = urllib.request.Request(href, headers={"User-Agent": f"translandseg (pystac {pystac.__version__})"})
    retries, delay = int(gdal_setting("GDAL_HTTP_MAX_RETRY")), float(gdal_setting("GDAL_HTTP_RETRY_DELAY"))
    timeout = float(gdal_setting("GDAL_HTTP_CONNECTTIMEOUT"))  # urllib's timeout bounds each socket wait
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            if error.code not in RETRIED_STATUSES or attempt == retries:
                raise OSError(f"HTTP {error.code}" + (f", also after {retries} retries" if attempt else "")) \
                    from error
        except (urllib.error.URLError, TimeoutError) as error:
            raise OSError(f"{NO_ANSWER} ({getattr(error, 'reason', error)})") from error
        time.sleep(delay * 2 ** attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


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
                    connect_timeout=10, read_timeout=60, retries={"max_attempts": 4, "mode": "standard"})
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    client = botocore.session.get_session().create_client("s3", endpoint_url=endpoint, region_name=region,
                                                           config=config)
    extra = {"RequestPayer": "requester"} if os.environ.get("AWS_REQUESTER_PAYS", "").upper() in ("YES", "TRUE") \
        else {}
    try:
        return client.get_object(Bucket=bucket, Key=key, **extra)["Body"].read().decode("utf-8")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        raise OSError(f"HTTP {status} {code}") from error
    except BotoCoreError as error:
        raise OSError(f"{NO_ANSWER} ({error})") from error


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
