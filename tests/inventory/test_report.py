"""Issue 40, report.html: the quicklook's outlines by confidence, the page's content and escaping, and the page
opened from file:// in headless Chromium with every network request refused."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from translandseg_hf.inventory.report import (CONFIDENCE_COLORS, NO_POST_GREY, NO_POST_OPACITY, NO_PRE_GREY,
                                              quicklook_with_polygons, write_report)
from translandseg_hf.inventory.unmapped import NO_POST, NO_PRE
from translandseg_hf.inventory.statistics import frequency_area_figure, inventory_statistics

HOSTILE_NAME = "<script>alert('x')</script> & Co"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def square(col: float, row: float, side: float) -> np.ndarray:
    return np.array([(col, row), (col + side, row), (col + side, row + side), (col, row + side)])


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(BytesIO(png)).convert("RGB")).astype(int)


def colour_pixels(pixels: np.ndarray, colour) -> np.ndarray:
    return (np.abs(pixels - colour).sum(axis=-1) == 0).nonzero()


def test_the_quicklook_outlines_each_landslide_in_its_confidence_colour():
    rgb = np.full((50, 100, 3), 90, np.uint8)
    png = quicklook_with_polygons(rgb, [square(5, 5, 10), square(40, 30, 12)], ["high", "medium"])
    pixels = decoded(png)
    scale = 6  # enlarged to at least 600 px
    assert pixels.shape == (50 * scale, 100 * scale, 3)
    rows, cols = colour_pixels(pixels, CONFIDENCE_COLORS["high"])
    assert rows.size > 0 and 5 * scale - 2 <= cols.min() and cols.max() <= 15 * scale + 2
    rows, cols = colour_pixels(pixels, CONFIDENCE_COLORS["medium"])
    assert rows.size > 0 and 30 * scale - 2 <= rows.min() and rows.max() <= 42 * scale + 2
    assert colour_pixels(pixels, CONFIDENCE_COLORS["low"])[0].size == 0
    assert (pixels == 90).all(axis=-1).mean() > 0.9  # the scene itself is kept around the outlines


def test_a_large_quicklook_is_reduced_with_its_outlines():
    pixels = decoded(quicklook_with_polygons(np.full((100, 4096, 3), 90, np.uint8), [square(2000, 40, 40)], ["low"]))
    assert pixels.shape == (50, 2048, 3)  # QUICKLOOK_MAX_SIDE
    rows, cols = colour_pixels(pixels, CONFIDENCE_COLORS["low"])
    assert 998 <= cols.min() and cols.max() <= 1022 and 18 <= rows.min() and rows.max() <= 42


def test_the_quicklook_veils_the_pixels_without_a_post_event_value_and_hatches_those_without_a_pre_event_one():
    """50 x 100 px enlarged 6 times: no post-event value in rows 10-19, cols 10-29; no pre-event value in rows 30-39,
    cols 50-79, a high-confidence landslide outlined inside it."""
    rgb = np.full((50, 100, 3), 90, np.uint8)
    no_post, no_pre = np.zeros((50, 100), bool), np.zeros((50, 100), bool)
    no_post[10:20, 10:30], no_pre[30:40, 50:80] = True, True
    pixels = decoded(quicklook_with_polygons(rgb, [square(60, 32, 5)], ["high"], {NO_POST: no_post, NO_PRE: no_pre}))
    veiled = np.round(90 * (1 - NO_POST_OPACITY) + np.array(NO_POST_GREY) * NO_POST_OPACITY)
    rows, cols = colour_pixels(pixels, veiled)
    assert rows.size == 10 * 20 * 36 and (rows.min(), rows.max(), cols.min(), cols.max()) == (60, 119, 60, 179)
    rows, cols = colour_pixels(pixels, NO_PRE_GREY)
    assert 0.2 < rows.size / (10 * 30 * 36) < 0.5  # a hatch: lines with the scene between them
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (180, 239, 300, 479)
    rows, cols = colour_pixels(pixels, CONFIDENCE_COLORS["high"])  # the outline lies on the hatch
    assert rows.size > 0 and 32 * 6 - 2 <= rows.min() and cols.max() <= 65 * 6 + 2
    assert colour_pixels(pixels, CONFIDENCE_COLORS["high"])[0].size == colour_pixels(decoded(
        quicklook_with_polygons(rgb, [square(60, 32, 5)], ["high"])), CONFIDENCE_COLORS["high"])[0].size
    assert (pixels == 90).all(axis=-1).sum() > 0.7 * pixels.shape[0] * pixels.shape[1]  # the rest is the scene


def test_a_reduced_quicklook_keeps_a_wide_unmapped_block():
    no_post = np.zeros((100, 4096), bool)
    no_post[:, 2000:2400] = True  # 200 px wide once reduced to 2048
    pixels = decoded(quicklook_with_polygons(np.zeros((100, 4096, 3), np.uint8), [], [], {NO_POST: no_post}))
    rows, cols = colour_pixels(pixels, np.round(np.array(NO_POST_GREY) * NO_POST_OPACITY))
    assert (cols.min(), cols.max(), rows.size) == (1000, 1199, 200 * 50)


@pytest.mark.parametrize("unmapped, message", [
    ({"cloudy": np.zeros((8, 8), bool)}, r"unknown unmapped reasons \['cloudy'\]; expected some of"),
    ({NO_POST: np.zeros((8, 9), bool)}, r"the 'no post-event value' mask is \(8, 9\), not the quicklook's \(8, 8\)"),
])
def test_unmapped_masks_that_do_not_fit_the_quicklook_are_refused(unmapped, message):
    with pytest.raises(ValueError, match=message):
        quicklook_with_polygons(np.zeros((8, 8, 3), np.uint8), [], [], unmapped)


@pytest.mark.parametrize("rgb, outlines, confidence, message", [
    (np.zeros((8, 8), np.uint8), [], [], r"the quicklook must be an \(H, W, 3\) uint8 array, not uint8 of shape"),
    (np.zeros((8, 8, 3), np.float32), [], [], "not float32 of shape"),
    (np.zeros((8, 8, 3), np.uint8), [square(1, 1, 2)], [], "1 outlines but 0 confidence values"),
    (np.zeros((8, 8, 3), np.uint8), [square(1, 1, 2)], ["sure"], r"unknown confidence \['sure'\]"),
])
def test_a_quicklook_of_the_wrong_inputs_is_refused(rgb, outlines, confidence, message):
    with pytest.raises(ValueError, match=message):
        quicklook_with_polygons(rgb, outlines, confidence)


def landslide_rows(count: int) -> list[dict]:
    """Attribute rows as build_inventory makes them, landslide i of area 100 (i + 1) m2."""
    return [{"id": i + 1, "area_m2": 100.0 * (i + 1), "confidence": ("low", "medium", "high")[i % 3],
             "probability_mean": 0.5 + i / 100, "post_image_date": "2024-05-02", "pre_image_date": "2024-01-10",
             "centroid_lon": 102.51234 + i / 1000, "centroid_lat": 30.1, "event_name": HOSTILE_NAME}
            for i in range(count)]


@pytest.fixture
def report(tmp_path) -> Path:
    rows = landslide_rows(25)
    statistics = inventory_statistics(np.array([row["area_m2"] for row in rows]), 4.0, 0.12, 0.3,
                                      masked_area_km2=0.55, no_pre_event_area_km2=1.2)
    rgb = np.random.default_rng(3).integers(0, 255, (40, 40, 3), np.uint8)
    no_post, no_pre = np.zeros((40, 40), bool), np.zeros((40, 40), bool)
    no_post[20:30, 0:20], no_pre[0:10, 20:40] = True, True
    return write_report(
        tmp_path / "event" / "report.html", statistics=statistics, landslides=rows,
        scenes=[{"role": "post", "id": "S2B_<b>T48RUU</b>_20240502", "datetime": "2024-05-02T03:35:00Z",
                 "platform": "sentinel-2b"},
                {"role": "pre", "id": "S2A_T48RUU_20240110", "datetime": "2024-01-10T03:35:00Z",
                 "platform": "sentinel-2a"}],
        event={"name": HOSTILE_NAME, "date": "2024-05-01", "trigger": "earthquake"},
        quicklook_png=quicklook_with_polygons(rgb, [square(2, 2, 5)], ["high"], {NO_POST: no_post, NO_PRE: no_pre}),
        frequency_area_png=frequency_area_figure(statistics),
        record={"arguments": {"change": "both", "pre_days": 120}, "package_version": "9.9.9"},
        unmapped_drawn=[NO_POST, NO_PRE])


class PageParts(HTMLParser):
    """The page's elements and text, as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.tags, self.attributes, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend(value or "" for _, value in attrs)

    def handle_data(self, data):
        self.text.append(data)


