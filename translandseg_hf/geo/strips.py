"""One way to walk a raster in strips of whole rows, for every streamed read and write: bounded memory on scenes of
any size, whatever each caller's row count."""

from __future__ import annotations

from typing import Iterator


def strips(height: int, rows: int) -> Iterator[tuple[int, int]]:
    """(top, row count) of each strip of `rows` rows down a raster `height` rows high; the last may be shorter."""
    for top in range(0, height, rows):
        yield top, min(rows, height - top)
