"""Tile grids and seamless blending: overlapping tile logits averaged under a smooth window, one strip at a time."""

from __future__ import annotations

import numpy as np

from ..geo.map_files import COLUMN_BLOCK


def blending_window(size: int, overlap: int) -> np.ndarray:
    """(size,) weights: 1 in the middle, a cosine ramp over `overlap` px at each end, never exactly zero.

    Two neighbouring tiles' ramps sum to 1 across their overlap, so the blend is a crossfade without seams; a weight
    above zero at the very edge keeps a scene border pixel, seen by one tile only, defined.
    """
    window = np.ones(size, dtype=np.float64)
    if overlap > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(overlap) + 0.5) / overlap)  # (overlap,), in (0, 1)
        window[:overlap] = np.minimum(window[:overlap], ramp)
        window[size - overlap :] = np.minimum(window[size - overlap :], ramp[::-1])
    return window


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along one axis, from -overlap // 2 (reflect-padded context at the border) until `length` is
    covered."""
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile size {tile}), got {overlap}.")
    stride = tile - overlap
    start = -(overlap // 2)
    count = max(1, int(np.ceil((length - start - tile) / stride)) + 1)
    return [start + index * stride for index in range(count)]


def window_sums(length: int, origins: list[int], window: np.ndarray) -> np.ndarray:
    """(length,) sum of the 1-D window over every tile: the 2-D weight sum is the outer product of two of these."""
    sums = np.zeros(length, dtype=np.float64)
    for origin in origins:
        lo, hi = max(origin, 0), min(origin + len(window), length)
        sums[lo:hi] += window[lo - origin : hi - origin]
    return sums


class StripBlender:
    """Accumulates weighted tile logits, tile by tile in reading order, and hands back each column block of scene
    rows as soon as no later tile touches it.

    Only the blocks under the tiles being added live in memory, and the `overlap` rows the next tile row shares with
    this one: memory does not grow with the scene's height, and hardly with its width. The weights are separable, so
    their sums are two 1-D arrays rather than a second scene-sized buffer.
    """

    def __init__(self, height: int, width: int, tile: int, overlap: int, channels: int = 1,
                 block: int = COLUMN_BLOCK):
        self.height, self.width, self.tile, self.channels, self.block = height, width, tile, channels, block
        self.overlap = overlap
        self.window = blending_window(tile, overlap)
        self.row_origins = tile_origins(height, tile, overlap)
        self.col_origins = tile_origins(width, tile, overlap)
        self.row_sums = window_sums(height, self.row_origins, self.window)  # (H,)
        self.col_sums = window_sums(width, self.col_origins, self.window)  # (W,)
        self.window_2d = np.outer(self.window, self.window).astype(np.float32)  # (T, T)
        self.row_index = 0  # the open tile row
        self.top = self.row_origins[0]
        self.added = 0  # tiles added to the open tile row
        self.open: dict[int, np.ndarray] = {}  # column block index -> (K, T, w) sums of scene rows [top, top + T)
        self.carry = np.zeros((channels, overlap, width), dtype=np.float32)  # the next tile row's first rows

    @property
    def stop(self) -> int:
        """The first scene row the next tile row also covers: rows above it are final once this row is added."""
        following = self.row_index + 1
        return self.row_origins[following] if following < len(self.row_origins) else self.top + self.tile

    def add(self, row_origin: int, col_origin: int, logits: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
        """Add one tile's (T, T) logits (or (K, T, T) values), whose top-left corner sits at scene pixel
        (row_origin, col_origin), in reading order; returns (first scene row, first column, (K, h, w) blended values)
        for each column block this tile made final (all the rest of the strip after its last tile)."""
        expected = (self.top, self.col_origins[self.added])
        if (row_origin, col_origin) != expected:
            raise ValueError(f"tile at {(row_origin, col_origin)} added where the tile at {expected} comes next.")
        lo, hi = max(col_origin, 0), min(col_origin + self.tile, self.width)
        weighted = logits.reshape(self.channels, self.tile, self.tile) * self.window_2d  # (K, T, T)
        for index in range(lo // self.block, (hi - 1) // self.block + 1):
            start = index * self.block
            cut = slice(max(lo, start), min(hi, start + self.block))
            self._block(index)[:, :, cut.start - start : cut.stop - start] += weighted[
                :, :, cut.start - col_origin : cut.stop - col_origin]
        self.added += 1
        last = self.added == len(self.col_origins)
        final_before = self.width if last else max(self.col_origins[self.added], 0)  # no later tile reaches left of it
        done = [self._finish(index) for index in sorted(self.open) if min((index + 1) * self.block, self.width)
                <= final_before]
        if last:
            self.top, self.added, self.row_index = self.stop, 0, self.row_index + 1
        return [block for block in done if block[2].shape[1]]  # none when a large overlap finishes no row

    def _block(self, index: int) -> np.ndarray:
        """The open accumulator of column block `index`, started from the rows the previous tile row left."""
        if index not in self.open:
            cols = slice(index * self.block, min((index + 1) * self.block, self.width))
            self.open[index] = np.zeros((self.channels, self.tile, cols.stop - cols.start), dtype=np.float32)
            self.open[index][:, : self.carry.shape[1]] = self.carry[:, :, cols]
        return self.open[index]

    def _finish(self, index: int) -> tuple[int, int, np.ndarray]:
        """Blend column block `index`'s final rows, keep the rows the next tile row shares, close the block."""
        sums, col = self.open.pop(index), index * self.block
        stop = self.stop
        lo = max(self.top, 0)
        hi = max(lo, min(stop, self.height))  # an overlap over 2/3 of the tile can end the first row above 0
        weights = self.row_sums[lo:hi, None].astype(np.float32) * self.col_sums[None, col : col + sums.shape[2]]
        shared = sums[:, stop - self.top : stop - self.top + self.carry.shape[1]]  # none after the last tile row
        self.carry[:, : shared.shape[1], col : col + sums.shape[2]] = shared
        return lo, col, sums[:, lo - self.top : hi - self.top] / weights.astype(np.float32)

    @property
    def tile_count(self) -> int:
        return grid_tile_count(self.height, self.width, self.tile, self.overlap)


def grid_tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    """Tiles in the grid over a height x width scene (as `StripBlender` lays them), without building one."""
    return len(tile_origins(height, tile, overlap)) * len(tile_origins(width, tile, overlap))
