"""`translandseg app`: uploads checked before any model work, maps re-derived from the kept
probabilities, the API that scripts call through gradio_client, and the page itself driven in
headless Chromium.

A stand-in model whose logit is the normalised red channel makes counts exact: a scene with three red landslides
of known reds and areas gives 3, 2 or 1 of them as the threshold and the minimum area change. The tiny random SAM
checks the real path (its noise mask is only checked to agree with the counts the page reports).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from pyogrio import read_info
from pyogrio.raw import read as read_layer

from helpers.processes import sigint_as_in_a_terminal

gr = pytest.importorskip("gradio", reason="the app extra is not installed (pip install -e '.[app]')")

from translandseg_hf.app import DEFAULT_MAX_PIXELS  # noqa: E402 (gradio first: without it the module skips)
from translandseg_hf.app.maps import derive_maps  # noqa: E402
from translandseg_hf.app.session import Mapper  # noqa: E402
from translandseg_hf.app.ui import APP_GDAL_SETTINGS, change_settings, map_image, map_upload, parse_area  # noqa: E402
from translandseg_hf.app.upload import check_upload  # noqa: E402
from translandseg_hf.app.views import outlined  # noqa: E402
from translandseg_hf.cli import build_parser, main  # noqa: E402
from translandseg_hf.image_processing import TransLandSegImageProcessor  # noqa: E402
from translandseg_hf.inference.reading import open_raster  # noqa: E402

from conftest import SHARED_DATA  # noqa: E402
from helpers.models import RedModel  # noqa: E402
from helpers.rasters import AREAS, corner_gcps, three_landslides, write_raster  # noqa: E402

UTM_48N = "EPSG:32648"
PIXEL_SIZE = 3.0  # metres: a pixel is 9 m2
write_geotiff = partial(write_raster, pixel_size=PIXEL_SIZE)


def write_png(path: Path, bands: np.ndarray) -> Path:
    Image.fromarray(bands.transpose(1, 2, 0)).save(path)
    return path


def geojson_areas(path: Path) -> list[float]:
    return [feature["properties"]["area"] for feature in json.loads(Path(path).read_text())["features"]]


def gpkg_areas(path: Path) -> list[float]:
    """The polygons' areas in a GeoPackage: a plain image's polygons are in pixel coordinates, which only the
    GeoPackage can hold (with an undefined CRS); a GeoJSON would claim WGS 84."""
    assert Path(path).suffix == ".gpkg", path
    _, _, _, fields = read_layer(path, columns=["area"], read_geometry=False)
    return list(fields[0]) if fields else []


def band(path: Path) -> np.ndarray:
    with open_raster(path) as dataset:  # a plain image's mask has no georeferencing, as intended
        return dataset.read(1)


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """scipy's 4-connected labelling, an independent count of the polygons; scipy is the zero-shot extra's."""
    ndimage = pytest.importorskip("scipy.ndimage", reason="scipy (the zero-shot extra) is not installed")
    return ndimage.label(mask)


@pytest.fixture
def mapper(tmp_path) -> Mapper:
    return Mapper(RedModel(), "cpu", work_dir=tmp_path / "work")


# ------------------------------------------------------------------------------------------ mapping and counting
def test_a_georeferenced_scene_gives_its_landslides_and_their_area_in_square_metres(mapper, tmp_path):
    steps = []
    run = mapper.map(write_geotiff(tmp_path / "scene.tif", three_landslides()), 0.5, None,
                     on_progress=lambda done, total: steps.append((done, total)))
    assert (run.maps.count, run.maps.unit) == (3, "m2")
    assert run.maps.total_area == pytest.approx(sum(AREAS.values()) * PIXEL_SIZE**2)
    assert steps[-1] == (run.header.tiles, run.header.tiles) and run.header.tiles > 1  # the tiled path, reported
    assert sorted(geojson_areas(run.maps.files["geojson"])) == pytest.approx(
        sorted(a * PIXEL_SIZE**2 for a in AREAS.values()))
    with rasterio.open(run.maps.files["mask"]) as mask:
        assert (mask.crs, mask.transform.a) == (rasterio.crs.CRS.from_string(UTM_48N), PIXEL_SIZE)
    assert "mask_png" not in run.maps.files  # GeoTIFFs get the georeferenced mask only


def test_a_gcp_scene_keeps_its_gcps_and_its_polygons_are_in_their_crs(mapper, tmp_path):
    """A scene georeferenced by ground control points (a rotated 3 m grid): m2 through the points, the polygons in
    their CRS, re-derived masks keep them, and the outlines drawn on the image are where the landslides are."""
    path = tmp_path / "gcps.tif"
    write_raster(path, three_landslides(), gcps=corner_gcps(), crs=UTM_48N)
    run = mapper.map(path, 0.5, None)
    assert (run.maps.count, run.maps.unit) == (3, "m2")
    assert run.maps.total_area == pytest.approx(sum(AREAS.values()) * PIXEL_SIZE**2)
    assert run.maps.polygons.name == "gcps_landslides.geojson" and read_info(run.maps.polygons)["crs"] == "EPSG:4326"
    assert read_info(run.maps.files["gpkg"])["crs"] == UTM_48N  # the GeoJSON is RFC 7946's WGS 84, the GPKG the GCPs'
    maps = run.rethreshold(0.7, None)  # the faint one (p ~0.61) goes
    assert (maps.count, maps.unit) == (2, "m2") and read_info(maps.files["gpkg"])["crs"] == UTM_48N
    with rasterio.open(maps.files["mask"]) as mask:
        assert mask.gcps[1] == rasterio.crs.CRS.from_string(UTM_48N) and len(mask.gcps[0]) == 5
    red = (outlined(run.rgb, maps.files["gpkg"], maps.files["mask"]) == (255, 0, 0)).all(axis=-1)
    assert red[4:41, 19:71].any() and red[59:71, 79:106].any() and not red[52:83, 12:28].any()
    assert not red[:, :15].any()  # nothing outlined left of the landslides: the polygons came back to pixels


def test_rethresholding_follows_the_probabilities_without_running_the_model(mapper, tmp_path):
    run = mapper.map(write_geotiff(tmp_path / "scene.tif", three_landslides()), 0.5, None)
    calls = mapper.model.calls
    assert run.rethreshold(0.7, None).count == 2  # the faint one (p ~0.61) goes
    assert run.rethreshold(0.7, 300 * PIXEL_SIZE**2).count == 1  # and the small one (250 px) too
    assert run.maps.total_area == pytest.approx(AREAS["large"] * PIXEL_SIZE**2)
    assert mapper.model.calls == calls
    probability = band(run.probability)
    assert np.array_equal(band(run.maps.files["mask"]), (probability > 0.7).astype(np.uint8))
    with rasterio.open(run.maps.files["mask"]) as mask:  # georeferenced and compressed as predict writes it
        assert (mask.crs.to_string(), mask.transform.a, mask.nodata, mask.compression.name) == (
            UTM_48N, PIXEL_SIZE, 255, "deflate")
    assert len(list(run.folder.glob("threshold-*"))) == 1  # earlier derivations are deleted


def test_rethresholding_at_the_run_threshold_reproduces_the_predicted_maps(tmp_path, tiny_sam_folder):
    """The app's mask at the same threshold is `translandseg predict`'s, on the tiny SAM's noisy output."""
    scene = np.random.default_rng(0).integers(0, 255, (3, 120, 150), dtype=np.uint8)
    run = Mapper(tiny_sam_folder, "cpu", work_dir=tmp_path).map(write_png(tmp_path / "noise.png", scene), 0.5, 0)
    again = derive_maps(run.probability, run.maps, 0.5, 0, tmp_path / "again")
    assert np.array_equal(band(again.files["mask"]), band(run.maps.files["mask"]))
    assert (again.count, again.total_area) == (run.maps.count, run.maps.total_area)
    assert np.array_equal(np.asarray(Image.open(again.files["mask_png"])), np.asarray(Image.open(
        run.maps.files["mask_png"])))


