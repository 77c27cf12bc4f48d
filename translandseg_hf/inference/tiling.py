"""Tile grids and seamless blending: overlapping tile logits averaged under a smooth window, one strip at a time; what
a tile shows the model outside the scene's valid pixels (`fill_outside_valid`)."""

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


def window_rows(lo: int, hi: int, origins: list[int], window: np.ndarray) -> tuple[slice, np.ndarray]:
    """The tiles along one axis that reach pixels [lo, hi), as a slice of `origins`, and (tiles, hi - lo) their 1-D
    windows there (0 outside a tile): a tile's 2-D weight is the outer product of its row and column windows."""
    first = int(np.searchsorted(np.asarray(origins) + len(window), lo, side="right"))
    last = int(np.searchsorted(origins, hi, side="left"))
    matrix = np.zeros((max(last - first, 0), hi - lo), dtype=np.float64)
    for row, origin in enumerate(origins[first:last]):
        start, stop = max(origin, lo), min(origin + len(window), hi)
        matrix[row, start - lo : stop - lo] = window[start - origin : stop - origin]
    return slice(first, last), matrix


def fill_outside_valid(tiles: np.ndarray, valid: np.ndarray, neutral: np.ndarray) -> None:
    """Fill (B, C, T, T) model pixels in place where their (B, T, T) `valid` is False, so that a tile at a nodata
    collar shows the model what a tile at the scene's border shows it (numpy's reflect padding), not a black band
    whose edge becomes a seam where the next tile no longer sees it.

    Each nodata pixel takes the valid pixel mirrored across the nearest valid pixel of its row (that nearest pixel
    where the mirror is not valid); rows without a valid pixel then do the same along their column; a tile with no
    valid pixel at all shows `neutral` (C,), the pixel the model normalises to 0. Each tile is filled from its own
    pixels, so the fill does not depend on how tiles are batched.
    """
    filled = reflect_along_last_axis(tiles, valid)  # along rows
    filled = reflect_along_last_axis(tiles.swapaxes(-1, -2), filled.swapaxes(-1, -2)).swapaxes(-1, -2)  # columns
    empty = ~filled.any(axis=(-2, -1))  # (B,) tiles without a valid pixel
    tiles[empty] = np.asarray(neutral, dtype=tiles.dtype)[:, None, None]


def reflect_along_last_axis(pixels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(B, C, H, W) pixels, in place: each invalid pixel of a row with a valid one takes the pixel mirrored across the
    row's nearest valid pixel, or that pixel where the mirror is outside the row or invalid. Returns (B, H, W): the
    pixels that now hold a value (`valid`, and every pixel of a row that had a valid one)."""
    width = valid.shape[-1]
    cols = np.arange(width)
    left = np.maximum.accumulate(np.where(valid, cols, -1), axis=-1)  # nearest valid at or left of each pixel
    right = np.minimum.accumulate(np.where(valid, cols, width)[..., ::-1], axis=-1)[..., ::-1]  # at or right
    nearest = np.where((left >= 0) & ((right >= width) | (cols - left <= right - cols)), left, right)
    nearest = np.minimum(nearest, width - 1)  # rows without a valid pixel: not used below
    mirror = 2 * nearest - cols
    inside = (mirror >= 0) & (mirror < width)
    mirror = np.clip(mirror, 0, width - 1)
    mirrored = inside & np.take_along_axis(valid, mirror, axis=-1)
    source = np.where(valid, cols, np.where(mirrored, mirror, nearest))  # (B, H, W) column each pixel comes from
    filled = valid | (left >= 0) | (right < width)
    source = np.where(filled, source, cols)
    pixels[...] = np.take_along_axis(pixels, np.broadcast_to(source[:, None], pixels.shape), axis=-1)
    return filled


class StripBlender:
    """Accumulates weighted tile logits, tile by tile in reading order, and hands back each column block of scene
    rows as soon as no later tile touches it.

    Only the blocks under the tiles being added live in memory, and the `overlap` rows the next tile row shares with
    this one: memory does not grow with the scene's height, and hardly with its width. A tile's weight is its row
    window times its column window times its own `weight`, so a block's weight sums are a product of small matrices
    (`window_rows`) rather than a second scene-sized buffer.
    """

    def __init__(self, height: int, width: int, tile: int, overlap: int, channels: int = 1,
                 block: int = COLUMN_BLOCK):
        self.height, self.width, self.tile, self.channels, self.block = height, width, tile, channels, block
        self.overlap = overlap
        self.window = blending_window(tile, overlap)
        self.row_origins = tile_origins(height, tile, overlap)
        self.col_origins = tile_origins(width, tile, overlap)
        self.tile_weights = np.ones((len(self.row_origins), len(self.col_origins)))  # (rows, cols) of tiles
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

    def add(self, row_origin: int, col_origin: int, logits: np.ndarray, weight: float = 1.0
            ) -> list[tuple[int, int, np.ndarray]]:
        """Add one tile's (T, T) logits (or (K, T, T) values), whose top-left corner sits at scene pixel
        (row_origin, col_origin), in reading order; returns (first scene row, first column, (K, h, w) blended values)
        for each column block this tile made final (all the rest of the strip after its last tile). `weight` (> 0)
        scales the tile's window: a tile that saw mostly nodata counts little beside one that saw the data."""
        expected = (self.top, self.col_origins[self.added])
        if (row_origin, col_origin) != expected:
            raise ValueError(f"tile at {(row_origin, col_origin)} added where the tile at {expected} comes next.")
        lo, hi = max(col_origin, 0), min(col_origin + self.tile, self.width)
        self.tile_weights[self.row_index, self.added] = weight
        weighted = logits.reshape(self.channels, self.tile, self.tile) * (self.window_2d * np.float32(weight))
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
        rows, row_windows = window_rows(lo, hi, self.row_origins, self.window)  # (r, h)
        cols, col_windows = window_rows(col, col + sums.shape[2], self.col_origins, self.window)  # (c, w)
        weights = row_windows.T @ self.tile_weights[rows, cols] @ col_windows  # (h, w): every tile's weight there
        shared = sums[:, stop - self.top : stop - self.top + self.carry.shape[1]]  # none after the last tile row
        self.carry[:, : shared.shape[1], col : col + sums.shape[2]] = shared
        return lo, col, sums[:, lo - self.top : hi - self.top] / weights.astype(np.float32)

    @property
    def tile_count(self) -> int:
        return grid_tile_count(self.height, self.width, self.tile, self.overlap)


def grid_tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    """Tiles in the grid over a height x width scene (as `StripBlender` lays them), without building one."""
    return len(tile_origins(height, tile, overlap)) * len(tile_origins(width, tile, overlap))
