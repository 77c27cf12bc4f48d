"""Registers ATL in PEFT's mapping tables, which (unlike `register_peft_method`) accept string types."""

from __future__ import annotations

from peft.mapping import (
    PEFT_TYPE_TO_CONFIG_MAPPING,
    PEFT_TYPE_TO_PREFIX_MAPPING,
    PEFT_TYPE_TO_TUNER_MAPPING,
)

from .config import ATL_PEFT_TYPE, ATLConfig
from .model import ATLModel


def register_atl() -> None:
    """Make `get_peft_model`, `PeftConfig.from_pretrained` and `PeftModel.from_pretrained` know the `ATL` type.

    `peft.utils.register_peft_method` refuses names outside PEFT's closed `PeftType` enum, so this writes the same
    three tables it writes. `tests/atl/test_atl.py` fails loudly if a PEFT release changes them.
    """
    registered = PEFT_TYPE_TO_TUNER_MAPPING.get(ATL_PEFT_TYPE)
    if registered is not None and registered is not ATLModel:
        raise KeyError(f"PEFT already has a method registered as {ATL_PEFT_TYPE!r}: {registered}.")
    PEFT_TYPE_TO_CONFIG_MAPPING[ATL_PEFT_TYPE] = ATLConfig
    PEFT_TYPE_TO_TUNER_MAPPING[ATL_PEFT_TYPE] = ATLModel
    PEFT_TYPE_TO_PREFIX_MAPPING[ATL_PEFT_TYPE] = ATLModel.prefix
