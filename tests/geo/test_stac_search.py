"""Searching a STAC API by area and date (issue 39 section 1, first part), against a real STAC API on 127.0.0.1
(`rustac serve`) loaded with items built from a known truth: two MGRS-like tiles either side of the UTM zone
boundary at 108 deg E (overlapping as MGRS tiles do), three dates, cloud covers (two items state none), and two
items the search must not return (another place, an earlier date). Cases are rows: the next one is a line."""

from __future__ import annotations

import datetime as dt
import json
import time
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest
import shapely
from helpers.servers import LoopbackServer, RangeServer, StacApiServer, free_port
from pyogrio.raw import write as write_layer
from rasterio.warp import transform as transform_points

from translandseg_hf.geo import REMOTE_DEFAULTS
from translandseg_hf.geo.aoi import Aoi
from translandseg_hf.geo.stac_search import CatalogueError, SceneSearchError, search_scenes
from translandseg_hf.url_policy import UrlPolicy, UrlRefused

pytest.importorskip("pystac_client", reason="the imagery extra (pystac-client) is not installed")

COLLECTION = "sentinel-2-l2a-test"
TILES = {"48QYD": (107.0, 15.0, 108.1, 16.0), "49QBV": (107.9, 15.0, 109.0, 16.0)}  # W,S,E,N; zones 48 and 49
DATES = [dt.datetime(2024, 3, day, 3, 30, tzinfo=dt.timezone.utc) for day in (2, 7, 12)]
CLOUD = {"48QYD": [12.0, 55.0, None], "49QBV": [3.0, 12.0, None]}  # per date; None: no eo:cloud_cover
PLATFORM = ["sentinel-2a", "sentinel-2b", "sentinel-2a"]
ELSEWHERE = ("47QKA", (100.0, 15.0, 101.0, 16.0), DATES[1])  # outside every AOI below
EARLIER = ("48QYD", TILES["48QYD"], dt.datetime(2024, 2, 20, 3, 30, tzinfo=dt.timezone.utc))  # before every start


def item_id(tile: str, when: dt.datetime) -> str:
    return f"S2_MSIL2A_{when:%Y%m%d}_T{tile}"


