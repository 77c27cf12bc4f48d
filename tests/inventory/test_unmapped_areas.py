"""Where the inventory is blind (`translandseg_hf.inventory.unmapped`): inventory.gpkg's `unmapped` layer and
statistics.json's areas, on a hand-made event whose blind pixels are known.

The grid: 40 x 40 px at 10 m in UTM 48N (x 500,000 is the zone's central meridian: geodesic areas are the map's
divided by k0^2 = 0.9996^2). After the event:
  S    rows 4-8, cols 4-11      a landslide, probability 0.9 both times (a probability-change inventory drops it)
  N    rows 22-27, cols 26-31   a new landslide, probability 0.9, inside GAP (no value before: kept, flagged)
  M    rows 30-34, cols 5-10    a new landslide, probability 0.9 (0.05 before)
  CLOUD  rows 10-19, cols 10-24 no post-event value (NaN)
Before the event, GAP (rows 15-29, cols 20-34) has no value: "no pre-event value" is GAP less CLOUD.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import shapely
from helpers.rasters import UTM_48N, write_raster
from pyogrio import list_layers, read_info
from pyogrio.raw import read
from rasterio.transform import from_origin
from rasterio.warp import transform as transform_points

from translandseg_hf.inventory.build import build_inventory
from translandseg_hf.inventory.mapped import MappedDate

SIDE, PIXEL, ORIGIN = 40, 10.0, (500_000.0, 3_000_000.0)
K0 = 0.9996  # UTM's scale on the central meridian
CLOUD, GAP = (slice(10, 20), slice(10, 25)), (slice(15, 30), slice(20, 35))
LANDSLIDES = {"S": (slice(4, 9), slice(4, 12)), "N": (slice(22, 28), slice(26, 32)),
              "M": (slice(30, 35), slice(5, 11))}


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
