"""ATL (adaptive transfer learning) adapters as a PEFT method. The names load on first use, so `atl.presets` (plain
data) loads no PEFT. The `ATL` type joins PEFT's tables once the ATL modules are loaded, whichever is imported
first, and when PEFT is imported after them (see `translandseg_hf/__init__.py`)."""

import sys
from importlib import import_module

import wrapt

from ..lazy import lazy_exports

_EXPORTS = {
    "ATL_PEFT_TYPE": "config",
    "ATLConfig": "config",
    "STRUCTURE_FIELDS": "config",
    "preset_name": "config",
    "PRESETS": "presets",
    "ATLAdapter": "layer",
    "ATLEncoderLayer": "layer",
    "ATLModel": "model",
    "register_atl": "registration",
}
__all__ = list(_EXPORTS)
_PEFT_MODULES = ("config", "layer", "model", "registration")  # the ATL modules that import PEFT


def register_when_loaded(loaded=None) -> None:
    """Register ATL with PEFT unless an ATL module other than `loaded` is half loaded (it imports PEFT, or is
    imported by another): the last of them to finish registers, so registration never imports a half-loaded one."""
    busy = [name for name, module in list(sys.modules.items())
            if name.startswith(f"{__name__}.") and module is not loaded
            and getattr(getattr(module, "__spec__", None), "_initializing", False)]
    if not busy:
        import_module(f"{__name__}.registration").register_atl()


for _name in _PEFT_MODULES:
    wrapt.register_post_import_hook(register_when_loaded, f"{__name__}.{_name}")


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
