"""An inventory from maps and records it did not make itself (`translandseg_hf.inventory.build`): values outside a
map's range, a mask on another grid, a hand-edited imagery.json, dates out of order, an output that is a file, a
failure while writing; and what it measures: areas on a Web Mercator map, the AOI's own pixels.

One date: 20 x 20 px at 10 m in UTM 48N (or Web Mercator), two square landslides (NW: rows 2-7, cols 2-7; SE: rows
12-17, cols 12-17) at probability 0.9 on 0.05, an imagery folder of one scene."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import shapely
from helpers.rasters import UTM_48N, write_raster
from rasterio.transform import from_origin
from rasterio.warp import transform as transform_points

from translandseg_hf.inventory.attributes import majority
from translandseg_hf.inventory.build import OUTPUTS, build_inventory
from translandseg_hf.inventory.mapped import EventInfo, MappedDate

SIDE, PIXEL, ORIGIN = 20, 10.0, (500_000.0, 3_000_000.0)
SQUARES = {"NW": (slice(2, 8), slice(2, 8)), "SE": (slice(12, 18), slice(12, 18))}
SCENE = {"index": 0, "id": "S2A_post", "datetime": "2024-08-20T03:30:21Z", "platform": "sentinel-2a"}


def probability() -> np.ndarray:
    values = np.full((SIDE, SIDE), 0.05, np.float32)
    for rows, cols in SQUARES.values():
        values[rows, cols] = 0.9
    return values


def write_date(folder, values=None, crs=UTM_48N, origin=ORIGIN, scenes=(SCENE,), source=None, uncertainty=None):
    """FOLDER/predictions/ (probability, mask, optional uncertainty) and FOLDER/imagery/ (composite of B4, B3, B2,
    source.tif, imagery.json): the `MappedDate`."""
    values = probability() if values is None else values
    grid = dict(crs=crs, transform=from_origin(*origin, PIXEL, PIXEL))
    maps, imagery = folder / "predictions", folder / "imagery"
    maps.mkdir(parents=True)
    imagery.mkdir()
    write_raster(maps / "x_probability.tif", values, nodata=float("nan"), **grid)
    write_raster(maps / "x_mask.tif", (values >= 0.5).astype(np.uint8), nodata=255, **grid)
    if uncertainty is not None:
        write_raster(maps / "x_uncertainty.tif", uncertainty, nodata=float("nan"), **grid)
    write_raster(imagery / "composite.tif", np.stack([values] * 3), nodata=float("nan"), **grid)
    source = np.zeros((SIDE, SIDE), np.uint16) if source is None else source
    write_raster(imagery / "source.tif", source, nodata=65535, **grid)
    (imagery / "imagery.json").write_text(json.dumps({"scenes": list(scenes)}) if not isinstance(scenes, str)
                                          else scenes)
    return MappedDate.from_folder(maps, imagery)


@pytest.mark.parametrize("which, values, message", [
    ("probability", probability() * 4, r"x_probability\.tif: its values run from 0\.2 to 3\.6, and a probability "
                                       r"map holds 0 to 1"),
    ("probability", probability() - 0.5, r"x_probability\.tif: its values run from -0\.45 to 0\.4"),
    ("uncertainty", np.full((SIDE, SIDE), 0.7, np.float32), r"x_uncertainty\.tif: its values run from 0\.7 to "
                                                             r"0\.7, and a uncertainty map holds 0 to 0\.5"),
])
def test_maps_outside_their_range_are_refused_naming_the_file(tmp_path, which, values, message):
    post = (write_date(tmp_path / "post", values=values) if which == "probability"
            else write_date(tmp_path / "post", uncertainty=values))
    with pytest.raises(ValueError, match=message):
        build_inventory(post, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_pre_event_map_in_percent_is_refused(tmp_path):
    post = write_date(tmp_path / "post")
    pre = write_date(tmp_path / "pre", values=np.full((SIDE, SIDE), 40.0, np.float32),
                     scenes=[{**SCENE, "datetime": "2024-05-02T03:30:11Z"}])
    with pytest.raises(ValueError, match=r"pre/predictions/x_probability\.tif: its values run from 40 to 40"):
        build_inventory(post, tmp_path / "out", pre=pre, change="probability")


def test_a_mask_on_another_grid_is_refused_naming_both_files(tmp_path):
    post = write_date(tmp_path / "post")
    mask = (probability() >= 0.5).astype(np.uint8)[:10]  # the northern half only: SE would be dropped silently
    write_raster(post.mask, mask, nodata=255, crs=UTM_48N, transform=from_origin(*ORIGIN, PIXEL, PIXEL))
    with pytest.raises(ValueError, match=r"x_mask\.tif: the post-event mask is not on the grid of .*"
                                         r"x_probability\.tif \(20 x 10 px, EPSG:32648, origin 500000, 3e\+06 "
                                         r"against 20 x 20 px"):
        build_inventory(post, tmp_path / "out")


HOSTILE_SCENES = [  # (imagery.json's text, what the error says)
    (json.dumps({"scenes": {"0": SCENE}}), r"imagery\.json: \"scenes\" is a JSON dict, not a list of scenes"),
    (json.dumps({"scenes": ["S2A_post"]}), r"imagery\.json: scene 0 is a JSON str, not an object"),
    (json.dumps({"scenes": [{**SCENE, "id": {"nested": [1, 2]}}]}), r"scene 0: \"id\" must be text, not \{'nest"),
    (json.dumps({"scenes": [{**SCENE, "datetime": "last Tuesday"}]}),
     r"scene 0: \"datetime\" 'last Tuesday' is not an ISO 8601 date and time"),
    (json.dumps({"scenes": [{**SCENE, "index": -1}]}), r"scene 0: \"index\" must be a whole number >= 0"),
    (json.dumps({"scenes": [{**SCENE, "datetime": 20240820}]}), r"scene 0: \"datetime\" must be text or null, not "
                                                                r"20240820"),
    (json.dumps({"scenes": [{key: value for key, value in SCENE.items() if key != "datetime"}]}),
     r"scene 0: no \"datetime\" \(ISO 8601 text, or null where the scene's date is unknown\)"),
    (json.dumps({"scenes": [{**SCENE, "platform": ["a"]}]}), r"scene 0: \"platform\" must be text or null"),
    (json.dumps([SCENE]), r"imagery\.json: holds a JSON list, not an object"),
    ("[" * 100_000, r"imagery\.json: nested too deeply"),
]


@pytest.mark.parametrize("text, message", HOSTILE_SCENES)
def test_a_hostile_imagery_record_is_refused_naming_it(tmp_path, text, message):
    post = write_date(tmp_path / "post", scenes=text)
    with pytest.raises(ValueError, match=message):
        build_inventory(post, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_huge_imagery_record_is_refused_before_it_is_read(tmp_path):
    post = write_date(tmp_path / "post")
    with open(post.imagery / "imagery.json", "r+b") as handle:
        handle.truncate(64 * 2**20)  # sparse: no disk, no memory
    with pytest.raises(ValueError, match=r"imagery\.json: 67,108,864 bytes, more than the 16,777,216"):
        build_inventory(post, tmp_path / "out")


def test_scene_indices_imagery_json_does_not_list_are_refused_naming_source_tif(tmp_path):
    source = np.zeros((SIDE, SIDE), np.uint16)
    source[:, 10:] = 7
    post = write_date(tmp_path / "post", source=source)
    with pytest.raises(ValueError, match=r"imagery/source\.tif: scene indices 7 are not in imagery\.json's scenes "
                                         r"\(0\)"):
        build_inventory(post, tmp_path / "out")


def test_the_majority_class_needs_no_table_as_wide_as_the_largest_class():
    labels = np.array([[1, 1, 2], [1, 2, 2]], np.int32)
    classes = np.array([[10.0**12, 10.0**12, 3.0], [5.0, np.nan, 3.0]], np.float64)  # a 10^12-wide table: 16 TB
    assert majority(labels, 2, classes) == [10**12, 3]
    with pytest.raises(ValueError, match=r"classes must be whole numbers >= 0, not -2\.0"):
        majority(labels, 2, np.where(labels == 1, -2.0, 1.0))


PRE_SCENE = {**SCENE, "id": "S2A_pre", "datetime": "2024-05-02T03:30:11Z"}
DATE_ORDER = [  # (post scene's datetime, pre scene's datetime, event date, what the error says)
    ("2024-08-20T03:30:21Z", PRE_SCENE["datetime"], "2024-08-21",
     r"post/imagery/imagery\.json scene S2A_post is 2024-08-20, before the event date 2024-08-21"),
    ("2024-08-20T03:30:21Z", "2024-08-20T01:00:00Z", "2024-08-20",
     r"pre/imagery/imagery\.json scene S2A_pre is 2024-08-20, not before the event date 2024-08-20"),
    ("2024-08-20T03:30:21Z", "2024-09-01T01:00:00Z", None,
     r"scene S2A_pre is 2024-09-01, not before .*scene S2A_post \(2024-08-20\)"),
]


@pytest.mark.parametrize("post_when, pre_when, event_date, message", DATE_ORDER)
def test_dates_out_of_order_are_refused_naming_them_and_their_sources(tmp_path, post_when, pre_when, event_date,
                                                                      message):
    post = write_date(tmp_path / "post", scenes=[{**SCENE, "datetime": post_when}])
    pre = write_date(tmp_path / "pre", scenes=[{**PRE_SCENE, "datetime": pre_when}])
    with pytest.raises(ValueError, match=r"the dates are out of order \(pre-event < event date <= post-event\): .*"
                                         + message):
        build_inventory(post, tmp_path / "out", pre=pre, event=EventInfo(date=event_date), change="probability")


def test_a_scene_of_the_event_day_is_post_event_and_a_given_date_is_checked_too(tmp_path):
    post = write_date(tmp_path / "post", scenes=[{**SCENE, "datetime": "2024-08-20T00:10:00+00:00"}])
    made = build_inventory(post, tmp_path / "out", event=EventInfo(date="2024-08-20"))
    assert made.count == 2
    given = MappedDate(post.probability, date="2024-08-01")  # no imagery: the user's date is all there is
    with pytest.raises(ValueError, match=r"the post-event date given is 2024-08-01, before the event date 2024-08-20"):
        build_inventory(given, tmp_path / "out2", event=EventInfo(date="2024-08-20"))


def test_an_output_that_is_a_file_is_refused(tmp_path):
    post = write_date(tmp_path / "post")
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=r"out: a file, not a folder; give --output a folder"):
        build_inventory(post, tmp_path / "out")


def test_a_failure_while_writing_the_report_leaves_the_earlier_inventory_whole(tmp_path, monkeypatch):
    post = write_date(tmp_path / "post")
    build_inventory(post, tmp_path / "out")
    before = {name: (tmp_path / "out" / name).read_bytes() for name in OUTPUTS}
    import translandseg_hf.inventory.report as report

    def broken(path, **_):
        raise OSError(f"{path}: no space left on device")

    monkeypatch.setattr(report, "write_report", broken)
    with pytest.raises(OSError, match="no space left on device"):
        build_inventory(post, tmp_path / "out", min_area_m2=1e9, overwrite=True)  # would write no landslides
    assert {name: (tmp_path / "out" / name).read_bytes() for name in OUTPUTS} == before
    assert sorted(os.listdir(tmp_path / "out")) == sorted(OUTPUTS)  # no temporary file left behind


def web_mercator_origin() -> tuple[float, float]:
    (x,), (y,) = transform_points("EPSG:4326", "EPSG:3857", [85.3], [27.6])
    return x, y


def test_a_web_mercator_map_gets_areas_and_densities_on_the_ground(tmp_path):
    x, y = web_mercator_origin()
    post = write_date(tmp_path / "post", crs="EPSG:3857", origin=(x, y))
    made = build_inventory(post, tmp_path / "out")
    nw_rows, nw_cols = SQUARES["NW"]
    corners_x = [x + nw_cols.start * PIXEL, x + nw_cols.stop * PIXEL]
    corners_y = [y - nw_rows.stop * PIXEL, y - nw_rows.start * PIXEL]
    (west, east), (south, north) = transform_points("EPSG:3857", "EPSG:4326", corners_x, corners_y)
    from pyproj import Geod

    truth = abs(Geod(ellps="WGS84").polygon_area_perimeter([west, east, east, west], [south, south, north, north])[0])
    assert made.rows[0]["area_m2"] == pytest.approx(truth, rel=1e-4)
    assert made.rows[0]["area_m2"] == pytest.approx(3600 * math.cos(math.radians(27.6)) ** 2, rel=0.01)  # not 3600
    assert made.statistics["valid_area_km2"] == pytest.approx(SIDE**2 * 100 * math.cos(math.radians(27.6)) ** 2
                                                              / 1e6, rel=0.01)


def test_the_aoi_bounds_the_landslides_and_the_area_the_densities_are_of(tmp_path):
    post = write_date(tmp_path / "post")
    west_half = shapely.box(ORIGIN[0], ORIGIN[1] - SIDE * PIXEL, ORIGIN[0] + 10 * PIXEL, ORIGIN[1])  # NW only
    (lon0, lon1), (lat0, lat1) = transform_points(UTM_48N, "EPSG:4326", [west_half.bounds[0], west_half.bounds[2]],
                                                  [west_half.bounds[1], west_half.bounds[3]])
    made = build_inventory(post, tmp_path / "out", aoi=(lon0, lat0, lon1, lat1))
    assert made.count == 1 and made.rows[0]["area_m2"] == pytest.approx(3600, rel=1e-3)
    assert made.statistics["valid_area_km2"] == pytest.approx(SIDE * 10 * 100 / 1e6, rel=0.02)
    assert made.statistics["masked_share"] == pytest.approx(0.0, abs=0.02)  # the east half is outside, not masked
    record = json.loads((tmp_path / "out" / "inventory.json").read_text())
    assert record["aoi"].startswith("bbox ")
    whole = build_inventory(post, tmp_path / "whole")
    assert whole.count == 2 and whole.record["aoi"].startswith("none given: the area is the post-event map's valid")
    assert whole.statistics["valid_area_km2"] == pytest.approx(SIDE * SIDE * 100 / 1e6, rel=1e-3)


def test_inventory_command_takes_the_aoi_as_w_s_e_n(tmp_path, capsys):
    from translandseg_hf.cli import main

    post = write_date(tmp_path / "post")
    west_half = shapely.box(ORIGIN[0], ORIGIN[1] - SIDE * PIXEL, ORIGIN[0] + 10 * PIXEL, ORIGIN[1])  # NW only
    (lon0, lon1), (lat0, lat1) = transform_points(UTM_48N, "EPSG:4326", [west_half.bounds[0], west_half.bounds[2]],
                                                  [west_half.bounds[1], west_half.bounds[3]])
    bbox = f"{lon0!r},{lat0!r},{lon1!r},{lat1!r}"
    assert main(["inventory", "--predictions", str(post.probability.parent), "--aoi", bbox,
                 "--output", str(tmp_path / "out")]) == 0
    assert "(1 new landslides" in capsys.readouterr().out
    record = json.loads((tmp_path / "out" / "inventory.json").read_text())
    assert record["aoi"].startswith("bbox ")


def test_map_event_leaves_the_callers_options_as_they_were(tmp_path, monkeypatch):
    import translandseg_hf.inference as inference
    from translandseg_hf.inference import PredictionOptions
    from translandseg_hf.inventory.event import map_event

    def stop(*_, **__):
        raise RuntimeError("stopped before loading")

    monkeypatch.setattr(inference, "load_model", stop)
    options = PredictionOptions()
    with pytest.raises(RuntimeError, match="stopped before loading"):
        map_event("model", (105.0, 27.0, 105.01, 27.01), "2024-08-15", tmp_path / "event", tta=True,
                  overwrite=True, options=options)
    assert (options.tta, options.overwrite) == (PredictionOptions().tta, PredictionOptions().overwrite)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"file: a file, not a folder; give --output a folder for the event"):
        map_event("model", (105.0, 27.0, 105.01, 27.01), "2024-08-15", tmp_path / "file")
