"""Overview levels of an output raster, built while its strips are written: GDAL's COG driver would otherwise read the
whole full-resolution raster again, once the model is done, to compute them (half of the COG step's time).

Each level halves the previous one (2 x 2 blocks: the mean of the valid values for float maps, the top-left pixel for
the mask), down to one 256 px block, as GDAL's COG driver does by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
from rasterio.windows import Window

from ..cog import COG_BLOCK as BLOCK  # overviews stop once a level fits in one block


def overview_factors(height: int, width: int, block: int = BLOCK) -> list[int]:
    """[2, 4, ...]: the decimation factors GDAL's COG driver makes by default for a raster of this size."""
    factors, factor = [], 1
    while max(-(-height // factor), -(-width // factor)) > block:
        factor *= 2
        factors.append(factor)
    return factors


def halve_mean(block: np.ndarray) -> np.ndarray:
    """(h, w) float -> (ceil(h/2), ceil(w/2)): the mean of each 2 x 2 block's non-NaN values (NaN if it has none)."""
    height, width = block.shape
    if height % 2 or width % 2:
        block = np.pad(block, ((0, height % 2), (0, width % 2)), constant_values=np.nan)
    corners = (block[0::2, 0::2], block[0::2, 1::2], block[1::2, 0::2], block[1::2, 1::2])
    if not np.isnan(block).any():  # the common case, four strided adds
        return ((corners[0] + corners[1]) + (corners[2] + corners[3])) * block.dtype.type(0.25)
    valid = [~np.isnan(corner) for corner in corners]
    values = [np.where(ok, corner, 0.0).astype(block.dtype) for ok, corner in zip(valid, corners)]
    total = (values[0] + values[1]) + (values[2] + values[3])  # the order of the common case: equal results
    count = sum(ok.astype(block.dtype) for ok in valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / count).astype(block.dtype)


def halve_nearest(block: np.ndarray) -> np.ndarray:
    """(h, w) -> (ceil(h/2), ceil(w/2)): the top-left pixel of each 2 x 2 block (classes stay classes)."""
    return block[::2, ::2]


class HalvingLevel:
    """One overview level: takes column blocks of the finer level's rows, strip by strip top to bottom, and writes
    their halves. A strip with an odd number of rows leaves its last row for the next strip."""

    def __init__(self, dataset, halve: Callable[[np.ndarray], np.ndarray], source_height: int, source_width: int):
        self.dataset, self.halve = dataset, halve
        self.source_height, self.source_width = source_height, source_width
        self.strip_row: Optional[int] = None  # first source row of the strip being received
        self.carry: Optional[np.ndarray] = None  # (1, W) source row left over by the previous strip
        self.next_carry: Optional[np.ndarray] = None

    def add(self, row: int, col: int, block: np.ndarray) -> Optional[tuple[int, int, np.ndarray]]:
        """(h, w) source values at source (row, col), `col` even; the halved (row, col, values) written, or None."""
        if row != self.strip_row:  # a new strip: the previous one's odd last row joins it
            self.strip_row, self.carry, self.next_carry = row, self.next_carry, None
        if self.carry is not None:
            block = np.concatenate([self.carry[:, col : col + block.shape[1]], block])
            row -= 1
        if len(block) % 2:
            if self.next_carry is None:
                self.next_carry = np.empty((1, self.source_width), dtype=block.dtype)
            self.next_carry[:, col : col + block.shape[1]] = block[-1:]
            block = block[:-1]
        return self._write(row // 2, col // 2, self.halve(block)) if len(block) else None

    def flush(self) -> Optional[tuple[int, int, np.ndarray]]:
        """The source's last row, if left over (an odd height): halved on its own."""
        carry, self.next_carry, self.strip_row = self.next_carry, None, None
        return None if carry is None else self._write((self.source_height - 1) // 2, 0, self.halve(carry))

    def _write(self, row: int, col: int, values: np.ndarray) -> tuple[int, int, np.ndarray]:
        self.dataset.write(values, 1, window=Window(col, row, values.shape[1], values.shape[0]))
        return row, col, values


class OverviewPyramid:
    """Every overview level of one raster, each a work GeoTIFF at `paths[i]` (made by `open_level(path, h, w)`),
    fed with the full-resolution blocks as they are written."""

    def __init__(self, paths: list[Path], height: int, width: int, average: bool, open_level):
        self.levels, self.paths = [], list(paths)
        halve = halve_mean if average else halve_nearest
        for path in self.paths:
            level_height, level_width = -(-height // 2), -(-width // 2)
            self.levels.append(HalvingLevel(open_level(path, level_height, level_width), halve, height, width))
            height, width = level_height, level_width

    def add(self, row: int, col: int, block: np.ndarray) -> None:
        """(h, w) full-resolution values at (row, col); `col` a multiple of 2 ** levels (as column blocks are)."""
        if col % 2 ** len(self.levels):
            raise ValueError(f"a block at column {col} cannot be halved {len(self.levels)} times into whole pixels; "
                             f"blocks must start at multiples of {2 ** len(self.levels)}.")
        pass_down((row, col, block), self.levels)

    def close(self) -> None:
        """Halve the left-over last rows, then close every level (all of them, even if halving failed)."""
        try:
            for index, level in enumerate(self.levels):
                pass_down(level.flush(), self.levels[index + 1 :])
        finally:
            for level in self.levels:
                level.dataset.close()

    @property
    def datasets(self):
        return [level.dataset for level in self.levels]


def pass_down(written: Optional[tuple[int, int, np.ndarray]], levels: list[HalvingLevel]) -> None:
    """Feed what a level wrote to the next coarser one, and so on, until a level has nothing to pass on."""
    for level in levels:
        if written is None:
            return
        written = level.add(*written)