def stac_item(tile: str, bounds, when: dt.datetime, cover, platform: str) -> dict:
    properties = {"datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "platform": platform}
    if cover is not None:
        properties["eo:cloud_cover"] = cover
    return {"type": "Feature", "stac_version": "1.0.0", "stac_extensions": [], "id": item_id(tile, when),
            "collection": COLLECTION, "geometry": shapely.geometry.mapping(shapely.box(*bounds)),
            "bbox": list(bounds), "properties": properties, "links": [],
            "assets": {"B04": {"href": f"https://example.invalid/{tile}/B04.tif", "type": "image/tiff"}}}


def truth_items() -> list:
    items = [stac_item(tile, TILES[tile], when, CLOUD[tile][index], PLATFORM[index])
             for tile in TILES for index, when in enumerate(DATES)]
    items.append(stac_item(*ELSEWHERE, 1.0, "sentinel-2a"))
    items.append(stac_item(*EARLIER, 1.0, "sentinel-2b"))
    return items


@pytest.fixture(scope="module")
def stac_api(tmp_path_factory):
    """The truth's items served by rustac's STAC API; skipped, with the reason, where it cannot start."""
    folder = tmp_path_factory.mktemp("stac")
    collection = {"type": "Collection", "stac_version": "1.0.0", "id": COLLECTION, "description": "test truth",
                  "license": "proprietary", "links": [],
                  "extent": {"spatial": {"bbox": [[100.0, 15.0, 109.0, 16.0]]},
                             "temporal": {"interval": [["2024-01-01T00:00:00Z", None]]}}}
    (folder / "collection.json").write_text(json.dumps(collection))
    (folder / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": truth_items()}))
    server = StacApiServer([folder / "collection.json", folder / "items.json"])
    if server.start() is None:
        pytest.skip(f"no STAC API server: {server.reason}")
    yield server.url
    server.stop()


@pytest.fixture(autouse=True)
def remote_settings(monkeypatch):
    """GDAL's remote settings from the defaults, not from the environment; a dead port fails fast."""
    for name in REMOTE_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GDAL_HTTP_CONNECTTIMEOUT", "2")


def utm_polygon_file(path, epsg: int, west, south, east, north, extra_points: bool = False):
    """A GPKG holding the WGS 84 box W,S,E,N as a polygon in EPSG:`epsg` (its corners reprojected)."""
    xs, ys = transform_points("EPSG:4326", f"EPSG:{epsg}", [west, east, east, west], [south, south, north, north])
    polygon = shapely.Polygon(list(zip(xs, ys)))
    geometries = [polygon] + ([shapely.Point(xs[0], ys[0])] if extra_points else [])
    write_layer(path, np.array(shapely.to_wkb(geometries), dtype=object), [], [],
                crs=f"EPSG:{epsg}", geometry_type="Unknown", driver="GPKG")
    return path


def ids(tile_dates) -> list:
    return [item_id(tile, DATES[index]) for tile, index in tile_dates]


# name, AOI (a bbox, or a GPKG: (EPSG, W, S, E, N)), start, end, max_cloud, order, expected scenes in order
CASES = [
    ("bbox across the 108E zone boundary, least cloudy", "107.5,15.3,108.5,15.7", "2024-03-01", "2024-03-31", None,
     "least-cloudy", ids([("49QBV", 0), ("48QYD", 0), ("49QBV", 1), ("48QYD", 1), ("48QYD", 2), ("49QBV", 2)])),
    ("cloud filter keeps the items without eo:cloud_cover", "107.5,15.3,108.5,15.7", "2024-03-01", "2024-03-31",
     50, "least-cloudy", ids([("49QBV", 0), ("48QYD", 0), ("49QBV", 1), ("48QYD", 2), ("49QBV", 2)])),
    ("latest", "107.5,15.3,108.5,15.7", "2024-03-01", "2024-03-31", None, "latest",
     ids([("48QYD", 2), ("49QBV", 2), ("49QBV", 1), ("48QYD", 1), ("49QBV", 0), ("48QYD", 0)])),
    ("earliest, from the second date", "107.5,15.3,108.5,15.7", "2024-03-07", "2024-03-12", None, "earliest",
     ids([("49QBV", 1), ("48QYD", 1), ("48QYD", 2), ("49QBV", 2)])),
    ("one day, both ends included", "107.5,15.3,108.5,15.7", "2024-03-07", "2024-03-07", None, "least-cloudy",
     ids([("49QBV", 1), ("48QYD", 1)])),
    ("GPKG in EPSG:32648 inside one tile", (32648, 107.1, 15.3, 107.5, 15.6), "2024-03-01", "2024-03-31", None,
     "least-cloudy", ids([("48QYD", 0), ("48QYD", 1), ("48QYD", 2)])),
    ("GPKG in EPSG:32649 across the zone boundary", (32649, 107.95, 15.3, 108.3, 15.6), "2024-03-01", "2024-03-31",
     None, "earliest", ids([("49QBV", 0), ("48QYD", 0), ("49QBV", 1), ("48QYD", 1), ("48QYD", 2), ("49QBV", 2)])),
    ("bbox in zone 49 only", "108.5,15.3,108.9,15.7", "2024-03-01", "2024-03-31", 10, "least-cloudy",
     ids([("49QBV", 0), ("49QBV", 2)])),
]


def as_search_aoi(aoi, tmp_path):
    if isinstance(aoi, str):
        return Aoi.from_bbox(aoi)
    return utm_polygon_file(tmp_path / f"aoi_{aoi[0]}.gpkg", *aoi)


@pytest.mark.parametrize("name, aoi, start, end, max_cloud, order, expected", CASES, ids=[c[0] for c in CASES])
def test_search_finds_the_truth_in_order(stac_api, tmp_path, name, aoi, start, end, max_cloud, order, expected):
    result = search_scenes(stac_api, COLLECTION, as_search_aoi(aoi, tmp_path), start, end, max_cloud=max_cloud,
                           order=order, limit_per_page=2)
    assert [scene.id for scene in result.scenes] == expected
    assert result.pages >= -(-len(result.considered) // 2) >= 2 or len(result.considered) <= 2
    for scene in result.scenes:
        tile, index = scene.id[-5:], DATES.index(scene.datetime)
        assert (scene.cloud_cover, scene.platform) == (CLOUD[tile][index], PLATFORM[index])
        assert scene.footprint.equals(shapely.box(*TILES[tile])) and scene.item.id == scene.id
    kept = {entry.id for entry in result.considered if entry.kept}
    assert kept == set(expected)
    for entry in result.considered:
        if entry.kept and entry.cloud_cover is None and max_cloud is not None:
            assert entry.reason == "kept: no eo:cloud_cover stated, so not filtered"
        if not entry.kept:
            assert entry.reason == f"dropped: eo:cloud_cover {entry.cloud_cover:g}% > {max_cloud:g}%"


def test_every_page_is_read(stac_api):
    """Six items in the AOI and dates, two per page: three pages or more, each item once."""
    result = search_scenes(stac_api, COLLECTION, "107.5,15.3,108.5,15.7", "2024-03-01", "2024-03-31",
                           limit_per_page=2)
    assert result.pages >= 3
    assert sorted(entry.id for entry in result.considered) == sorted(ids([(t, i) for t in TILES for i in range(3)]))
    record = json.loads(json.dumps(result.record()))
    assert record["query"]["catalogue"] == stac_api and record["query"]["collection"] == COLLECTION
    assert len(record["considered"]) == 6 and all(entry["kept"] for entry in record["considered"])


@pytest.mark.parametrize("cap, pages", [(3, 2), (5, 3)])
def test_a_search_over_the_item_limit_is_refused_where_it_stops(stac_api, monkeypatch, cap, pages):
    """Six items, two a page: over `cap` the search stops at the page that passes it, and is refused (the order is
    made here, so a search cut short could drop the best scenes), not cut short silently."""
    from translandseg_hf.geo import stac_search

    monkeypatch.setattr(stac_search, "MAX_ITEMS", cap)
    with pytest.raises(SceneSearchError, match=rf"^more than {cap} items found \({2 * pages} in the first {pages} pages, "
                                               r"where the search stopped\): scenes are put in order only once every "
                                               r"item is read, so a search cut short could leave the best out; search "
                                               r"a shorter date window or a smaller AOI \(catalogue http"):
        search_scenes(stac_api, COLLECTION, "107.5,15.3,108.5,15.7", "2024-03-01", "2024-03-31", limit_per_page=2)
    monkeypatch.setattr(stac_search, "MAX_ITEMS", 6)  # at the limit: every item, in order
    result = search_scenes(stac_api, COLLECTION, "107.5,15.3,108.5,15.7", "2024-03-01", "2024-03-31",
                           limit_per_page=2)
    assert [scene.id for scene in result.scenes] == CASES[0][-1]


def test_an_aoi_file_in_utm_is_reprojected_to_wgs84(tmp_path):
    path = utm_polygon_file(tmp_path / "aoi.gpkg", 32648, 107.1, 15.3, 107.5, 15.6, extra_points=True)
    aoi = Aoi.from_file(path)
    assert aoi.bounds == pytest.approx((107.1, 15.3, 107.5, 15.6), abs=2e-3)
    assert "1 polygon in EPSG:32648" in aoi.described and str(path) in aoi.described


QUERY = r"catalogue http://127\.0\.0\.1:\d+/, collection '{collection}', AOI {aoi}, dates {start} to {end}, {filters}"

# name, AOI, start, end, max_cloud, collection, expected message (before the query the message names)
ERROR_CASES = [
    ("empty search", "100.2,15.2,100.4,15.4", "2024-04-01", "2024-04-30", None, COLLECTION, r"no item found"),
    ("all cloudier than the filter", "107.1,15.3,107.5,15.6", "2024-03-01", "2024-03-08", 5, COLLECTION,
     r"no item left: 2 found, all dropped \(2 cloudier than the filter\)"),
    ("a collection that does not exist", "107.5,15.3,108.5,15.7", "2024-03-01", "2024-03-31", None,
     "sentinel-2-l1c", rf"the catalogue has no collection 'sentinel-2-l1c' \(it has: {COLLECTION}\)"),
    ("dates the wrong way round", "107.5,15.3,108.5,15.7", "2024-03-31", "2024-03-01", None, COLLECTION,
     r"the start date 2024-03-31 is after the end date 2024-03-01; swap them"),
]


@pytest.mark.parametrize("name, aoi, start, end, max_cloud, collection, message", ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
def test_a_search_that_finds_nothing_says_what_was_searched(stac_api, name, aoi, start, end, max_cloud, collection,
                                                            message):
    west, south, east, north = (float(v) for v in aoi.split(","))
    filters = "no cloud filter" if max_cloud is None else rf"eo:cloud_cover <= {max_cloud}%"
    query = QUERY.format(collection=collection, aoi=rf"bbox {west:g},{south:g},{east:g},{north:g}", start=start,
                         end=end, filters=filters)
    with pytest.raises(SceneSearchError, match=rf"^{message} \({query}\)$"):
        search_scenes(stac_api, collection, aoi, start, end, max_cloud=max_cloud)


def test_an_aoi_file_without_polygons_is_refused(tmp_path):
    path = tmp_path / "points.gpkg"
    write_layer(path, np.array(shapely.to_wkb([shapely.Point(107.2, 15.4)]), dtype=object), [], [],
                crs="EPSG:4326", geometry_type="Point", driver="GPKG")
    with pytest.raises(ValueError, match=rf"^AOI file {path}: no polygons \(it has Point only\); the area must be "
                                         r"drawn as polygons\.$"):
        search_scenes("http://127.0.0.1:9/", COLLECTION, path, "2024-03-01", "2024-03-31")


def test_a_catalogue_answering_500_is_named_after_the_retries(tmp_path, monkeypatch):
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "2")
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.01")
    with RangeServer(tmp_path) as server:
        server.status["stac"] = 500
        url = server.url("stac")
        with pytest.raises(CatalogueError, match=(
                r"^the STAC API did not answer the search: the server did not serve it \(HTTP 500, also after 2 "
                r"retries\); try again later, or raise GDAL_HTTP_MAX_RETRY \(catalogue " + url + r", collection")):
            search_scenes(url + "?token=secret", COLLECTION, "107.5,15.3,108.5,15.7", "2024-03-01", "2024-03-31")
        assert server.requests["stac"] == 3  # the first request and two retries


def test_an_unreachable_catalogue_says_so_without_the_query_string():
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(CatalogueError, match=r"^the STAC API did not answer the search: no answer from the server "
                                             r"\(.*\) \(catalogue " + url) as caught:
        search_scenes(url + "?token=secret", COLLECTION, "107.5,15.3,108.5,15.7", "2024-03-01", "2024-03-31")
    assert "secret" not in str(caught.value)


def test_a_url_policy_checks_every_request(stac_api):
    """The app's policy refuses a loopback catalogue; allowed by host and port, every page passes it."""
    with pytest.raises(UrlRefused, match=r"not fetched: the app reads only public http\(s\), s3, gs and az URLs"):
        search_scenes(stac_api, COLLECTION, "107.5,15.3,108.5,15.7", "2024-03-01", "2024-03-31",
                      url_policy=UrlPolicy())
    allowed = UrlPolicy(allowed_hosts=frozenset({stac_api.split("//", 1)[1].rstrip("/")}))
    result = search_scenes(stac_api, COLLECTION, "107.5,15.3,108.5,15.7", "2024-03-01", "2024-03-31",
                           limit_per_page=2, url_policy=allowed)
    assert len(result.scenes) == 6 and result.pages >= 3


def test_a_catalogue_that_never_answers_is_left_after_gdal_http_timeout(monkeypatch):
    """GDAL_HTTP_TIMEOUT bounds each answer (pystac-client's Client.open would otherwise reset it to none)."""
    class Silent(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(5)

        def log_message(self, *args):
            pass

    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "0.5")
    with LoopbackServer(Silent) as server:
        started = time.monotonic()
        with pytest.raises(CatalogueError, match=r"no answer from the server \(.*timed out"):
            search_scenes(f"http://127.0.0.1:{server.port}/", COLLECTION, "107.5,15.3,108.5,15.7", "2024-03-01",
                          "2024-03-31")
        assert time.monotonic() - started < 4
