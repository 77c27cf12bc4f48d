"""Landslide maps re-derived from a run's probability raster: a new threshold or minimum area gives a new mask,
polygons and counts without running the model again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..geo import write_cog
from ..geo.map_files.derived import polygon_summary, raster_crs, write_derived_mask
from ..geo.map_files.polygons import area_unit, file_points, polygon_crs, write_polygons
from ..geo.map_files.quicklook import write_mask_png
from ..geo.map_files.writing import LAYERS, MASK_NODATA
from ..io_utils import StagedFiles

STRIP_ROWS = 1024  # rows thresholded at once: bounded memory on any scene (a 10,980 px wide float32 strip: 45 MB)


@dataclass
class Maps:
    """One threshold's downloads (mask GeoTIFF, mask PNG for plain images, GeoJSON where the polygons have a CRS,
    GPKG) and their summary."""

    threshold: float
    min_area: Optional[float]  # in `unit`; None: `translandseg predict`'s default, DEFAULT_MIN_PIXELS pixels
    files: dict[str, Path]
    count: int
    total_area: float
    unit: str  # m2 where projected, else pixels

    @property
    def polygons(self) -> Path:
        """The polygons to hand over as one file: the GeoJSON, or the GPKG where there is none (pixel coordinates,
        which GeoJSON cannot state)."""
        return self.files.get("geojson", self.files["gpkg"])


def summarise(polygons: Path) -> tuple[int, float]:
    """The number of landslide polygons and their total `area`, as the downloaded file (GeoJSON or GPKG) holds
    them."""
    return polygon_summary(polygons)


def maps_from_outputs(outputs: dict[str, Path], threshold: float, min_area: Optional[float]) -> Maps:
    """The maps `predict_file` wrote (keys "mask", "mask_png", "geojson" where the polygons have a CRS, "gpkg"),
    summarised."""
    files = {name: Path(outputs[name]) for name in ("mask", "mask_png", "geojson", "gpkg") if name in outputs}
    count, total = summarise(files["gpkg"])
    crs = raster_crs(files["mask"])
    unit = area_unit(polygon_crs(crs, *file_points(files["mask"])))  # the polygons' CRS: the GCPs' for GCP scenes
    return Maps(threshold, min_area, files, count, total, unit)


def threshold_mask(probability: np.ndarray, threshold: float) -> np.ndarray:
    """(h, w) uint8: 1 above the threshold, 0 below, MASK_NODATA where the probability is NaN (no data)."""
    return np.where(np.isnan(probability), MASK_NODATA, probability > threshold).astype(np.uint8)


def derive_maps(probability: Path, template: Maps, threshold: float, min_area: Optional[float], folder: Path) -> Maps:
    """Threshold `probability` strip by strip, then polygonise and summarise as `translandseg predict` does (the
    mask a COG like its own, with the probabilities' georeferencing: CRS and transform, GCPs or RPCs); the files
    keep `template`'s names, in `folder`, and appear together, complete."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / path.name for name, path in template.files.items()}
    staged = StagedFiles()
    work = staged.scratch_for(files["mask"])  # compressed as the COG's tiles are (work_profile), then recompressed by
    # write_cog: unlike predict's, these tiles are not copied raw (cog_layout), a small cost on a uint8 mask
    try:
        write_derived_mask(probability, work, lambda strip: threshold_mask(strip, threshold), MASK_NODATA, STRIP_ROWS)
        geojson = staged.path_for(files["geojson"]) if "geojson" in files else None  # none in pixel coordinates
        write_polygons(work, geojson, staged.path_for(files["gpkg"]), min_area)
        if "mask_png" in files:
            write_mask_png(work, staged.path_for(files["mask_png"]))
        write_cog(work, staged.path_for(files["mask"]), "uint8", LAYERS["mask"][2])
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    count, total = summarise(files["gpkg"])
    return Maps(threshold, min_area, files, count, total, template.unit)
