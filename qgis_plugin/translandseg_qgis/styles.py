"""How the outputs look when loaded: probability on a transparent-to-red ramp, the mask's landslide pixels in red,
polygons as red outlines over the imagery, an inventory's landslides and points coloured by their confidence, and
its unmapped areas in grey under them."""

from __future__ import annotations

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsColorRampShader,
    QgsFillSymbol,
    QgsLayerTree,
    QgsMarkerSymbol,
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRasterShader,
    QgsRendererCategory,
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QColor

LANDSLIDE_RED = QColor(215, 25, 28)
PROBABILITY_RAMP = ((0.0, QColor(255, 255, 178, 0), "0"), (0.25, QColor(254, 204, 92), "0.25"),
                    (0.5, QColor(253, 141, 60), "0.5"), (0.75, QColor(240, 59, 32), "0.75"),
                    (1.0, QColor(189, 0, 38), "1"))
# translandseg_hf.inventory.report.CONFIDENCE_COLORS (the report's outlines), surest last so it is drawn on top
CONFIDENCE_COLORS = {"low": QColor(255, 235, 59), "medium": QColor(255, 145, 0), "high": QColor(213, 0, 0)}
CONFIDENCE_FIELD = "confidence"
# translandseg_hf.inventory.unmapped.REASONS: nothing mapped (a see-through grey fill), or not known to be new (a
# grey hatch, the landslides there stay visible)
UNMAPPED_FIELD = "reason"
UNMAPPED_STYLES = {"no post-event value": {"style": "solid", "color": "128,128,128,110"},
                   "no pre-event value": {"style": "b_diagonal", "color": "96,96,96,255"}}


def style_probability(layer: QgsRasterLayer) -> None:
    """Band 1 (0-1) on a yellow-to-red ramp, transparent at 0, so the scene shows through where nothing was found."""
    ramp = QgsColorRampShader(0.0, 1.0)
    ramp.setColorRampType(QgsColorRampShader.Interpolated)
    ramp.setColorRampItemList([QgsColorRampShader.ColorRampItem(value, color, label)
                               for value, color, label in PROBABILITY_RAMP])
    shader = QgsRasterShader(0.0, 1.0)
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(1.0)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_mask(layer: QgsRasterLayer) -> None:
    """Value 1 (landslide) in red; 0 has no class, so it is transparent."""
    landslide = QgsPalettedRasterRenderer.Class(1, LANDSLIDE_RED, "landslide")
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, [landslide]))
    layer.triggerRepaint()


def style_polygons(layer: QgsVectorLayer) -> None:
    """Red outlines without fill."""
    symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": LANDSLIDE_RED.name(),
                                         "outline_width": "0.6", "outline_width_unit": "MM"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))
    layer.triggerRepaint()


def confidence_symbol(layer: QgsVectorLayer, color: QColor):
    """Polygons: the colour as outline over a see-through fill; points: a filled circle outlined in black."""
    if layer.geometryType() == QgsWkbTypes.PointGeometry:
        return QgsMarkerSymbol.createSimple({"name": "circle", "color": color.name(), "size": "2.6",
                                             "outline_color": "35,35,35", "outline_width": "0.2"})
    return QgsFillSymbol.createSimple({"color": f"{color.red()},{color.green()},{color.blue()},70",
                                       "outline_color": color.name(), "outline_width": "0.6",
                                       "outline_width_unit": "MM"})


def style_confidence(layer: QgsVectorLayer) -> None:
    """Categorized on the `confidence` field: low, medium and high each in its colour, as in report.html."""
    categories = [QgsRendererCategory(level, confidence_symbol(layer, color), level)
                  for level, color in CONFIDENCE_COLORS.items()]
    layer.setRenderer(QgsCategorizedSymbolRenderer(CONFIDENCE_FIELD, categories))
    layer.triggerRepaint()


def style_unmapped(layer: QgsVectorLayer) -> None:
    """Categorized on the `reason` field, each reason in grey (UNMAPPED_STYLES), outlined in grey."""
    categories = [QgsRendererCategory(reason, QgsFillSymbol.createSimple({**fill, "outline_color": "96,96,96",
                                                                          "outline_width": "0.3",
                                                                          "outline_width_unit": "MM"}), reason)
                  for reason, fill in UNMAPPED_STYLES.items()]
    layer.setRenderer(QgsCategorizedSymbolRenderer(UNMAPPED_FIELD, categories))
    layer.triggerRepaint()


def place_under_its_file(layer, project) -> None:
    """Move the layer's node below the other layers of its file in the layer tree (QGIS puts each loaded layer on
    top): the unmapped areas under the landslides, which stay visible."""
    root = project.layerTreeRoot() if project is not None else None
    node = root.findLayer(layer.id()) if root is not None else None
    if node is None:
        return
    parent, source = node.parent(), layer.source().split("|")[0]
    layers = [(index, child) for index, child in enumerate(parent.children()) if QgsLayerTree.isLayer(child)]
    own = next(index for index, child in layers if child.layerId() == layer.id())
    same_file = [index for index, child in layers if child.layerId() != layer.id() and child.layer() is not None
                 and child.layer().source().split("|")[0] == source]
    if same_file and own < max(same_file):
        parent.insertChildNode(max(same_file) + 1, node.clone())
        parent.removeChildNode(node)


STYLES = {"probability": style_probability, "mask": style_mask, "polygons": style_polygons,
          "confidence": style_confidence, "unmapped": style_unmapped}
UNDERLAYS = {"unmapped"}  # styles whose layers go under the other layers of their file


class OutputStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles a Processing output once QGIS has loaded it into the project."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS's name
        if layer is not None and layer.isValid():
            STYLES[self.kind](layer)
            if self.kind in UNDERLAYS:
                place_under_its_file(layer, context.project())


# A context owns its layers' post-processors and deletes each when it ends (one shared by two layers, or by two runs,
# would be deleted twice: QGIS crashes), while QGIS calls the Python method through the Python object: each layer
# gets its own styler, and the Python objects are kept for the session.
STYLERS: list = []


def style_when_loaded(context, path: str, kind: str) -> None:
    """Give the output at `path` its style when Processing loads it (the dialog and runAndLoadResults do)."""
    if context.willLoadLayerOnCompletion(path):
        STYLERS.append(OutputStyler(kind))
        context.layerToLoadOnCompletionDetails(path).setPostProcessor(STYLERS[-1])