def parsed(path: Path) -> PageParts:
    parts = PageParts()
    parts.feed(path.read_text(encoding="utf-8"))
    return parts


def test_the_report_holds_the_event_the_largest_landslides_the_scenes_and_the_statistics(report):
    parts = parsed(report)
    text = " ".join(parts.text)
    assert "script" not in parts.tags and HOSTILE_NAME in text  # the name is text, not markup
    assert "S2B_<b>T48RUU</b>_20240502" in text and "b" not in parts.tags
    assert "earthquake" in text and "2024-05-01" in text and "sentinel-2a" in text
    largest = report.read_text().split("<h2>Largest landslides</h2>")[1].split("</table>")[0]
    assert re.findall(r'<tr><td class="number">(\d+)</td><td class="number">([\d,]+)</td>', largest) == [
        (str(i), f"{100 * i:,}") for i in range(25, 5, -1)]  # id and area of the 20 largest, largest first
    assert "The 20 largest of 25." in text and "102.5363" in largest  # centroids to ~10 m
    assert "landslides per km² of valid AOI" in text and "6.25" in text  # 25 landslides on 4 km2
    assert "alpha" in text or "power-law fit" in text
    assert '"pre_days": 120' in text and "9.9.9" in text
    # where the inventory is blind: km2 and a share of the AOI (the pre-event share is given of the valid AOI)
    assert "0.55 km² (12.0% of the AOI)" in text and "1.2 km² (26.4% of the AOI)" in text  # 0.3 x (1 - 0.12)
    assert "no post-event value (cloud, shadow, no scene, nodata)" in text.split("Frequency-area")[0]  # the legend


