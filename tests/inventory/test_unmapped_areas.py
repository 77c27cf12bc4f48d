"""Where the inventory is blind (`translandseg_hf.inventory.unmapped`): inventory.gpkg's `unmapped` layer and
statistics.json's areas, on a hand-made event whose blind pixels are known.

The grid: 40 x 40 px at 10 m in UTM 48N (x 500,000 is the zone's central meridian: geodesic areas are the map's
divided by k0^2 = 0.9996^2). After the event:
  S    rows 4-8, cols 4-11      a landslide, probability 0.9 both times (a probability-change inventory drops it)
  N    rows 22-27, cols 26-31   a new landslide, probability 0.9, inside GAP (no value before: kept, flagged)
  M    rows 30-34, cols 5-10    a new landslide, probability 0.9 (0.05 before)
  CLOUD  rows 10-19, cols 10-24 no post-event value (NaN)
Before the event, GAP (rows 15-29, cols 20-34) has no value: "no pre-event value" is GAP less CLOUD.
The areas the report and the command line give: CLOUD 150 px of 100 m2 / K0^2 = 0.015 km2, 150 / 1600 = 9.4% of the
AOI; GAP less CLOUD 200 px = 0.02 km2, 12.5%.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from io import BytesIO

import numpy as np
import pytest
import shapely
from helpers.rasters import UTM_48N, write_raster
from pyogrio import list_layers, read_info
from pyogrio.raw import read
from rasterio.transform import from_origin
from PIL import Image
from rasterio.warp import transform as transform_points

from translandseg_hf.cli import main
from translandseg_hf.inventory.build import build_inventory
from translandseg_hf.inventory.mapped import MappedDate

SIDE, PIXEL, ORIGIN = 40, 10.0, (500_000.0, 3_000_000.0)
K0 = 0.9996  # UTM's scale on the central meridian
CLOUD, GAP = (slice(10, 20), slice(10, 25)), (slice(15, 30), slice(20, 35))
LANDSLIDES = {"S": (slice(4, 9), slice(4, 12)), "N": (slice(22, 28), slice(26, 32)),
              "M": (slice(30, 35), slice(5, 11))}
NO_POST_ROW = "unmapped: no post-event value (cloud, shadow, no scene, nodata)"  # report.html's statistics table
NO_PRE_ROW = "unmapped: no pre-event value (new or old cannot be told)"
NO_POST_LINE = "unmapped: 0.015 km² without a post-event value (9.4% of the AOI)"  # the command line's summary
NO_PRE_LINE = "unmapped: 0.02 km² without a pre-event value (12.5% of the AOI)"
SCALE = 8  # the report's quicklook of the 40 px map: enlarged to at least 600 px, at most 8 times


def write_probability(folder, values: np.ndarray):
    folder.mkdir(parents=True)
    write_raster(folder / "scene_probability.tif", values.astype(np.float32), nodata=float("nan"), crs=UTM_48N,
                 transform=from_origin(*ORIGIN, PIXEL, PIXEL))
    return MappedDate.from_folder(folder)


def probabilities(cloud: bool = True, gap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    post, pre = np.full((SIDE, SIDE), 0.05, np.float32), np.full((SIDE, SIDE), 0.05, np.float32)
    for name in LANDSLIDES:
        post[LANDSLIDES[name]] = 0.9
    pre[LANDSLIDES["S"]] = 0.9
    if cloud:
        post[CLOUD] = np.nan
    if gap:
        pre[GAP] = np.nan
    return post, pre


def pixel_box(rows: slice, cols: slice):
    """The pixels' outline in UTM metres."""
    return shapely.box(ORIGIN[0] + cols.start * PIXEL, ORIGIN[1] - rows.stop * PIXEL,
                       ORIGIN[0] + cols.stop * PIXEL, ORIGIN[1] - rows.start * PIXEL)


def unmapped_layer(path) -> dict:
    """reason -> (area_m2, share_of_aoi, geometry) of inventory.gpkg's `unmapped` layer."""
    meta, _, geometry, columns = read(path, layer="unmapped")
    fields = dict(zip(meta["fields"], columns))
    assert list(meta["fields"]) == ["reason", "area_m2", "share_of_aoi"] and meta["crs"] == UTM_48N
    return {reason: (float(area), float(share), shapely.from_wkb(wkb))
            for reason, area, share, wkb in zip(fields["reason"], fields["area_m2"], fields["share_of_aoi"], geometry)}


def build(tmp_path, cloud=True, gap=True, **options):
    post, pre = probabilities(cloud, gap)
    made = build_inventory(write_probability(tmp_path / "post", post), tmp_path / "out",
                           pre=write_probability(tmp_path / "pre", pre), change="probability", **options)
    return made, json.loads(made.paths["statistics.json"].read_text())


