"""`translandseg app` in front of strangers (issue 35, section 1): uploads are read as PNG, JPEG or GeoTIFF only,
whatever their suffix; the URL box and the API's `url` fetch only public http(s)/s3/gs/az URLs, every redirect hop
checked, with one message for every refusal; uploads and the queue are bounded; the work folder goes on SIGTERM; no
message shows the server's folders.

Only 127.0.0.1 is ever connected to: private addresses are tested by resolving (a policy's `resolve` replaced, or
socket.getaddrinfo monkeypatched), never by connecting.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest
from rasterio.errors import RasterioIOError

gr = pytest.importorskip("gradio", reason="the app extra is not installed (pip install -e '.[app]')")

from helpers.models import RedModel  # noqa: E402
from helpers.rasters import three_landslides, write_raster  # noqa: E402
from helpers.servers import LoopbackServer, RangeServer, free_port  # noqa: E402

from translandseg_hf.app.egress import EgressProxy, routed  # noqa: E402
from translandseg_hf.app.session import NO_URLS, Mapper  # noqa: E402
from translandseg_hf.app.ui import APP_GDAL_SETTINGS, map_image, map_upload, url_note  # noqa: E402
from translandseg_hf.app.upload import by_name, check_upload  # noqa: E402
from translandseg_hf.cli import build_parser, main  # noqa: E402
from translandseg_hf.image_processing import TransLandSegImageProcessor  # noqa: E402
from translandseg_hf.geo import UNTRUSTED_DRIVERS, RemotePath, only_drivers, open_raster  # noqa: E402
from translandseg_hf.url_policy import REFUSAL, UrlPolicy, UrlRefused, default_resolve, path_suffix  # noqa: E402

SECRET = "HF_TOKEN=hf_not_a_real_token_but_secret_0123456789"
CONTRACT = TransLandSegImageProcessor(input_size=32)
write_geotiff = partial(write_raster, pixel_size=3.0)  # the app tests' 3 m grid


# ------------------------------------------------------------------------------------- uploads that are not images
def raw_band_vrt(folder: Path) -> str:
    """The reported attack: a VRT whose raw band is a secret file's bytes (here a file of the test's own)."""
    secret = folder / "environ"
    secret.write_text(SECRET * 4)
    return (f'<VRTDataset rasterXSize="48" rasterYSize="4"><VRTRasterBand dataType="Byte" band="1" '
            f'subClass="VRTRawRasterBand"><SourceFilename relativetoVRT="0">{secret}</SourceFilename>'
            '<ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset><LineOffset>48</LineOffset>'
            '</VRTRasterBand></VRTDataset>')


def simple_source_vrt(folder: Path) -> str:
    """A VRT that reads another raster on the server."""
    other = write_geotiff(folder / "private.tif", three_landslides())
    bands = "".join(f'<VRTRasterBand dataType="Byte" band="{b}"><SimpleSource><SourceFilename relativeToVRT="0">'
                    f'{other}</SourceFilename><SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>'
                    for b in (1, 2, 3))
    return f'<VRTDataset rasterXSize="110" rasterYSize="90">{bands}</VRTDataset>'


def wms(folder: Path) -> str:
    """A WMS description that would make the server fetch a URL (a port nothing listens on: never fetched)."""
    return (f'<GDAL_WMS><Service name="TMS"><ServerUrl>http://127.0.0.1:{free_port()}/${{z}}/${{x}}/${{y}}.png'
            '</ServerUrl></Service><DataWindow><UpperLeftX>0</UpperLeftX><UpperLeftY>0</UpperLeftY>'
            '<LowerRightX>1</LowerRightX><LowerRightY>1</LowerRightY><SizeX>256</SizeX><SizeY>256</SizeY>'
            '</DataWindow></GDAL_WMS>')


HOSTILE_UPLOADS = [  # (id, name, content written, the refusal)
    ("raw-band VRT on a secret file", "scene.tif", raw_band_vrt, r"^scene\.tif: a VRT file, not a PNG, JPEG or GeoTIFF"),
    ("SimpleSource VRT on another raster", "scene.tif", simple_source_vrt, r"^scene\.tif: a VRT file, not a PNG"),
    ("VRT after an XML declaration and a BOM", "scene.png",
     lambda f: "\ufeff<?xml version='1.0'?>\n<!-- x -->\n" + raw_band_vrt(f), r"^scene\.png: a VRT file, not a PNG"),
    ("GDAL WMS description", "tiles.jpg", wms, r"^tiles\.jpg: a GDAL WMS description, not a PNG, JPEG or GeoTIFF"),
    ("a JSON file", "scene.tiff", lambda f: '{"type": "Feature"}', r"^scene\.tiff: a JSON file, not a PNG"),
]


@pytest.mark.parametrize("name, write, match", [row[1:] for row in HOSTILE_UPLOADS], ids=[r[0] for r in HOSTILE_UPLOADS])
def test_an_upload_in_another_format_is_refused_by_name_whatever_its_suffix(name, write, match, tmp_path):
    upload = tmp_path / "upload" / name
    upload.parent.mkdir()
    upload.write_text(write(tmp_path))
    with pytest.raises(ValueError, match=match) as refused:
        check_upload(upload, CONTRACT)
    assert SECRET not in str(refused.value) and str(tmp_path) not in str(refused.value)


def test_the_page_never_shows_the_secret_a_vrt_upload_points_at(tmp_path):
    mapper = Mapper(RedModel(), "cpu", work_dir=tmp_path / "work")
    upload = tmp_path / "scene.tif"
    upload.write_text(raw_band_vrt(tmp_path))
    with pytest.warns(UserWarning, match="a VRT file"):
        outputs = map_upload(mapper, str(upload), 0.5, "", None)
    assert outputs[:5] == (None, None, None, "", None) and SECRET not in outputs[5]
    assert outputs[5] == "**Could not map this file.** scene.tif: a VRT file, not a PNG, JPEG or GeoTIFF; the app " \
                         "maps only those."
    assert mapper.model.__dict__.get("calls", 0) == 0


def test_while_the_app_maps_every_open_reads_png_jpeg_and_geotiff_only(tmp_path):
    """The allow-list holds for every reader (SceneReader, predict_file's threads), not just the upload check."""
    vrt = tmp_path / "scene.tif"
    vrt.write_text(raw_band_vrt(tmp_path))
    geotiff = write_geotiff(tmp_path / "real.tif", three_landslides())
    with only_drivers(UNTRUSTED_DRIVERS):
        with pytest.raises(RasterioIOError, match="not recognized as being in a supported file format"):
            open_raster(vrt)
        with open_raster(geotiff) as dataset:
            assert dataset.driver == "GTiff"
    with pytest.raises(RasterioIOError, match="not recognized"):
        open_raster(vrt, UNTRUSTED_DRIVERS)
    with open_raster(vrt) as dataset:  # outside the app, the command line's VRT inputs still open
        assert dataset.driver == "VRT"


def test_messages_show_no_server_folder(tmp_path):
    upload = Path("/tmp/gradio/0a1b2c/scene.tif")
    error = by_name(OSError(f"{upload}: disk full writing /home/someone/work/translandseg-app-x/scene_mask.tif"),
                    upload)
    assert str(error) == "scene.tif: disk full writing scene_mask.tif"
    assert str(by_name(ValueError("https://example.com/a/b.tif: not found"), "https://example.com/a/b.tif")) == \
        "https://example.com/a/b.tif: not found"


# ------------------------------------------------------------------------------------------- URLs: what is fetched
def refusal(url: str) -> str:
    return f"^{re.escape(url.split('#')[0].split('?')[0])}: {re.escape(REFUSAL)}$"


def test_local_paths_are_refused_alike_whether_or_not_the_file_exists(tmp_path):
    existing = write_geotiff(tmp_path / "scene.tif", three_landslides())
    mapper = Mapper(RedModel(), "cpu", work_dir=tmp_path / "work")
    messages = []
    for text in (str(existing), str(tmp_path / "missing.tif"), "scene.tif", f"/vsicurl/file://{existing}",
                 f"file://{existing}", "ftp://example.com/scene.tif", "http:///scene.tif"):
        with pytest.raises(UrlRefused, match=refusal(text)) as refused:
            mapper.map_url(text)
        messages.append(str(refused.value).replace(text, "URL"))
    assert set(messages) == {f"URL: {REFUSAL}"}
    assert mapper.model.__dict__.get("calls", 0) == 0


PRIVATE_ADDRESSES = [  # what a host may resolve to that the app never connects to
    ["127.0.0.1"], ["10.0.0.1"], ["172.16.5.4"], ["192.168.1.1"], ["169.254.169.254"], ["100.64.0.1"],
    ["0.0.0.0"], ["224.0.0.251"], ["240.0.0.1"], ["::1"], ["::"], ["fe80::1%eth0"], ["fc00::1"],
    ["::ffff:127.0.0.1"], ["::ffff:169.254.169.254"], ["64:ff9b::a9fe:a9fe"], ["2002:a00:1::"],
    ["93.184.216.34", "10.0.0.1"],  # one private address among public ones is enough
]


@pytest.mark.parametrize("addresses", PRIVATE_ADDRESSES, ids=lambda a: ",".join(a))
def test_a_host_resolving_to_a_private_address_is_refused_before_any_connection(addresses):
    asked = []
    policy = UrlPolicy(resolve=lambda host, port: asked.append((host, port)) or addresses)
    policy.request = lambda hop: pytest.fail(f"connected to {hop.address}")
    with pytest.raises(UrlRefused, match=refusal("https://scenes.example/a/scene.tif")):
        policy.fetch("https://scenes.example/a/scene.tif?sig=1#frag")
    assert asked == [("scenes.example", 443)]


def test_getaddrinfo_answers_are_what_is_checked(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, **kw: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))])
    assert default_resolve("metadata.example", 80) == ["169.254.169.254"]
    with pytest.raises(UrlRefused, match=refusal("http://metadata.example/latest/meta-data/x.tif")):
        UrlPolicy().checked("http://metadata.example/latest/meta-data/x.tif")


