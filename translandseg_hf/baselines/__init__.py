"""The paper's CNN baselines (UNet, DeepLabv3+, PSPNet, CCNet) behind TransLandSegModel's interface."""

from .modeling_baseline import BASELINE_FILES, BaselineConfig, BaselineSegmentationModel
from .smp_models import BASELINE_MODELS, DISPLAY_NAMES, build_network

__all__ = ["BASELINE_FILES", "BASELINE_MODELS", "DISPLAY_NAMES", "BaselineConfig", "BaselineSegmentationModel",
           "build_network"]
