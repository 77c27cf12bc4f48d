"""The `config.json` of a saved landslide model: what transformers' `AutoConfig` reads to recognise the folder.

It describes, it does not rebuild: the files of the model's kind (`adapter_config.json`, `baseline_config.json`) and
its contract (`preprocessor_config.json`) are what a loader reads. transformers picks classes by `model_type`, so
this one type lets `AutoConfig`, `AutoModel`, `AutoImageProcessor` and `pipeline("image-segmentation", ...)` know
the folder once the package is imported (`auto.register_with_transformers`).
"""

from __future__ import annotations

from typing import Optional, Sequence

from transformers import PreTrainedConfig

MODEL_TYPE = "translandseg"
LANDSLIDE = "landslide"  # the one class a model maps; the label pipelines report
LABELS = {0: "background", 1: LANDSLIDE}
LOADER = "TransLandSegModel.from_pretrained"  # named by every refusal of a route that cannot load the folder
INSTALL_HINT = ("the folder is a translandseg-hf model: install the package (pip install translandseg-hf) and "
                f"`import translandseg_hf` before loading it with transformers or PEFT, or load it with {LOADER}")


class TransLandSegConfig(PreTrainedConfig):
    r"""
    Args:
        image_size (`int`): side of the square input the model takes.
        num_channels (`int`): input channels: 3 (RGB) plus any extra bands.
        architectures (`list[str]`): the package class that loads the folder (`TransLandSegModel`,
            `BaselineSegmentationModel`).
    Labels are `{0: "background", 1: "landslide"}`: one landslide probability per pixel.
    """

    model_type = MODEL_TYPE

    def __init__(self, image_size: int = 1024, num_channels: int = 3, architectures: Optional[Sequence[str]] = None,
                 **kwargs):
        kwargs.setdefault("id2label", dict(LABELS))
        kwargs.setdefault("label2id", {label: index for index, label in LABELS.items()})
        super().__init__(architectures=list(architectures or ["TransLandSegModel"]), **kwargs)
        self.image_size = image_size
        self.num_channels = num_channels
