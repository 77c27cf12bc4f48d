"""The QGIS plugin: its runner, staging and environment checks here, then the plugin installed from its zip into a real
QGIS (Debian's PyQGIS, headless), mapping a GeoTIFF through `processing.run` with a tiny model, canceled mid-run,
and failing with the command's own messages.

QGIS's Python cannot import this environment's packages, nor this one QGIS's: each QGIS check is a function of this
file (those named `in_qgis_*`, which import only the standard library and qgis) run as a script by /usr/bin/python3."""

from __future__ import annotations

import json
import re
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import psutil
import pytest
from rasterio.transform import from_origin

from helpers.qgis import install_plugin, requires_qgis, start_qgis
from helpers.qgis import run_in_qgis as run_in_qgis_with
from helpers.rasters import write_raster
from translandseg_hf.qgis_plugin.package import PLUGIN_NAME, package_version, plugin_source, write_plugin

sys.path.insert(0, str(plugin_source().parent))  # the plugin is QGIS's program, shipped beside the library, not in it
from translandseg_qgis.environment import EnvironmentProblem, find_environment  # noqa: E402
from translandseg_qgis.runner import Canceled, CommandFailed, parse_event, run_command  # noqa: E402
from translandseg_qgis.staging import StagedOutputs  # noqa: E402

TRANSLANDSEG = Path(sys.executable).parent / "translandseg"
CRS = "EPSG:32645"


class RecordingFeedback:
    """QgsProcessingFeedback's methods the runner calls, recorded; cancels once `cancel_when(text)` holds."""

    def __init__(self, cancel_when=lambda text: False):
        self.cancel_when, self.canceled = cancel_when, False
        self.progress: list[float] = []
        self.texts: list[str] = []
        self.log: list[str] = []

    def isCanceled(self):  # noqa: N802 - QGIS's names
        return self.canceled

    def setProgress(self, value):  # noqa: N802
        self.progress.append(value)

    def setProgressText(self, text):  # noqa: N802
        self.texts.append(text)

    def pushInfo(self, text):  # noqa: N802
        self.log.append(text)
        self.canceled = self.canceled or self.cancel_when(text)

    pushWarning = pushConsoleInfo = pushCommandInfo = pushInfo


def python_command(script: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(script)]


# --- the plugin's pure-Python parts, without QGIS ---------------------------------------------------------------

def test_progress_is_read_from_the_commands_json_events_only():
    assert parse_event('{"event": "tiles", "input": "s.tif", "done": 4, "total": 10}') == {
        "event": "tiles", "input": "s.tif", "done": 4, "total": 10}
    assert parse_event('{"event": "summary", "done": 1, "skipped": 0, "failed": 0, "exit_status": 0, "text": "x"}')
    assert parse_event("tiles:  40%|████      | 4/10 [00:01<00:02, 3.1tile/s]") is None  # a bar is not read
    assert parse_event("wrote stack.tif: 3 bands (B4, B3, B2), 60 x 60 px at 10 m") is None  # `stack`'s text
    assert parse_event('{"not": "an event"}') is None and parse_event("{broken") is None


def test_the_runner_turns_events_into_progress_and_a_failure_into_the_command_message():
    feedback = RecordingFeedback()
    failing = python_command("""
        import json, sys
        def event(**fields):
            print(json.dumps(fields), flush=True)
        event(event="start", protocol=1, total=1)
        event(event="file", input="scene.tif", index=0, total=1)
        event(event="tiles", input="scene.tif", done=0, total=10)
        sys.stderr.write("\\rtiles:  50%|#  | 5/10 [00:00<00:00, 3tile/s]"); sys.stderr.flush()  # not read as progress
        for done in (5, 10):
            event(event="tiles", input="scene.tif", done=done, total=10)
        event(event="result", input="scene.tif", index=0, status="failed",
              message="the scene has 1 band, the model reads 3")
        event(event="summary", done=0, skipped=0, failed=1, exit_status=1,
              text="0 done, 0 skipped, 1 failed\\n  failed: scene.tif: the scene has 1 band, the model reads 3")
        sys.exit(1)
    """)
    with pytest.raises(CommandFailed, match=r"status 1: failed: scene.tif: the scene has 1 band, the model reads 3"):
        run_command(failing, feedback)
    assert feedback.progress == [0.0, 50.0, 100.0]
    assert feedback.texts == ["0 of 10 tiles mapped", "5 of 10 tiles mapped", "10 of 10 tiles mapped"]
    assert "0 done, 0 skipped, 1 failed" in feedback.log


