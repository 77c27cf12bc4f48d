"""Stack Sentinel-2: `translandseg stack`, the raster a model reads from a Sentinel-2 product (and a DEM), as a
Processing output."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .algorithm import TransLandSegAlgorithm, layer_file, plain_path
from .staging import StagedOutputs

HELP = "<br><br>".join((  # QGIS shows each newline of a help string: paragraphs are joined here
    "Writes the raster a TransLandSeg model reads from a Sentinel-2 product, by running <code>translandseg stack"
    "</code>: the model's bands, in its order, on its dataset's value scale, on the 10 m grid (a COG, NaN nodata).",
    "<br>".join((
        "<b>Product</b>: a SAFE folder (L1C or L2A) or a folder of band files (B04.tif, ..._B04.tif); or else",
        "<b>STAC item</b>: a STAC item JSON whose assets are the bands.",
        "<b>DEM</b>: elevation in metres covering the product, for 14-band models.",
        "<b>Bounds</b>: minx,miny,maxx,maxy in the product's CRS, an area of interest (empty: the whole product).",
    )),
))


class StackSentinel2(TransLandSegAlgorithm):
    PRODUCT, STAC_ITEM, MODEL, DEM, BOUNDS = "PRODUCT", "STAC_ITEM", "MODEL", "DEM", "BOUNDS"
    OFFSET, FILL_MISSING, OUTPUT = "OFFSET", "FILL_MISSING", "OUTPUT"

    NAME, DISPLAY_NAME, HELP = "stacksentinel2", "Stack Sentinel-2", HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile(self.PRODUCT, "Product folder (SAFE or band files)",
                                                     behavior=QgsProcessingParameterFile.Folder, optional=True))
        self.addParameter(QgsProcessingParameterFile(self.STAC_ITEM, "or STAC item JSON", extension="json",
                                                     optional=True))
        self.addParameter(QgsProcessingParameterFile(self.MODEL, "Model (saved model folder or Hub repository id)",
                                                     behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterRasterLayer(self.DEM, "DEM in metres (14-band models)",
                                                            optional=True))
        self.addParameter(QgsProcessingParameterString(self.BOUNDS, "Bounds: minx,miny,maxx,maxy in the product's "
                                                       "CRS (empty: the whole product)", optional=True))
        offset = QgsProcessingParameterNumber(self.OFFSET, "Offset added to digital numbers (empty: from the "
                                              "product's metadata)", QgsProcessingParameterNumber.Double, None,
                                              optional=True)
        fill = QgsProcessingParameterBoolean(self.FILL_MISSING, "Fill a missing band (B10 of L2A) with the training "
                                             "mean", False)
        for advanced in (offset, fill):
            advanced.setFlags(advanced.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(advanced)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Stack"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.command()  # first: a missing environment is said before anything is made
        products = [path for path in (self.parameterAsFile(parameters, self.PRODUCT, context),
                                      self.parameterAsFile(parameters, self.STAC_ITEM, context)) if path]
        if len(products) != 1:
            raise QgsProcessingException("Give the product as a folder or as a STAC item JSON (one of the two).")
        model = self.parameterAsFile(parameters, self.MODEL, context).strip()
        if not model:
            raise QgsProcessingException("Model: give a saved model folder or a Hub repository id.")
        output = plain_path(self.parameterAsOutputLayer(parameters, self.OUTPUT, context), "Stack", (".tif",))
        arguments = ["stack", "--model", model, "--sentinel2", products[0]]
        dem = self.parameterAsRasterLayer(parameters, self.DEM, context)
        if dem is not None:
            arguments += ["--dem", layer_file(dem, "the DEM")]
        bounds = self.parameterAsString(parameters, self.BOUNDS, context).replace(" ", "")
        if bounds:
            arguments += ["--bounds", bounds]
        if parameters.get(self.OFFSET) not in (None, ""):
            arguments += ["--offset", repr(self.parameterAsDouble(parameters, self.OFFSET, context))]
        if self.parameterAsBool(parameters, self.FILL_MISSING, context):
            arguments.append("--fill_missing")
        with StagedOutputs(os.path.dirname(os.path.abspath(output))) as staged:
            self.run_translandseg(arguments + ["--output", str(staged.folder / "stack.tif")], feedback)
            staged.deliver(staged.folder / "stack.tif", output)
        return {self.OUTPUT: output}
