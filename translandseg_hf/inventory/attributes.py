"""The attributes of each landslide: the fields of inventory.gpkg in their order (`FIELDS`), the confidence rule,
and per-landslide statistics of a raster over its pixels (a label array: 1..N, 0 outside).

Confidence (ordinal, from the post-event probability and, with --tta, its uncertainty, both averaged over the
landslide's pixels):
  high    probability_mean >= HIGH_PROBABILITY and (no uncertainty or uncertainty_mean <= HIGH_UNCERTAINTY)
  medium  probability_mean >= MEDIUM_PROBABILITY and (no uncertainty or uncertainty_mean <= MEDIUM_UNCERTAINTY)
  low     otherwise.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

HIGH_PROBABILITY, HIGH_UNCERTAINTY = 0.8, 0.1  # the model is sure, and its 8 flips and rotations agree (std)
MEDIUM_PROBABILITY, MEDIUM_UNCERTAINTY = 0.6, 0.2  # above the mask's 0.5 by a margin, flips within 0.2
CONFIDENCE = ("low", "medium", "high")

# Every field, in the layers' order, with its kind (int, float, bool, str); floats and strings may be null.
FIELDS = {
    "id": "int", "area_m2": "float", "perimeter_m": "float", "centroid_lon": "float", "centroid_lat": "float",
    "probability_mean": "float", "probability_max": "float", "uncertainty_mean": "float", "confidence": "str",
    "change_method": "str", "ndvi_pre": "float", "ndvi_post": "float", "pre_event_valid": "bool",
    "slope_mean_deg": "float", "slope_max_deg": "float", "elev_min_m": "float", "elev_max_m": "float",
    "post_image_date": "str", "pre_image_date": "str", "post_scene_id": "str", "pre_scene_id": "str",
    "sensor": "str", "event_name": "str", "event_date": "str", "trigger": "str", "model": "str",
    "model_revision": "str", "package_version": "str", "mapped_at": "str",
}  # fmt: skip

# What each field holds: name -> (unit, meaning), in FIELDS' order. The docs' field table is generated from it
# (docs/hooks/reference.py, `<!-- generated: inventory-fields -->`), so it cannot drift from the layers' schema.
FIELD_DOCS = {
    "id": ("", "The landslide's number in this inventory, 1..N from the top-left of the map; the same in both "
                "layers, not kept from one run to the next."),
    "area_m2": ("m²", "Area of the polygon (its outline follows pixel edges)."),
    "perimeter_m": ("m", "Perimeter of the polygon (along pixel edges, so longer than a smooth outline's)."),
    "centroid_lon": ("degrees", "Longitude (WGS 84) of the polygon's centroid (landslide_points' geometry, which is "
                                "in the map's CRS)."),
    "centroid_lat": ("degrees", "Latitude (WGS 84) of the polygon's centroid."),
    "probability_mean": ("0-1", "The post-event landslide probability, averaged over the landslide's pixels."),
    "probability_max": ("0-1", "The highest post-event probability among its pixels."),
    "uncertainty_mean": ("0-1", "With --tta: the standard deviation of the 8 flipped and rotated probabilities, "
                                "averaged over its pixels; null without --tta."),
    "confidence": ("", "low, medium or high, from probability_mean and uncertainty_mean (the confidence rule)."),
    "change_method": ("", "What made it new: probability, ndvi, both, or none (post-event map only); one per "
                          "inventory."),
    "ndvi_pre": ("-1 to 1", "Mean NDVI over its pixels before the event (null without pre-event imagery)."),
    "ndvi_post": ("-1 to 1", "Mean NDVI over its pixels after the event (null without post-event imagery)."),
    "pre_event_valid": ("", "True where every pixel had a valid pre-event value for the change method (for none: "
                            "a pre-event probability); false: kept with nothing before to compare it with (cloud, "
                            "no scene, outside the pre-event map, no pre-event maps)."),
    "slope_mean_deg": ("degrees", "Mean slope over its pixels, Horn's method as gdaldem slope (null without a DEM)."),
    "slope_max_deg": ("degrees", "Steepest slope among its pixels (null without a DEM)."),
    "elev_min_m": ("m", "Lowest DEM elevation among its pixels (null without a DEM)."),
    "elev_max_m": ("m", "Highest DEM elevation among its pixels (null without a DEM)."),
    "post_image_date": ("ISO 8601", "Acquisition time of the post-event scene most of its pixels came from "
                                    "(imagery.json), else the date given for the post-event image; null where "
                                    "neither is known (a composite of local files records no scene's date)."),
    "pre_image_date": ("ISO 8601", "The same for the pre-event scene (null without pre-event maps)."),
    "post_scene_id": ("", "Id (the STAC item's) of the post-event scene most of its pixels came from."),
    "pre_scene_id": ("", "Id of the pre-event scene most of its pixels came from."),
    "sensor": ("", "Platform of that post-event scene (e.g. sentinel-2a), else the model contract's sensor."),
    "event_name": ("", "The event's name as given (null when none was)."),
    "event_date": ("ISO 8601", "The event's day as given (YYYY-MM-DD)."),
    "trigger": ("", "What set the landslides off: earthquake, rainfall, snowmelt or unknown."),
    "model": ("", "The model that mapped both dates: its Hub id, or its folder's name (null: none named)."),
    "model_revision": ("", "The first 12 hex digits of a sha256 over the model's weight files (an ONNX graph's "
                           "external-data files included) and its contract (preprocessor_config.json): the same "
                           "weights and contract, the same revision."),
    "package_version": ("", "The translandseg-hf version that built the inventory (null when not installed)."),
    "mapped_at": ("ISO 8601", "When the inventory's build began (UTC, to the second)."),
}  # fmt: skip


def confidence(probability_mean: float, uncertainty_mean: Optional[float]) -> str:
    """'high', 'medium' or 'low' by the rule in this module's docstring (None or NaN uncertainty: none measured)."""
    unknown = uncertainty_mean is None or not np.isfinite(uncertainty_mean)
    if probability_mean >= HIGH_PROBABILITY and (unknown or uncertainty_mean <= HIGH_UNCERTAINTY):
        return "high"
    if probability_mean >= MEDIUM_PROBABILITY and (unknown or uncertainty_mean <= MEDIUM_UNCERTAINTY):
        return "medium"
    return "low"


