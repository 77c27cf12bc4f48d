"""The inventory of an event from mapped dates (`translandseg_hf.inventory.build`, `translandseg inventory`), on a
hand-made event whose truth is known pixel by pixel.

The grid: 40 x 40 px at 10 m in UTM 48N. After the event (probability, mask, uncertainty, composite of B2, B3, B4, B8
as sensor value / Landslide4Sense divisor, source.tif from two scenes split at column 20):
  A  rows 5-9, cols 5-12   new scar (vegetated before), probability 0.9, uncertainty 0.05: high
  D  rows 5-8, cols 30-35  under a pre-event cloud (no pre-event value), probability 0.7, uncertainty 0.15: medium
  B  rows 20-25, cols 20-23  new scar, probability 0.65, uncertainty 0.3: low
  C  rows 30-34, cols 5-9  bare before and after, probability 0.9 both times: not new
Before the event the maps are on another grid (5 columns further west, 3 rows further north, 50 x 50 px).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import rasterio
from helpers.rasters import UTM_48N, write_raster
from rasterio.transform import from_origin

from translandseg_hf.cli import main
from translandseg_hf.geo.sentinel2.bands import LANDSLIDE4SENSE_DIVISORS, LANDSLIDE4SENSE_CHANNELS
from translandseg_hf.geo.sentinel2.stack import STACK_TAG
from translandseg_hf.inventory.attributes import FIELDS, confidence
from translandseg_hf.inventory.build import build_inventory
from translandseg_hf.inventory.change import ChangeThresholds, new_landslide_pixels, rdndvi
from translandseg_hf.inventory.mapped import EventInfo, MappedDate
from translandseg_hf.inventory.provenance import model_revision

SIDE, PIXEL = 40, 10.0
POST_ORIGIN = (500_000.0, 3_000_000.0)
PRE_ORIGIN = (POST_ORIGIN[0] - 5 * PIXEL, POST_ORIGIN[1] + 3 * PIXEL)  # 5 columns west, 3 rows north
PRE_SHIFT = (3, 5)  # a post-grid pixel (r, c) is pre-grid pixel (r + 3, c + 5)
PATCHES = {"A": (slice(5, 10), slice(5, 13)), "D": (slice(5, 9), slice(30, 36)),
           "B": (slice(20, 26), slice(20, 24)), "C": (slice(30, 35), slice(5, 10))}
POST_PROBABILITY = {"A": 0.9, "D": 0.7, "B": 0.65, "C": 0.9}
UNCERTAINTY = {"A": 0.05, "D": 0.15, "B": 0.3, "C": 0.05}
CHANNELS = ("B2", "B3", "B4", "B8")
DIVISORS = {band: LANDSLIDE4SENSE_DIVISORS[LANDSLIDE4SENSE_CHANNELS.index(band)] for band in CHANNELS}
VEGETATION = {"B2": 400.0, "B3": 600.0, "B4": 500.0, "B8": 3000.0}  # sensor values: NDVI 2500 / 3500
BARE = {"B2": 1200.0, "B3": 1400.0, "B4": 1500.0, "B8": 1800.0}  # NDVI 300 / 3300
SCENES = {"post": [("S2A_post_west", "2024-08-20T03:30:21Z", "sentinel-2a"),
                   ("S2B_post_east", "2024-08-25T03:30:19Z", "sentinel-2b")],
          "pre": [("S2A_pre", "2024-05-02T03:30:11Z", "sentinel-2a")]}


def post_grid_array(value_of: dict, background: float) -> np.ndarray:
    values = np.full((SIDE, SIDE), background, np.float32)
    for name, value in value_of.items():
        values[PATCHES[name]] = value
    return values


def on_pre_grid(post_values: np.ndarray, fill: float) -> np.ndarray:
    """The post grid's values placed on the pre grid (50 x 50), `fill` around them."""
    pre = np.full((50, 50), fill, post_values.dtype)
    pre[PRE_SHIFT[0]:PRE_SHIFT[0] + SIDE, PRE_SHIFT[1]:PRE_SHIFT[1] + SIDE] = post_values
    return pre


def grid(origin) -> dict:
    return dict(crs=UTM_48N, transform=from_origin(*origin, PIXEL, PIXEL))