def test_the_report_is_self_contained_and_written_in_one_piece(report):
    parts = parsed(report)
    sources = [value for value in parts.attributes if value.startswith(("http", "//", "data:"))]
    assert parts.tags.count("img") == 2 and len(sources) == 2
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert "link" not in parts.tags and "script" not in parts.tags
    assert sorted(path.name for path in report.parent.iterdir()) == ["report.html"]  # no temporary left


@pytest.fixture
def chromium_page():
    """A headless Chromium page (Debian's chromium, no browser download) that refuses and records every request
    not to file://."""
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (.ci/run installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the dev extra (playwright) is not installed")
    refused, dialogs = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(30_000)
        page.route(lambda url: not url.startswith(("file://", "data:")),
                   lambda route: (refused.append(route.request.url), route.abort()))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        yield page, refused, dialogs
        browser.close()


def test_the_report_renders_offline_in_chromium(report, chromium_page):
    page, refused, dialogs = chromium_page
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) == 2 and min(widths) > 0, widths
    assert HOSTILE_NAME in page.inner_text("h1") and dialogs == []
    screenshot = np.asarray(Image.open(BytesIO(page.screenshot(full_page=True))).convert("L"))
    assert screenshot.std() > 10 and (screenshot < 128).mean() > 0.01  # text and figures, not a blank page
    hatch = page.eval_on_selector(".swatch.no-pre", "e => getComputedStyle(e).backgroundImage")
    assert hatch.startswith("repeating-linear-gradient"), hatch  # the legend's hatch is drawn by the inline style
    assert refused == []
