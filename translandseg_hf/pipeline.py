"""`transformers.pipeline("image-segmentation", model=FOLDER_OR_HUB_ID)` for landslide models, registered through
transformers' pipeline registry when `transformers.pipelines` is imported after `import translandseg_hf`, so a
saved folder needs no `trust_remote_code`.

The task's class becomes `LandslideSegmentationPipeline`, transformers' own `ImageSegmentationPipeline` unchanged for
every other model; its model classes are transformers' own, then `auto.AutoLoadedSegmentationModel`, which loads a
landslide folder or Hub id whatever config transformers read (a Hub adapter's config is its base SAM's).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from importlib import import_module
from typing import Any, Iterator

import numpy as np
from PIL import Image
from transformers.image_utils import load_image
from transformers.pipelines.image_segmentation import ImageSegmentationPipeline

from .auto import AutoLoadedSegmentationModel
from .configuration_translandseg import LANDSLIDE
from .segmentation import SegmentationModel, probability_map

TASK = "image-segmentation"


class LandslideSegmentationPipeline(ImageSegmentationPipeline):
    """transformers' image-segmentation pipeline; for a landslide model (a `SegmentationModel`), one segment per
    image: `[{"label": "landslide", "score": float, "mask": PIL.Image}]`.

    - `mask`: mode "L", 255 where the landslide probability exceeds `mask_threshold` (0.5, as `model.predict`), 0
      elsewhere, at the image's own size; all 0 where there is no landslide (the segment is always there).
    - `score`: the mean landslide probability inside the mask (0.0 for an empty mask): how sure the model is of the
      pixels it marked. `threshold` and `overlap_mask_area_threshold` filter instance segments: a landslide model
      gives one map per image and ignores them.
    - Images: a path or URL (read by transformers' `load_image`, as 8-bit RGB), a PIL image, or an (H, W), (H, W, 3)
      or (H, W, 4) array, scaled by the model's contract as `model.predict` scales it; a list of them is a batch.
      Multispectral models read their bands from rasters: `translandseg predict`.
    """

    def check_model_type(self, supported_models) -> None:
        if not isinstance(self.model, SegmentationModel):
            super().check_model_type(supported_models)

    def preprocess(self, image, subtask=None, timeout=None) -> dict[str, Any]:
        if not isinstance(self.model, SegmentationModel):
            return super().preprocess(image, subtask=subtask, timeout=timeout)
        if self.model.input_channels != 3:
            raise ValueError(f"{self.model.display_name} reads {self.model.input_channels} bands, which an image given "
                             "to a pipeline does not hold: map rasters with `translandseg predict`.")
        if isinstance(image, str):
            image = load_image(image, timeout=timeout)
        processor = self.model.image_processor  # the model's own contract (a Hub adapter's folder holds it)
        rgb = processor.rgb_pixels(image)  # (H, W, 3) in 0-255
        return {"pixel_values": processor.pixel_values_from_rgb([rgb]).to(self.dtype), "target_size": rgb.shape[:2]}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(self.model, SegmentationModel):
            return super()._forward(model_inputs)
        return {"logits": self.model(pixel_values=model_inputs["pixel_values"]).logits,
                "target_size": model_inputs["target_size"]}

    def postprocess(self, model_outputs, subtask=None, threshold=0.9, mask_threshold=0.5,
                    overlap_mask_area_threshold=0.5) -> list[dict[str, Any]]:
        if not isinstance(self.model, SegmentationModel):
            return super().postprocess(model_outputs, subtask, threshold, mask_threshold, overlap_mask_area_threshold)
        probabilities = probability_map(model_outputs["logits"][0], model_outputs["target_size"])
        inside = probabilities > mask_threshold
        score = float(probabilities[inside].mean()) if inside.any() else 0.0
        return [{"score": score, "label": LANDSLIDE, "mask": Image.fromarray(inside.astype(np.uint8) * 255)}]


def register_with_transformers(pipelines_module) -> None:
    """Make `LandslideSegmentationPipeline` the class of the `image-segmentation` task, keeping the task's model
    classes and default model, with `AutoLoadedSegmentationModel` tried last. Idempotent."""
    registry = pipelines_module.PIPELINE_REGISTRY
    current = registry.supported_tasks[TASK]
    if current["impl"] is LandslideSegmentationPipeline:
        return
    model_classes = tuple(current["pt"]) + (AutoLoadedSegmentationModel,)
    with overwrite_notice_silenced():
        registry.register_pipeline(TASK, pipeline_class=LandslideSegmentationPipeline, pt_model=model_classes,
                                   default=current.get("default"), type=current.get("type"))


class _DropOverwriteNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "already registered. Overwriting pipeline" not in record.getMessage()


@contextmanager
def overwrite_notice_silenced() -> Iterator[None]:
    """transformers warns "image-segmentation is already registered. Overwriting ..." on every registration; the
    subclass changes nothing for other models, so the warning would only alarm users at each import."""
    logger, notice = logging.getLogger("transformers.pipelines.base"), _DropOverwriteNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


register_with_transformers(import_module("transformers.pipelines"))  # loaded with this module, which registers
