"""Tile grids and seamless blending: overlapping tile logits averaged under a smooth window, one strip at a time."""

from __future__ import annotations

import numpy as np


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
    """Tile starts along one axis, from -overlap // 2 (reflect-padded context at the border) until `length` is covered."""
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
    """Accumulates weighted tile logits for one row of tiles and hands back the scene rows no later tile touches.

    Only a (tile, width) accumulator lives in memory, however tall the scene; the weights are separable, so their sums
    are two 1-D arrays rather than a second scene-sized buffer.
    """

    def __init__(self, height: int, width: int, tile: int, overlap: int, channels: int = 1):
        self.height, self.width, self.tile, self.channels = height, width, tile, channels
        self.window = blending_window(tile, overlap)
        self.row_origins = tile_origins(height, tile, overlap)
        self.col_origins = tile_origins(width, tile, overlap)
        self.row_sums = window_sums(height, self.row_origins, self.window)  # (H,)
        self.col_sums = window_sums(width, self.col_origins, self.window)  # (W,)
        self.window_2d = np.outer(self.window, self.window).astype(np.float32)  # (T, T)
        self.accumulator = np.zeros((channels, tile, width), dtype=np.float32)  # scene rows [top, top + T)
        self.top = self.row_origins[0]

    def add(self, row_origin: int, col_origin: int, logits: np.ndarray) -> None:
        """Add one tile's (T, T) logits (or (K, T, T) values), whose top-left corner sits at scene pixel
        (row_origin, col_origin)."""
        if row_origin != self.top:
            raise ValueError(f"tile row {row_origin} added while the strip at row {self.top} is open.")
        lo, hi = max(col_origin, 0), min(col_origin + self.tile, self.width)
        weighted = logits.reshape(self.channels, self.tile, self.tile) * self.window_2d  # (K, T, T)
        self.accumulator[:, :, lo:hi] += weighted[:, :, lo - col_origin : hi - col_origin]

    def finish_row(self, next_origin: int | None) -> tuple[int, np.ndarray]:
        """Close the current tile row: (first scene row, (h, W) blended logits, or (K, h, W) values) of the rows now
        final."""
        stop = next_origin if next_origin is not None else self.top + self.tile
        done = stop - self.top
        lo, hi = max(self.top, 0), min(stop, self.height)
        weights = np.outer(self.row_sums[lo:hi].astype(np.float32), self.col_sums.astype(np.float32))  # (h, W)
        blended = self.accumulator[:, lo - self.top : hi - self.top] / weights
        self.accumulator[:, : self.tile - done] = self.accumulator[:, done:].copy()  # shift up in place
        self.accumulator[:, self.tile - done :] = 0.0
        self.top = stop
        return lo, blended[0] if self.channels == 1 else blended

    @property
    def tile_count(self) -> int:
        return len(self.row_origins) * len(self.col_origins)