def test_the_runner_hands_back_standard_output_and_no_bars_are_asked_of_the_command():
    command = python_command("import os; print('progress', os.environ.get('TRANSLANDSEG_PROGRESS'))")
    assert run_command(command, RecordingFeedback()) == "progress None"


def test_the_plugin_imports_nothing_of_the_library():
    """It runs in QGIS's Python, where translandseg_hf is not installed: the command is its only way in."""
    sources = {path.name: path.read_text() for path in plugin_source().glob("*.py")}
    assert "runner.py" in sources
    assert not [name for name, text in sources.items() if re.search(r"^\s*(from|import) translandseg_hf", text, re.M)]


def test_cancel_stops_the_command_and_its_children():
    started = python_command("""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print("child", child.pid, flush=True)
        time.sleep(60)
    """)
    feedback = RecordingFeedback(cancel_when=lambda text: text.startswith("child"))
    with pytest.raises(Canceled, match="canceled: .* was stopped"):
        run_command(started, feedback)
    child = int(next(line for line in feedback.log if line.startswith("child")).split()[1])
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_a_failed_run_takes_back_what_it_delivered(tmp_path):
    bystander = tmp_path / "keep.txt"
    bystander.write_text("not ours")
    with pytest.raises(RuntimeError, match="stopped"):
        with StagedOutputs(str(tmp_path)) as staged:
            (staged.folder / "s_probability.tif").write_bytes(b"maps")
            staged.deliver(staged.find("_probability.tif"), str(tmp_path / "new" / "deep" / "probability.tif"))
            raise RuntimeError("stopped")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.txt"]


def test_the_environment_setting_says_what_is_wrong(tmp_path):
    with pytest.raises(EnvironmentProblem, match="No TransLandSeg environment is set"):
        find_environment(" ")
    with pytest.raises(EnvironmentProblem, match=f"{tmp_path / 'nowhere'} does not exist: set the TransLandSeg "):
        find_environment(str(tmp_path / "nowhere"))
    with pytest.raises(EnvironmentProblem, match=f"{tmp_path} is a folder without bin/translandseg"):
        find_environment(str(tmp_path))
    python = find_environment(sys.executable)
    assert python.command == (sys.executable, "-m", "translandseg_hf.cli")
    from_folder = find_environment(str(TRANSLANDSEG.parent.parent))
    assert from_folder.command == (str(TRANSLANDSEG),) and from_folder.python.name.startswith("python")


def test_write_plugin_writes_the_folder_and_its_zip(tmp_path):
    folder, archive = write_plugin(tmp_path / "out")
    assert folder == tmp_path / "out" / PLUGIN_NAME and archive == tmp_path / "out" / f"{PLUGIN_NAME}.zip"
    names = sorted(path.name for path in folder.iterdir())
    assert {"__init__.py", "metadata.txt", "icon.svg", "runner.py"} <= set(names) and "package.py" not in names
    with zipfile.ZipFile(archive) as bundle:
        assert sorted(bundle.namelist()) == [f"{PLUGIN_NAME}/{name}" for name in names]
    metadata = (folder / "metadata.txt").read_text()
    assert "qgisMinimumVersion=3.22\n" in metadata and f"\nversion={package_version()}\n" in metadata
    assert "hasProcessingProvider=yes" in metadata


# --- in QGIS ----------------------------------------------------------------------------------------------------

def run_in_qgis(function, *arguments, home: Path):
    """`function(*arguments)` in headless PyQGIS, with `start_qgis` beside it to start QGIS with the plugin."""
    return run_in_qgis_with(function, *arguments, home=home, helpers=(start_qgis,))


def write_scene(path: Path, side: int) -> Path:
    """An 8-bit RGB GeoTIFF in UTM 45N at 1 m, textured so that a random model finds something."""
    rows, cols = np.mgrid[0:side, 0:side]
    rng = np.random.default_rng(0)
    bands = [((np.sin(rows / (9 + 4 * b)) * np.cos(cols / 13) + 1) * 100 + rng.integers(0, 50, (side, side)))
             for b in range(3)]
    return write_raster(path, np.stack(bands).astype(np.uint8), crs=CRS,
                        transform=from_origin(300_000, 3_100_000, 1.0, 1.0))


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> Path:
    """The plugin as "Install from ZIP" installs it: its zip unpacked into a QGIS plugins folder."""
    return install_plugin(tmp_path_factory.mktemp("written"), tmp_path_factory.mktemp("plugins"))


