"""ATL (adaptive transfer learning) adapters as a PEFT method; importing this registers the `ATL` type with PEFT."""

from .config import ATL_PEFT_TYPE, PRESETS, STRUCTURE_FIELDS, ATLConfig, preset_name
from .layer import ATLAdapter, ATLEncoderLayer
from .model import ATLModel
from .registration import register_atl

__all__ = ["ATL_PEFT_TYPE", "PRESETS", "ATLAdapter", "ATLConfig", "ATLEncoderLayer", "ATLModel", "STRUCTURE_FIELDS",
           "preset_name", "register_atl"]

register_atl()
