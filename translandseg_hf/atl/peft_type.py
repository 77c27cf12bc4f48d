"""The `ATL` member of PEFT's `PeftType` enum.

PEFT's own code reads `config.peft_type.value` (`get_peft_model(..., mixed=True)`, `hotswap_adapter`, transformers'
`delete_adapter`) and `get_model_status()` prints `str(peft_type)` after its dot, so a plain string type crashes or
shows nothing there. `PeftType` is closed (a `str` enum with members cannot be subclassed) and
`register_peft_method` only accepts its members, so ATL adds one member to it, as `aenum.extend_enum` does.
Being a `str` enum member, `PeftType.ATL == "ATL"` and hashes as "ATL": saved configs and string lookups are unchanged.
"""

from __future__ import annotations

from peft.utils.peft_types import PeftType


def add_peft_type(name: str) -> PeftType:
    """PEFT's member `name` of `PeftType`, added (name == value, as PEFT's own are) if PEFT has none."""
    if name in PeftType.__members__:
        return PeftType[name]
    member = str.__new__(PeftType, name)
    member._name_ = name
    member._value_ = name
    member.__objclass__ = PeftType
    member._sort_order_ = len(PeftType._member_names_)
    type.__setattr__(PeftType, name, member)  # EnumType.__setattr__ refuses new members
    PeftType._member_map_[name] = member
    PeftType._value2member_map_[name] = member
    PeftType._member_names_.append(name)
    if isinstance(getattr(PeftType, "_hashable_values_", None), list):  # Python 3.13's list of values
        PeftType._hashable_values_.append(name)
    return member
