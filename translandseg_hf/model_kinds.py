"""Every kind of landslide model in one table: the name a configuration chooses, the name the paper prints, the
saved format that holds it and, for a CNN baseline, the network class that builds it.

Classes are named as "module:Name" and imported when used (as transformers' auto mappings do), so that `--help`
and config parsing stay fast and this module imports nothing of the package. The trainer's builders, the baselines'
network factory, the loader of saved folders (`auto`) and the check of saved configs read this table; a new kind is a
row here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class SavedFormat:
    """How a saved model folder is recognised and loaded."""

    identifying_file: str  # present in a saved folder of this format, and in no other format's
    model_class: str  # "module:Name" of the SegmentationModel whose `from_pretrained` loads the folder
    config_class: Optional[str] = None  # "module:Name" of the dataclass the identifying JSON file is checked against


@dataclass(frozen=True)
class ModelKind:
    """A model a run can train."""

    name: str  # what a configuration or a command names
    display_name: str  # how the paper's tables print it
    saved_as: str  # its key in SAVED_FORMATS
    network: Optional[str] = None  # "module:Name" of a baseline's network class (called with smp's arguments)


# Looked for in this order: an exported folder is recognised as ONNX first (it is run by onnxruntime, not torch).
SAVED_FORMATS = {
    "onnx": SavedFormat("model.onnx", "translandseg_hf.onnx_backend.runtime:OnnxSegmentationModel"),
    "translandseg": SavedFormat("adapter_config.json", "translandseg_hf.modeling_translandseg:TransLandSegModel",
                                "translandseg_hf.atl.config:ATLConfig"),
    "baseline": SavedFormat("baseline_config.json",
                            "translandseg_hf.baselines.modeling_baseline:BaselineSegmentationModel",
                            "translandseg_hf.baselines.modeling_baseline:BaselineConfig"),
}

KINDS = (
    ModelKind("translandseg", "TransLandSeg", "translandseg"),
    ModelKind("unet", "UNet", "baseline", "segmentation_models_pytorch:Unet"),
    ModelKind("deeplabv3plus", "DeepLabv3+", "baseline", "segmentation_models_pytorch:DeepLabV3Plus"),
    ModelKind("pspnet", "PSPNet", "baseline", "segmentation_models_pytorch:PSPNet"),
    ModelKind("ccnet", "CCNet", "baseline", "translandseg_hf.baselines.ccnet:CCNet"),
)

MODEL_KINDS = tuple(kind.name for kind in KINDS)
BASELINE_MODELS = tuple(kind.name for kind in KINDS if kind.saved_as == "baseline")
DISPLAY_NAMES = {kind.name: kind.display_name for kind in KINDS}
SAVED_CONFIG_CLASSES = {saved.identifying_file: saved.config_class for saved in SAVED_FORMATS.values()
                        if saved.config_class}


def model_kind(name: str) -> ModelKind:
    """The row of `name`, or a ValueError listing the kinds."""
    for kind in KINDS:
        if kind.name == name:
            return kind
    raise ValueError(f"Unknown model kind {name!r}; valid ones are {list(MODEL_KINDS)}.")


def import_named(dotted: str) -> Any:
    """The object a "module:Name" string names, imported now."""
    module, name = dotted.split(":")
    return getattr(importlib.import_module(module), name)
