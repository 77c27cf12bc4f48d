"""translandseg_hf: landslide segmentation by adapter-tuning SAM (TransLandSeg, Hou et al. 2024)."""

from .atl import PRESETS, ATLConfig, ATLModel
from .modeling_translandseg import TransLandSegModel, TransLandSegOutput

__all__ = ["PRESETS", "ATLConfig", "ATLModel", "TransLandSegModel", "TransLandSegOutput"]