def write_composite(folder, bare: set, cloud: set, origin, to_pre: bool, scenes, source: np.ndarray):
    """composite.tif (a stack: B2, B3, B4, B8 as sensor value / divisor), source.tif and imagery.json."""
    folder.mkdir(parents=True)
    bands = []
    for band in CHANNELS:
        values = post_grid_array({name: BARE[band] for name in bare}, VEGETATION[band]) / DIVISORS[band]
        for name in cloud:
            values[PATCHES[name]] = np.nan
        bands.append(on_pre_grid(values, VEGETATION[band] / DIVISORS[band]) if to_pre else values)
    write_raster(folder / "composite.tif", np.stack(bands).astype(np.float32), nodata=float("nan"), **grid(origin))
    with rasterio.open(folder / "composite.tif", "r+") as dataset:
        dataset.update_tags(**{STACK_TAG: "sensor values / divisor"})
        for index, band in enumerate(CHANNELS, start=1):
            dataset.set_band_description(index, band)
    write_raster(folder / "source.tif", source, nodata=65535, **grid(origin))
    entries = [{"index": i, "id": scene_id, "datetime": when, "platform": platform, "used": True}
               for i, (scene_id, when, platform) in enumerate(scenes)]
    (folder / "imagery.json").write_text(json.dumps({"scenes": entries, "covered_share": 1.0}))


def write_predictions(folder, probability: np.ndarray, origin, uncertainty=None):
    folder.mkdir(parents=True)
    write_raster(folder / "composite_probability.tif", probability, nodata=float("nan"), **grid(origin))
    mask = np.where(np.isfinite(probability), probability >= 0.5, 255).astype(np.uint8)
    write_raster(folder / "composite_mask.tif", mask, nodata=255, **grid(origin))
    if uncertainty is not None:
        write_raster(folder / "composite_uncertainty.tif", uncertainty, nodata=float("nan"), **grid(origin))


def write_dem(path):
    """A smooth surface on the post grid whose slope changes from pixel to pixel: 200 m plus a bowl and a ramp."""
    rows, cols = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    elevation = 200 + 0.4 * (cols - 12) ** 2 + 3.0 * rows + 0.1 * rows * cols
    return write_raster(path, elevation.astype(np.float32), nodata=-9999.0, **grid(POST_ORIGIN))


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    """The event's folders: post/ and pre/ (predictions/ and imagery/ each), dem.tif and a model folder."""
    root = tmp_path_factory.mktemp("event")
    post_source = np.where(np.arange(SIDE)[None, :] < 20, 0, 1).repeat(SIDE, 0).astype(np.uint16)
    write_composite(root / "post" / "imagery", {"A", "B", "C", "D"}, set(), POST_ORIGIN, False, SCENES["post"],
                    post_source)
    pre_source = np.zeros((SIDE, SIDE), np.uint16)
    pre_source[PATCHES["D"]] = 65535
    write_composite(root / "pre" / "imagery", {"C"}, {"D"}, PRE_ORIGIN, True, SCENES["pre"],
                    on_pre_grid(pre_source, 0))
    write_predictions(root / "post" / "predictions", post_grid_array(POST_PROBABILITY, 0.05), POST_ORIGIN,
                      post_grid_array(UNCERTAINTY, 0.02))
    pre_probability = post_grid_array({"C": 0.9, "D": np.nan}, 0.05)
    write_predictions(root / "pre" / "predictions", on_pre_grid(pre_probability, 0.05), PRE_ORIGIN)
    write_dem(root / "dem.tif")
    write_model(root / "model", ["B2", "B3", "B4", "B8"])
    write_model(root / "rgb-model", ["B4", "B3", "B2"])
    return root


def write_model(folder, sensor_bands):
    """A model folder as far as an inventory reads one: its contract and a weights file (hashed, never loaded)."""
    folder.mkdir()
    extra = len(sensor_bands) - 3
    contract = {"bands": list(range(1, len(sensor_bands) + 1)), "scale": "divisor", "divisor": 10.0,
                "sensor": "Sentinel-2 MSI", "product_level": "L1C", "sensor_bands": sensor_bands,
                "sensor_divisors": [DIVISORS[band] for band in sensor_bands], "band_mean": [0.3] * extra,
                "band_std": [0.1] * extra, "ground_resolution": 10.0, "tile_size": 128, "input_size": 64}
    (folder / "preprocessor_config.json").write_text(json.dumps(contract))
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 4)


