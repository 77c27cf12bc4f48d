"""What QGIS starts: the Processing provider (desktop and qgis_process) and, on the desktop, a Plugins menu entry that
opens the environment check."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import TransLandSegProvider

MENU = "&TransLandSeg"


class TransLandSegPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.action = None

    def initProcessing(self):  # noqa: N802 - QGIS's name
        if self.provider is None:
            self.provider = TransLandSegProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 - QGIS's name
        self.initProcessing()
        if self.iface is None:
            return
        from qgis.PyQt.QtWidgets import QAction

        self.action = QAction(self.provider.icon(), "Set the TransLandSeg environment…", self.iface.mainWindow())
        self.action.triggered.connect(self.open_environment_check)
        self.iface.addPluginToMenu(MENU, self.action)

    def open_environment_check(self):
        import processing

        processing.execAlgorithmDialog("translandseg:checkenvironment", {})

    def unload(self):
        if self.action is not None:
            self.iface.removePluginMenu(MENU, self.action)
            self.action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
