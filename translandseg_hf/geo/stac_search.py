"""Finding scenes for an area and dates in a STAC API (`translandseg imagery`, issue 39): every page of an item
search by intersection with the AOI and datetime (more than MAX_ITEMS items: refused), the cloud filter applied here,
and one deterministic order.

The filter on `eo:cloud_cover` is applied here, not sent to the catalogue: a server-side `query`/`filter` would drop
the items that do not state a cloud cover (they are kept here, and recorded as such), and not every STAC API offers
those extensions. Each item's footprint is checked against the AOI here too, as some catalogues match by bounding
box. Every item considered is recorded with why it was kept or dropped (for imagery.json).

Requests are bounded as the rest of the package's remote reads are: GDAL_HTTP_CONNECTTIMEOUT to connect,
GDAL_HTTP_TIMEOUT for each answer, 429 and 5xx asked again GDAL_HTTP_MAX_RETRY times with GDAL_HTTP_RETRY_DELAY
doubling. Messages show the catalogue's URL without its query string (`url_policy.shown`). Given a `UrlPolicy` (the
app), every request, each page's `next` link included, is checked by it and no redirect is followed."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Optional

import pystac
import shapely

from ..url_policy import REFUSAL, UrlPolicy, UrlRefused, shown
from .aoi import Aoi, as_aoi
from .remote import _QUERY as QUERY_STRING  # a URL's query string, as remote reads strip it from messages
from .remote import NO_ANSWER
from .sentinel2.stac_io import RETRIED_STATUSES, gdal_setting, read_failure, whole_read_seconds

ORDERS = ("least-cloudy", "latest", "earliest")
DEFAULT_PAGE = 100  # items per page asked of the catalogue (most STAC APIs allow 100 or more)
# Items read from one search at most. The order (ORDERS) is applied here once every item is read (not every STAC
# API sorts, and none puts items without a cloud cover where ORDER_KEYS does), so a search is never cut short: over
# this it is refused. A 120-day window (24 revisits of Sentinel-2A and B, 36 with 2C) over an AOI at the composite's
# limit (up to 9 MGRS tiles, each item twice where a tile is met by two orbits) is a few hundred items.
MAX_ITEMS = 1000
MISSING_EXTRA = "searching a STAC API needs pystac-client: pip install 'translandseg-hf[imagery]'"


@dataclass(frozen=True)
class Query:
    """What was searched: how every message and imagery.json name the search."""

    catalogue: str
    collection: str
    aoi: str
    start: str
    end: str
    max_cloud: Optional[float]
    order: str

    def filters(self) -> str:
        return "no cloud filter" if self.max_cloud is None else f"eo:cloud_cover <= {self.max_cloud:g}%"

    def __str__(self) -> str:
        return (f"catalogue {self.catalogue}, collection {self.collection!r}, AOI {self.aoi}, dates {self.start} to "
                f"{self.end}, {self.filters()}")


class SceneSearchError(ValueError):
    """A search that found nothing to use, or could not be asked: `reason`, then the query (`Query`)."""

    def __init__(self, query: Query, reason: str):
        self.query, self.reason = query, reason
        super().__init__(f"{reason} ({query})")


class CatalogueError(OSError):
    """The catalogue did not answer, or answered with an HTTP error."""

    def __init__(self, query: Query, reason: str):
        self.query, self.reason = query, reason
        super().__init__(f"the STAC API did not answer the search: {reason} ({query})")


@dataclass(frozen=True)
class Scene:
    """One item found: `footprint` is its geometry (shapely, WGS 84); `item` the pystac Item itself."""

    id: str
    datetime: dt.datetime
    platform: Optional[str]
    cloud_cover: Optional[float]
    footprint: object = field(repr=False)
    item: pystac.Item = field(repr=False)


@dataclass(frozen=True)
class Considered:
    """An item the catalogue returned, and why it was kept or dropped."""

    id: str
    datetime: Optional[str]
    cloud_cover: Optional[float]
    kept: bool
    reason: str


@dataclass
class SearchResult:
    """`scenes` in the query's order; `considered` every item returned, in the catalogue's order; `pages` asked."""

    query: Query
    scenes: list
    considered: list
    pages: int

    def record(self) -> dict:
        """The query and every item considered, as imagery.json keeps them."""
        return {"query": asdict(self.query), "pages": self.pages,
                "considered": [asdict(entry) for entry in self.considered]}


def search_scenes(stac_url: str, collection: str, aoi, start, end, max_cloud: Optional[float] = None,
                  order: str = "least-cloudy", limit_per_page: int = DEFAULT_PAGE,
                  url_policy: Optional[UrlPolicy] = None) -> SearchResult:
    """The items of `collection` at `stac_url` whose footprint meets `aoi` (an `Aoi`, a GeoJSON/GPKG path, or W,S,E,N
    in WGS 84) between the days `start` and `end` (both included, UTC), at most `max_cloud` % cloudy where they say,
    in `order` (ORDERS): least-cloudy (cloud cover, then datetime, then id; items without a cover last), latest or
    earliest (datetime, then cloud cover, then id). SceneSearchError where none is left or more than MAX_ITEMS are
    found, CatalogueError where the catalogue fails."""
    aoi = as_aoi(aoi)
    first, last = day(start, "start"), day(end, "end")
    query = Query(shown(stac_url), collection, aoi.described, first.isoformat(), last.isoformat(),
                  None if max_cloud is None else float(max_cloud), order)
    check_query(query, stac_url, first, last, limit_per_page)
    client = open_catalogue(stac_url, query, url_policy)
    with answered(query):
        if client.get_collection(collection) is None:
            known = sorted(c.id for c in client.get_collections())
            raise SceneSearchError(query, f"the catalogue has no collection {collection!r} (it has: "
                                          f"{', '.join(known[:20]) or 'none'}{' ...' * (len(known) > 20)})")
        search = client.search(collections=[collection], intersects=aoi.geojson, limit=limit_per_page,
                               datetime=f"{first.isoformat()}T00:00:00Z/{last.isoformat()}T23:59:59Z")
        pages = read_pages(search, query)
    scenes, considered = screen([item for page in pages for item in page], aoi, query.max_cloud)
    if not scenes:
        raise SceneSearchError(query, nothing_left(considered))
    return SearchResult(query, sorted(scenes, key=ORDER_KEYS[order]), considered, len(pages))


def read_pages(search, query: Query) -> list:
    """The items of each page, in the catalogue's order; SceneSearchError as soon as more than MAX_ITEMS are read."""
    pages, count = [], 0
    for page in search.pages():
        pages.append(page.items)
        count += len(page.items)
        if count > MAX_ITEMS:
            raise SceneSearchError(query, f"more than {MAX_ITEMS:,} items found ({count:,} in the first {len(pages)} "
                                          "pages, where the search stopped): scenes are put in order only once every "
                                          "item is read, so a search cut short could leave the best out; search a "
                                          "shorter date window or a smaller AOI")
    return pages


