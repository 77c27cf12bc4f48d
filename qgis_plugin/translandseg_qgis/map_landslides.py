"""Map landslides: `translandseg predict` on a raster layer or file, its probability, mask and polygons delivered as
Processing outputs and styled when loaded."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsVectorLayer,
)

from .algorithm import TransLandSegAlgorithm, layer_file, plain_path
from .runner import PROGRESS_ARGUMENTS
from .staging import StagedOutputs
from .styles import style_when_loaded

DEFAULT_THRESHOLD = 0.5  # translandseg_hf.inference.options.DEFAULT_THRESHOLD: the plugin imports no package code
POLYGON_FILES = {".gpkg": "_landslides.gpkg", ".geojson": "_landslides.geojson"}
HELP = "<br><br>".join((  # QGIS shows each newline of a help string: paragraphs are joined here
    "Maps landslides on a scene with a TransLandSeg model, by running <code>translandseg predict</code> in the "
    "environment set with <i>Check environment</i> (torch never loads into QGIS).",
    "<br>".join((
        "<b>Scene</b>: a raster layer or file, of any size (it is mapped in tiles, as the model was trained).",
        "<b>Model</b>: a saved model folder, or a Hugging Face Hub repository id (type it).",
        "<b>Threshold</b>: probability above which a pixel is a landslide.",
        "<b>Minimum area</b>: smaller polygons are dropped, in m² in a projected CRS (empty: the command's "
        "default).",
        "<b>TTA</b>: average the 8 flips and rotations (8 times slower, smoother maps).",
        "<b>DEM</b>: elevation in metres, for Landslide4Sense models that read slope and elevation.",
    )),
    "Outputs keep the scene's CRS and are styled when loaded. Cancel stops the command and leaves no output behind.",
))


class MapLandslides(TransLandSegAlgorithm):
    INPUT, MODEL, THRESHOLD, MIN_AREA, TTA, DEM = "INPUT", "MODEL", "THRESHOLD", "MIN_AREA", "TTA", "DEM"
    DEVICE = "DEVICE"
    PROBABILITY, MASK, POLYGONS, ALL_FILES = "PROBABILITY", "MASK", "POLYGONS", "ALL_FILES"
    POLYGON_COUNT = "POLYGON_COUNT"

    NAME, DISPLAY_NAME, HELP = "maplandslides", "Map landslides", HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Scene (raster layer or file)"))
        self.addParameter(QgsProcessingParameterFile(self.MODEL, "Model (saved model folder or Hub repository id)",
                                                     behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterNumber(self.THRESHOLD, "Probability threshold",
                                                       QgsProcessingParameterNumber.Double, DEFAULT_THRESHOLD,
                                                       minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(self.MIN_AREA, "Minimum polygon area, m² (empty: the "
                                                       "default)", QgsProcessingParameterNumber.Double,
                                                       None, optional=True, minValue=0.0))
        self.addParameter(QgsProcessingParameterBoolean(self.TTA, "Test-time augmentation (8 flips, 8x slower)",
                                                        False))
        self.addParameter(QgsProcessingParameterRasterLayer(self.DEM, "DEM, elevation in m (14-band "
                                                            "Landslide4Sense models)", optional=True))
        device = QgsProcessingParameterString(self.DEVICE, "Device (cpu, cuda, cuda:1; empty: the best there is)",
                                              optional=True)
        device.setFlags(device.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(device)
        self.addParameter(QgsProcessingParameterRasterDestination(self.PROBABILITY, "Landslide probability"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.MASK, "Landslide mask"))
        self.addParameter(QgsProcessingParameterVectorDestination(self.POLYGONS, "Landslide polygons",
                                                                  QgsProcessing.TypeVectorPolygon))
        every_file = QgsProcessingParameterFolderDestination(self.ALL_FILES, "Folder for all the command's files "
                                                             "(GeoJSON, quicklook PNG, ...)", optional=True,
                                                             createByDefault=False)
        every_file.setFlags(every_file.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(every_file)
        self.addOutput(QgsProcessingOutputNumber(self.POLYGON_COUNT, "Number of landslide polygons"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.command()  # first: a missing environment is said before anything is made
        scene = layer_file(self.parameterAsRasterLayer(parameters, self.INPUT, context), "the scene")
        model = self.parameterAsFile(parameters, self.MODEL, context).strip()
        if not model:
            raise QgsProcessingException("Model: give a saved model folder or a Hub repository id.")
        arguments = ["predict", *PROGRESS_ARGUMENTS, "--model", model, scene, "--threshold",
                     repr(self.parameterAsDouble(parameters, self.THRESHOLD, context))]
        if parameters.get(self.MIN_AREA) not in (None, ""):
            arguments += ["--min_area", repr(self.parameterAsDouble(parameters, self.MIN_AREA, context))]
        if self.parameterAsBool(parameters, self.TTA, context):
            arguments.append("--tta")
        dem = self.parameterAsRasterLayer(parameters, self.DEM, context)
        if dem is not None:
            arguments += ["--dem", layer_file(dem, "the DEM")]
        device = self.parameterAsString(parameters, self.DEVICE, context).strip()
        if device:
            arguments += ["--device", device]
        probability = plain_path(self.parameterAsOutputLayer(parameters, self.PROBABILITY, context),
                                 "Landslide probability", (".tif",))
        mask = plain_path(self.parameterAsOutputLayer(parameters, self.MASK, context), "Landslide mask", (".tif",))
        polygons = plain_path(self.parameterAsOutputLayer(parameters, self.POLYGONS, context), "Landslide polygons",
                              tuple(POLYGON_FILES))
        every_file = self.parameterAsFileOutput(parameters, self.ALL_FILES, context)
        with StagedOutputs(os.path.dirname(os.path.abspath(probability))) as staged:
            self.run_translandseg(arguments + ["--output", str(staged.folder)], feedback)
            polygon_file = POLYGON_FILES[os.path.splitext(polygons)[1].lower()]
            found = {path: staged.find(suffix) for path, suffix in
                     ((probability, "_probability.tif"), (mask, "_mask.tif"), (polygons, polygon_file))}
            if every_file:  # the folder holds the command's whole output, these three too
                for path in found.values():
                    staged.deliver(path, os.path.join(every_file, path.name), keep=True)
                staged.deliver_rest(every_file, skip=set(found.values()))
            for destination, path in found.items():
                staged.deliver(path, destination)
            count = QgsVectorLayer(polygons, "polygons", "ogr").featureCount()
        for path, kind in ((probability, "probability"), (mask, "mask"), (polygons, "polygons")):
            style_when_loaded(context, path, kind)
        feedback.pushInfo(f"{count} landslide polygon(s)")
        results = {self.PROBABILITY: probability, self.MASK: mask, self.POLYGONS: polygons,
                   self.POLYGON_COUNT: count}
        if every_file:
            results[self.ALL_FILES] = every_file
        return results