def dates(root):
    return (MappedDate.from_folder(root / "post" / "predictions"), MappedDate.from_folder(root / "pre" / "predictions"))


@pytest.fixture(scope="module")
def inventory(event, tmp_path_factory):
    post, pre = dates(event)
    return build_inventory(post, tmp_path_factory.mktemp("inventory"), pre=pre, dem=event / "dem.tif",
                           model=event / "model", event=EventInfo("Test storm", "2024-08-15", "rainfall"))


def test_new_scars_are_kept_a_patch_bare_before_is_dropped_and_one_without_pre_event_data_is_flagged(inventory):
    assert inventory.change_method == "both"
    assert inventory.count == 3
    areas = {name: (r.stop - r.start) * (c.stop - c.start) * PIXEL ** 2 for name, (r, c) in PATCHES.items()}
    perimeters = {name: 2 * ((r.stop - r.start) + (c.stop - c.start)) * PIXEL for name, (r, c) in PATCHES.items()}
    # ids run from the top-left: A (row 5, col 5), D (row 5, col 30), B (row 20). Areas are geodesic: on UTM's
    # central meridian the map shrinks distances by k0 = 0.9996, so the ellipsoid's are 0.04% (areas 0.08%) larger
    for row, name in zip(inventory.rows, "ADB"):
        assert row["area_m2"] == pytest.approx(areas[name] / 0.9996 ** 2, rel=1e-5)
        assert row["perimeter_m"] == pytest.approx(perimeters[name] / 0.9996, rel=1e-5)
        assert row["probability_mean"] == pytest.approx(POST_PROBABILITY[name], abs=1e-6)
        assert row["pre_event_valid"] is (name != "D")
    assert [row["id"] for row in inventory.rows] == [1, 2, 3]
    assert [row["confidence"] for row in inventory.rows] == ["high", "medium", "low"]


def test_centroids_are_the_squares_centres_in_wgs84(inventory):
    from rasterio.warp import transform

    for row, name in zip(inventory.rows, "ADB"):
        r, c = PATCHES[name]
        x = POST_ORIGIN[0] + (c.start + c.stop) / 2 * PIXEL
        y = POST_ORIGIN[1] - (r.start + r.stop) / 2 * PIXEL
        lon, lat = transform(UTM_48N, "EPSG:4326", [x], [y])
        assert (row["centroid_lon"], row["centroid_lat"]) == pytest.approx((lon[0], lat[0]), abs=1e-9)


def sensor_ndvi(values: dict) -> float:
    return (values["B8"] - values["B4"]) / (values["B8"] + values["B4"])


def test_ndvi_is_computed_on_sensor_values_before_and_after(inventory):
    first, cloudy, _ = inventory.rows
    assert first["ndvi_pre"] == pytest.approx(sensor_ndvi(VEGETATION), rel=1e-5)
    assert first["ndvi_post"] == pytest.approx(sensor_ndvi(BARE), rel=1e-5)
    assert cloudy["ndvi_pre"] is None and cloudy["ndvi_post"] == pytest.approx(sensor_ndvi(BARE), rel=1e-5)


def test_dates_and_scene_ids_come_from_the_scene_under_most_of_each_polygon(inventory):
    west, east = SCENES["post"]
    expected = {"A": (west, SCENES["pre"][0]), "D": (east, (None, None, None)), "B": (east, SCENES["pre"][0])}
    for row, name in zip(inventory.rows, "ADB"):
        post, pre = expected[name]
        assert (row["post_scene_id"], row["post_image_date"], row["sensor"]) == (post[0], post[1], post[2])
        assert (row["pre_scene_id"], row["pre_image_date"]) == (pre[0], pre[1])
        assert (row["event_name"], row["event_date"], row["trigger"]) == ("Test storm", "2024-08-15", "rainfall")


def test_provenance_names_the_model_and_hashes_its_weights_and_contract(inventory, event, tmp_path):
    row = inventory.rows[0]
    assert row["model"] == "model" and row["change_method"] == "both"
    assert row["model_revision"] == model_revision(event / "model") and len(row["model_revision"]) == 12
    copy = shutil.copytree(event / "model", tmp_path / "elsewhere")
    assert model_revision(copy) == row["model_revision"]  # where the folder is does not count
    (copy / "preprocessor_config.json").write_text((copy / "preprocessor_config.json").read_text() + " ")
    assert model_revision(copy) != row["model_revision"]  # the contract does
    record = json.loads(inventory.paths["inventory.json"].read_text())
    assert record["thresholds"] == ChangeThresholds().record() and record["count"] == 3
    assert record["model"]["model_revision"] == row["model_revision"]
    assert record["started"] <= record["finished"]


