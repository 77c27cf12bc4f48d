"""What a review of the event inventory found (`translandseg_hf.inventory`): the default minimum counts pixels (a
pixel's area varies across a grid), thresholds and areas that cannot be meant are refused naming their option, event
windows outside the calendar are refused, an imagery.json of local products (null datetimes) is read, and an ONNX
model's external-data files are part of its revision.

Maps: a lattice of 2 x 2 px landslides (every 5 px) and a row of 1 x 3 px ones, on grids whose pixels differ in area
from one side to the other (UTM 45N across 200 km, 0.01 degree pixels across 2 degrees of latitude)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.rasters import write_raster
from rasterio.transform import from_origin

from translandseg_hf.cli import main
from translandseg_hf.geo.inventory.areas import pixel_areas_m2
from translandseg_hf.inventory.build import build_inventory
from translandseg_hf.inventory.change import ChangeThresholds
from translandseg_hf.inventory.event import event_windows
from translandseg_hf.inventory.mapped import EventInfo, MappedDate

SIDE, STEP = 200, 5  # px; a 2 x 2 landslide at every STEP-th row and column of the upper part
SQUARE_ROWS = range(0, SIDE - 20, STEP)
GRIDS = {  # name -> (CRS, transform): pixel areas vary over the grid by more than a 2 x 2 landslide's margin
    "UTM 45N": ("EPSG:32645", from_origin(300_000.0, 3_200_000.0, 1000.0, 1000.0)),
    "EPSG:4326": ("EPSG:4326", from_origin(85.0, 30.0, 0.01, 0.01)),
}


def lattice() -> tuple[np.ndarray, int, int]:
    """(H, W) probability: 2 x 2 squares at 0.9 on a lattice, 1 x 3 strips in the bottom rows; their counts."""
    values = np.full((SIDE, SIDE), 0.05, np.float32)
    squares = 0
    for row in SQUARE_ROWS:
        for col in range(0, SIDE, STEP):
            values[row:row + 2, col:col + 2] = 0.9
            squares += 1
    strips = 0
    for col in range(0, SIDE - 3, STEP):
        values[SIDE - 5, col:col + 3] = 0.9
        strips += 1
    return values, squares, strips


def write_maps(folder, values, crs, transform) -> MappedDate:
    folder.mkdir(parents=True)
    write_raster(folder / "x_probability.tif", values, nodata=float("nan"), crs=crs, transform=transform)
    write_raster(folder / "x_mask.tif", (values >= 0.5).astype(np.uint8), nodata=255, crs=crs, transform=transform)
    return MappedDate.from_folder(folder)


@pytest.mark.parametrize("name", GRIDS)
def test_the_default_minimum_keeps_every_4_pixel_landslide_and_drops_3_pixel_ones(tmp_path, name):
    crs, transform = GRIDS[name]
    values, squares, _ = lattice()
    areas = pixel_areas_m2(crs, transform, (SIDE, SIDE))
    assert (areas < areas.mean()).mean() > 0.3  # a mean pixel's 4 is more than many 2 x 2 landslides
    made = build_inventory(write_maps(tmp_path / "maps", values, crs, transform), tmp_path / "out")
    assert made.count == squares
    record = json.loads(made.paths["inventory.json"].read_text())["arguments"]
    assert (record["min_area_m2"], record["min_pixels"]) == (None, 4)


def test_a_given_min_area_is_an_area_in_m2(tmp_path):
    crs, transform = GRIDS["UTM 45N"]
    values, squares, strips = lattice()
    maps = write_maps(tmp_path / "maps", values, crs, transform)
    made = build_inventory(maps, tmp_path / "all", min_area_m2=0)
    assert made.count == squares + strips
    made = build_inventory(maps, tmp_path / "big", min_area_m2=5e6)  # more than 4 km2 pixels: none is that large
    assert made.count == 0
    record = json.loads(made.paths["inventory.json"].read_text())["arguments"]
    assert (record["min_area_m2"], record["min_pixels"]) == (5e6, None)


@pytest.mark.parametrize("given, message", [
    ({"probability_rise": 30}, r"--probability_rise 30: give the rise of the 0-1 probability .* in \(0, 1\]"),
    ({"probability_rise": 0.0}, r"--probability_rise 0\.0: give the rise"),
    ({"probability_rise": float("nan")}, r"--probability_rise nan: give the rise"),
    ({"rdndvi": 20.0}, r"--rdndvi 20\.0: give HazMapper's relative difference NDVI \(percent\) .* a drop below 0"),
    ({"rdndvi": 0.0}, r"--rdndvi 0\.0: give HazMapper's"),
    ({"rdndvi": float("-inf")}, r"--rdndvi -inf: give HazMapper's"),
])
def test_thresholds_that_cannot_be_meant_are_refused_naming_the_option(given, message):
    with pytest.raises(ValueError, match=message):
        ChangeThresholds(**given)


@pytest.mark.parametrize("min_area, message", [
    (float("nan"), r"--min_area nan: give the smallest landslide's area in m2, a finite number >= 0"),
    (-1.0, r"--min_area -1\.0: give the smallest landslide's area in m2"),
    (float("inf"), r"--min_area inf: give"),
])
def test_a_min_area_that_is_not_one_is_refused_before_anything_is_written(tmp_path, min_area, message):
    crs, transform = GRIDS["UTM 45N"]
    maps = write_maps(tmp_path / "maps", lattice()[0], crs, transform)
    with pytest.raises(ValueError, match=message):
        build_inventory(maps, tmp_path / "out", min_area_m2=min_area)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option, value, said", [
    ("--probability_rise", "30", "error: --probability_rise 30.0: give the rise of the 0-1 probability"),
    ("--rdndvi", "20", "error: --rdndvi 20.0: give HazMapper's relative difference NDVI"),
    ("--rdndvi", "nan", "error: --rdndvi nan: give HazMapper's"),
    ("--min_area", "-4", "error: --min_area -4.0: give the smallest landslide's area in m2"),
])
def test_cli_inventory_refuses_them_with_one_error_line(tmp_path, capsys, option, value, said):
    crs, transform = GRIDS["UTM 45N"]
    write_maps(tmp_path / "maps", lattice()[0], crs, transform)
    status = main(["inventory", "--predictions", str(tmp_path / "maps"), option, value, "--output",
                   str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith(said) and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("date, pre_days, post_days, message", [
    ("2023-04-01", 10**10, 60, r"--pre_days 10000000000: give a whole number of days, 1 to 3650"),
    ("2023-04-01", 120, 3651, r"--post_days 3651: give a whole number of days, 1 to 3650"),
    ("0001-01-05", 120, 60, r"event date 0001-01-05: its windows \(120 days before, 60 after\) run outside the "
                            r"calendar's years 1 to 9999"),
    ("9999-12-20", 120, 60, r"event date 9999-12-20: its windows"),
])
def test_event_windows_outside_the_calendar_are_refused(date, pre_days, post_days, message):
    with pytest.raises(ValueError, match=message):
        event_windows(date, pre_days, post_days)


def test_the_longest_windows_allowed_are_searched():
    windows = event_windows("2023-04-01", 3650, 3650)
    assert (windows["post"][1] - windows["pre"][0]).days == 2 * 3650


def write_imagery(folder, values, crs, transform, scenes) -> None:
    """composite.tif, source.tif (scene 0 everywhere) and imagery.json as `composite` of local products writes it."""
    folder.mkdir(parents=True)
    write_raster(folder / "composite.tif", np.stack([values] * 3), nodata=float("nan"), crs=crs, transform=transform)
    write_raster(folder / "source.tif", np.zeros(values.shape, np.uint16), nodata=65535, crs=crs, transform=transform)
    (folder / "imagery.json").write_text(json.dumps({"scenes": scenes}))


LOCAL_SCENE = {"index": 0, "id": "S2B_MSIL2A_20240821.SAFE", "datetime": None, "platform": None, "cloud_cover": None}


@pytest.mark.parametrize("given_date, expected", [("2024-08-21", "2024-08-21"), (None, None)])
def test_an_imagery_folder_of_local_products_with_null_datetimes_is_read(tmp_path, given_date, expected):
    crs, transform = GRIDS["UTM 45N"]
    values = lattice()[0]
    write_maps(tmp_path / "maps", values, crs, transform)
    write_imagery(tmp_path / "imagery", values, crs, transform, [LOCAL_SCENE])
    post = MappedDate.from_folder(tmp_path / "maps", tmp_path / "imagery", date=given_date)
    made = build_inventory(post, tmp_path / "out", event=EventInfo(date="2024-08-20"))
    assert {row["post_image_date"] for row in made.rows} == {expected}
    assert {row["post_scene_id"] for row in made.rows} == {LOCAL_SCENE["id"]}
    assert "S2B_MSIL2A_20240821.SAFE" in made.paths["report.html"].read_text()


def test_a_given_date_still_checks_the_order_where_scenes_have_none(tmp_path):
    crs, transform = GRIDS["UTM 45N"]
    values = lattice()[0]
    write_maps(tmp_path / "maps", values, crs, transform)
    write_imagery(tmp_path / "imagery", values, crs, transform, [LOCAL_SCENE])
    post = MappedDate.from_folder(tmp_path / "maps", tmp_path / "imagery", date="2024-08-01")
    with pytest.raises(ValueError, match=r"the post-event date given is 2024-08-01, before the event date 2024-08-20"):
        build_inventory(post, tmp_path / "out", event=EventInfo(date="2024-08-20"))


def write_onnx_folder(folder, weights: np.ndarray, location: str = "model.onnx.data") -> None:
    """model.onnx (y = x + w) with w's data in `location` beside it, as an export over 2 GB writes it, and a
    contract."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True)
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [len(weights)])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [len(weights)])],
                              [numpy_helper.from_array(weights.astype(np.float32), "w")])
    onnx.save_model(helper.make_model(graph), str(folder / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=location, size_threshold=0)
    (folder / "preprocessor_config.json").write_text('{"image_size": 8}')


def test_an_onnx_models_external_data_is_part_of_its_revision(tmp_path):
    from translandseg_hf.inventory.provenance import model_revision, onnx_external_data

    write_onnx_folder(tmp_path / "a", np.arange(64))
    write_onnx_folder(tmp_path / "b", np.arange(64) + 1)
    write_onnx_folder(tmp_path / "c", np.arange(64))
    assert (tmp_path / "a" / "model.onnx").read_bytes() == (tmp_path / "b" / "model.onnx").read_bytes()
    assert onnx_external_data(tmp_path / "a" / "model.onnx") == ["model.onnx.data"]
    assert model_revision(tmp_path / "a") != model_revision(tmp_path / "b")
    assert model_revision(tmp_path / "a") == model_revision(tmp_path / "c")
    (tmp_path / "a" / "README.md").write_text("a card beside the weights")
    assert model_revision(tmp_path / "a") == model_revision(tmp_path / "c")


def test_external_data_outside_the_model_folder_or_missing_is_refused_naming_it(tmp_path):
    from translandseg_hf.inventory.provenance import model_revision

    onnx = pytest.importorskip("onnx")
    write_onnx_folder(tmp_path / "m", np.arange(8))
    model = onnx.load(str(tmp_path / "m" / "model.onnx"), load_external_data=False)
    for location in ("../secret.bin", "/etc/passwd", "sub/../../x.bin"):
        for entry in model.graph.initializer[0].external_data:
            if entry.key == "location":
                entry.value = location
        onnx.save_model(model, str(tmp_path / "m" / "model.onnx"))
        with pytest.raises(ValueError, match=rf"model\.onnx: tensor 'w' keeps its data at '{location}', outside the "
                                             "model's folder"):
            model_revision(tmp_path / "m")
    write_onnx_folder(tmp_path / "n", np.arange(8))
    (tmp_path / "n" / "model.onnx.data").unlink()
    with pytest.raises(FileNotFoundError, match=r"tensor 'w' keeps its data in model\.onnx\.data, which is not in"):
        model_revision(tmp_path / "n")


def test_a_hub_models_revision_downloads_the_external_data_its_graph_names(tmp_path, monkeypatch):
    import huggingface_hub

    from translandseg_hf.inventory.provenance import model_folder

    asked = {}
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "preprocessor_config.json").write_text("{}")

    def snapshot_download(repo_id, **kwargs):
        asked.update(kwargs, repo_id=repo_id)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert model_folder("landslide-lab/vit-h-onnx") == snapshot
    assert asked["repo_id"] == "landslide-lab/vit-h-onnx"
    assert {"*.safetensors", "*.onnx", "*.onnx.data"} <= set(asked["allow_patterns"])  # runtime.py reads .onnx.data