def test_a_public_address_and_object_stores_are_let_through_without_connecting():
    policy = UrlPolicy(resolve=lambda host, port: ["93.184.216.34", "2606:2800:220:1::"])
    assert policy.hop("https://scenes.example/scene.tif").address == "93.184.216.34"
    for url in ("s3://bucket/scene.tif", "gs://bucket/scene.tif", "az://container/scene.tif"):
        assert policy.fetch(url).url == url  # GDAL signs these for the store's own endpoint


def test_no_name_resolution_is_a_refusal_like_the_others():
    def unresolvable(host, port):
        raise socket.gaierror("Name or service not known")

    with pytest.raises(UrlRefused, match=refusal("http://nowhere.invalid/scene.tif")):
        UrlPolicy(resolve=unresolvable).fetch("http://nowhere.invalid/scene.tif")


def test_a_fragment_or_query_does_not_make_a_url_a_geotiff(tmp_path):
    assert [path_suffix(u) for u in ("http://h/admin#.tif", "http://h/admin?x=.tif", "http://h/a.TIF?x=1")] == [
        "", "", ".tif"]
    with pytest.raises(UrlRefused, match=refusal("http://127.0.0.1:1/admin")):
        UrlPolicy().fetch("http://127.0.0.1:1/admin#.tif")  # loopback: refused by default, whatever the suffix