def gdaldem_slope(dem, tmp_path) -> np.ndarray:
    if shutil.which("gdaldem") is None:
        pytest.skip("gdaldem (Debian's gdal-bin) is not installed")
    out = tmp_path / "slope.tif"
    subprocess.run(["gdaldem", "slope", "-compute_edges", str(dem), str(out)], check=True, capture_output=True,
                   timeout=60)
    with rasterio.open(out) as dataset:
        return dataset.read(1)


def test_slope_and_elevation_match_gdaldem_on_the_same_dem(inventory, event, tmp_path):
    slope = gdaldem_slope(event / "dem.tif", tmp_path)
    with rasterio.open(event / "dem.tif") as dataset:
        elevation = dataset.read(1)
    for row, name in zip(inventory.rows, "ADB"):
        patch = PATCHES[name]
        assert row["slope_mean_deg"] == pytest.approx(float(slope[patch].mean()), abs=1e-4)
        assert row["slope_max_deg"] == pytest.approx(float(slope[patch].max()), abs=1e-4)
        assert (row["elev_min_m"], row["elev_max_m"]) == pytest.approx(
            (float(elevation[patch].min()), float(elevation[patch].max())), abs=1e-3)


def read_layer(path, layer) -> tuple[dict, np.ndarray]:
    """A layer's fields (name -> list of values, in the file's order) and its shapely geometries."""
    import shapely
    from pyogrio.raw import read

    meta, _, geometry, columns = read(path, layer=layer)
    return dict(zip(meta["fields"], (column.tolist() for column in columns))), shapely.from_wkb(geometry)


def polygons_of(path):
    return read_layer(path, "landslides")[1]


def test_the_geopackage_holds_the_rows_in_both_layers(inventory):
    import shapely
    from pyogrio import list_layers

    path = inventory.paths["inventory.gpkg"]
    assert {tuple(layer) for layer in list_layers(path)} == {("landslides", "MultiPolygon"),
                                                             ("landslide_points", "Point"),
                                                             ("unmapped", "MultiPolygon")}
    # the post-event map has a value everywhere; before the event a cloud covered patch D (24 px)
    unmapped, outlines = read_layer(path, "unmapped")
    assert unmapped["reason"] == ["no pre-event value"] and unmapped["share_of_aoi"] == [24 / SIDE ** 2]
    assert shapely.equals(outlines[0], polygons_of(path)[1])
    for layer in ("landslides", "landslide_points"):
        fields, geometry = read_layer(path, layer)
        assert list(fields) == list(FIELDS)
        assert fields["id"] == [1, 2, 3]
        assert fields["area_m2"] == [row["area_m2"] for row in inventory.rows]
        assert fields["pre_event_valid"] == [True, False, True]
        assert fields["post_scene_id"] == [row["post_scene_id"] for row in inventory.rows]
        assert fields["ndvi_pre"][1] != fields["ndvi_pre"][1]  # null reads back as NaN
    polygons, points = polygons_of(path), read_layer(path, "landslide_points")[1]
    # UTM's planar areas agree with the geodesic area_m2 to within 0.1% (k0 = 0.9996)
    assert shapely.area(polygons).tolist() == pytest.approx([row["area_m2"] for row in inventory.rows], rel=1e-3)
    assert shapely.equals(points, shapely.centroid(polygons)).all()


