"""The paper's CNN baselines (UNet, DeepLabv3+, PSPNet, CCNet) behind the shared segmentation interface."""

from ..model_kinds import BASELINE_MODELS, DISPLAY_NAMES
from .modeling_baseline import BASELINE_CONFIG, BASELINE_WEIGHTS, BaselineConfig, BaselineSegmentationModel
from .smp_models import build_network

__all__ = ["BASELINE_CONFIG", "BASELINE_MODELS", "BASELINE_WEIGHTS", "DISPLAY_NAMES", "BaselineConfig",
           "BaselineSegmentationModel", "build_network"]
