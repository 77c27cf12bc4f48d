"""What every TransLandSeg algorithm shares: the environment it runs, layers as files the command can read, and the
command's failures and Cancel as Processing errors."""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProviderRegistry

from .environment import EnvironmentProblem
from .runner import Canceled, CommandFailed, run_command
from .settings import configured_environment

REMOTE_PREFIXES = ("http://", "https://", "s3://", "gs://")


class TransLandSegAlgorithm(QgsProcessingAlgorithm):
    """Each algorithm names itself with NAME (its id in `translandseg:NAME`), DISPLAY_NAME and HELP."""

    NAME = DISPLAY_NAME = HELP = ""

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802 - QGIS's name
        return self.DISPLAY_NAME

    def shortHelpString(self):  # noqa: N802
        return self.HELP

    def createInstance(self):  # noqa: N802
        return type(self)()

    def command(self) -> list[str]:
        """The environment's `translandseg`, as a command line."""
        try:
            return list(configured_environment().command)
        except EnvironmentProblem as problem:
            raise QgsProcessingException(str(problem)) from problem

    def run_translandseg(self, arguments: list[str], feedback) -> str:
        """Run `translandseg ARGUMENTS`; its standard output, or a QgsProcessingException with its message."""
        try:
            return run_command(self.command() + arguments, feedback)
        except (CommandFailed, Canceled) as error:
            raise QgsProcessingException(str(error)) from error


def layer_file(layer, what: str) -> str:
    """The file (or URL) behind a raster layer, for the command to read: a layer from another provider (WMS, a
    PostGIS raster) has none."""
    if layer is None:
        raise QgsProcessingException(f"{what}: no layer or file given.")
    if layer.providerType() != "gdal":
        raise QgsProcessingException(f"{layer.name()}: a {layer.providerType()} layer is not a file translandseg can "
                                     "read; save it as a GeoTIFF (Export > Save As...) and give that.")
    path = QgsProviderRegistry.instance().decodeUri("gdal", layer.source()).get("path") or layer.source()
    path = path.removeprefix("/vsicurl/")
    if not path.startswith(REMOTE_PREFIXES) and not os.path.exists(path):
        raise QgsProcessingException(f"{path}: {what} is not a file translandseg can read; save the layer as a "
                                     "GeoTIFF and give that.")
    return path


def plain_path(destination: str, what: str, extensions: tuple[str, ...]) -> str:
    """A destination that is a file of one of `extensions` (not a table in an existing GeoPackage, not a URI)."""
    if destination.startswith(("ogr:", "postgres:", "memory:")) or Path(destination).suffix.lower() not in extensions:
        raise QgsProcessingException(f"{destination}: {what} must be a file ending in {' or '.join(extensions)}.")
    return destination
