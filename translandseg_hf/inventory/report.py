"""report.html: an event's inventory on one self-contained page that opens offline and can be mailed as one file.
Figures are PNG data: URIs, the style is inline and there is no script, so nothing is fetched; every value shown is
HTML-escaped, since event names, scene ids and records come from users and catalogues."""

from __future__ import annotations

import base64
import json
from html import escape
from io import BytesIO
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..io_utils import atomic_write_text
from .unmapped import NO_POST, NO_PRE, REASONS

# Outline colours by confidence, an ordinal ramp (yellow, orange, red) that reads as "surer" without a key; drawn in
# this order, so the surest outlines lie on top.
CONFIDENCE_COLORS = {"low": (255, 235, 59), "medium": (255, 145, 0), "high": (213, 0, 0)}
# Where the inventory is blind (`unmapped`), drawn under the outlines: no post-event value as a grey veil over the
# scene (cloud pixels are black in the quicklook, as is a dark scene: the veil tells them apart), no pre-event value
# as a hatch of a lighter grey, so the landslides there stay visible between its lines.
NO_POST_GREY, NO_POST_OPACITY = (150, 150, 150), 0.7
NO_PRE_GREY, HATCH_PERIOD, HATCH_WIDTH = (215, 215, 215), 6, 2  # px of the quicklook: a line every 6 px, 2 px wide
UNMAPPED_DRAWN = {NO_POST: "no post-event value (cloud, shadow, no scene, nodata)",
                  NO_PRE: "no pre-event value (new or old cannot be told)"}
QUICKLOOK_MIN_SIDE = 600  # a smaller quicklook is enlarged (nearest neighbour) so thin outlines stay visible
QUICKLOOK_MAX_SIDE = 2048  # a larger one is reduced (as predict's quicklook), so the page stays a few MB
LARGEST_SHOWN = 20
LARGEST_COLUMNS = ("id", "area_m2", "confidence", "probability_mean", "post_image_date", "pre_image_date",
                   "centroid_lon", "centroid_lat")
