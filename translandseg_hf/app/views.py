"""What the page shows of a run: the image with the landslides outlined, the probability map with a colour bar, and
a line of counts. Every picture is read decimated, so a scene of any size shows in a bounded time."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageFilter

from ..geo.map_files.derived import decimated_band, polygons_raster
from ..geo.map_files.quicklook import OUTLINE_COLOR, outline, quicklook_shape
from ..inference import SceneReader
from ..inference.options import DEFAULT_MIN_PIXELS

PROBABILITY_COLORMAP = "magma"  # perceptually uniform, and the red outline of the other view is not in it


def display_rgb(reader: SceneReader, side: int) -> np.ndarray:
    """(h, w, 3) uint8 of the scene, as the model's contract reads it, decimated to at most `side` px."""
    shape = quicklook_shape(reader.height, reader.width, side)
    return reader.read_rgb(out_shape=shape).transpose(1, 2, 0).astype(np.uint8)


def outlined(rgb: np.ndarray, polygons_path: Path, mask_path: Path) -> np.ndarray:
    """(h, w, 3) uint8: the image with the counted landslides outlined in red, 3 px wide to show when scaled down."""
    inside = polygons_raster(polygons_path, mask_path, rgb.shape[:2])  # (h, w)
    edges = Image.fromarray(outline(inside).astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))
    picture = rgb.copy()
    picture[np.asarray(edges) > 0] = OUTLINE_COLOR
    return picture


def probability_picture(probability_path: Path, shape: tuple[int, int], threshold: float) -> np.ndarray:
    """(H, W, 3) uint8: the probability map (no data blank) beside a colour bar marking the threshold."""
    probability = np.ma.masked_invalid(decimated_band(probability_path, shape))  # (h, w)
    height, width = shape
    figure = Figure(figsize=(6.8, 6.0 * height / max(width, height)), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    shown = axes.imshow(probability, cmap=PROBABILITY_COLORMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
    axes.set_axis_off()
    bar = figure.colorbar(shown, ax=axes, fraction=0.05, pad=0.02)
    bar.set_label(f"landslide probability (line: threshold {threshold:g})")
    bar.ax.axhline(threshold, color="cyan", linewidth=2)
    buffer = BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return np.asarray(Image.open(buffer).convert("RGB"))


def area_text(area: float, unit: str) -> str:
    if unit == "m2":
        return f"{area:,.0f} m² ({area / 10_000:,.2f} ha)"
    return f"{area:,.0f} {unit}"


def summary_markdown(count: int, total_area: float, unit: str, threshold: float, min_area, header) -> str:
    """The counts line the page shows (the browser test reads the number of landslides from it)."""
    smallest = f"{DEFAULT_MIN_PIXELS} pixels (the default)" if min_area is None else area_text(min_area, unit)
    where = "m² in the scene's projected CRS" if unit == "m2" else (
        "pixels: the image has no projected CRS" if unit == "pixels" else unit)
    return (f"**{count} landslide{'s' if count != 1 else ''}**, total area **{area_text(total_area, unit)}**\n\n"
            f"Threshold {threshold:g}; polygons of at least {smallest}. Areas in {where}. "
            f"Scene {header.width} x {header.height} px, mapped in {header.tiles} tile(s) of {header.tile_size} px.")