def in_qgis_map_a_scene(plugins, command, scene, model, out):
    """Check environment, then Map landslides with its outputs loaded into the project as the dialog loads them."""
    start_qgis(plugins)
    import json
    from pathlib import Path

    import processing
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import (QgsApplication, QgsProcessingContext, QgsProcessingFeedback,
                           QgsProcessingOutputLayerDefinition, QgsProject, QgsRasterLayer, QgsVectorLayer)

    class Recording(QgsProcessingFeedback):
        progress, texts = [], []

        def setProgressText(self, text):  # noqa: N802
            self.texts.append(text)
            super().setProgressText(text)

    checked = processing.run("translandseg:checkenvironment", {"EXECUTABLE": command})
    feedback, context = Recording(), QgsProcessingContext()
    feedback.progressChanged.connect(feedback.progress.append)
    context.setProject(QgsProject.instance())
    outputs = {"PROBABILITY": f"{out}/probability.tif", "MASK": f"{out}/mask.tif", "POLYGONS": f"{out}/polygons.gpkg"}
    parameters = {"INPUT": scene, "MODEL": model, "THRESHOLD": 0.5, "ALL_FILES": f"{out}/all",
                  **{name: QgsProcessingOutputLayerDefinition(path, QgsProject.instance())
                     for name, path in outputs.items()}}
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("translandseg:maplandslides")
    results = processing.run(algorithm, parameters, feedback=feedback, context=context)
    handleAlgorithmResults(algorithm, context, feedback)
    layers = {"probability": QgsRasterLayer(results["PROBABILITY"]), "mask": QgsRasterLayer(results["MASK"]),
              "polygons": QgsVectorLayer(results["POLYGONS"])}
    geojson = next(Path(out, "all").glob("*_landslides.geojson"))
    loaded = {layer.source().split("|")[0]: layer for layer in QgsProject.instance().mapLayers().values()}
    return {
        "version": checked["VERSION"], "results": {key: str(value) for key, value in results.items()},
        "valid": {name: layer.isValid() for name, layer in layers.items()},
        "crs": {name: layer.crs().authid() for name, layer in layers.items()},
        "feature_count": layers["polygons"].featureCount(),
        "geojson_count": len(json.loads(geojson.read_text())["features"]),
        "renderers": {Path(source).name: layer.renderer().type() for source, layer in loaded.items()},
        "progress_texts": feedback.texts, "all_files": sorted(path.name for path in Path(out, "all").iterdir()),
    }


@requires_qgis
def test_map_landslides_in_qgis(plugins, tiny_sam_folder, tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 300)
    ran = run_in_qgis(in_qgis_map_a_scene, plugins, TRANSLANDSEG, scene, tiny_sam_folder, tmp_path / "maps",
                      home=tmp_path / "home")
    assert ran["version"] == package_version()
    assert ran["valid"] == {"probability": True, "mask": True, "polygons": True}
    assert ran["crs"] == {"probability": CRS, "mask": CRS, "polygons": CRS}
    assert ran["feature_count"] == ran["geojson_count"] > 0
    assert ran["results"]["POLYGON_COUNT"] == str(ran["feature_count"])
    assert ran["renderers"] == {"probability.tif": "singlebandpseudocolor", "mask.tif": "paletted",
                                "polygons.gpkg": "singleSymbol"}
    # the tile bar has its total, so QGIS shows a percentage (tqdm throttles its redraws: which counts appear varies)
    assert any(re.fullmatch(r"\d of 4 tiles mapped", text) for text in ran["progress_texts"]), ran["progress_texts"]
    assert ran["all_files"] == [f"scene{suffix}" for suffix in ("_landslides.geojson", "_landslides.gpkg",
                                                                 "_mask.tif", "_probability.tif", "_quicklook.png")]
    print(f"QGIS run: {json.dumps(ran)}")


