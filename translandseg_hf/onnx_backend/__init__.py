"""Landslide models as ONNX graphs, run by ONNX Runtime: for mapping on CPUs, where the model is the whole cost.

`export` writes a folder (`model.onnx`, the model's contract, `onnx_config.json`) from any saved model;
`runtime.OnnxSegmentationModel` loads that folder and behaves as the scene engine expects of a model. The file names
and defaults live here, so that the command line names them without importing torch or onnxruntime.
"""

from ..lazy import lazy_exports
from ..model_kinds import SAVED_FORMATS

ONNX_MODEL = SAVED_FORMATS["onnx"].identifying_file  # model.onnx
ONNX_CONFIG = "onnx_config.json"  # what was exported: source model, input, opset, quantization, versions
DEFAULT_OPSET = 17  # LayerNormalization's first opset; what the exporter and onnxruntime 1.2x run well
QUANTIZATIONS = ("int8",)  # static with --calibration (calibration.py), else dynamic (quantize_dynamic)
MAX_CALIBRATION_TILES = 64  # tiles int8's ranges are fitted on: they settle after a few dozen tiles of one kind
MAX_CALIBRATION_SECONDS = 600.0  # calibration passes stop here: a bound on time whatever the model's size

_EXPORTS = {
    "export_onnx": "export",
    "OnnxSegmentationModel": "runtime",
}
__all__ = sorted([*_EXPORTS, "ONNX_MODEL", "ONNX_CONFIG", "DEFAULT_OPSET", "QUANTIZATIONS",
                  "MAX_CALIBRATION_TILES", "MAX_CALIBRATION_SECONDS"])


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
