"""Catalogues and credentials (issue 35 section 2), against real servers on 127.0.0.1: a STAC item read from the
network names only files on the network; the user's GDAL HTTP credentials reach the item's own host and no other;
reading an item is capped in size and in time; GDAL's own `/vsicurl/http://...` paths are read as the URLs they are.

Hostile cases are tables: the next case is one row."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import re
import time
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest
import rasterio
from helpers.rasters import write_textured_cog
from helpers.sentinel2 import GRID_10M as TRANSFORM
from helpers.sentinel2 import UTM_45N as CRS
from helpers.sentinel2 import rgb_digital_numbers, write_stac_item
from helpers.servers import LoopbackServer, RangeServer, S3Server

from translandseg_hf.cli import main
from translandseg_hf.inference.reading import SceneReader
from translandseg_hf.geo import REMOTE_DEFAULTS, open_raster
from translandseg_hf.geo.sentinel2 import stac_io
from translandseg_hf.geo.sentinel2.products import open_product

AOI = "300000,3099200,300400,3099600"  # 40 x 40 px of the 96 px item's 10 m grid


@pytest.fixture(autouse=True)
def remote_settings(monkeypatch):
    """No REMOTE_DEFAULTS nor credentials left from elsewhere; an unreachable port fails fast; GDAL's path-specific
    options (credentials kept from a host) forgotten after each test, as a later server may get the same port."""
    for name in (*REMOTE_DEFAULTS, *stac_io.CREDENTIAL_SETTINGS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GDAL_HTTP_CONNECTTIMEOUT", "2")
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")
    yield
    library = next(filter(None, map(stac_io.rasterio_gdal, stac_io.gdal_library_candidates())))
    library.VSIClearPathSpecificOptions.argtypes = [ctypes.c_char_p]
    library.VSIClearPathSpecificOptions(None)


@pytest.fixture(scope="module")
def item_folder(tmp_path_factory):
    """A 96 px Earth Search-style L1C item beside its three band COGs, hrefs relative."""
    folder = tmp_path_factory.mktemp("item")
    write_stac_item(folder / "item.json", rgb_digital_numbers(96), CRS, TRANSFORM, level="L1C")
    return folder


@pytest.fixture(scope="module")
def secret_raster(tmp_path_factory):
    """A local raster of the user's that no stranger's item may make the run read."""
    return write_textured_cog(tmp_path_factory.mktemp("private") / "secret.tif", side=96)


def item_with_hrefs(folder, name: str, hrefs: dict):
    """A copy of the item whose assets (key -> href) are given new hrefs."""
    data = json.loads((folder / "item.json").read_text())
    for key, href in hrefs.items():
        data["assets"][key]["href"] = href
    (folder / name).write_text(json.dumps(data))
    return name


def run(*argv) -> int:
    return main([str(part) for part in argv])


# ---------------------------------------------------------------------------- an item from the network: no local files
LOCAL_HREFS = [  # (id, the red band's href, given the secret raster's path; the message's words)
    ("file-url", lambda secret: secret.as_uri(), "names a local file \\(file://"),
    ("absolute-path", lambda secret: str(secret), "names a local file \\(/"),
    ("vsi-path", lambda secret: f"/vsigzip/{secret}", "names a local file \\(/vsigzip/"),
    ("other-scheme", lambda secret: f"ftp://127.0.0.1/{secret.name}", "has an href of scheme 'ftp'"),
]


@pytest.mark.parametrize("href, words", [row[1:] for row in LOCAL_HREFS], ids=[row[0] for row in LOCAL_HREFS])
@pytest.mark.parametrize("command", ["stack", "predict"])
def test_an_item_from_the_network_may_not_name_local_files(command, href, words, item_folder, secret_raster,
                                                          rgb_model, tmp_path, capsys):
    name = item_with_hrefs(item_folder, f"local-{tmp_path.name}.json", {"red": href(secret_raster)})
    with RangeServer(item_folder) as server:
        url = server.url(name)
        if command == "stack":
            code = run("stack", "--model", rgb_model, "--sentinel2", url, "--output", tmp_path / "stack.tif")
        else:
            code = run("predict", "--model", rgb_model, url, "--output", tmp_path / "maps")
    out, err = capsys.readouterr()
    assert code == (2 if command == "stack" else 1)
    assert not (tmp_path / "stack.tif").exists() and not list((tmp_path / "maps").glob("*.tif"))
    assert re.search(f"{re.escape(url)}: asset 'red' {words}.*; an item read from the network may only name",
                     out + err), out + err
    assert server.requests["B04.tif"] == 0


def test_a_relative_href_resolves_against_the_item_url_and_a_local_item_still_names_local_files(
        item_folder, secret_raster, tmp_path):
    with RangeServer(item_folder) as server:
        product = open_product(server.url("item.json") + "?token=abc")
    assert product.bands["B4"] == server.url("B04.tif") and product.bands["B2"] == server.url("B02.tif")
    local = item_with_hrefs(item_folder, "local-own.json", {"red": str(secret_raster)})
    assert open_product(item_folder / local).bands["B4"] == str(secret_raster)


# ---------------------------------------------------------------------------------- credentials: the item's host only
class RecordingServer(RangeServer):
    """A RangeServer that records the headers of every request: what each host was sent."""

    def __init__(self, root):
        super().__init__(root)
        self.received: list = []

    def _handler(self):
        base, server = super()._handler(), self

        class Recording(base):
            def parse_request(self):
                parsed = base.parse_request(self)
                if parsed:
                    server.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                return parsed

        return Recording

    def sent(self, header: str, suffix: str = ".tif") -> set:
        """The values of `header` sent in the requests for the band files (or the files ending in `suffix`)."""
        return {headers.get(header.lower()) for path, headers in self.received if path.split("?")[0].endswith(suffix)}


class RedirectingServer(RecordingServer):
    """A RecordingServer whose files have all moved: every request is answered 302, to `target(name)`."""

    target = None

    def _handler(self):
        base, server = super()._handler(), self

        class Redirecting(base):
            def do_GET(self):
                self.send_response(302)
                self.send_header("Location", server.target(self.path.rsplit("/", 1)[-1]))
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_GET

        return Redirecting


CREDENTIALS = [  # (id, settings, the header that carries them, its value on the item's host)
    ("userpwd", {"GDAL_HTTP_USERPWD": "me:hunter2"}, "Authorization", "Basic bWU6aHVudGVyMg=="),
    ("bearer", {"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": "tok3n"}, "Authorization", "Bearer tok3n"),
    ("headers", {"GDAL_HTTP_HEADERS": "X-Api-Key: k3y"}, "X-Api-Key", "k3y"),
    ("header-file", {"GDAL_HTTP_HEADER_FILE": "{tmp}/headers.txt"}, "X-Api-Key", "fr0m-file"),
    ("cookie", {"GDAL_HTTP_COOKIE": "session=c00kie"}, "Cookie", "session=c00kie"),
]


@pytest.mark.parametrize("settings, header, value", [row[1:] for row in CREDENTIALS], ids=[r[0] for r in CREDENTIALS])
def test_credentials_reach_the_item_host_and_no_other(settings, header, value, item_folder, rgb_model, tmp_path,
                                                      monkeypatch):  # noqa: F811
    (tmp_path / "headers.txt").write_text("X-Api-Key: fr0m-file\n")
    for name, setting in settings.items():
        monkeypatch.setenv(name, setting.format(tmp=tmp_path))
    with RecordingServer(item_folder) as own, RecordingServer(item_folder) as other:
        name = item_with_hrefs(item_folder, f"two-hosts-{other.port}.json",
                               {"green": other.url("B03.tif"), "red": other.url("B04.tif")})
        assert run("stack", "--model", rgb_model, "--sentinel2", own.url(name), "--bounds", AOI, "--output",
                   tmp_path / "stack.tif") == 0
    assert own.requests["B02.tif"] >= 1 and other.requests["B03.tif"] >= 1 and other.requests["B04.tif"] >= 1
    assert own.sent(header) == {value}
    assert own.sent(header, suffix=".json") == {None}  # the item's JSON is fetched without GDAL's credentials
    assert other.sent(header) <= {None, ""}  # GDAL sends an empty Cookie header where it is set to nothing
    assert not any(header.lower() == "authorization" for _, headers in other.received for header in headers)


def test_a_remote_item_on_one_host_reads_with_credentials_as_before(item_folder, rgb_model, tmp_path, monkeypatch):
    monkeypatch.setenv("GDAL_HTTP_USERPWD", "me:hunter2")
    with RecordingServer(item_folder) as own:
        assert run("stack", "--model", rgb_model, "--sentinel2", own.url("item.json"), "--bounds", AOI, "--output",
                   tmp_path / "stack.tif") == 0
    assert own.sent("Authorization") == {"Basic bWU6aHVudGVyMg=="}


def test_a_redirect_to_another_host_drops_the_authorization_but_keeps_custom_headers(item_folder, monkeypatch):
    """What the README says of redirects, as curl does it (not this package): the Authorization of
    GDAL_HTTP_USERPWD / GDAL_HTTP_BEARER is not sent on to another host; GDAL_HTTP_HEADERS are."""
    monkeypatch.setenv("GDAL_HTTP_USERPWD", "me:hunter2")
    monkeypatch.setenv("GDAL_HTTP_HEADERS", "X-Api-Key: k3y")
    with RedirectingServer(item_folder) as own, RecordingServer(item_folder) as other:
        own.target = other.url
        with open_raster("/vsicurl/" + own.url("B04.tif")) as band:
            assert band.read(1).shape == (96, 96)
    assert own.sent("Authorization") == {"Basic bWU6aHVudGVyMg=="} and other.sent("Authorization") == {None}
    assert other.sent("X-Api-Key") == {"k3y"}


def test_without_path_specific_options_an_asset_on_another_host_is_refused(item_folder, monkeypatch):
    """GDAL before 3.6 cannot scope credentials: the item is refused, naming the asset, the host and the settings."""
    monkeypatch.setattr(stac_io, "path_specific_setter", lambda: None)
    monkeypatch.setenv("GDAL_HTTP_USERPWD", "me:hunter2")
    with RangeServer(item_folder) as own, RangeServer(item_folder) as other:
        name = item_with_hrefs(item_folder, f"refused-{other.port}.json", {"red": other.url("B04.tif")})
        with pytest.raises(ValueError, match=f"^{re.escape(own.url(name))}: asset 'red' is on another host "
                                             f"\\(http://127.0.0.1:{other.port}\\) than the item, and "
                                             "GDAL_HTTP_USERPWD would be sent there"):
            open_product(own.url(name))


# ------------------------------------------------------------------------------------- reading an item: size and time
class OddServer(LoopbackServer):
    """An HTTP server on 127.0.0.1 whose every answer is `answer(handler)`: an endless or trickling body. Each answer
    is bounded in bytes and seconds, so a client that never stops still ends."""

    def __init__(self, answer):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    answer(self)
                except OSError:  # the client went away, as it should
                    pass

        super().__init__(Handler)

    def url(self, name: str = "item.json") -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


def endless(handler, declared=None) -> None:
    """A body of 64 MiB at most (4x the cap), no length declared unless `declared`."""
    handler.send_response(200)
    handler.send_header("Connection", "close")
    if declared is not None:
        handler.send_header("Content-Length", str(declared))
    handler.end_headers()
    chunk = b"{" + b" " * (2**16 - 1)
    for _ in range(1024):
        handler.wfile.write(chunk)


def trickle_body(handler) -> None:
    """Headers at once, then a byte every 0.2 s (15 s at most)."""
    handler.send_response(200)
    handler.send_header("Content-Length", "75")
    handler.end_headers()
    for _ in range(75):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.2)


def trickle_headers(handler) -> None:
    """The status line itself a byte every 0.2 s (15 s at most)."""
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 60:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.2)


TOO_LARGE = "it is larger than 16 MiB, where a STAC item is kilobytes; pass the URL of one item's JSON"
TOO_SLOW = ("the server did not send all of it within 1 s \\(GDAL_HTTP_TIMEOUT\\); try again later, or raise "
            "GDAL_HTTP_TIMEOUT")
HOSTILE_ITEMS = [  # (id, the server's answer, the reason the message gives)
    ("endless-body", endless, re.escape(TOO_LARGE)),
    ("declared-10-GB", lambda handler: endless(handler, declared=10**10), re.escape(TOO_LARGE)),
    ("trickling-body", trickle_body, TOO_SLOW),
    ("trickling-headers", trickle_headers, TOO_SLOW),
]


@pytest.mark.parametrize("answer, reason", [row[1:] for row in HOSTILE_ITEMS], ids=[row[0] for row in HOSTILE_ITEMS])
def test_reading_an_item_is_capped_in_size_and_time(answer, reason, monkeypatch):
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "1")
    with OddServer(answer) as server:
        start = time.perf_counter()
        with pytest.raises(OSError, match=f"^{re.escape(server.url())}: cannot read the STAC item: {reason}$"):
            open_product(server.url())
        assert time.perf_counter() - start < 4


def test_an_item_on_s3_is_capped_in_size(item_folder, monkeypatch):
    if importlib.util.find_spec("moto") is None:
        pytest.skip("moto is not installed (pip install 'moto[server]>=5')")
    monkeypatch.setattr(stac_io, "MAX_ITEM_BYTES", 1000)  # the item is ~10 kB: 16 MiB need not be uploaded
    with S3Server() as server:
        for name, value in dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
                                AWS_S3_ENDPOINT=server.endpoint, AWS_HTTPS="NO", AWS_VIRTUAL_HOSTING="FALSE").items():
            monkeypatch.setenv(name, value)
        server.client().create_bucket(Bucket="capped")
        server.client().upload_file(str(item_folder / "item.json"), "capped", "item.json")
        with pytest.raises(OSError, match="^s3://capped/item.json: cannot read the STAC item: it is larger than"):
            open_product("s3://capped/item.json")


# ----------------------------------------------------------------------------------- GDAL's /vsicurl/ paths as inputs
def test_a_vsicurl_path_is_read_by_the_reader_predict_and_stack(item_folder, rgb_model, tmp_path):  # noqa: F811
    local = run("stack", "--model", rgb_model, "--sentinel2", item_folder / "item.json", "--bounds", AOI, "--output",
                tmp_path / "local.tif")
    write_textured_cog(tmp_path / "scene.tif", side=256)
    with RangeServer(tmp_path) as scenes, SceneReader("/vsicurl/" + scenes.url("scene.tif")) as reader:
        assert (reader.width, reader.height, reader.path.name) == (256, 256, "scene.tif")
    with RangeServer(item_folder) as server:
        assert run("predict", "--model", rgb_model, "/vsicurl/" + server.url("item.json"), "--output",
                   tmp_path / "maps") == 0
        assert run("stack", "--model", rgb_model, "--sentinel2", "/vsicurl/" + server.url("item.json"), "--bounds",
                   AOI, "--output", tmp_path / "remote.tif") == 0
    assert local == 0 and (tmp_path / "maps" / "item_probability.tif").is_file()
    with rasterio.open(tmp_path / "local.tif") as expected, rasterio.open(tmp_path / "remote.tif") as stacked:
        np.testing.assert_array_equal(stacked.read(), expected.read())
