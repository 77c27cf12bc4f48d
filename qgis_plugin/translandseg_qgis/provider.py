"""The Processing provider "TransLandSeg": its algorithms and the output formats the command writes."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .check_environment import CheckEnvironment
from .event_inventory import EventInventory
from .map_landslides import MapLandslides
from .stack_sentinel2 import StackSentinel2

ICON = Path(__file__).with_name("icon.svg")


class TransLandSegProvider(QgsProcessingProvider):
    def id(self):
        return "translandseg"

    def name(self):
        return "TransLandSeg"

    def longName(self):  # noqa: N802 - QGIS's name
        return "TransLandSeg landslide mapping (runs the translandseg command of your environment)"

    def icon(self):
        return QIcon(str(ICON))

    def loadAlgorithms(self):  # noqa: N802 - QGIS's name
        for algorithm in (MapLandslides(), EventInventory(), StackSentinel2(), CheckEnvironment()):
            self.addAlgorithm(algorithm)

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802 - the command writes GeoTIFFs (COGs)
        return ["tif"]

    def supportedOutputVectorLayerExtensions(self):  # noqa: N802 - and GeoPackage and GeoJSON polygons
        return ["gpkg", "geojson"]

    def defaultVectorFileExtension(self, hasGeometry=True):  # noqa: N802,N803 - QGIS's names
        return "gpkg"

    def defaultRasterFileExtension(self):  # noqa: N802
        return "tif"
