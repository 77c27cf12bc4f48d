"""Landslide maps re-derived from a run's probability raster: a new threshold or minimum area gives a new mask,
polygons and counts without running the model again."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import rasterio
from pyogrio.raw import read as read_layer
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from ..inference.polygons import area_unit, write_polygons
from ..inference.quicklook import write_mask_png
from ..inference.reading import open_raster

MASK_NODATA = 255  # as `translandseg predict` writes masks: 0 and 1 are classes
STRIP_ROWS = 1024  # rows thresholded at once: bounded memory on scenes of any size


@dataclass
class Maps:
    """One threshold's downloads (mask GeoTIFF, mask PNG for plain images, GeoJSON, GPKG) and their summary."""

    threshold: float
    min_area: Optional[float]  # in `unit`; None: `translandseg predict`'s default of 4 pixels
    files: dict[str, Path]
    count: int
    total_area: float
    unit: str  # m2 where projected, else pixels


def summarise(geojson: Path) -> tuple[int, float]:
    """The number of landslide polygons and their total `area`, as the downloaded GeoJSON holds them."""
    _, _, _, fields = read_layer(geojson, columns=["area"], read_geometry=False)
    areas = fields[0] if fields else np.zeros(0)
    return len(areas), float(np.sum(areas))


def maps_from_outputs(outputs: dict[str, Path], threshold: float, min_area: Optional[float]) -> Maps:
    """The maps `predict_file` wrote (keys "mask", "mask_png", "geojson", "gpkg"), summarised."""
    files = {name: Path(outputs[name]) for name in ("mask", "mask_png", "geojson", "gpkg") if name in outputs}
    count, total = summarise(files["geojson"])
    with open_raster(files["mask"]) as dataset:
        unit = area_unit(dataset.crs)
    return Maps(threshold, min_area, files, count, total, unit)


def threshold_mask(probability: np.ndarray, threshold: float) -> np.ndarray:
    """(h, w) uint8: 1 above the threshold, 0 below, MASK_NODATA where the probability is NaN (no data)."""
    return np.where(np.isnan(probability), MASK_NODATA, probability > threshold).astype(np.uint8)


def derive_maps(probability: Path, template: Maps, threshold: float, min_area: Optional[float], folder: Path) -> Maps:
    """Threshold `probability` strip by strip into a mask shaped like `template`'s (CRS, transform, compression),
    polygonise it and summarise: the files keep `template`'s names, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / path.name for name, path in template.files.items()}
    with open_raster(probability) as source, open_raster(template.files["mask"]) as old_mask:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain images: pixel coordinates intended
            mask = rasterio.open(files["mask"], "w", **old_mask.profile)
        with mask:
            for top in range(0, source.height, STRIP_ROWS):
                window = Window(0, top, source.width, min(STRIP_ROWS, source.height - top))
                mask.write(threshold_mask(source.read(1, window=window), threshold), 1, window=window)
    write_polygons(files["mask"], files["geojson"], files["gpkg"], min_area)
    if "mask_png" in files:
        write_mask_png(files["mask"], files["mask_png"])
    count, total = summarise(files["geojson"])
    return Maps(threshold, min_area, files, count, total, template.unit)
