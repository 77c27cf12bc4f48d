"""The QGIS plugin's "Event inventory" (issue 40), in a real QGIS (Debian's PyQGIS, headless), the plugin installed
from its zip: its parameters and the `translandseg inventory` command lines it builds, then a run over a hand-made
predictions folder with this environment's translandseg, its landslide layers loaded into the project coloured by
confidence and its unmapped areas in grey under them, and a failing run reporting the command's own message.

The predictions: 40 x 40 px at 10 m in UTM 48N, three landslides whose probability and uncertainty put one in each
confidence class (inventory/attributes.py: high >= 0.8 with uncertainty <= 0.1, medium >= 0.6 with <= 0.2):
  H  rows 4-9, cols 4-11    probability 0.9, uncertainty 0.05: high
  M  rows 20-25, cols 5-10  probability 0.7, uncertainty 0.15: medium
  L  rows 25-33, cols 25-32 probability 0.65, uncertainty 0.3: low
and a cloud (no value: NaN) over rows 35-39, cols 0-19: the inventory's `unmapped` layer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.qgis import install_plugin, requires_qgis, run_in_qgis, start_qgis
from helpers.rasters import UTM_48N, write_raster
from pyogrio import read_info
from pyogrio.raw import read as read_layer
from rasterio.transform import from_origin

from translandseg_hf.inventory.report import CONFIDENCE_COLORS

TRANSLANDSEG = Path(sys.executable).parent / "translandseg"
SIDE = 40
PATCHES = {"high": ((slice(4, 10), slice(4, 12)), 0.9, 0.05), "medium": ((slice(20, 26), slice(5, 11)), 0.7, 0.15),
           "low": ((slice(25, 34), slice(25, 33)), 0.65, 0.3)}
CLOUD = (slice(35, 40), slice(0, 20))
PARAMETERS = ["PREDICTIONS", "PRE_PREDICTIONS", "IMAGERY", "PRE_IMAGERY", "MODEL", "DEM", "EVENT_NAME", "EVENT_DATE",
              "TRIGGER", "CHANGE", "POST_DATE", "PRE_DATE", "MIN_AREA", "LOAD", "OUTPUT"]


def write_predictions(folder: Path) -> Path:
    """STEM_probability.tif, STEM_mask.tif and STEM_uncertainty.tif as `predict --tta` writes them."""
    folder.mkdir(parents=True)
    probability, uncertainty = np.full((SIDE, SIDE), 0.05, np.float32), np.full((SIDE, SIDE), 0.02, np.float32)
    for window, mean, spread in PATCHES.values():
        probability[window], uncertainty[window] = mean, spread
    probability[CLOUD] = uncertainty[CLOUD] = np.nan
    grid = dict(crs=UTM_48N, transform=from_origin(500_000.0, 3_000_000.0, 10.0, 10.0))
    write_raster(folder / "scene_probability.tif", probability, nodata=float("nan"), **grid)
    write_raster(folder / "scene_mask.tif", (probability >= 0.5).astype(np.uint8), nodata=255, **grid)
    write_raster(folder / "scene_uncertainty.tif", uncertainty, nodata=float("nan"), **grid)
    return folder


def run_with_plugin(function, *arguments, home: Path):
    """`function(*arguments)` in headless PyQGIS, with `start_qgis` beside it to start QGIS with the plugin."""
    return run_in_qgis(function, *arguments, home=home, helpers=(start_qgis,))


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> Path:
    return install_plugin(tmp_path_factory.mktemp("written"), tmp_path_factory.mktemp("plugins"))


# --- parameters and command lines -------------------------------------------------------------------------------

def in_qgis_parameters_and_commands(plugins, dem, cases):
    """The algorithm's parameters (name: default, optional) and the arguments it builds for each case's values."""
    start_qgis(plugins)
    import json

    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException, QgsProject

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("translandseg:eventinventory")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    parameters = {p.name(): [p.defaultValue(), bool(p.flags() & p.FlagOptional)]
                  for p in algorithm.parameterDefinitions()}
    commands = []
    for values in json.loads(cases):
        values = {name: dem if value == "DEM" else value for name, value in values.items()}
        try:
            commands.append(algorithm.inventory_arguments(values, context))
        except QgsProcessingException as error:
            commands.append(str(error))
    return {"display_name": algorithm.displayName(), "parameters": parameters, "commands": commands,
            "outputs": [output.name() for output in algorithm.outputDefinitions()]}


COMMAND_CASES = [  # the values given, the arguments built ("DEM": the DEM file of the test)
    ({"PREDICTIONS": "/maps/post"},
     ["inventory", "--predictions", "/maps/post", "--trigger", "unknown", "--change", "auto"]),
    ({"PREDICTIONS": "/maps/post", "PRE_PREDICTIONS": "/maps/pre", "IMAGERY": "/img/post", "PRE_IMAGERY": "/img/pre",
      "MODEL": "someone/l4s-model", "DEM": "DEM", "EVENT_NAME": "Wayanad 2024", "EVENT_DATE": "2024-07-30",
      "TRIGGER": 1, "CHANGE": 3, "POST_DATE": "2024-08-10", "PRE_DATE": "2024-05-01", "MIN_AREA": 250},
     ["inventory", "--predictions", "/maps/post", "--pre_predictions", "/maps/pre", "--imagery", "/img/post",
      "--pre_imagery", "/img/pre", "--model", "someone/l4s-model", "--dem", "DEM", "--event_name", "Wayanad 2024",
      "--event_date", "2024-07-30", "--post_date", "2024-08-10", "--pre_date", "2024-05-01", "--trigger",
      "rainfall", "--change", "both", "--min_area", "250.0"]),
    ({"PREDICTIONS": "/maps/post", "TRIGGER": 0, "CHANGE": 4, "EVENT_NAME": "  "},
     ["inventory", "--predictions", "/maps/post", "--trigger", "earthquake", "--change", "none"]),
    ({"PREDICTIONS": " "}, "Post-event predictions: give the folder `translandseg predict` wrote."),
]


@requires_qgis
def test_parameters_and_the_command_lines_built(plugins, tmp_path):
    dem = write_raster(tmp_path / "dem.tif", np.full((8, 8), 300.0, np.float32))
    ran = run_with_plugin(in_qgis_parameters_and_commands, plugins, dem, json.dumps([c for c, _ in COMMAND_CASES]),
                      home=tmp_path / "home")
    assert ran["display_name"] == "Event inventory"
    assert list(ran["parameters"]) == PARAMETERS
    assert ran["parameters"]["TRIGGER"] == [3, False] and ran["parameters"]["CHANGE"] == [0, False]
    assert ran["parameters"]["LOAD"] == [True, False] and ran["parameters"]["PREDICTIONS"] == [None, False]
    assert [name for name, (_, optional) in ran["parameters"].items() if not optional] == [
        "PREDICTIONS", "TRIGGER", "CHANGE", "LOAD", "OUTPUT"]
    assert ran["outputs"] == ["OUTPUT", "LANDSLIDES", "LANDSLIDE_POINTS", "UNMAPPED", "LANDSLIDE_COUNT", "REPORT"]
    expected = [[str(dem) if part == "DEM" else part for part in built] if isinstance(built, list) else built
                for _, built in COMMAND_CASES]
    assert ran["commands"] == expected


# --- a run, its layers loaded -----------------------------------------------------------------------------------

def in_qgis_inventory(plugins, command, predictions, output):
    """Event inventory run twice into `output` (the second replacing the first), its layers loaded into the project
    each time as the dialog loads them; what was loaded."""
    start_qgis(plugins)
    import processing
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback, QgsProject, QgsSettings

    QgsSettings().setValue("translandseg/environment", command)
    for _ in range(2):  # a context deletes its post-processors: a second run must not reuse the first one's
        feedback, context = QgsProcessingFeedback(), QgsProcessingContext()
        context.setProject(QgsProject.instance())
        algorithm = QgsApplication.processingRegistry().createAlgorithmById("translandseg:eventinventory")
        results = processing.run(algorithm, {"PREDICTIONS": predictions, "EVENT_NAME": "test slides", "TRIGGER": 1,
                                             "OUTPUT": output}, feedback=feedback, context=context)
        handleAlgorithmResults(algorithm, context, feedback)
        del context
    loaded = []
    for layer in QgsProject.instance().mapLayers().values():
        renderer = layer.renderer()
        loaded.append({"source": layer.source(),
            "name": layer.name(), "valid": layer.isValid(), "count": layer.featureCount(),
            "crs": layer.crs().authid(), "renderer": renderer.type(),
            "field": renderer.classAttribute() if renderer.type() == "categorizedSymbol" else None,
            "categories": [[c.value(), c.symbol().color().getRgb()[:3]] for c in renderer.categories()]
            if renderer.type() == "categorizedSymbol" else [],
            "fills": {c.value(): [int(c.symbol().symbolLayer(0).brushStyle()), c.symbol().color().alpha()]
                      for c in renderer.categories()}
            if renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "reason" else {}})
    order = [node.layer().source() for node in QgsProject.instance().layerTreeRoot().findLayers()]  # top first
    return {"results": {key: str(value) for key, value in results.items()}, "loaded": loaded, "order": order}


@requires_qgis
def test_the_inventory_is_built_and_its_layers_loaded_by_confidence(plugins, tmp_path):
    predictions = write_predictions(tmp_path / "post" / "predictions")
    output = tmp_path / "inventory"
    ran = run_with_plugin(in_qgis_inventory, plugins, TRANSLANDSEG, predictions, output, home=tmp_path / "home")
    gpkg = output / "inventory.gpkg"
    assert sorted(path.name for path in output.iterdir()) == ["inventory.gpkg", "inventory.json", "report.html",
                                                              "statistics.json"]
    meta, _, _, columns = read_layer(gpkg, layer="landslides")
    table = dict(zip(meta["fields"], columns))
    assert sorted(table["confidence"]) == ["high", "low", "medium"]  # the three patches, one per class
    assert set(table["event_name"]) == {"test slides"} and set(table["trigger"]) == {"rainfall"}
    uris = {layer: f"{gpkg}|layername={layer}" for layer in ("landslides", "landslide_points", "unmapped")}
    assert ran["results"]["LANDSLIDES"] == uris["landslides"] and ran["results"]["LANDSLIDE_COUNT"] == "3"
    assert ran["results"]["REPORT"] == str(output / "report.html")
    # the second run restyles the layers the first loaded (QGIS finds a layer of the same source in the project)
    assert sorted(shown["source"] for shown in ran["loaded"]) == sorted(uris.values()), ran
    colours = {level: list(rgb) for level, rgb in CONFIDENCE_COLORS.items()}  # the report's colours
    names = {"landslides": "Landslides", "landslide_points": "Landslide points", "unmapped": "Unmapped areas"}
    for shown in ran["loaded"]:
        layer = shown["source"].split("layername=")[1]
        info = read_info(gpkg, layer=layer)
        assert shown["valid"] and shown["count"] == info["features"] == (1 if layer == "unmapped" else 3), shown
        assert shown["crs"] == info["crs"] == UTM_48N and shown["name"] == names[layer], shown
        if layer == "unmapped":
            continue
        assert shown["renderer"] == "categorizedSymbol" and shown["field"] == "confidence", shown
        assert dict(shown["categories"]) == colours, shown["categories"]
    assert len({tuple(rgb) for rgb in colours.values()}) == 3
    unmapped = next(shown for shown in ran["loaded"] if shown["source"] == uris["unmapped"])
    assert unmapped["renderer"] == "categorizedSymbol" and unmapped["field"] == "reason", unmapped
    # grey: a see-through fill where nothing was mapped, a hatch where no pre-event value says what is new
    solid, hatched = 1, 12  # Qt.SolidPattern, Qt.BDiagPattern
    assert unmapped["fills"] == {"no post-event value": [solid, 110], "no pre-event value": [hatched, 255]}
    assert all(len(set(rgb)) == 1 for _, rgb in unmapped["categories"]), unmapped["categories"]  # greys
    assert ran["order"].index(uris["unmapped"]) > ran["order"].index(uris["landslides"]), ran["order"]
    meta, _, _, columns = read_layer(gpkg, layer="unmapped")
    assert dict(zip(meta["fields"], columns))["reason"].tolist() == ["no post-event value"]


def in_qgis_failing_inventory(plugins, command, predictions, output):
    """Event inventory over a folder without a probability map: the message Processing gives."""
    start_qgis(plugins)
    import processing
    from qgis.core import QgsProcessingException, QgsSettings

    QgsSettings().setValue("translandseg/environment", command)
    try:
        processing.run("translandseg:eventinventory", {"PREDICTIONS": predictions, "OUTPUT": output})
    except QgsProcessingException as error:
        return str(error)
    return "no error"


@requires_qgis
def test_a_failing_command_reports_its_message_and_leaves_no_output(plugins, tmp_path):
    empty = tmp_path / "not-predictions"
    empty.mkdir()
    message = run_with_plugin(in_qgis_failing_inventory, plugins, TRANSLANDSEG, empty, tmp_path / "inventory",
                          home=tmp_path / "home")
    assert message == (f"translandseg exited with status 2: error: {empty}: no *_probability.tif in it; give the "
                       "folder `translandseg predict` wrote its maps to.")
    assert not (tmp_path / "inventory").exists()