# ----------------------------------------------------------------------------- a real server on 127.0.0.1: redirects
class Redirector(LoopbackServer):
    """An HTTP server on 127.0.0.1 whose every GET answers 302 to `target` (a URL, or a path on itself)."""

    def __init__(self, target: str):
        self.target, self.requests = target, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests += 1
                self.send_response(302)
                self.send_header("Location", outer.target)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(Handler)


def test_a_redirect_to_a_host_not_allowed_is_refused_and_never_fetched(tmp_path):
    write_geotiff(tmp_path / "scene.tif", three_landslides())
    with RangeServer(tmp_path) as files, Redirector(files.url("scene.tif")) as redirect:
        policy = UrlPolicy(allowed_hosts=frozenset({f"127.0.0.1:{redirect.port}"}))  # the files' port is not
        url = f"http://127.0.0.1:{redirect.port}/scene.tif"
        with pytest.raises(UrlRefused, match=refusal(files.url("scene.tif"))):
            policy.fetch(url)
        assert redirect.requests == 1 and sum(files.requests.values()) == 0
        allowed = UrlPolicy(allowed_hosts=frozenset({f"127.0.0.1:{redirect.port}", f"127.0.0.1:{files.port}"}))
        fetched = allowed.fetch(url)
        assert fetched.url == files.url("scene.tif") and fetched.head.startswith(b"II*\0")