def day(value, name: str) -> dt.date:
    """A date from 'YYYY-MM-DD', a date or a datetime (its UTC day)."""
    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.timezone.utc) if value.tzinfo else value).date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{name} date {value!r}: give it as YYYY-MM-DD.") from None


def check_query(query: Query, stac_url: str, first: dt.date, last: dt.date, limit_per_page: int) -> None:
    if first > last:
        raise SceneSearchError(query, f"the start date {first} is after the end date {last}; swap them")
    if query.order not in ORDERS:
        raise SceneSearchError(query, f"order {query.order!r} is not one of {', '.join(ORDERS)}")
    if query.max_cloud is not None and not 0 <= query.max_cloud <= 100:
        raise SceneSearchError(query, f"max_cloud {query.max_cloud:g} is not a percentage from 0 to 100")
    if int(limit_per_page) < 1:
        raise SceneSearchError(query, f"limit_per_page {limit_per_page} must be 1 or more")
    if not str(stac_url).lower().startswith(("http://", "https://")):
        raise SceneSearchError(query, "the catalogue must be a STAC API's http(s):// URL")


# ------------------------------------------------------------------------------------------------- the catalogue
def open_catalogue(stac_url: str, query: Query, url_policy: Optional[UrlPolicy]):
    """pystac-client's Client on `stac_url`, its requests bounded by GDAL's timeout and retry settings."""
    try:
        from pystac_client import Client
        from pystac_client.stac_api_io import StacApiIO
    except ImportError:
        raise ImportError(MISSING_EXTRA) from None
    from urllib3.util.retry import Retry

    retries, delay = int(gdal_setting("GDAL_HTTP_MAX_RETRY")), float(gdal_setting("GDAL_HTTP_RETRY_DELAY"))
    retry = Retry(total=retries, connect=0, read=0, other=0, status=retries, status_forcelist=RETRIED_STATUSES,
                  allowed_methods=None, backoff_factor=delay, raise_on_status=False,
                  respect_retry_after_header=False)  # a server's "Retry-After: 3600" must not hold the run
    stac_io = StacApiIO(max_retries=retry)
    if url_policy is not None:
        stac_io.session.max_redirects = 0  # a redirect could lead where the policy never looked
    with answered(query):  # Client.open sets the modifier and timeout on stac_io (None ones too): given here
        return Client.open(stac_url, stac_io=stac_io, request_modifier=checked_by(url_policy) if url_policy else None,
                           timeout=(float(gdal_setting("GDAL_HTTP_CONNECTTIMEOUT")), whole_read_seconds()))