def test_the_app_maps_with_onnxruntime_as_with_torch(tmp_path, tiny_sam_folder):
    pytest.importorskip("onnxruntime", reason="the onnxruntime backend needs the onnx extra")
    scene = write_png(tmp_path / "noise.png", np.random.default_rng(2).integers(0, 255, (3, 100, 140), np.uint8))
    from translandseg_hf.onnx_backend.runtime import OnnxSegmentationModel

    mappers = [Mapper(tiny_sam_folder, "cpu", work_dir=tmp_path / backend, backend=backend)
               for backend in ("torch", "onnxruntime")]
    assert isinstance(mappers[1].model, OnnxSegmentationModel) and not isinstance(mappers[0].model,
                                                                                  OnnxSegmentationModel)
    runs = [mapper.map(scene, 0.5, 0) for mapper in mappers]
    np.testing.assert_allclose(band(runs[1].probability), band(runs[0].probability), atol=1e-4)


def test_counts_agree_with_the_mask_and_the_downloads(tmp_path, tiny_sam_folder):
    """Minimum area 0: one polygon per 4-connected region of the mask, their areas summing to its pixels."""
    scene = np.random.default_rng(1).integers(0, 255, (3, 100, 140), dtype=np.uint8)
    run = Mapper(tiny_sam_folder, "cpu", work_dir=tmp_path).map(write_png(tmp_path / "noise.png", scene), 0.5, 0)
    for maps in (run.maps, run.rethreshold(0.45, 0)):
        mask = band(maps.files["mask"]) == 1
        assert maps.count == label_regions(mask)[1] == len(gpkg_areas(maps.files["gpkg"])) > 0
        assert maps.total_area == mask.sum() == sum(gpkg_areas(maps.files["gpkg"]))
        assert read_info(maps.files["gpkg"])["features"] == maps.count
        assert "geojson" not in maps.files and not list(maps.files["gpkg"].parent.glob("*.geojson"))