def test_redirect_loops_end_in_the_same_refusal():
    with Redirector("/again.tif") as loop:
        policy = UrlPolicy(allowed_hosts=frozenset({f"127.0.0.1:{loop.port}"}))
        with pytest.raises(UrlRefused, match=refusal(f"http://127.0.0.1:{loop.port}/again.tif")):
            policy.fetch(f"http://127.0.0.1:{loop.port}/start.tif")
        assert loop.requests == policy.max_hops + 1


def test_a_closed_port_and_a_private_host_give_the_same_message():
    """No port scanning: an allowed host that does not answer says what a refused one says."""
    closed = f"http://127.0.0.1:{free_port()}/scene.tif"
    with pytest.raises(UrlRefused, match=refusal(closed)):
        UrlPolicy(allow_private=True, timeout=2).fetch(closed)
    with pytest.raises(UrlRefused, match=refusal(closed)):
        UrlPolicy().fetch(closed)


def test_a_url_is_mapped_through_the_api_and_a_vrt_behind_one_is_refused_by_name(tmp_path):
    write_geotiff(tmp_path / "scene.tif", three_landslides())
    (tmp_path / "evil.tif").write_text(raw_band_vrt(tmp_path))
    with RangeServer(tmp_path) as files:
        policy = UrlPolicy(allowed_hosts=frozenset({f"127.0.0.1:{files.port}"}))
        mapper = Mapper(RedModel(), "cpu", work_dir=tmp_path / "work", url_policy=policy)
        outputs = map_image(mapper, None, 0.5, None, None, url=files.url("scene.tif"))
        assert (outputs[1], outputs[3]) == (3, "m2")
        assert mapper.egress.forwarded > 0 and mapper.egress.refusals == 0  # GDAL read it through the app's proxy
        with pytest.raises(gr.Error) as refused:
            map_image(mapper, None, 0.5, None, None, url=files.url("evil.tif"))
        assert refused.value.message == "evil.tif: a VRT file, not a PNG, JPEG or GeoTIFF; the app maps only those."
        with pytest.raises(gr.Error) as refused:
            map_image(mapper, None, 0.5, None, None, url=str(tmp_path / "scene.tif"))
        assert re.match(refusal(str(tmp_path / "scene.tif")), refused.value.message)


def test_no_urls_refuses_every_url_and_hides_the_box(tmp_path):
    mapper = Mapper(RedModel(), "cpu", work_dir=tmp_path / "work", url_policy=None)
    with pytest.raises(UrlRefused, match=f"^https://example.com/a.tif: {re.escape(NO_URLS)}$"):
        mapper.map_url("https://example.com/a.tif")
    from translandseg_hf.app.ui import build_app

    boxes = [c for c in build_app(mapper).config["components"] if c["props"].get("elem_id") == "url"]
    assert [box["props"]["visible"] for box in boxes] == [False]


