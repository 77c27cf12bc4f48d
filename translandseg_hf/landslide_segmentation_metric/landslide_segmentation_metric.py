"""The TransLandSeg metrics as an `evaluate` module: `evaluate.load(translandseg_hf.metrics.metric_path())` works offline."""

import datasets
import evaluate
import numpy as np
import torch

from translandseg_hf.metrics import ConfusionCounter

_DESCRIPTION = """Binary landslide segmentation scores of Hou et al. 2024 (TransLandSeg): precision, recall and F1 as
means over background and landslide, overall accuracy, MIoU, landslide IoU, and the landslide-class precision, recall
and F1 (the Landslide4Sense competition score). Scores are fractions in [0, 1]."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: binary masks (H x W, values 0/1), one per image.
    references: ground-truth masks of the same shapes (0 = background, 1 = landslide).
Returns:
    precision, recall, f1, oa, miou, landslide_iou, landslide_precision, landslide_recall, landslide_f1.
Example:
    >>> metric = evaluate.load(translandseg_hf.metrics.metric_path())
    >>> metric.compute(predictions=[[[0, 1], [1, 1]]], references=[[[0, 1], [0, 1]]])["landslide_iou"]
    0.6666666666666666
"""

_CITATION = """@article{hou2024translandseg, title={TransLandSeg: A Transfer Learning Approach for Landslide Semantic
Segmentation Based on Vision Foundation Model}, author={Hou, Changhong and others}, journal={arXiv:2403.10127},
year={2024}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LandslideSegmentationMetric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Sequence(datasets.Value("uint8"))),
                    "references": datasets.Sequence(datasets.Sequence(datasets.Value("uint8"))),
                }
            ),
        )

    def _compute(self, predictions, references):
        counter = ConfusionCounter()
        for prediction, reference in zip(predictions, references):
            counter.update(torch.from_numpy(np.asarray(prediction)), torch.from_numpy(np.asarray(reference)))
        return counter.scores()
