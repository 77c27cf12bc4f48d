"""translandseg_hf: landslide segmentation by adapter-tuning SAM (TransLandSeg, Hou et al. 2024).

Importing the package is cheap (commands answer `--help` without loading torch): the public names below load on
first use, the `ATL` PEFT type joins PEFT's tables the moment PEFT is imported, and transformers' Auto classes and
`pipeline("image-segmentation", ...)` learn the package's saved folders the moment transformers imports them, before
or after this package.
"""

import sys
from importlib import import_module

import wrapt

from .lazy import lazy_exports

_EXPORTS = {
    "PRESETS": "atl.presets",
    "ATLConfig": "atl",
    "ATLModel": "atl",
    "SegmentationModel": "segmentation",
    "SegmentationOutput": "segmentation",
    "TransLandSegImageProcessor": "image_processing",
    "TransLandSegModel": "modeling_translandseg",
    "TransLandSegOutput": "modeling_translandseg",
    "load_segmentation_model": "auto",
}
__all__ = list(_EXPORTS)


@wrapt.when_imported("peft")
def _register_atl_with_peft(peft_module) -> None:
    """`PeftModel.from_pretrained` on an ATL folder needs the ATL type in PEFT's tables. wrapt's post-import hook
    runs this at once when PEFT is already imported; where an ATL module is the one importing PEFT, the ATL package
    registers once its modules are loaded (`atl.register_when_loaded`)."""
    import_module(f"{__name__}.atl").register_when_loaded()


# transformers' Auto classes and `pipeline("image-segmentation", ...)` know a saved landslide folder (its config.json)
# once the module holding each mapping is imported, before or after this package: the submodule named here registers
# (`register_with_transformers`); one that is itself being imported registers with what is loaded by its last line.
_TRANSFORMERS_HOOKS = {
    "transformers.models.auto.configuration_auto": "auto",
    "transformers.models.auto.image_processing_auto": "auto",
    "transformers.models.auto.modeling_auto": "auto",
    "transformers.pipelines": "pipeline",
}


def _register_with_transformers(module) -> None:
    owner = f"{__name__}.{_TRANSFORMERS_HOOKS[module.__name__]}"
    if getattr(getattr(sys.modules.get(owner), "__spec__", None), "_initializing", False):
        return
    import_module(owner).register_with_transformers(module)


for _module_name in _TRANSFORMERS_HOOKS:
    wrapt.register_post_import_hook(_register_with_transformers, _module_name)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
