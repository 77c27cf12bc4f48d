"""A scene's band values -> 8-bit pixels, as the model's contract says: as they are, a divisor, or a percentile
stretch fitted on a decimated read of the whole scene."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..image_processing import LinearScaler, TransLandSegImageProcessor

OVERVIEW_SIDE = 1024  # the decimated read for percentiles: about a million pixels, whatever the scene's size


def fit_scaler(dataset, bands: Sequence[int], processor: TransLandSegImageProcessor) -> LinearScaler:
    """The contract's scaler for `bands` of an open rasterio dataset."""
    if processor.scale != "percentile":
        return processor.fixed_scaler()
    return processor.fit_percentiles([band.compressed() for band in decimated_read(dataset, bands)])


def decimated_read(dataset, bands: Sequence[int]) -> np.ma.MaskedArray:
    """(C, h, w) masked values of `bands`, decimated by GDAL to about OVERVIEW_SIDE on the longer side."""
    factor = max(1, int(np.ceil(max(dataset.height, dataset.width) / OVERVIEW_SIDE)))
    shape = (len(bands), max(1, dataset.height // factor), max(1, dataset.width // factor))
    return dataset.read(list(bands), out_shape=shape, masked=True)