def test_the_page_outputs_show_the_run_and_changed_settings(mapper, tmp_path):
    run, picture, probability, summary, downloads, status = map_upload(
        mapper, write_png(tmp_path / "scene.png", three_landslides()), 0.5, "", None)
    assert "**3 landslides**" in summary and "pixels" in summary and status == ""
    assert [Path(p).name for p in downloads] == ["scene_mask.tif", "scene_mask.png", "scene_landslides.gpkg",
                                                  "scene_probability.tif"]  # pixel coordinates: no GeoJSON
    assert read_info(run.maps.files["gpkg"])["features"] == 3
    assert picture.shape == (90, 110, 3) and (picture == (255, 0, 0)).all(axis=-1).any()  # outlines drawn
    assert probability.shape[1] > probability.shape[0]  # the colour bar beside the map
    assert "**1 landslide**" in change_settings(0.8, "", run)[3]  # only the reddest (p ~0.86) is left
    picture = change_settings(0.5, "300", run)[1]  # the small one (250 px) is left out: not outlined either
    red = (picture == (255, 0, 0)).all(axis=-1)
    assert red[5:40, 20:70].any() and not red[58:72, 78:107].any()
    assert change_settings(0.5, "300", run) == (gr.skip(),) * 6  # unchanged settings: the page is left alone


@pytest.mark.parametrize("text, expected", [("", None), (" 12.5 ", 12.5), ("0", 0.0)])
def test_the_minimum_area_box_reads_empty_as_the_default(text, expected):
    assert parse_area(text) == expected


@pytest.mark.parametrize("text, match", [("-1", "must be 0 or more"), ("nan", "must be 0 or more"),
                                         ("ten", "must be a number")])
def test_a_bad_minimum_area_is_refused(text, match):
    with pytest.raises(ValueError, match=match):
        parse_area(text)


# ------------------------------------------------------------------------------------------------- bad uploads
def write_text(path: Path) -> Path:
    path.write_text("not an image\n")
    return path