class ReportText(HTMLParser):
    """report.html as a browser's parser reads it: its text, its tables' rows (header cell -> value cell) and its
    images' sources."""

    def __init__(self, path):
        super().__init__()
        self.text, self.rows, self.images, self._cell, self._header = [], {}, [], None, None
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        if tag in ("th", "td"):
            self._cell = []
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag == "th":
            self._header, self._cell = "".join(self._cell), None
        elif tag == "td" and self._cell is not None:
            if self._header is not None:
                self.rows[self._header] = "".join(self._cell)
            self._header, self._cell = None, None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def legend(self) -> str:
        """The map section's text."""
        return " ".join(self.text).split("Map", 1)[1].split("Frequency-area distribution")[0]

    def quicklook(self) -> np.ndarray:
        """The map's pixels, (H, W, 3) int."""
        png = base64.b64decode(self.images[0].removeprefix("data:image/png;base64,"))
        return np.asarray(Image.open(BytesIO(png)).convert("RGB")).astype(int)


def greys(pixels: np.ndarray) -> np.ndarray:
    """Where pixels are grey and not black (the quicklook of a probability map without imagery is grey, its 0.05
    and NaN black, its landslides white)."""
    return (pixels[..., 0] == pixels[..., 1]) & (pixels[..., 1] == pixels[..., 2]) & (0 < pixels[..., 0]) & (
        pixels[..., 0] < 255)


def scaled(rows: slice, cols: slice) -> tuple[slice, slice]:
    return slice(rows.start * SCALE, rows.stop * SCALE), slice(cols.start * SCALE, cols.stop * SCALE)


@pytest.fixture(scope="module")
def clouded(tmp_path_factory):
    return build(tmp_path_factory.mktemp("clouded"))


def test_a_cloud_is_one_no_post_event_value_feature_of_its_geodesic_area_and_share(clouded):
    made, statistics = clouded
    area, share, geometry = unmapped_layer(made.paths["inventory.gpkg"])["no post-event value"]
    cloud_pixels = 10 * 15
    assert area == pytest.approx(cloud_pixels * PIXEL ** 2 / K0 ** 2, rel=0.01)
    assert area == pytest.approx(cloud_pixels * PIXEL ** 2 / K0 ** 2, rel=1e-5)  # pixel-edged: far better than 1%
    assert shapely.equals(geometry, pixel_box(*CLOUD)) and geometry.geom_type == "MultiPolygon"
    assert share == statistics["masked_share"] == pytest.approx(cloud_pixels / SIDE ** 2)
    assert statistics["masked_area_km2"] == pytest.approx(area / 1e6, rel=1e-4)


def test_a_pre_event_gap_counts_only_where_the_post_event_map_has_a_value(clouded):
    made, statistics = clouded
    area, share, geometry = unmapped_layer(made.paths["inventory.gpkg"])["no pre-event value"]
    expected = pixel_box(*GAP).difference(pixel_box(*CLOUD))
    gap_pixels = 15 * 15 - 5 * 5  # GAP less its corner under CLOUD (rows 15-19, cols 20-24)
    assert shapely.equals(geometry, expected)
    assert area == pytest.approx(gap_pixels * PIXEL ** 2 / K0 ** 2, rel=1e-5)
    # a share of the AOI; statistics.json's no_pre_event_share is of the valid AOI (the AOI less the masked share)
    assert share == pytest.approx(gap_pixels / SIDE ** 2)
    assert share == pytest.approx(statistics["no_pre_event_share"] * (1 - statistics["masked_share"]))
    assert statistics["no_pre_event_area_km2"] == pytest.approx(area / 1e6, rel=1e-4)
    # the new landslide inside the gap is flagged, the one outside it is not
    assert [row["pre_event_valid"] for row in made.rows] == [False, True]  # N, then M


def test_the_report_gives_the_unmapped_areas_and_draws_them_under_the_outlines(clouded, tmp_path):
    page = ReportText(clouded[0].paths["report.html"])
    assert (page.rows[NO_POST_ROW], page.rows[NO_PRE_ROW]) == ("0.015 km² (9.4% of the AOI)",
                                                               "0.02 km² (12.5% of the AOI)")
    assert "no post-event value" in page.legend() and "no pre-event value" in page.legend()
    clear = ReportText(build(tmp_path, cloud=False, gap=False)[0].paths["report.html"])
    assert (clear.rows[NO_POST_ROW], clear.rows[NO_PRE_ROW]) == ("0 km² (0.0% of the AOI)",) * 2
    assert "no post-event value" not in clear.legend() and "no pre-event value" not in clear.legend()
    pixels, clear_pixels = page.quicklook(), clear.quicklook()
    assert pixels.shape == clear_pixels.shape == (SIDE * SCALE, SIDE * SCALE, 3)
    cloud = pixels[scaled(*CLOUD)]  # veiled in one grey, where the clear map is black
    assert greys(cloud).all() and len(np.unique(cloud.reshape(-1, 3), axis=0)) == 1
    assert not greys(clear_pixels[scaled(*CLOUD)]).any()
    gap = scaled(slice(20, 30), slice(20, 25))  # GAP below CLOUD, west of N: hatched, the scene between the lines
    assert 0.2 < greys(pixels[gap]).mean() < 0.5 and not greys(clear_pixels[gap]).any()
    assert {tuple(p) for p in pixels[gap][greys(pixels[gap])]}.isdisjoint(tuple(p) for p in cloud.reshape(-1, 3))