def in_qgis_cancel_a_run(plugins, command, scene, model, out):
    """Map landslides, canceled as soon as the first tiles are mapped; the translandseg processes running then."""
    start_qgis(plugins)
    import os
    from pathlib import Path

    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    def children() -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                found.append(int(stat.parent.name))
        return found

    class CancelOnFirstTiles(QgsProcessingFeedback):
        running = []

        def setProgressText(self, text):  # noqa: N802
            if "tiles mapped" in text and not self.isCanceled():
                self.running.extend(children())
                self.cancel()

    processing.run("translandseg:checkenvironment", {"EXECUTABLE": command})
    feedback = CancelOnFirstTiles()
    try:
        processing.run("translandseg:maplandslides", {
            "INPUT": scene, "MODEL": model, "TTA": True, "PROBABILITY": f"{out}/probability.tif",
            "MASK": f"{out}/mask.tif", "POLYGONS": f"{out}/polygons.gpkg", "ALL_FILES": f"{out}/all"},
            feedback=feedback)
        message = "not canceled"
    except QgsProcessingException as error:
        message = str(error)
    return {"message": message, "running": feedback.running}


@requires_qgis
def test_cancel_in_qgis_stops_translandseg_and_leaves_no_output(plugins, tiny_sam_folder, tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 2048)
    out = tmp_path / "maps"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    ran = run_in_qgis(in_qgis_cancel_a_run, plugins, TRANSLANDSEG, scene, tiny_sam_folder, out,
                      home=tmp_path / "home")
    assert ran["message"].startswith("canceled: ") and ran["message"].endswith("translandseg was stopped")
    assert ran["running"], "no translandseg process was running when the run was canceled"
    left = [pid for pid in ran["running"] if psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert left == []
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(out) in " ".join(p.info["cmdline"] or [])]
    assert sorted(path.name for path in out.iterdir()) == ["notes.txt"]


def in_qgis_fail(plugins, missing, command, scene, model, out):
    """Map landslides with a missing environment, then with a model that is not there: the two messages."""
    start_qgis(plugins)
    import processing
    from qgis.core import QgsProcessingException, QgsSettings

    messages = {}
    for case, environment in (("missing environment", missing), ("bad model", command)):
        QgsSettings().setValue("translandseg/environment", environment)
        try:
            processing.run("translandseg:maplandslides", {
                "INPUT": scene, "MODEL": model, "PROBABILITY": f"{out}/probability.tif", "MASK": f"{out}/mask.tif",
                "POLYGONS": f"{out}/polygons.gpkg"})
            messages[case] = "no error"
        except QgsProcessingException as error:
            messages[case] = str(error)
    return messages


@requires_qgis
def test_a_missing_environment_and_a_bad_model_give_their_messages_in_qgis(plugins, tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 64)
    missing = tmp_path / "no-env" / "bin" / "translandseg"
    messages = run_in_qgis(in_qgis_fail, plugins, missing, TRANSLANDSEG, scene, tmp_path / "no-model",
                           tmp_path / "maps", home=tmp_path / "home")
    assert messages["missing environment"].startswith(f"{missing} does not exist: set the TransLandSeg environment")
    assert messages["bad model"] == (f"translandseg exited with status 1: error: {tmp_path / 'no-model'} does not "
                                     "exist (expected a saved landslide model).")
    assert not (tmp_path / "maps").exists()


def in_qgis_stack_a_product(plugins, command, product, model, output):
    """Stack Sentinel-2 on a folder of band files; the stack as QGIS reads it."""
    start_qgis(plugins)
    import processing
    from qgis.core import QgsRasterLayer, QgsSettings

    QgsSettings().setValue("translandseg/environment", command)
    results = processing.run("translandseg:stacksentinel2", {"PRODUCT": product, "MODEL": model, "OUTPUT": output})
    layer = QgsRasterLayer(results["OUTPUT"])
    return {"output": results["OUTPUT"], "valid": layer.isValid(), "crs": layer.crs().authid(),
            "descriptions": [layer.bandName(b) for b in range(1, layer.bandCount() + 1)],
            "size": [layer.width(), layer.height()]}


