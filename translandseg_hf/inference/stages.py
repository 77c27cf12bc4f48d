"""Where a scene's seconds go: each stage of the pipeline timed where it runs, in whichever thread.

The stages overlap (reading runs in one thread, the model in another, blending and writing in a third), so their sum
exceeds the wall time; `seconds_after_model` is the part no overlap hides.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

STAGES = {
    "read": "reading the scene's windows (GDAL decompresses them) and their validity",
    "scale": "raw values to the model's pixels: the contract's divisor, cut into tiles, nodata filled by reflection",
    "model": "the model: resizing to its input, normalising, the forward pass, resizing back",
    "blend": "weighting the tiles' logits and adding them into the strips",
    "write": "probabilities and masks into the work files and their overview levels",
    "polygons": "vectorising each block's mask, merging across blocks and writing GeoJSON / GeoPackage",
    "quicklook": "sampling pixels and masks for the quicklook and encoding its PNG",
    "cog": "the Cloud-Optimized GeoTIFFs made from the work files",
}


class StageClock:
    """Seconds per stage (`STAGES`), summed over the threads that run it; safe to use from any thread."""

    def __init__(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if stage not in self.seconds:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}.")
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.seconds[stage] += elapsed
