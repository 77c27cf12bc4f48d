"""One loader for every kind of saved landslide model: the file that identifies the folder's format says which class
loads it (the formats are rows of `model_kinds.SAVED_FORMATS`, imported by name only when one is loaded, so that
`onnx_backend.export` can load a saved model without this module importing the export)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Optional

from .configuration_translandseg import LOADER, MODEL_TYPE, TransLandSegConfig
from .hub import PathOrRepoId, resolve_model_folder
from .model_kinds import SAVED_FORMATS, import_named

if TYPE_CHECKING:
    from .segmentation import SegmentationModel


def load_segmentation_model(path_or_repo_id: PathOrRepoId, revision: Optional[str] = None) -> "SegmentationModel":
    """A saved model of any kind, from a local folder or a Hub repository (read from the cache when offline):
    `onnx_backend.OnnxSegmentationModel` (run by onnxruntime, which only it imports) for a folder with `model.onnx`
    (`translandseg export`), `TransLandSegModel` for one with `adapter_config.json`, `BaselineSegmentationModel` for
    one with `baseline_config.json`."""
    identifying = [saved.identifying_file for saved in SAVED_FORMATS.values()]
    folder = resolve_model_folder(path_or_repo_id, "a saved landslide model", allow_patterns=identifying,
                                  revision=revision)
    for saved in SAVED_FORMATS.values():
        if (folder / saved.identifying_file).is_file():
            return import_named(saved.model_class).from_pretrained(path_or_repo_id, revision=revision)
    raise FileNotFoundError(f"{path_or_repo_id} holds none of {identifying}: it is not a saved landslide model.")


# ------------------------------------------------------------------------------------------ transformers' Auto classes
# The Auto model classes that know a landslide folder (its `config.json`, `configuration_translandseg`): each returns
# the model `load_segmentation_model` loads. Others refuse in transformers' words ("Unrecognized configuration class").
AUTO_MODEL_CLASSES = ("AutoModel", "AutoModelForImageSegmentation", "AutoModelForSemanticSegmentation")


class AutoLoadedSegmentationModel:
    """What transformers' Auto classes and `pipeline` call to load a landslide model folder (registered for
    `TransLandSegConfig`): `load_segmentation_model`, then the `dtype` and one-device `device_map` asked for, by
    `sam_loading`'s rules (both dtype names refused, "auto" device the accelerator, a per-module map refused).
    transformers' download arguments (`cache_dir`, `token`, ...) are not used: a Hub id is read from the default
    cache or the Hub, as `TransLandSegModel.from_pretrained` reads it."""

    config_class = TransLandSegConfig

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: PathOrRepoId, *model_args, revision: Optional[str] = None,
                        dtype: Any = None, torch_dtype: Any = None, device_map: Any = None,
                        **transformers_kwargs) -> "SegmentationModel":
        from .sam_loading import adjust_built_sam, sam_loading_options  # torch: only when a model is loaded

        if model_args:
            raise TypeError(f"{pretrained_model_name_or_path}: a landslide model takes no positional model arguments "
                            f"(got {len(model_args)}); load it with {LOADER}.")
        options = sam_loading_options(dtype, torch_dtype, device_map)  # both dtype names refused, as from_pretrained
        model = load_segmentation_model(pretrained_model_name_or_path, revision=revision)
        # the built model cast and moved by the rule a built SAM follows ("auto" dtype: as saved; one device)
        return adjust_built_sam(model, str(pretrained_model_name_or_path), **options)


# transformers' registration API, so that a folder needs no `trust_remote_code`. Each runs when transformers imports
# the module of its mapping (`translandseg_hf/__init__.py`) and imports no more than it needs, as transformers may
# still be importing the modules that imported the mapping's.
def register_config(configuration_auto) -> None:
    """`AutoConfig` reads a landslide folder's `config.json` as a `TransLandSegConfig`."""
    configuration_auto.AutoConfig.register(MODEL_TYPE, TransLandSegConfig, exist_ok=True)


def register_image_processor(image_processing_auto) -> None:
    """`AutoImageProcessor` reads a landslide folder's `preprocessor_config.json` as its contract."""
    from .image_processing import TransLandSegImageProcessor

    image_processing_auto.AutoImageProcessor.register(
        TransLandSegConfig, image_processor_classes={"pil": TransLandSegImageProcessor}, exist_ok=True)


def register_models(modeling_auto) -> None:
    """The `AUTO_MODEL_CLASSES` load a landslide folder (`AutoLoadedSegmentationModel`)."""
    for name in AUTO_MODEL_CLASSES:
        getattr(modeling_auto, name).register(TransLandSegConfig, AutoLoadedSegmentationModel, exist_ok=True)


REGISTRATIONS = {
    "transformers.models.auto.configuration_auto": register_config,
    "transformers.models.auto.image_processing_auto": register_image_processor,
    "transformers.models.auto.modeling_auto": register_models,
}


def register_with_transformers(module) -> None:
    """The registration for one of transformers' mapping modules (`REGISTRATIONS`), just imported."""
    REGISTRATIONS[module.__name__](module)


# Those transformers imported with this module (their hooks found it half loaded); one transformers is still importing
# fires its own hook once loaded.
for _name, _register in REGISTRATIONS.items():
    _module = sys.modules.get(_name)
    if _module is not None and not getattr(getattr(_module, "__spec__", None), "_initializing", False):
        _register(_module)