def zonal(labels: np.ndarray, count: int, values: Optional[np.ndarray]) -> dict[str, np.ndarray]:
    """Per landslide 1..count: the mean, min and max of `values` over its pixels with a finite value (NaN where it
    has none, or where `values` is None), each (count,) float64."""
    nan = np.full(count, np.nan)
    if values is None:
        return {"mean": nan, "min": nan.copy(), "max": nan.copy()}
    inside = (labels > 0) & np.isfinite(values)
    index, picked = labels[inside] - 1, values[inside].astype(np.float64)
    number = np.bincount(index, minlength=count)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(index, weights=picked, minlength=count) / number
    low, high = np.full(count, np.inf), np.full(count, -np.inf)
    np.minimum.at(low, index, picked)
    np.maximum.at(high, index, picked)
    none = number == 0
    for array in (mean, low, high):
        array[none] = np.nan
    return {"mean": mean, "min": low, "max": high}


def majority(labels: np.ndarray, count: int, classes: Optional[np.ndarray]) -> list[Optional[int]]:
    """Per landslide 1..count: the class (a whole number >= 0; NaN = none) most of its pixels have, the lowest on a
    tie; None where none of its pixels has one. The table is landslides x the classes present, whatever their
    values; a negative or fractional class is refused."""
    if classes is None:
        return [None] * count
    inside = (labels > 0) & np.isfinite(classes)
    index, value = labels[inside] - 1, classes[inside]
    bad = value[(value < 0) | (value != np.floor(value))]
    if bad.size:
        raise ValueError(f"classes must be whole numbers >= 0, not {float(bad[0])!r}")
    present, column = np.unique(value.astype(np.int64), return_inverse=True)
    width = max(present.size, 1)
    table = np.bincount(index * width + column.ravel(), minlength=count * width).reshape(count, width)
    return [int(present[row.argmax()]) if row.any() else None for row in table]


def all_true(labels: np.ndarray, count: int, flags: np.ndarray) -> np.ndarray:
    """(count,) bool: whether every pixel of each landslide has the flag."""
    off = np.bincount(labels[(labels > 0) & ~flags] - 1, minlength=count)
    return off == 0


def scene_of(scenes: list[dict], index: Optional[int]) -> dict:
    """imagery.json's scene whose `index` is `index` ({} where there is none)."""
    if index is None:
        return {}
    for scene in scenes:
        if scene.get("index", -1) == index:
            return scene
    return {}


def date_fields(labels, count, source, scenes, given_date) -> tuple[list, list, list]:
    """Per landslide: the date (the scene's datetime, else the user-given date), the scene id and the platform of
    the scene most of its pixels came from (source.tif on the grid)."""
    chosen = [scene_of(scenes, index) for index in majority(labels, count, source)]
    return ([scene.get("datetime") or given_date for scene in chosen], [scene.get("id") for scene in chosen],
            [scene.get("platform") for scene in chosen])


def float_or_none(value) -> Optional[float]:
    return float(value) if value is not None and np.isfinite(value) else None
