"""A whole scene's bands read small: what fitting a percentile stretch or checking a value range needs."""

from __future__ import annotations

from typing import Sequence

import numpy as np

OVERVIEW_SIDE = 1024  # the decimated read: about a million pixels, whatever the scene's size


def decimated_read(dataset, bands: Sequence[int]) -> np.ma.MaskedArray:
    """(C, h, w) masked values of `bands` of an open rasterio dataset, decimated by GDAL to about OVERVIEW_SIDE on
    the longer side."""
    factor = max(1, int(np.ceil(max(dataset.height, dataset.width) / OVERVIEW_SIDE)))
    shape = (len(bands), max(1, dataset.height // factor), max(1, dataset.width // factor))
    return dataset.read(list(bands), out_shape=shape, masked=True)
