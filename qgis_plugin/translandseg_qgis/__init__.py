"""TransLandSeg for QGIS: a Processing provider whose algorithms run the `translandseg` command of a Python environment
the user points to, so torch and the package never load into QGIS's own Python."""


def classFactory(iface):  # noqa: N802 - the name QGIS calls
    from .plugin import TransLandSegPlugin

    return TransLandSegPlugin(iface)
