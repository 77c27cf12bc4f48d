"""The TransLandSeg metrics as an `evaluate` module: `evaluate.load(translandseg_hf.metrics.metric_path())` works
offline. Masks are checked to be 0/1 and counted by the package's `ConfusionCounter` in one pass over all pixels."""

import datasets
import evaluate
import pyarrow as pa
import pyarrow.compute as pc
import torch

from translandseg_hf.metrics import ConfusionCounter

_DESCRIPTION = """Binary landslide segmentation scores of Hou et al. 2024 (TransLandSeg): precision, recall and F1 as
means over background and landslide, overall accuracy, MIoU, landslide IoU, and the landslide-class precision, recall
and F1 (the Landslide4Sense competition score). Scores are fractions in [0, 1]."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: binary masks (H x W, values 0/1; ints, bools or floats), one per image. Probabilities are refused:
        threshold them first.
    references: ground-truth masks of the same shapes (0 = background, 1 = landslide). Masks holding other values
        (0/255 as PNGs store them) are refused: divide them by 255 first.
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
        info = evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    # float32, not uint8: a uint8 column truncated probabilities given as lists (0.7 -> 0) and
                    # wrapped negatives without a word; as floats every value reaches the 0/1 check in `pixels`.
                    "predictions": datasets.Sequence(datasets.Sequence(datasets.Value("float32"))),
                    "references": datasets.Sequence(datasets.Sequence(datasets.Value("float32"))),
                }
            ),
        )
        # `_compute` reads the stored masks as Arrow columns: as nested Python lists (the default) they took 7x the
        # package's counter (benchmarks/evaluate_metric.py). Set after the constructor, whose check that features
        # be plain values is for the numpy format.
        info.format = "arrow"
        return info

    def _compute(self, predictions: pa.ChunkedArray, references: pa.ChunkedArray):
        check_same_shapes(predictions, references)
        counter = ConfusionCounter()
        counter.update(pixels(predictions, "predictions"), pixels(references, "references"))
        return counter.scores()


def pixels(masks: pa.ChunkedArray, name: str) -> torch.Tensor:
    """Every pixel of a column of masks (list<list<float32>>), in one flat uint8 tensor; masks holding any value but 0
    and 1 (0/255, probabilities, NaN) are refused."""
    flat = pc.list_flatten(pc.list_flatten(masks)).combine_chunks()
    other = pc.filter(flat, pc.invert(pc.is_in(flat, value_set=pa.array([0.0, 1.0], pa.float32()))))
    if len(other):
        largest = pc.max(other).as_py()
        shown = f"largest {largest:g}" if largest > 1 else f"e.g. {other[0].as_py():g}"
        raise ValueError(f"landslide_segmentation_metric: {name} hold values other than 0 and 1 ({shown}): "
                         "masks are 0 (background) and 1 (landslide); divide 0/255 masks by 255 and threshold "
                         "probabilities first.")
    return torch.from_numpy(flat.to_numpy(zero_copy_only=False).astype("uint8"))


def check_same_shapes(predictions: pa.ChunkedArray, references: pa.ChunkedArray) -> None:
    """Each prediction has its reference's shape (its rows, and each row's length), as pixels are compared in order."""
    if row_lengths(predictions) == row_lengths(references):
        return
    for index, (prediction, reference) in enumerate(zip(predictions, references)):
        if mask_shape(prediction) != mask_shape(reference):
            raise ValueError(f"landslide_segmentation_metric: image {index}: predictions of shape "
                             f"{mask_shape(prediction)} and references of shape {mask_shape(reference)} differ.")


def row_lengths(masks: pa.ChunkedArray) -> tuple[bytes, bytes]:
    """The number of rows of each mask and the length of each row, as bytes to compare whole columns at once."""
    rows = pc.list_value_length(masks)  # a ChunkedArray, as `masks` is
    widths = pc.list_value_length(pc.list_flatten(masks))
    return tuple(lengths.combine_chunks().to_numpy(zero_copy_only=False).tobytes() for lengths in (rows, widths))


def mask_shape(mask: pa.ListScalar) -> tuple:
    """(rows, columns) of one stored mask; rows of different lengths show as a tuple of lengths."""
    widths = [len(row) for row in mask.values] if mask.is_valid else []
    return (len(widths), widths[0] if len(set(widths)) == 1 else tuple(widths))
