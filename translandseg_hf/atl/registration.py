"""Registers ATL with PEFT through `register_peft_method`, under the `PeftType.ATL` member (`peft_type.py`)."""

from __future__ import annotations

from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING
from peft.utils import register_peft_method

from .config import ATL_PEFT_TYPE, ATLConfig
from .model import ATLModel


def register_atl() -> None:
    """Make `get_peft_model`, `PeftConfig.from_pretrained` and `PeftModel.from_pretrained` know the `ATL` type; once.

    Not mixed-compatible: `get_peft_model(..., mixed=True)` refuses ATL with PEFT's own message, as for PEFT's
    methods outside `PeftMixedModel`'s list. `tests/atl/test_peft_integration.py` fails if a PEFT release changes this.
    """
    registered = PEFT_TYPE_TO_TUNER_MAPPING.get(ATL_PEFT_TYPE)
    if registered is ATLModel:
        return
    if registered is not None:
        raise KeyError(f"PEFT already has a method registered as {ATL_PEFT_TYPE.value!r}: {registered}.")
    register_peft_method(name=ATL_PEFT_TYPE.value.lower(), config_cls=ATLConfig, model_cls=ATLModel)