BAD_UPLOADS = {  # name: (write the file, contract, max_pixels, the message)
    "not an image": (lambda p: write_text(p / "notes.png"), {}, DEFAULT_MAX_PIXELS,
                     r"^notes\.png: not a readable image or raster "
                     r"\(not recognized as being in a supported file format\.\)\.$"),
    "not an image suffix": (lambda p: write_text(p / "notes.txt"), {}, DEFAULT_MAX_PIXELS,
                            r"^notes\.txt: not an image; upload a PNG, JPEG or \(Geo\)TIFF\.$"),
    "too many pixels": (lambda p: write_png(p / "big.png", three_landslides()), {}, 9000,
                        r"^big\.png: 110 x 90 px is 9,900 pixels, more than this app's limit of 9,000;"),
    "too few bands": (lambda p: write_geotiff(p / "rgb.tif", three_landslides()),
                      {"bands": [4, 3, 2], "scale": "divisor", "divisor": 10.0}, DEFAULT_MAX_PIXELS,
                      r"^rgb\.tif: band 4 is not in the file: the model reads bands 4,3,2, and the file has 3 band\(s\)"),
    "16-bit values for an 8-bit model": (
        lambda p: write_geotiff(p / "u16.tif", three_landslides().astype(np.uint16) * 100), {}, DEFAULT_MAX_PIXELS,
        r"^u16\.tif: the bands hold uint16 values from 5000 to 23000, but the model reads 8-bit values \(0-255\) as "
        r"they are .* so they would be clipped to white; choose Scaling: percentile"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_a_bad_upload_is_refused_from_its_header_by_name(case, tmp_path):
    write, contract, max_pixels, match = BAD_UPLOADS[case]
    with pytest.raises(ValueError, match=match):
        check_upload(write(tmp_path), TransLandSegImageProcessor(input_size=32, **contract), max_pixels)


def test_a_bad_upload_shows_its_message_and_the_next_upload_is_mapped(mapper, tmp_path):
    mapper.max_pixels = 9000
    with pytest.warns(UserWarning, match="more than this app's limit"):  # gr.Warning outside a page: a Python warning
        outputs = map_upload(mapper, write_png(tmp_path / "big.png", three_landslides()), 0.5, "", None)
    assert outputs[:5] == (None, None, None, "", None)
    assert outputs[5].startswith("**Could not map this file.** big.png: 110 x 90 px is 9,900 pixels")
    assert mapper.model.__dict__.get("calls", 0) == 0  # refused before any model work
    mapper.max_pixels = DEFAULT_MAX_PIXELS
    assert "**3 landslides**" in map_upload(mapper, tmp_path / "big.png", 0.5, "", None)[3]


# ---------------------------------------------------------------------------------- the API, as a script calls it
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def api_client(tmp_path):
    """The app (RedModel) served on 127.0.0.1 in this process and a gradio_client Client on it."""
    from gradio_client import Client

    from translandseg_hf.app.ui import launch_app

    demo = launch_app(RedModel(), port=free_port(), host="127.0.0.1", device="cpu", block=False)
    try:
        yield Client(demo.local_url, verbose=False, download_files=str(tmp_path / "downloads"))
    finally:
        demo.close()


def test_the_api_is_one_endpoint_whose_only_required_input_is_the_image(api_client):
    info = api_client.view_api(print_info=False, return_format="dict")
    assert list(info["named_endpoints"]) == ["/map_image"] and info["unnamed_endpoints"] == {}
    endpoint = info["named_endpoints"]["/map_image"]
    assert [(p["parameter_name"], p["parameter_has_default"], p["parameter_default"])
            for p in endpoint["parameters"]] == [("image", False, None), ("threshold", True, 0.5),
                                                 ("min_area", True, None), ("url", True, ""),
                                                 ("scale", True, ""), ("divisor", True, None)]  # predict's defaults
    assert [r["label"] for r in endpoint["returns"]] == [
        "Landslides", "Total area", "Area unit", "Mask GeoTIFF", "Polygons (GeoJSON, or GPKG for a plain image)",
        "Probability GeoTIFF"]


def test_an_image_alone_is_mapped_through_gradio_client(api_client, tmp_path):
    from gradio_client import handle_file

    scene = handle_file(write_geotiff(tmp_path / "scene.tif", three_landslides()))
    count, area, unit, mask, polygons, probability = api_client.predict(scene, api_name="/map_image")
    assert (count, unit) == (3, "m2") and area == pytest.approx(sum(AREAS.values()) * PIXEL_SIZE**2)
    assert [Path(p).name for p in (mask, polygons, probability)] == [
        "scene_mask.tif", "scene_landslides.geojson", "scene_probability.tif"]
    assert np.array_equal(band(mask), (band(probability) > 0.5).astype(np.uint8))
    assert sorted(geojson_areas(polygons)) == pytest.approx(sorted(a * PIXEL_SIZE**2 for a in AREAS.values()))
    count, area, _, mask, _, _ = api_client.predict(scene, threshold=0.7, min_area=300 * PIXEL_SIZE**2,
                                                    api_name="/map_image")  # the faint and the small one go
    assert (count, area) == (1, pytest.approx(AREAS["large"] * PIXEL_SIZE**2))
    assert np.array_equal(band(mask), (band(probability) > 0.7).astype(np.uint8))
    plain = handle_file(write_png(tmp_path / "plain.png", three_landslides()))
    count, area, unit, _, polygons, _ = api_client.predict(plain, api_name="/map_image")
    assert (count, area, unit) == (3, sum(AREAS.values()), "pixels")
    assert Path(polygons).name == "plain_landslides.gpkg"  # pixel coordinates: the GeoPackage, not a GeoJSON
    assert sorted(gpkg_areas(polygons)) == sorted(AREAS.values())


def test_a_bad_image_through_the_api_raises_its_message_and_the_app_goes_on(api_client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=r"^notes\.png: not a readable image or raster "
                                       r"\(not recognized as being in a supported file format\.\)\.$"):
        api_client.predict(handle_file(write_text(tmp_path / "notes.png")), api_name="/map_image")
    assert api_client.predict(handle_file(write_png(tmp_path / "scene.png", three_landslides())),
                              api_name="/map_image")[0] == 3


def test_the_api_refuses_a_minimum_area_that_is_not_a_number(mapper, tmp_path):
    with pytest.raises(gr.Error, match="the minimum area must be 0 or more, got nan"):
        map_image(mapper, write_png(tmp_path / "scene.png", three_landslides()), 0.5, float("nan"), None)
    with pytest.raises(gr.Error, match="no image given"):
        map_image(mapper, None, 0.5, None, None)


def read_until(process: subprocess.Popen, marker: str, lines: list[str]) -> str:
    """The first line of the process's output holding `marker` (every line read is kept in `lines`)."""
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            return line
    raise AssertionError(f"the app exited before printing {marker!r}:\n{''.join(lines)}")


def test_translandseg_app_serves_the_api_and_prints_no_share_hint(tiny_sam_folder, tmp_path):
    """The command as a user runs it, in its own process; its whole output is checked once it is stopped."""
    from gradio_client import Client, handle_file

    command = [sys.executable, "-m", "translandseg_hf.cli", "app", "--model", str(tiny_sam_folder), "--port",
               str(free_port()), "--host", "127.0.0.1", "--device", "cpu"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1"),
                               preexec_fn=sigint_as_in_a_terminal)
    lines = []
    try:
        url = read_until(process, "Running on local URL", lines).split()[-1]
        scene = np.random.default_rng(3).integers(0, 255, (3, 300, 280), dtype=np.uint8)
        client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        count, area, unit, mask, polygons, probability = client.predict(
            handle_file(write_png(tmp_path / "noise.png", scene)), api_name="/map_image")
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl+C
        process.wait(timeout=60)
        lines.append(process.stdout.read())
    assert unit == "pixels" and band(mask).shape == (300, 280) and set(np.unique(band(mask))) <= {0, 1}
    assert np.array_equal(band(mask), (band(probability) > 0.5).astype(np.uint8))
    assert count == len(gpkg_areas(polygons)) and area == sum(gpkg_areas(polygons))  # a PNG: the GeoPackage
    output = "".join(lines)
    assert "api_name='/map_image'" in output, output
    assert "share=True" not in output and "NotGeoreferencedWarning" not in output, output


def test_share_is_passed_to_gradio(tiny_sam_folder, monkeypatch):
    launched = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda demo, **kwargs: launched.update(kwargs))
    for name, value in APP_GDAL_SETTINGS.items():  # the app's GDAL settings, which it never closes here to undo
        monkeypatch.setenv(name, value)
    assert main(["app", "--model", str(tiny_sam_folder), "--device", "cpu", "--share"]) == 0
    assert launched["share"] is True and launched["quiet"] is True  # quiet: no hint for an option the command lacks


# ------------------------------------------------------------------------------------------------ command, Space
def test_the_commands_parse_with_their_defaults():
    app = build_parser().parse_args(["app", "--model", "user/repo"])
    assert (app.port, app.max_pixels, app.host, app.share) == (7860, DEFAULT_MAX_PIXELS, None, False)
    assert build_parser().parse_args(["app", "--model", "user/repo", "--share"]).share
    space = build_parser().parse_args(["space", "--model", "user/repo", "--output", "out"])
    assert (space.max_pixels, space.title) == (DEFAULT_MAX_PIXELS, "Landslide mapping")


def test_the_command_module_imports_no_gradio():
    code = "import sys, translandseg_hf.cli; print(sorted(m for m in ('gradio', 'torch') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_model_card_says_how_to_start_the_app(tiny_sam_folder):
    assert "translandseg app --model path/to/this/folder" in (tiny_sam_folder / "README.md").read_text()


# ----------------------------------------------------------------------------------------------- in a browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = os.environ.get("TRANSLANDSEG_SCREENSHOT")  # e.g. docs/app.png: the README's picture of the page
SAMPLE = SHARED_DATA / "sichuan" / "images" / "Landslide001.png"  # 1024 px: the README's picture of the page


@pytest.fixture
def page_scene(tmp_path) -> Path:
    """The upload: a scene the test writes (640 x 512 px, 12 tiles of 256 px), so the test runs anywhere; for the
    README's picture (TRANSLANDSEG_SCREENSHOT), the real Sichuan sample it shows."""
    if not SCREENSHOT:
        return write_png(tmp_path / "scene.png", np.random.default_rng(4).integers(0, 255, (3, 512, 640), np.uint8))
    if not SAMPLE.is_file():
        pytest.skip(f"the README's picture is of {SAMPLE}, not found (a user's checkout)")
    return SAMPLE


@pytest.fixture
def page_of_the_app(tiny_sam_folder):
    """The app served in this process, a headless Chromium page on it and the URLs it fetched from elsewhere."""
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (.ci/run installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the app extra (playwright) is not installed")
    from translandseg_hf.app.ui import launch_app

    demo = launch_app(tiny_sam_folder, port=free_port(), host="127.0.0.1", device="cpu", block=False)
    outside = []
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.set_default_timeout(60_000)
            page.on("request", lambda request: outside.append(request.url)
                    if not request.url.startswith(demo.local_url) else None)
            page.goto(demo.local_url)
            yield page, outside
            browser.close()
    finally:
        demo.close()


def upload(page, path: Path) -> None:
    """Drop a file on the upload box, as a user would: clearing the last one first."""
    clear = page.locator("#upload button[aria-label='Clear']")
    if clear.count():
        clear.click()
    page.locator("#upload input[type=file]").set_input_files(path)


def shown_count(page) -> int:
    return int(re.search(r"(\d+) landslides?", page.inner_text("#summary")).group(1))


def download_all(page, folder: Path, stem: str) -> dict[str, Path]:
    """Click every link of the downloads list, as a user would; the saved files by what follows `stem`_."""
    links = page.locator("#downloads a")
    files = {}
    for index in range(links.count()):
        with page.expect_download() as download:
            links.nth(index).click()
        path = folder / download.value.suggested_filename
        download.value.save_as(path)
        files[path.name.removeprefix(stem + "_")] = path
    return files


def test_the_page_maps_an_upload_rethresholds_and_refuses_a_bad_file(page_of_the_app, page_scene, tmp_path):
    page, outside = page_of_the_app
    upload(page, page_scene)
    page.locator("#summary").get_by_text("landslide").wait_for()
    files = download_all(page, tmp_path / "first", page_scene.stem)
    assert sorted(files) == ["landslides.gpkg", "mask.png", "mask.tif", "probability.tif"]  # a PNG: no GeoJSON
    mask = band(files["mask.tif"])
    assert mask.shape == Image.open(page_scene).size[::-1] and set(np.unique(mask)) <= {0, 1}
    assert np.array_equal(np.asarray(Image.open(files["mask.png"])) == 255, mask == 1)
    sizes = np.bincount(label_regions(mask == 1)[0].ravel())[1:]
    areas = gpkg_areas(files["landslides.gpkg"])
    assert shown_count(page) == len(areas) == (sizes >= 4).sum() == read_info(files["landslides.gpkg"])["features"]
    probability = band(files["probability.tif"])
    assert probability.dtype == np.float32 and 0.0 <= probability.min() <= probability.max() <= 1.0

    threshold = page.locator("#threshold input[type=number]")
    threshold.fill("0.55")
    threshold.press("Tab")  # the slider's box applies on leaving it
    page.locator("#min-area textarea").fill("100")
    page.locator("#min-area textarea").press("Enter")
    page.locator("#summary").get_by_text("Threshold 0.55; polygons of at least 100 pixels").wait_for()
    areas = gpkg_areas(download_all(page, tmp_path / "second", page_scene.stem)["landslides.gpkg"])
    assert shown_count(page) == len(areas) and min(areas, default=100) >= 100
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)

    upload(page, write_text(tmp_path / "notes.png"))
    page.locator("#status").get_by_text(
        "notes.png: not a readable image or raster (not recognized as being in a supported file format.).").wait_for()
    assert page.inner_text("#summary").strip() == "" and page.locator("#downloads a").count() == 0
    small = np.random.default_rng(5).integers(0, 255, (3, 61, 61), np.uint8)  # one tile
    upload(page, write_png(tmp_path / "small.png", small))  # the app goes on serving
    page.locator("#summary").get_by_text("Scene 61 x 61 px").wait_for()
    assert page.inner_text("#status").strip() == ""
    assert outside == []  # the page fetched nothing beyond the app: no web fonts, no analytics