def test_ogrinfo_lists_both_layers_and_their_fields(inventory):
    if shutil.which("ogrinfo") is None:
        pytest.skip("ogrinfo (Debian's gdal-bin) is not installed")
    path = inventory.paths["inventory.gpkg"]
    for layer in ("landslides", "landslide_points"):
        done = subprocess.run(["ogrinfo", "-so", str(path), layer], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        listed = [line.split(":")[0] for line in done.stdout.splitlines()
                  if line.split(":")[0] in FIELDS and ": " in line and "(" in line]
        assert listed == list(FIELDS)
        assert "Feature Count: 3" in done.stdout


def test_statistics_and_report_are_written(inventory):
    statistics = json.loads(inventory.paths["statistics.json"].read_text())
    assert statistics["count"] == 3
    assert statistics["total_area_m2"] == pytest.approx(sum(row["area_m2"] for row in inventory.rows))
    assert statistics["no_pre_event_share"] == pytest.approx(24 / SIDE ** 2)  # patch D of the valid grid
    assert "<html" in inventory.paths["report.html"].read_text().lower()


CONFIDENCE_CASES = [  # probability_mean, uncertainty_mean (None: no --tta), class
    (0.8, None, "high"), (0.8, 0.1, "high"), (0.8, 0.11, "medium"), (0.79, None, "medium"), (0.6, 0.2, "medium"),
    (0.6, 0.21, "low"), (0.59, None, "low"), (0.95, 0.5, "low"),
]


@pytest.mark.parametrize("probability, uncertainty, expected", CONFIDENCE_CASES)
def test_confidence_classes(probability, uncertainty, expected):
    assert confidence(probability, uncertainty) == expected


def test_change_rules_pixel_by_pixel():
    """One pixel per case: mapped after, probability before, NDVI before and after. The last three: `both` with one
    rule invalid follows the valid one, "no change" included (pixels 6 and 7), and with neither valid keeps the
    pixel, flagged (pixel 8)."""
    post_prob = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.2, 0.9, 0.9, 0.9], np.float32)
    pre_prob = np.array([0.1, 0.8, np.nan, 0.1, 0.8, 0.1, np.nan, 0.8, np.nan], np.float32)
    ndvi_pre = np.array([0.7, 0.1, 0.7, 0.7, 0.7, 0.7, 0.7, np.nan, np.nan], np.float32)
    ndvi_post = np.array([0.1, 0.1, 0.1, 0.65, 0.1, 0.1, 0.65, 0.1, 0.1], np.float32)
    mask = post_prob >= 0.5
    expected = {"probability": [1, 0, 1, 1, 0, 0, 1, 0, 1], "ndvi": [1, 0, 1, 0, 1, 0, 0, 1, 1],
                "both": [1, 0, 1, 0, 0, 0, 0, 0, 1], "none": [1, 1, 1, 1, 1, 0, 1, 1, 1]}
    pre_valid = {"probability": [1, 1, 0, 1, 1, 1, 0, 1, 0], "ndvi": [1, 1, 1, 1, 1, 1, 1, 0, 0],
                 "both": [1, 1, 1, 1, 1, 1, 1, 1, 0], "none": [1, 1, 0, 1, 1, 1, 0, 1, 0]}
    for method, new in expected.items():
        found, valid = new_landslide_pixels(mask, post_prob, pre_prob, ndvi_pre, ndvi_post, method)
        assert found.tolist() == [bool(v) for v in new], method
        assert valid.tolist() == [bool(v) for v in pre_valid[method]], method
    assert rdndvi(np.float32(0.7), np.float32(0.2)) == pytest.approx((0.2 - 0.7) / np.sqrt(0.9) * 100, rel=1e-6)


def test_a_predictions_folder_without_a_probability_map_is_refused(tmp_path):
    (tmp_path / "scene_mask.tif").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"no \*_probability\.tif in it"):
        MappedDate.from_folder(tmp_path)


def test_a_predictions_folder_with_two_probability_maps_is_refused(tmp_path):
    for stem in ("a", "b"):
        (tmp_path / f"{stem}_probability.tif").write_bytes(b"")
    with pytest.raises(ValueError, match=r"2 probability maps \(a_probability\.tif, b_probability\.tif\)"):
        MappedDate.from_folder(tmp_path)