# ------------------------------------------------------------------------------------------ the command's options
def test_the_app_options_and_their_defaults():
    args = build_parser().parse_args(["app", "--model", "user/repo"])
    assert (args.allow_private_urls, args.no_urls, args.max_upload_mb) == (False, False, 1024)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["app", "--model", "m", "--no_urls", "--allow_private_urls"])


def test_the_launch_bounds_uploads_and_the_queue_and_says_what_urls_it_fetches(tiny_sam_folder, monkeypatch, capsys):
    launched, queued = {}, {}
    for name, value in APP_GDAL_SETTINGS.items():  # set here, so that the app (never closed here) leaves none set
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(gr.Blocks, "launch", lambda demo, **kwargs: launched.update(kwargs))
    monkeypatch.setattr(gr.Blocks, "block_thread", lambda demo: None)
    real_queue = gr.Blocks.queue
    monkeypatch.setattr(gr.Blocks, "queue", lambda demo, **kw: queued.update(kw) or real_queue(demo, **kw))
    assert main(["app", "--model", str(tiny_sam_folder), "--device", "cpu", "--max_upload_mb", "5",
                 "--allow_private_urls"]) == 0
    assert launched["max_file_size"] == 5 * 2**20 and queued["max_size"] > 0
    assert "loopback and private addresses allowed (--allow_private_urls)" in capsys.readouterr().out
    assert main(["app", "--model", str(tiny_sam_folder), "--device", "cpu"]) == 0
    assert launched["max_file_size"] == 1024 * 2**20
    assert "* URLs: public http(s), s3, gs and az only" in capsys.readouterr().out


SIGTERM_SCRIPT = """
import sys, tempfile, time
from pathlib import Path
from translandseg_hf.app.session import removed_on_signals
work = tempfile.TemporaryDirectory(prefix="translandseg-app-")
(Path(work.name) / "scene_probability.tif").write_bytes(b"x")
with removed_on_signals(work.cleanup):
    print(work.name, flush=True)
    time.sleep(60)
"""


