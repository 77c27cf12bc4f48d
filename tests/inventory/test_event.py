"""Issue 40 items 1-2, `translandseg event`: a synthetic event from a known truth (helpers.event: power-law scars,
pre-existing bare patches, a post-event cloud, decoy scenes one day outside each window) served by a real STAC API
and mapped by a model whose output is known (an ONNX graph of NDVI): the inventory finds the new scars, leaves out
what was bare before, marks the clouded share, and its attributes are the truth's; bad events are refused before
any work; no pre-event scene maps the event post-event only, with a warning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import shapely
from helpers.event import (EVENT_DATE, PATCHES, event_bbox, event_catalogue, event_truth, on_grid,
                           write_bare_soil_model)
from helpers.sentinel2 import GRID_10M
from rasterio.features import rasterize

from translandseg_hf import cli

pytest.importorskip("pystac_client", reason="the imagery extra (pystac-client) is not installed")
import pyogrio.raw  # noqa: E402

IOU_FLOOR = 0.95  # the model maps bare ground exactly (IoU 1 here): below this, polygons are off the pixels
PIXEL = 10.0  # metres


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    """`translandseg event` over the truth's catalogue, and the truth."""
    tmp_path = tmp_path_factory.mktemp("event")
    truth, model = event_truth(), write_bare_soil_model(tmp_path / "model")
    with event_catalogue(tmp_path, truth) as stac:
        status = cli.main(["event", "--model", str(model), "--bbox", event_bbox(), "--date", EVENT_DATE.isoformat(),
                           "--stac", stac, "--collection", "sentinel-2-l2a-test", "--name", "synthetic storm",
                           "--trigger", "rainfall", "--device", "cpu", "--output", str(tmp_path / "out")])
    return status, tmp_path / "out", truth


def landslides(output) -> list[dict]:
    """The landslides layer's rows, each with its shapely `geometry`."""
    meta, _, geometry, values = pyogrio.raw.read(output / "inventory.gpkg", layer="landslides")
    return [{**dict(zip(meta["fields"], row)), "geometry": shapely.from_wkb(wkb)}
            for wkb, row in zip(geometry, zip(*values))]


def grid_of(output):
    with rasterio.open(output / "post" / "predictions" / "composite_probability.tif") as raster:
        return raster.transform, raster.height, raster.width, raster.read(1)


def test_each_date_is_composited_from_its_own_window(event):
    status, output, truth = event
    assert status == 0
    for date in ("pre", "post"):  # the decoys, one day outside each window, are not even found
        record = json.loads((output / date / "imagery" / "imagery.json").read_text())
        assert [(scene["id"], scene["used"]) for scene in record["scenes"]] == [(truth.scene(date).id, True)]


def test_the_new_scars_are_found_and_the_old_patches_left_out(event):
    status, output, truth = event
    transform, height, width, _ = grid_of(output)
    layer = landslides(output)
    found = rasterize(((landslide["geometry"], 1) for landslide in layer), out_shape=(height, width),
                      transform=transform, fill=0, dtype="uint8").astype(bool)
    new = on_grid(truth.new & ~truth.cloud, transform, height, width)
    iou = (found & new).sum() / (found | new).sum()
    assert iou >= IOU_FLOOR, iou
    assert not (found & on_grid(truth.patches, transform, height, width)).any()
    assert len(layer) == len(truth.scars)


def test_areas_dates_and_scenes_are_the_truths(event):
    status, output, truth = event
    layer = landslides(output)
    origin = GRID_10M.c, GRID_10M.f  # the truth scene's top-left corner, in the composite's CRS (UTM 45N)
    for row, col, height, width in truth.scars:
        centre = shapely.Point(origin[0] + (col + width / 2) * PIXEL, origin[1] - (row + height / 2) * PIXEL)
        matched = [landslide for landslide in layer if landslide["geometry"].contains(centre)]
        assert len(matched) == 1, (row, col)
        landslide = matched[0]
        tolerance = (height + width) * PIXEL * PIXEL  # half a pixel along the whole outline
        assert abs(landslide["area_m2"] - height * width * PIXEL**2) <= tolerance
        assert str(landslide["post_image_date"]).startswith(truth.scene("post").datetime.date().isoformat())
        assert str(landslide["pre_image_date"]).startswith(truth.scene("pre").datetime.date().isoformat())
        assert (landslide["post_scene_id"], landslide["pre_scene_id"]) == (truth.scene("post").id,
                                                                        truth.scene("pre").id)
        assert (landslide["event_name"], landslide["event_date"], landslide["trigger"]) == (
            "synthetic storm", EVENT_DATE.isoformat(), "rainfall")
        assert bool(landslide["pre_event_valid"]) and landslide["confidence"] == "high"


def test_the_clouded_share_is_the_truths(event):
    status, output, truth = event
    transform, height, width, probability = grid_of(output)
    statistics = json.loads((output / "statistics.json").read_text())
    cloud = on_grid(truth.cloud, transform, height, width)
    assert np.isnan(probability)[cloud].all() and 0 < cloud.mean() < 1  # the truth's cloud is nodata in the map
    assert statistics["masked_share"] == pytest.approx(cloud.mean(), abs=0.01)
    assert statistics["count"] == len(truth.scars)


