"""Event inventory: `translandseg inventory` on maps `predict` already made of an event's dates, its inventory.gpkg
layers `landslides` and `landslide_points` loaded into the project, coloured by each landslide's confidence, and
`unmapped` (where the inventory could not look) in grey under them."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsVectorLayer,
)

from .algorithm import TransLandSegAlgorithm, layer_file
from .staging import StagedOutputs
from .styles import style_when_loaded

# translandseg_hf.inventory.mapped.TRIGGERS and cli.CHANGE_CHOICES: the plugin imports no package code
TRIGGERS = ("earthquake", "rainfall", "snowmelt", "unknown")
CHANGES = ("auto", "probability", "ndvi", "both", "none")
INVENTORY_FILE = "inventory.gpkg"
# each layer of inventory.gpkg: its name when loaded, the algorithm's output that names it, its style (styles.STYLES)
LAYERS = {"landslides": ("Landslides", "LANDSLIDES", "confidence"),
          "landslide_points": ("Landslide points", "LANDSLIDE_POINTS", "confidence"),
          "unmapped": ("Unmapped areas", "UNMAPPED", "unmapped")}
HELP = "<br><br>".join((  # QGIS shows each newline of a help string: paragraphs are joined here
    "Builds an event's landslide inventory from maps already made with <i>Map landslides</i> or "
    "<code>translandseg predict</code>, by running <code>translandseg inventory</code>: the post-event landslides "
    "not explained by the pre-event state, with their attributes (areas, probability, confidence, NDVI, slope, "
    "dates, scenes, model), statistics.json and a self-contained report.html.",
    "<br>".join((
        "<b>Post-event predictions</b>: the folder holding one <code>*_probability.tif</code> (and its mask; its "
        "uncertainty with TTA).",
        "<b>Pre-event predictions</b>: the same for an image before the event (empty: every post-event landslide "
        "is kept, change method none).",
        "<b>Imagery folders</b>: <code>translandseg imagery</code> outputs (composite.tif, source.tif, imagery.json) "
        "that give NDVI, dates and scene ids.",
        "<b>Change</b>: what makes a landslide new: a probability rise, vegetation loss (HazMapper's rdNDVI), "
        "both, or none (auto: both where red and NIR bands allow NDVI).",
        "<b>DEM</b>: elevation in metres, for each landslide's slope and elevation.",
    )),
    "The layers <i>landslides</i> (polygons) and <i>landslide_points</i> (centroids) of inventory.gpkg are loaded "
    "coloured by confidence: high (red), medium (orange), low (yellow). Under them, <i>unmapped</i> shows in grey "
    "where the inventory could not look: no post-event value (cloud, shadow, no scene; filled) and no pre-event "
    "value (hatched: landslides there cannot be told new from old). A landslide there is missing, not absent.",
))


class EventInventory(TransLandSegAlgorithm):
    PREDICTIONS, PRE_PREDICTIONS, IMAGERY, PRE_IMAGERY = "PREDICTIONS", "PRE_PREDICTIONS", "IMAGERY", "PRE_IMAGERY"
    MODEL, DEM, EVENT_NAME, EVENT_DATE = "MODEL", "DEM", "EVENT_NAME", "EVENT_DATE"
    TRIGGER, CHANGE = "TRIGGER", "CHANGE"
    POST_DATE, PRE_DATE, MIN_AREA, LOAD, OUTPUT = "POST_DATE", "PRE_DATE", "MIN_AREA", "LOAD", "OUTPUT"
    LANDSLIDES, LANDSLIDE_POINTS, COUNT, REPORT = "LANDSLIDES", "LANDSLIDE_POINTS", "LANDSLIDE_COUNT", "REPORT"
    UNMAPPED = "UNMAPPED"

    NAME, DISPLAY_NAME, HELP = "eventinventory", "Event inventory", HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        folder = QgsProcessingParameterFile.Folder
        for name, label, optional in ((self.PREDICTIONS, "Post-event predictions folder", False),
                                      (self.PRE_PREDICTIONS, "Pre-event predictions folder", True),
                                      (self.IMAGERY, "Post-event imagery folder", True),
                                      (self.PRE_IMAGERY, "Pre-event imagery folder", True),
                                      (self.MODEL, "Model that mapped both dates (folder or Hub repository id; for "
                                       "provenance and NDVI bands)", True)):
            self.addParameter(QgsProcessingParameterFile(name, label, behavior=folder, optional=optional))
        self.addParameter(QgsProcessingParameterRasterLayer(self.DEM, "DEM, elevation in m", optional=True))
        self.addParameter(QgsProcessingParameterString(self.EVENT_NAME, "Event name", optional=True))
        self.addParameter(QgsProcessingParameterString(self.EVENT_DATE, "Event date (YYYY-MM-DD)", optional=True))
        self.addParameter(QgsProcessingParameterEnum(self.TRIGGER, "Trigger", TRIGGERS,
                                                     defaultValue=TRIGGERS.index("unknown")))
        self.addParameter(QgsProcessingParameterEnum(self.CHANGE, "Change method", CHANGES, defaultValue=0))
        advanced = [QgsProcessingParameterString(self.POST_DATE, "Post-event image date (YYYY-MM-DD), where no "
                                                 "imagery folder says", optional=True),
                    QgsProcessingParameterString(self.PRE_DATE, "Pre-event image date (YYYY-MM-DD)", optional=True),
                    QgsProcessingParameterNumber(self.MIN_AREA, "Minimum landslide area, m² (empty: the "
                                                 "command's default)", QgsProcessingParameterNumber.Double, None,
                                                 optional=True, minValue=0.0)]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterBoolean(self.LOAD, "Load the layers: landslides by confidence, "
                                                        "unmapped areas in grey", True))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, "Inventory folder"))
        self.addOutput(QgsProcessingOutputVectorLayer(self.LANDSLIDES, "Landslides"))
        self.addOutput(QgsProcessingOutputVectorLayer(self.LANDSLIDE_POINTS, "Landslide points"))
        self.addOutput(QgsProcessingOutputVectorLayer(self.UNMAPPED, "Unmapped areas (no post- or pre-event value)"))
        self.addOutput(QgsProcessingOutputNumber(self.COUNT, "Number of new landslides"))
        self.addOutput(QgsProcessingOutputFile(self.REPORT, "Report (report.html)"))

    def inventory_arguments(self, parameters, context) -> list[str]:
        """`translandseg inventory ...` without --output: the given folders, files and event, in the CLI's options."""
        predictions = self.parameterAsFile(parameters, self.PREDICTIONS, context).strip()
        if not predictions:
            raise QgsProcessingException("Post-event predictions: give the folder `translandseg predict` wrote.")
        arguments = ["inventory", "--predictions", predictions]
        for name, option in ((self.PRE_PREDICTIONS, "--pre_predictions"), (self.IMAGERY, "--imagery"),
                             (self.PRE_IMAGERY, "--pre_imagery"), (self.MODEL, "--model")):
            value = self.parameterAsFile(parameters, name, context).strip()
            if value:
                arguments += [option, value]
        dem = self.parameterAsRasterLayer(parameters, self.DEM, context)
        if dem is not None:
            arguments += ["--dem", layer_file(dem, "the DEM")]
        for name, option in ((self.EVENT_NAME, "--event_name"), (self.EVENT_DATE, "--event_date"),
                             (self.POST_DATE, "--post_date"), (self.PRE_DATE, "--pre_date")):
            value = self.parameterAsString(parameters, name, context).strip()
            if value:
                arguments += [option, value]
        arguments += ["--trigger", TRIGGERS[self.parameterAsEnum(parameters, self.TRIGGER, context)],
                      "--change", CHANGES[self.parameterAsEnum(parameters, self.CHANGE, context)]]
        if parameters.get(self.MIN_AREA) not in (None, ""):
            arguments += ["--min_area", repr(self.parameterAsDouble(parameters, self.MIN_AREA, context))]
        return arguments

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.command()  # first: a missing environment is said before anything is made
        arguments = self.inventory_arguments(parameters, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        with StagedOutputs(output) as staged:
            self.run_translandseg(arguments + ["--output", str(staged.folder)], feedback)
            staged.deliver_rest(output)  # replacing an earlier inventory there, as Processing outputs do
        gpkg = os.path.join(output, INVENTORY_FILE)
        uris = {layer: f"{gpkg}|layername={layer}" for layer in LAYERS}
        count = QgsVectorLayer(uris["landslides"], "landslides", "ogr").featureCount()
        if self.parameterAsBool(parameters, self.LOAD, context):
            for layer, uri in uris.items():
                load_styled(context, uri, *LAYERS[layer])
        feedback.pushInfo(f"{count} new landslide(s) in {gpkg}")
        return {self.OUTPUT: output, **{LAYERS[layer][1]: uri for layer, uri in uris.items()}, self.COUNT: count,
                self.REPORT: os.path.join(output, "report.html")}


def load_styled(context, uri: str, name: str, output_name: str, style: str) -> None:
    """Have Processing load `uri` into the context's project when the run ends, styled (`styles.STYLES[style]`)."""
    details = QgsProcessingContext.LayerDetails(name, context.project(), output_name,
                                                QgsProcessingUtils.LayerHint.Vector)
    context.addLayerToLoadOnCompletion(uri, details)
    style_when_loaded(context, uri, style)