@pytest.mark.parametrize("cloud, gap, pre, expected", [
    (True, True, True, [NO_POST_LINE, NO_PRE_LINE]),
    (True, False, True, [NO_POST_LINE]),
    (False, True, True, ["unmapped: 0.0225 km² without a pre-event value (14.1% of the AOI)"]),  # all GAP's 225 px
    (True, True, False, [NO_POST_LINE]),  # one date: every pixel lacks a pre-event value, nothing to say where
    (False, False, True, []),
])
def test_the_inventory_command_says_where_the_inventory_is_blind(tmp_path, capsys, cloud, gap, pre, expected):
    post_values, pre_values = probabilities(cloud, gap)
    write_probability(tmp_path / "post", post_values)
    write_probability(tmp_path / "pre", pre_values)
    dates = ["--pre_predictions", str(tmp_path / "pre"), "--change", "probability"] if pre else []
    assert main(["inventory", "--predictions", str(tmp_path / "post"), *dates, "--output", str(tmp_path / "out")]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith(f"wrote {tmp_path / 'out' / 'inventory.gpkg'} (") and said[0].endswith(
        "), statistics.json, report.html and inventory.json")
    assert said[1:] == expected


def aoi_west_of_column(column: int) -> str:
    """A WGS 84 bbox holding the centres of the grid's columns west of `column` (its east edge half a pixel from
    the next centre), every row."""
    xs = [ORIGIN[0] - PIXEL, ORIGIN[0] + column * PIXEL, ORIGIN[0] - PIXEL, ORIGIN[0] + column * PIXEL]
    ys = [ORIGIN[1] + PIXEL, ORIGIN[1] + PIXEL, ORIGIN[1] - (SIDE + 1) * PIXEL, ORIGIN[1] - (SIDE + 1) * PIXEL]
    lon, lat = transform_points(UTM_48N, "EPSG:4326", xs, ys)
    return f"{min(lon):.9f},{min(lat):.9f},{max(lon):.9f},{max(lat):.9f}"


def test_an_aoi_clips_the_layer_to_its_pixels(tmp_path):
    made, statistics = build(tmp_path, aoi=aoi_west_of_column(22))  # the cloud's cols 10-21, the gap's 20-21
    layer = unmapped_layer(made.paths["inventory.gpkg"])
    area, share, geometry = layer["no post-event value"]
    assert shapely.equals(geometry, pixel_box(CLOUD[0], slice(10, 22)))
    assert share == statistics["masked_share"] == pytest.approx(10 * 12 / (SIDE * 22))
    assert area == pytest.approx(10 * 12 * PIXEL ** 2 / K0 ** 2, rel=1e-4)
    assert shapely.equals(layer["no pre-event value"][2], pixel_box(slice(20, 30), slice(20, 22)))


def test_everything_mapped_leaves_the_layer_without_features(tmp_path):
    made, statistics = build(tmp_path, cloud=False, gap=False)
    path = made.paths["inventory.gpkg"]
    assert ("unmapped", "MultiPolygon") in {tuple(layer) for layer in list_layers(path)}
    assert read_info(path, layer="unmapped")["features"] == 0
    assert statistics["masked_area_km2"] == statistics["no_pre_event_area_km2"] == 0.0


def test_one_date_gives_no_pre_event_feature(tmp_path):
    """With no pre-event map nothing has a pre-event value: statistics.json says so (a share of 1), the layer draws
    no polygon over the whole map."""
    post, _ = probabilities()
    made = build_inventory(write_probability(tmp_path / "post", post), tmp_path / "out", change="none")
    statistics = json.loads(made.paths["statistics.json"].read_text())
    assert list(unmapped_layer(made.paths["inventory.gpkg"])) == ["no post-event value"]
    assert statistics["no_pre_event_share"] == 1.0
    assert statistics["no_pre_event_area_km2"] == pytest.approx(statistics["valid_area_km2"])
    page = ReportText(made.paths["report.html"])  # nor does the report: one date says nothing about where
    assert page.rows[NO_POST_ROW] == "0.015 km² (9.4% of the AOI)" and NO_PRE_ROW not in page.rows
    assert "no pre-event value" not in page.legend()


def test_ogrinfo_lists_three_layers(clouded):
    if shutil.which("ogrinfo") is None:
        pytest.skip("ogrinfo (Debian's gdal-bin) is not installed")
    path = clouded[0].paths["inventory.gpkg"]
    done = subprocess.run(["ogrinfo", "-ro", "-q", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [line.split(":", 1)[1].strip() for line in done.stdout.splitlines() if ":" in line] == [
        "landslides (Multi Polygon)", "landslide_points (Point)", "unmapped (Multi Polygon)"]
    summary = subprocess.run(["ogrinfo", "-ro", "-so", str(path), "unmapped"], capture_output=True, text=True,
                             timeout=60)
    assert "Feature Count: 2" in summary.stdout and "reason: String" in summary.stdout, summary.stdout