def test_sigterm_removes_the_work_folder():
    process = subprocess.Popen([sys.executable, "-c", SIGTERM_SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        folder = Path(process.stdout.readline().strip())
        assert folder.is_dir()
        process.terminate()
        assert process.wait(timeout=60) == -15  # still killed by the signal, as before
    finally:
        process.kill()
    assert not folder.exists()


# ------------------------------------------------ the egress proxy: every request GDAL makes is checked (app/egress.py)
class Recorder(LoopbackServer):
    """A server on 127.0.0.1 that counts every connection made to it (a request or not) and answers each GET with
    `answer(handler)` (default: 200 "hello")."""

    def __init__(self, answer=None):
        self.connections = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                (answer or hello)(self)

            do_HEAD = do_POST = do_GET

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address):
                outer.connections += 1
                return True

        super().__init__(Handler, Server)


def hello(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "5")
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(b"hello")


def preflight_only(folder: Path, target: Callable[[str], str]):
    """An answer that serves the app's pre-flight (User-Agent translandseg-app) a real GeoTIFF's first bytes and
    redirects every other request (GDAL's) to `target(file name)`."""

    def answer(handler) -> None:
        name = handler.path.split("?", 1)[0].rsplit("/", 1)[-1]
        if handler.headers.get("User-Agent") == "translandseg-app":
            head = (folder / name).read_bytes()[:1024]
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes 0-{len(head) - 1}/{(folder / name).stat().st_size}")
            handler.send_header("Content-Length", str(len(head)))
            handler.end_headers()
            handler.wfile.write(head)
            return
        handler.send_response(302)
        handler.send_header("Location", target(name))
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def exchange(proxy_url: str, request: bytes, then: bytes = b"") -> bytes:
    """Send `request` to the proxy (and `then` once it answered, e.g. a request through a tunnel); all it sends back."""
    port = int(proxy_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(request)
        received = client.recv(65536)
        if then and received.startswith(b"HTTP/1.1 200"):
            client.sendall(then)
        chunks = [received]
        while chunks[-1]:
            chunks.append(client.recv(65536))
    return b"".join(chunks)


@pytest.mark.parametrize("no_proxy", [None, "127.0.0.1,localhost"], ids=["no NO_PROXY", "NO_PROXY=127.0.0.1"])
def test_a_server_that_passes_the_preflight_and_then_redirects_gdal_is_refused_and_never_followed(
        tmp_path, monkeypatch, no_proxy):
    """The hole the pre-flight alone leaves: a server answers the app's walk with a GeoTIFF and GDAL's own requests
    with a redirect to 127.0.0.1:C. Without the proxy GDAL follows it (checked first: the attack is real); through
    it, C is never contacted and the user sees the one refusal. curl's NO_PROXY must not open a way around it."""
    for name in ("first.tif", "second.tif"):  # one per mapping: GDAL caches what it learnt of a URL
        write_geotiff(tmp_path / name, three_landslides())
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", no_proxy)
    for name in ("GDAL_HTTP_PROXY", "GDAL_HTTPS_PROXY", "http_proxy", "https_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with RangeServer(tmp_path) as inner, Recorder(preflight_only(tmp_path, inner.url)) as evil:
        policy = UrlPolicy(allowed_hosts=frozenset({f"127.0.0.1:{evil.port}"}))
        mapper = Mapper(RedModel(), "cpu", work_dir=tmp_path / "work", url_policy=policy)
        with monkeypatch.context() as without_proxy:
            without_proxy.setattr(Mapper, "egress_for", lambda self, path: None)
            assert mapper.map_url(f"http://127.0.0.1:{evil.port}/x/first.tif").maps.count == 3
        assert inner.requests["first.tif"] > 0  # the pre-flight alone let GDAL reach a port it refused
        url = f"http://127.0.0.1:{evil.port}/x/second.tif"
        with pytest.raises(UrlRefused, match=refusal(url)):
            mapper.map_url(url + "?sig=1")
        assert inner.requests["second.tif"] == 0 and mapper.egress.refusals > 0
        assert os.environ.get("NO_PROXY") == no_proxy and "GDAL_HTTP_PROXY" not in os.environ  # as before
        mapper.close()


def proxy_rows(files_port: int, closed_port: int) -> list:
    """(id, request, sent through a tunnel, allowed host:port pairs, what the answer starts with, connections to
    the target expected)."""
    get = f"GET /x HTTP/1.1\r\nHost: 127.0.0.1:{files_port}\r\n\r\n".encode()
    return [
        ("CONNECT to a host not allowed", f"CONNECT 127.0.0.1:{files_port} HTTP/1.1\r\n\r\n", b"", set(),
         b"HTTP/1.1 403 Forbidden", 0),
        ("CONNECT to an allowed host relays both ways", f"CONNECT 127.0.0.1:{files_port} HTTP/1.1\r\n\r\n", get,
         {f"127.0.0.1:{files_port}"}, b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.0 200 OK", 1),
        ("GET to a host not allowed", f"GET http://127.0.0.1:{files_port}/x HTTP/1.1\r\n\r\n", b"", set(),
         b"HTTP/1.1 403 Forbidden", 0),
        ("GET to an allowed host is relayed", f"GET http://127.0.0.1:{files_port}/x HTTP/1.1\r\n"
         f"Host: 127.0.0.1:{files_port}\r\nProxy-Connection: Keep-Alive\r\n\r\n", b"", {f"127.0.0.1:{files_port}"},
         b"HTTP/1.0 200 OK", 1),
        ("POST is not forwarded", f"POST http://127.0.0.1:{files_port}/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"",
         {f"127.0.0.1:{files_port}"}, b"HTTP/1.1 403 Forbidden", 0),
        ("an https URL in absolute form", f"GET https://127.0.0.1:{files_port}/x HTTP/1.1\r\n\r\n", b"",
         {f"127.0.0.1:{files_port}"}, b"HTTP/1.1 403 Forbidden", 0),
        ("CONNECT without a port", "CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n", b"", {"127.0.0.1:443"},
         b"HTTP/1.1 403 Forbidden", 0),
        ("a head over 64 KiB", f"GET http://127.0.0.1:{files_port}/x HTTP/1.1\r\nX: {'a' * 70000}\r\n\r\n", b"",
         {f"127.0.0.1:{files_port}"}, b"HTTP/1.1 403 Forbidden", 0),
        ("an allowed port nothing listens on: the same answer", f"CONNECT 127.0.0.1:{closed_port} HTTP/1.1\r\n\r\n",
         b"", {f"127.0.0.1:{closed_port}"}, b"HTTP/1.1 403 Forbidden", 0),
    ]


PROXY_ROW_IDS = [row[0] for row in proxy_rows(1, 2)]


@pytest.mark.parametrize("row", range(len(PROXY_ROW_IDS)), ids=PROXY_ROW_IDS)
def test_the_proxy_connects_only_where_the_policy_allows(row):
    with Recorder() as target:
        _, request, tunnelled, allowed, answer, connections = proxy_rows(target.port, free_port())[row]
        with EgressProxy(UrlPolicy(allowed_hosts=frozenset(allowed)), idle_timeout=5) as proxy:
            received = exchange(proxy.url, request.encode(), tunnelled)
        assert received.startswith(answer), received[:200]
        assert target.connections == connections
        if answer.startswith(b"HTTP/1.1 403"):
            assert received.endswith(f"{REFUSAL}\n".encode()) and proxy.refusals == 1
        else:
            assert received.endswith(b"hello") and proxy.forwarded == 1


def test_the_proxy_connects_to_the_one_address_it_checked_never_resolving_again():
    """No DNS rebinding: a name is resolved once per connection, and the connection goes to that address (here a
    name no DNS knows, so any second lookup would fail)."""
    asked = []
    with Recorder() as target:
        host = f"files.test:{target.port}"
        policy = UrlPolicy(allowed_hosts=frozenset({host}),
                           resolve=lambda name, port: asked.append((name, port)) or ["127.0.0.1"])
        with EgressProxy(policy, idle_timeout=5) as proxy:
            relayed = exchange(proxy.url, f"GET http://FILES.test:{target.port}/x HTTP/1.1\r\nHost: {host}\r\n\r\n"
                               .encode())
            tunnelled = exchange(proxy.url, f"CONNECT {host} HTTP/1.1\r\n\r\n".encode(),
                                 f"GET /x HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert relayed.startswith(b"HTTP/1.0 200 OK") and b"Connection: close\r\n" in relayed
    assert relayed.endswith(b"hello") and tunnelled.endswith(b"hello")
    assert asked == [("files.test", target.port)] * 2 and target.connections == 2


def test_routed_points_gdal_at_the_proxy_sets_no_proxy_aside_and_restores_the_environment(monkeypatch):
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.delenv("GDAL_HTTP_PROXY", raising=False)
    with EgressProxy(UrlPolicy()) as proxy:
        with routed(proxy):
            assert (os.environ["GDAL_HTTP_PROXY"], os.environ["GDAL_HTTPS_PROXY"]) == (proxy.url, proxy.url)
            assert "no_proxy" not in os.environ and "NO_PROXY" not in os.environ
    assert os.environ["no_proxy"] == "*" and "GDAL_HTTP_PROXY" not in os.environ


def test_an_operators_own_proxy_is_used_and_said_at_start(monkeypatch, tmp_path):
    mapper = Mapper(RedModel(), "cpu", work_dir=tmp_path / "work")
    assert mapper.egress_for(tmp_path / "upload.tif") is None  # an upload: no proxy needed
    monkeypatch.setenv("GDAL_HTTP_PROXY", "http://proxy.internal:3128")
    assert mapper.egress_for(RemotePath("https://example.com/a.tif")) is None and mapper.egress is None
    assert "through your proxy (GDAL_HTTP_PROXY), which must itself refuse" in url_note(UrlPolicy())