SCENE_COLUMNS = ("date", "role", "index", "id", "datetime", "platform")  # first when present; other keys follow
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } .event { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #ccc; } pre { margin: 0; white-space: pre-wrap; }
.swatch { display: inline-block; width: 1em; height: 1em; border: 1px solid #555; vertical-align: middle; }
.no-post { background: rgba(150, 150, 150, 0.7); }
.no-pre { background: repeating-linear-gradient(135deg, rgb(215, 215, 215) 0 2px, #fff 2px 6px); }
"""


def quicklook_with_polygons(rgb: np.ndarray, outlines_px: Sequence[np.ndarray], confidence: Sequence[str],
                            unmapped: Optional[dict[str, np.ndarray]] = None) -> bytes:
    """PNG of the AOI's RGB (H, W, 3 uint8) with each ring, (N, 2) as (col, row) pixel coordinates, outlined in
    its landslide's confidence colour, over the `unmapped` pixels ((H, W) bool by reason, `unmapped.unmapped_pixels`;
    None: none drawn) veiled or hatched in grey."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"the quicklook must be an (H, W, 3) uint8 array, not {rgb.dtype} of shape {rgb.shape}")
    if len(outlines_px) != len(confidence):
        raise ValueError(f"{len(outlines_px)} outlines but {len(confidence)} confidence values")
    unknown = sorted(set(confidence) - set(CONFIDENCE_COLORS))
    if unknown:
        raise ValueError(f"unknown confidence {unknown}; expected one of {list(CONFIDENCE_COLORS)}")
    side = max(rgb.shape[:2])
    scale = QUICKLOOK_MAX_SIDE / side if side > QUICKLOOK_MAX_SIDE else max(1, min(8, -(-QUICKLOOK_MIN_SIDE // side)))
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    image = Image.fromarray(rgb).resize(size, Image.NEAREST if scale >= 1 else Image.BOX)
    if unmapped:
        image = _with_unmapped(image, _checked_masks(unmapped, rgb.shape[:2]))
    draw = ImageDraw.Draw(image)
    order = list(CONFIDENCE_COLORS)
    for ring, level in sorted(zip(outlines_px, confidence), key=lambda pair: order.index(pair[1])):
        points = [(float(col) * scale, float(row) * scale) for col, row in np.asarray(ring, dtype=float)]
        if len(points) >= 2:
            draw.line(points + points[:1], fill=CONFIDENCE_COLORS[level], width=2)
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _checked_masks(unmapped: dict[str, np.ndarray], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    unknown = sorted(set(unmapped) - set(REASONS))
    if unknown:
        raise ValueError(f"unknown unmapped reasons {unknown}; expected some of {list(REASONS)}")
    masks = {reason: np.asarray(mask) for reason, mask in unmapped.items()}
    for reason, mask in masks.items():
        if mask.shape != shape:
            raise ValueError(f"the {reason!r} mask is {mask.shape}, not the quicklook's {shape}")
    return {reason: mask.astype(bool) for reason, mask in masks.items()}


def _with_unmapped(image: Image.Image, masks: dict[str, np.ndarray]) -> Image.Image:
    """`image` (the quicklook at its drawn size) with the unmapped pixels veiled (no post-event value) or hatched
    (no pre-event value); masks resized as the image was (nearest neighbour up, majority of the box down)."""
    pixels = np.array(image)
    rows, cols = np.indices(pixels.shape[:2])
    hatch = (rows + cols) % HATCH_PERIOD < HATCH_WIDTH
    for reason, mask in masks.items():
        reduced = image.size[0] < mask.shape[1]
        shown = Image.fromarray(mask.astype(np.uint8) * 255).resize(image.size, Image.BOX if reduced else Image.NEAREST)
        where = np.asarray(shown) >= 128
        if reason == NO_POST:
            veiled = pixels[where] * (1 - NO_POST_OPACITY) + np.array(NO_POST_GREY) * NO_POST_OPACITY
            pixels[where] = np.round(veiled).astype(np.uint8)
        else:
            pixels[where & hatch] = NO_PRE_GREY
    return Image.fromarray(pixels)


def _text(value: Any) -> str:
    """A value as escaped text: numbers rounded for reading, None as a dash, structures as JSON."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):  # 4 decimals: ~10 m for centroids in degrees; areas in whole m2
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if 0 < abs(value) < 0.01 else f"{round(value, 4):,}".removesuffix(".0")
    if isinstance(value, (dict, list, tuple)):
        return f"<pre>{escape(json.dumps(value, indent=1, default=str))}</pre>"
    return escape(str(value))


def _cell(value: Any) -> str:
    kind = ' class="number"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return f"<td{kind}>{_text(value)}</td>"


def _table(columns: Sequence[str], rows: Iterable[dict]) -> str:
    head = "".join(f"<th>{escape(column)}</th>" for column in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(column)) for column in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pairs(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{escape(str(name))}</th>{_cell(value)}</tr>" for name, value in pairs)
    return f"<table><tbody>{rows}</tbody></table>"


def _image(png: bytes, alt: str) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{escape(alt)}">'


def _statistics_section(statistics: dict, pre_event_given: bool) -> str:
    quantiles = statistics.get("area_quantiles", {})
    pairs = [("landslides", statistics.get("count")), ("total area (m²)", statistics.get("total_area_m2")),
             ("valid AOI (km²)", statistics.get("valid_area_km2")),
             ("landslides per km² of valid AOI", statistics.get("density_per_km2")),
             ("landslide area per km² of valid AOI (m²)", statistics.get("area_density")),
             *((f"area, {q}th percentile (m²)", value) for q, value in quantiles.items()),
             *((f"unmapped: {UNMAPPED_DRAWN[reason]}", described_area(*area))
               for reason, area in unmapped_areas(statistics, pre_event_given).items())]
    fit = statistics.get("power_law", {})
    if "alpha" in fit:
        pairs += [("power-law exponent alpha", fit["alpha"]), ("alpha's standard error", fit["alpha_sigma"]),
                  ("xmin: the tail starts at (m²)", fit["xmin_m2"]), ("landslides in the tail", fit["n_tail"]),
                  ("Kolmogorov-Smirnov distance", fit["ks_distance"]), ("estimator", fit["estimator"]),
                  ("library", fit.get("library"))]
    else:
        pairs.append(("power-law fit", fit.get("reason", "not fitted")))
    return "<h2>Statistics</h2>" + _pairs(pairs)


def unmapped_areas(statistics: dict, pre_event_given: bool) -> dict[str, tuple[Optional[float], float]]:
    """Where the inventory is blind, from statistics.json: reason -> (km2, None where not measured; share of the AOI).
    No pre-event value only where a pre-event date was given (with one date every pixel lacks one); statistics.json
    gives that share of the valid AOI, here of the AOI, as inventory.gpkg's `unmapped` layer gives it."""
    masked = float(statistics.get("masked_share") or 0.0)
    areas = {NO_POST: (statistics.get("masked_area_km2"), masked)}
    if pre_event_given:
        areas[NO_PRE] = (statistics.get("no_pre_event_area_km2"),
                         float(statistics.get("no_pre_event_share") or 0.0) * (1.0 - masked))
    return areas


def described_area(km2: Optional[float], share: float) -> str:
    """'1.23 km² (4.5% of the AOI)', or the share alone where the area was not measured."""
    return f"{_share(share)} of the AOI" if km2 is None else f"{_km2(km2)} km² ({_share(share)} of the AOI)"


def unmapped_lines(statistics: dict, pre_event_given: bool) -> list[str]:
    """The command line's summary of where the inventory is blind, one line per reason with any pixel:
    'unmapped: 1.23 km² without a post-event value (4.5% of the AOI)'."""
    return [f"unmapped: {'' if km2 is None else f'{_km2(km2)} km² '}{reason.replace('no ', 'without a ', 1)} "
            f"({_share(share)} of the AOI)"
            for reason, (km2, share) in unmapped_areas(statistics, pre_event_given).items() if share > 0]


def _km2(km2: float) -> str:
    return f"{km2:,.0f}" if km2 >= 1000 else f"{km2:.3g}"


def _share(share: float) -> str:
    """A share as a percentage; one under 0.1% that is not nothing reads '<0.1%', not '0.0%'."""
    return "<0.1%" if 0 < share < 0.001 else f"{share:.1%}"


def _largest(landslides: list[dict]) -> list[dict]:
    return sorted(landslides, key=lambda row: -(row.get("area_m2") or 0.0))[:LARGEST_SHOWN]


def _scene_columns(scenes: list[dict]) -> list[str]:
    keys = list(dict.fromkeys(key for scene in scenes for key in scene))
    return [column for column in SCENE_COLUMNS if column in keys] + [k for k in keys if k not in SCENE_COLUMNS]


def _legend(drawn: Iterable[str] = ()) -> str:
    """The outlines' colours, then a swatch for each unmapped reason drawn on the map."""
    outlines = " ".join(f'<span class="swatch" style="background: rgb{color}"></span> {escape(level)}'
                        for level, color in CONFIDENCE_COLORS.items())
    classes = {NO_POST: "no-post", NO_PRE: "no-pre"}
    blind = " ".join(f'<span class="swatch {classes[reason]}"></span> {escape(UNMAPPED_DRAWN[reason])}'
                     for reason in REASONS if reason in drawn)
    return outlines + (f"; over where the inventory is blind: {blind}" if blind else "")


def write_report(path, *, statistics: dict, landslides: list[dict], scenes: list[dict], event: dict,
                 quicklook_png: bytes, frequency_area_png: bytes, record: dict, pre_event_given: bool = True,
                 unmapped_drawn: Iterable[str] = ()) -> Path:
    """Write the page atomically (a reader never sees half a report) and return its path. `pre_event_given`: whether
    the areas without a pre-event value are shown; `unmapped_drawn`: the unmapped reasons the quicklook draws (its
    legend)."""
    path = Path(path)
    name = event.get("name") or "unnamed event"
    shown = _largest(landslides)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Landslide inventory: {escape(name)}</title>
<style>{STYLE}</style></head><body>
<h1>Landslide inventory: {escape(name)}</h1>
<p class="event">event date {_text(event.get("date"))} · trigger {_text(event.get("trigger"))}</p>
<h2>Map</h2><p>New landslides outlined by confidence: {_legend(unmapped_drawn)}</p>
{_image(quicklook_png, "the area of interest with the landslides outlined")}
<h2>Frequency-area distribution</h2>
{_image(frequency_area_png, "frequency-area distribution of the landslide areas with the fitted power-law tail")}
{_statistics_section(statistics, pre_event_given)}
<h2>Largest landslides</h2><p>The {len(shown)} largest of {len(landslides)}.</p>
{_table(LARGEST_COLUMNS, shown)}
<h2>Scenes used</h2>
{_table(_scene_columns(scenes), scenes) if scenes else "<p>No scene list (predictions mapped elsewhere).</p>"}
<h2>Run record</h2>
{_pairs(record.items())}
</body></html>
"""
    atomic_write_text(path, page)
    return path