def test_pre_event_maps_that_miss_the_post_event_grid_are_refused(event, tmp_path):
    far = tmp_path / "far"
    write_predictions(far, np.full((SIDE, SIDE), 0.1, np.float32), (600_000.0, 3_100_000.0))
    post, _ = dates(event)
    with pytest.raises(ValueError, match="the pre-event probability does not overlap the post-event grid"):
        build_inventory(post, tmp_path / "out", pre=MappedDate.from_folder(far), change="probability")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, model, message", [
    ("magic", "model", r"--change 'magic': choose one of auto, probability, ndvi, both, none"),
    ("ndvi", "rgb-model", r"model's channels \(B4, B3, B2\) lack B8 \(near-infrared\)"),
    ("both", "rgb-model", r"model's channels \(B4, B3, B2\) lack B8 \(near-infrared\)"),
    ("ndvi", None, r"composite\.tif holds sensor value / divisor, with each band's own divisor; give the model"),
])
def test_change_methods_the_inputs_cannot_support_are_refused(event, tmp_path, change, model, message):
    post, pre = dates(event)
    with pytest.raises(ValueError, match=message):
        build_inventory(post, tmp_path / "out", pre=pre, change=change, model=model and event / model)
    assert not (tmp_path / "out").exists()


def test_auto_is_probability_for_a_model_without_near_infrared(event, tmp_path):
    post, pre = dates(event)
    made = build_inventory(post, tmp_path / "out", pre=pre, model=event / "rgb-model")
    assert made.change_method == "probability"
    # the composite's B8 is sensor value / a divisor this model's contract does not state: no NDVI is guessed
    assert [(row["ndvi_pre"], row["ndvi_post"]) for row in made.rows] == [(None, None)] * 3


def test_an_existing_inventory_is_kept_without_overwrite(event, inventory):
    post, pre = dates(event)
    before = inventory.paths["inventory.gpkg"].read_bytes()
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        build_inventory(post, inventory.paths["inventory.gpkg"].parent, pre=pre)
    assert inventory.paths["inventory.gpkg"].read_bytes() == before


def test_user_given_dates_fill_in_where_there_is_no_imagery(event, tmp_path):
    post = MappedDate.from_folder(event / "post" / "predictions", date="2024-08-21")
    pre = MappedDate.from_folder(event / "pre" / "predictions", date="2024-05-01")
    post, pre = (MappedDate(d.probability, d.uncertainty, None, None, d.date) for d in (post, pre))
    made = build_inventory(post, tmp_path / "out", pre=pre)
    assert made.change_method == "probability" and made.count == 3
    assert {(row["post_image_date"], row["pre_image_date"], row["post_scene_id"]) for row in made.rows} == {
        ("2024-08-21", "2024-05-01", None)}
    assert [row["ndvi_post"] for row in made.rows] == [None] * 3
    assert [row["slope_mean_deg"] for row in made.rows] == [None] * 3


def test_cli_inventory_end_to_end(event, tmp_path, capsys):
    output = tmp_path / "cli"
    status = main(["inventory", "--predictions", str(event / "post" / "predictions"),
                   "--pre_predictions", str(event / "pre" / "predictions"), "--model", str(event / "model"),
                   "--dem", str(event / "dem.tif"), "--event_name", "Test storm", "--event_date", "2024-08-15",
                   "--trigger", "rainfall", "--output", str(output)])
    assert status == 0
    out = capsys.readouterr().out
    assert "3 new landslides" in out and "change method both" in out
    fields, _ = read_layer(output / "inventory.gpkg", "landslides")
    assert fields["confidence"] == ["high", "medium", "low"]
    assert fields["trigger"] == ["rainfall"] * 3
    assert sorted(path.name for path in output.iterdir()) == ["inventory.gpkg", "inventory.json", "report.html",
                                                              "statistics.json"]


def test_cli_inventory_refuses_an_unknown_change_method(event, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["inventory", "--predictions", str(event / "post" / "predictions"), "--change", "magic",
              "--output", str(tmp_path / "x")])
    assert "invalid choice: 'magic'" in capsys.readouterr().err


def test_cli_inventory_refuses_a_folder_without_maps_with_one_error_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    status = main(["inventory", "--predictions", str(tmp_path / "empty"), "--output", str(tmp_path / "x")])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and r"no *_probability.tif in it" in err
    assert not (tmp_path / "x").exists()


def test_the_suffixes_the_inventory_reads_are_the_ones_predict_writes():
    from translandseg_hf.inference.scene import OUTPUT_SUFFIXES, TTA_OUTPUTS
    from translandseg_hf.inventory.mapped import MASK, PROBABILITY, UNCERTAINTY

    assert (PROBABILITY, MASK, UNCERTAINTY) == (OUTPUT_SUFFIXES["probability"], OUTPUT_SUFFIXES["mask"],
                                                 TTA_OUTPUTS["uncertainty"])
