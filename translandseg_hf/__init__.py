"""translandseg_hf: landslide segmentation by adapter-tuning SAM (TransLandSeg, Hou et al. 2024)."""

from .atl import PRESETS, ATLConfig, ATLModel
from .modeling_translandseg import TransLandSegModel, TransLandSegOutput
from .segmentation import SegmentationModel, SegmentationOutput


def load_segmentation_model(path_or_repo_id, revision=None) -> SegmentationModel:
    """Any saved model of this package (TransLandSeg adapter or CNN baseline); see `translandseg_hf.auto`."""
    from .auto import load_segmentation_model as load  # the baselines need segmentation-models-pytorch: import late

    return load(path_or_repo_id, revision=revision)


__all__ = ["PRESETS", "ATLConfig", "ATLModel", "SegmentationModel", "SegmentationOutput", "TransLandSegModel",
           "TransLandSegOutput", "load_segmentation_model"]
