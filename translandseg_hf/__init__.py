"""translandseg_hf: landslide segmentation by adapter-tuning SAM (TransLandSeg, Hou et al. 2024).

Importing the package is cheap (commands answer `--help` without loading torch): the public names below load on
first use, and the `ATL` PEFT type joins PEFT's tables the moment PEFT is imported, before or after this package.
"""

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