REFUSED = [  # (event's arguments besides --model, --bbox and --output, what the error line says)
    (["--date", "2023-02-30"], "event date '2023-02-30': give a date as YYYY-MM-DD."),
    (["--date", "2023-04-01", "--pre_days", "0"], "--pre_days 0: give a whole number of days, 1 to 3650."),
    (["--date", "2023-04-01", "--post_days", "10000000000"],
     "--post_days 10000000000: give a whole number of days, 1 to 3650."),
    (["--date", "0001-03-01", "--pre_days", "120"], "event date 0001-03-01: its windows (120 days before, 60 after) "
                                                    "run outside the calendar's years 1 to 9999"),
    (["--date", "9999-12-01"], "event date 9999-12-01: its windows (120 days before, 60 after) run outside"),
    (["--date", "2023-04-01", "--min_area", "nan"], "--min_area nan: give the smallest landslide's area in m2, a "
                                                    "finite number >= 0"),
    (["--date", "2023-04-01", "--min_area", "-5"], "--min_area -5.0: give the smallest landslide's area in m2"),
    (["--date", "2023-04-01", "--trigger", "volcano"], "argument --trigger: invalid choice: 'volcano'"),
    (["--date", "2023-04-01", "--change", "slope"], "argument --change: invalid choice: 'slope'"),
]


@pytest.mark.parametrize("arguments, said", REFUSED)
def test_a_bad_event_is_refused_before_any_work(tmp_path, capsys, arguments, said):
    status = run_refused(tmp_path, arguments)
    assert status == 2 and said in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def run_refused(tmp_path, arguments) -> int:
    """`event` against a catalogue nobody serves: a refusal must come before the search."""
    try:
        return cli.main(["event", "--model", str(tmp_path / "no-model"), "--bbox", event_bbox(), "--stac",
                         "http://127.0.0.1:9/", *arguments, "--output", str(tmp_path / "out")])
    except SystemExit as exit:  # argparse's usage errors
        return exit.code


def test_the_change_choices_are_the_inventorys():
    from translandseg_hf.inventory.change import CHANGE_METHODS
    from translandseg_hf.inventory.mapped import TRIGGERS

    assert cli.CHANGE_CHOICES == ("auto", *CHANGE_METHODS) and cli.EVENT_TRIGGERS == TRIGGERS


def test_without_a_pre_event_scene_the_event_is_mapped_post_event_only(tmp_path, capsys):
    """--pre_days 30 finds nothing (the pre-event scene is 45 days before): a warning, every landslide unverified."""
    truth, model = event_truth(), write_bare_soil_model(tmp_path / "model")
    with event_catalogue(tmp_path, truth) as stac:
        status = cli.main(["event", "--model", str(model), "--bbox", event_bbox(), "--date", EVENT_DATE.isoformat(),
                           "--pre_days", "30", "--stac", stac, "--collection", "sentinel-2-l2a-test", "--device", "cpu",
                           "--output", str(tmp_path / "out")])
    said = capsys.readouterr()
    assert status == 0 and "warning: no pre-event scene: " in said.err
    assert "(2023-03-02 to 2023-03-31). The event is mapped from the post-event scenes alone (change method none): " \
           "every landslide has pre_event_valid false" in said.err
    layer = landslides(tmp_path / "out")
    assert not (tmp_path / "out" / "pre" / "predictions").exists()
    assert len(layer) == len(truth.scars) + len(PATCHES)  # the old patches too: nothing says they are old
    assert f"({len(layer)} new landslides)" in said.out
    assert not any(landslide["pre_event_valid"] for landslide in layer)
    assert {landslide["change_method"] for landslide in layer} == {"none"}


def test_an_earlier_event_is_replaced_only_with_overwrite(tmp_path):
    from translandseg_hf.inventory.event import map_event

    (tmp_path / "out" / "post").mkdir(parents=True)
    with pytest.raises(FileExistsError, match=r"already holds an event's outputs \(post\); choose a new --output "
                                              r"folder or pass --overwrite"):
        map_event(str(tmp_path / "model"), event_bbox(), EVENT_DATE.isoformat(), tmp_path / "out")


# (--bbox, what the refusal says): the catalogue is a port nobody serves, so a search would fail with 'did not answer'
TOO_LARGE = [
    ("85,27,85.6,27.5", "AOI bbox 85,27,85.6,27.5 at 10 m: the map is 6,018 x 5,621 = 33,827,178 pixels, over the "
                        "inventory's limit of 25,000,000 pixels"),
    ("0,0,20,20", "AOI bbox 0,0,20,20: its composite grid is 223,732 x 224,977 = 50,334,554,164 px at 10 m"),
]


@pytest.mark.parametrize("bbox, said", TOO_LARGE, ids=["over-the-inventory", "over-the-composite"])
def test_an_area_too_large_is_refused_before_the_search(tmp_path, capsys, bbox, said):
    from helpers.servers import free_port

    model = write_bare_soil_model(tmp_path / "model")
    status = cli.main(["event", "--model", str(model), "--bbox", bbox, "--date", EVENT_DATE.isoformat(), "--stac",
                       f"http://127.0.0.1:{free_port()}/", "--device", "cpu", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and said in err and "did not answer" not in err
    assert not (tmp_path / "out" / "post").exists()