@requires_qgis
def test_stack_sentinel2_in_qgis(plugins, tmp_path):
    from helpers.sentinel2 import write_band_folder

    from translandseg_hf.image_processing import TransLandSegImageProcessor
    from translandseg_hf.geo.sentinel2.bands import landslide4sense_source

    rgb = TransLandSegImageProcessor(bands=[4, 3, 2], scale="divisor", divisor=10, tile_size=128, ground_resolution=10,
                                     input_size=64, **landslide4sense_source([3, 2, 1]))
    rgb.save_pretrained(tmp_path / "rgb-model")  # stacking reads only the model's contract
    rng = np.random.default_rng(1)
    digital_numbers = {band: rng.integers(1200, 4000, (60, 60)).astype(np.uint16) for band in ("B2", "B3", "B4")}
    product = write_band_folder(tmp_path / "bands", digital_numbers, CRS, from_origin(300_000, 3_100_000, 10, 10))
    ran = run_in_qgis(in_qgis_stack_a_product, plugins, TRANSLANDSEG, product, tmp_path / "rgb-model",
                      tmp_path / "stacks" / "stack.tif", home=tmp_path / "home")
    assert ran["output"] == str(tmp_path / "stacks" / "stack.tif") and ran["valid"] and ran["crs"] == CRS
    assert ran["size"] == [60, 60] and ran["descriptions"] == ["Band 1: B4", "Band 2: B3", "Band 3: B2"]
    written = sorted(path.name for path in (tmp_path / "stacks").iterdir())
    assert written in (["stack.tif"], ["stack.tif", "stack.tif.aux.xml"])  # QGIS keeps the statistics it computed
    print(f"QGIS stack: {json.dumps(ran)}")


def in_qgis_screenshot(plugins, command, scene, path):
    """The Map landslides dialog, as the Processing toolbox opens it on a project with a scene, saved as a PNG."""
    start_qgis(plugins, gui=True)
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsSettings
    from qgis.PyQt.QtWidgets import QSplitter

    QgsSettings().setValue("translandseg/environment", command)
    layer = QgsRasterLayer(scene, "ortho_2023_utm45n")
    QgsProject.instance().addMapLayer(layer)
    dialog = AlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById("translandseg:maplandslides"))
    dialog.setParameters({"INPUT": layer.id(), "MODEL": "runs/bijie/model", "MIN_AREA": 50})
    dialog.resize(1080, 720)
    dialog.show()
    for splitter in dialog.findChildren(QSplitter):
        splitter.setSizes([740, 340])
    for _ in range(20):
        QgsApplication.processEvents()
    picture = dialog.grab()
    saved = picture.save(path, "PNG", 9)
    return {"saved": saved, "size": [picture.width(), picture.height()], "title": dialog.windowTitle()}


@requires_qgis
def test_the_dialog_opens_and_is_pictured(plugins, tmp_path):
    picture = tmp_path / "qgis-dialog.png"
    scene = write_scene(tmp_path / "ortho.tif", 64)
    ran = run_in_qgis(in_qgis_screenshot, plugins, TRANSLANDSEG, scene, picture, home=tmp_path / "home")
    assert ran["saved"] and ran["size"] == [1080, 720] and ran["title"] == "Map landslides"
    assert picture.read_bytes().startswith(b"\x89PNG") and picture.stat().st_size < 200_000


def in_qgis_desktop_start(plugins):
    """The plugin as the desktop starts it (initGui with an interface, here a mock), then unloaded."""
    start_qgis(plugins, gui=True, start=False)
    from unittest import mock

    import qgis.utils
    from qgis.core import QgsApplication

    iface = qgis.utils.iface = mock.MagicMock()
    iface.mainWindow.return_value = None
    assert qgis.utils.startPlugin("translandseg_qgis")
    plugin = qgis.utils.plugins["translandseg_qgis"]
    registry = QgsApplication.processingRegistry()
    model = registry.algorithmById("translandseg:maplandslides").parameterDefinition("MODEL")
    started = {"provider": registry.providerById("translandseg") is not None,
               "menu": [call.args[0] for call in iface.addPluginToMenu.call_args_list],
               "action": plugin.action.text(), "hub_id_accepted": model.checkValueIsAcceptable("someone/l4s-model")}
    plugin.unload()  # what qgis.utils.unloadPlugin calls (it also drops modules it tracked from the plugin paths)
    return dict(started, unloaded=registry.providerById("translandseg") is None,
                menu_removed=iface.removePluginMenu.call_count)


@requires_qgis
def test_the_desktop_starts_and_unloads_the_plugin(plugins, tmp_path):
    ran = run_in_qgis(in_qgis_desktop_start, plugins, home=tmp_path / "home")
    assert ran == {"provider": True, "menu": ["&TransLandSeg"], "action": "Set the TransLandSeg environment…",
                   "hub_id_accepted": True, "unloaded": True, "menu_removed": 1}