def checked_by(url_policy: UrlPolicy):
    """A request modifier that lets a request go only to a URL `url_policy` allows (every page's `next` link too)."""

    def check(request):
        url_policy.checked(request.url)
        return request

    return check


@contextmanager
def answered(query: Query):
    """Inside it, pystac-client's failures become CatalogueError or SceneSearchError naming the query."""
    from pystac_client.exceptions import APIError

    try:
        yield
    except APIError as error:
        raise api_failure(query, error) from None
    except NotImplementedError as error:  # pystac-client: no item search or collections in conformsTo
        raise SceneSearchError(query, f"the catalogue is not a STAC API with item search ({error})") from None
    except (pystac.STACError, pystac.STACTypeError, json.JSONDecodeError) as error:
        raise SceneSearchError(query, f"the catalogue's answer is not STAC JSON ({error})") from None


def api_failure(query: Query, error) -> Exception:
    """pystac-client's APIError in words: the HTTP status (after the retries), no answer, or the policy's refusal;
    never a URL's query string (it may hold a signature)."""
    status, text = getattr(error, "status_code", None), QUERY_STRING.sub("", str(error))
    if REFUSAL in text:
        return UrlRefused(text)
    if status is None:
        return CatalogueError(query, f"{NO_ANSWER} ({text})")
    retried = int(gdal_setting("GDAL_HTTP_MAX_RETRY")) if status in RETRIED_STATUSES else 0
    detail = f"HTTP {status}" + (f", also after {retried} retries" if retried else "")
    worded = read_failure(OSError(detail))
    return CatalogueError(query, worded if worded != detail else f"{detail}: {text.strip()[:200]}")


# ------------------------------------------------------------------------------------------- screening, order
def screen(items: list, aoi: Aoi, max_cloud: Optional[float]) -> tuple[list, list]:
    """The items kept as Scenes, and every item with why it was kept or dropped."""
    scenes, considered, seen = [], [], set()
    for item in items:
        cover = cloud_cover(item)
        when = item_datetime(item)
        footprint = shapely.geometry.shape(item.geometry) if item.geometry else None  # parsed once per item
        reason = drop_reason(item, cover, when, footprint, aoi, max_cloud, seen)
        seen.add(item.id)
        if reason is None:
            scenes.append(Scene(item.id, when, item.properties.get("platform"), cover, footprint, item))
            reason = ("kept: no eo:cloud_cover stated, so not filtered" if cover is None and max_cloud is not None
                      else "kept")
        considered.append(Considered(item.id, when.isoformat() if when else None, cover,
                                     reason.startswith("kept"), reason))
    return scenes, considered


def drop_reason(item, cover, when, footprint, aoi: Aoi, max_cloud, seen: set) -> Optional[str]:
    if item.id in seen:
        return "dropped: returned again on a later page"
    if when is None:
        return "dropped: no datetime (nor start_datetime)"
    if footprint is None:
        return "dropped: no footprint geometry"
    if not footprint.intersects(aoi.geometry):
        return "dropped: its footprint does not meet the AOI (the catalogue matched its bounding box)"
    if max_cloud is not None and cover is not None and cover > max_cloud:
        return f"dropped: eo:cloud_cover {cover:g}% > {max_cloud:g}%"
    return None


def cloud_cover(item) -> Optional[float]:
    value = item.properties.get("eo:cloud_cover")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def item_datetime(item) -> Optional[dt.datetime]:
    """The item's datetime, or its start_datetime where datetime is null (STAC allows a range instead)."""
    if item.datetime is not None:
        return item.datetime
    start = item.properties.get("start_datetime")
    return pystac.utils.str_to_datetime(start) if start else None


def nothing_left(considered: list) -> str:
    """Why a search that found items has none to use: how many were dropped for each reason."""
    if not considered:
        return "no item found"
    reasons = Counter("cloudier than the filter" if "eo:cloud_cover" in entry.reason
                      else entry.reason[len("dropped: "):] for entry in considered)
    dropped = "; ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return f"no item left: {len(considered)} found, all dropped ({dropped})"


NO_COVER = math.inf  # items without eo:cloud_cover come after every item with one


def _cover(scene: Scene) -> float:
    return NO_COVER if scene.cloud_cover is None else scene.cloud_cover


ORDER_KEYS = {
    "least-cloudy": lambda s: (_cover(s), s.datetime.timestamp(), s.id),
    "latest": lambda s: (-s.datetime.timestamp(), _cover(s), s.id),
    "earliest": lambda s: (s.datetime.timestamp(), _cover(s), s.id),
}
