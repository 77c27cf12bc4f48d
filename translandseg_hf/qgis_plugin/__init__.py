"""`translandseg qgis-plugin`: writes the QGIS plugin (`package.py`). The plugin itself is not part of this library:
it is a second program, run by QGIS's own Python, importing qgis and never this package. Its files live at the
repository's `qgis_plugin/translandseg_qgis/` and are installed beside `translandseg_hf` as the top-level package
data `translandseg_qgis` (pyproject.toml), which this writer copies; nothing here imports them."""
