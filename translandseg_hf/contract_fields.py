"""The fields of a model's input contract (`preprocessor_config.json`) and the rules they obey, without torch: the
image processor and the loader of saved contracts (`saved_contract`) check a contract by these same rules, and
`translandseg stack` loads one without importing torch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Optional

import numpy as np

SCALES = ("none", "divisor", "percentile")
PREPROCESSOR_CONFIG = "preprocessor_config.json"
MAX_TILE_SIDE = 2**15  # px: SAM takes 1024, the largest training tiles a few thousand; more is a broken contract
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # transformers' IMAGENET_DEFAULT_MEAN / _STD, without importing transformers
IMAGENET_STD = (0.229, 0.224, 0.225)
# Every field and its default: `TransLandSegImageProcessor`'s parameters.
DEFAULTS = dict(bands=(1, 2, 3), scale="none", divisor=10000.0, percentiles=(2.0, 98.0), image_mean=IMAGENET_MEAN,
                image_std=IMAGENET_STD, input_size=1024, tile_size=None, ground_resolution=None, band_names=None,
                band_mean=(), band_std=(), sensor=None, product_level=None, sensor_bands=None, sensor_divisors=None)


def listed(name: str, values) -> list:
    """A contract's list field as a list; a number or a string where a list belongs names the field."""
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Iterable):
        raise ValueError(f"field {name}: expected a list, got {values!r}.")
    return list(values)


def number(name: str, value, kind: type = float):
    """A contract's number as `kind`, or a ValueError naming the field (a string, a list, true/false, null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"field {name}: expected a number, got {value!r}.")
    if kind is int and not (np.isfinite(value) and float(value).is_integer()):
        raise ValueError(f"field {name}: expected a whole number, got {value!r}.")
    return kind(value)


def text(name: str, value) -> Optional[str]:
    """A contract's optional name (sensor, product level): a string or None."""
    if value is not None and not isinstance(value, str):
        raise ValueError(f"field {name}: expected a string or null, got {value!r}.")
    return value


def numbers(name: str, values, kind: type = float) -> list:
    return [number(name, value, kind) for value in listed(name, values)]


def names(name: str, values) -> Optional[list[str]]:
    return None if values is None else [str(value) for value in listed(name, values)]


def check_finite(name: str, values) -> None:
    """NaN or infinity in a contract's field (JSON's NaN and Infinity literals parse as floats) is refused."""
    values = [] if values is None else values if isinstance(values, list) else [values]
    if not all(np.isfinite(value) for value in values):
        raise ValueError(f"field {name}: every value must be a finite number, got {values}.")


def coerce(values: Mapping) -> dict:
    """Every field of `values` (defaults for those missing) in its type; a ValueError names a field of a wrong type."""
    v = {**DEFAULTS, **{name: values[name] for name in DEFAULTS if name in values}}
    return dict(
        bands=numbers("bands", v["bands"], int), scale=v["scale"], divisor=number("divisor", v["divisor"]),
        percentiles=numbers("percentiles", v["percentiles"]), image_mean=numbers("image_mean", v["image_mean"]),
        image_std=numbers("image_std", v["image_std"]),
        input_size=(size := number("input_size", v["input_size"], int)),
        tile_size=size if v["tile_size"] is None else number("tile_size", v["tile_size"], int),
        ground_resolution=None if v["ground_resolution"] is None else number("ground_resolution",
                                                                               v["ground_resolution"]),
        band_names=names("band_names", v["band_names"]), band_mean=numbers("band_mean", v["band_mean"]),
        band_std=numbers("band_std", v["band_std"]), sensor=text("sensor", v["sensor"]),
        product_level=text("product_level", v["product_level"]), sensor_bands=names("sensor_bands", v["sensor_bands"]),
        sensor_divisors=None if v["sensor_divisors"] is None else numbers("sensor_divisors", v["sensor_divisors"]),
    )


def check(c: Mapping) -> None:
    """The rules a contract's coerced fields obey together; a ValueError says which is broken."""
    bands = c["bands"]
    if len(bands) < 3 or any(band < 1 for band in bands):
        raise ValueError(f"bands must be three or more 1-based band numbers (R, G, B first), got {bands}.")
    extra = len(bands) - 3
    if len(c["band_mean"]) != extra or len(c["band_std"]) != extra or any(s <= 0 for s in c["band_std"]):
        raise ValueError(f"band_mean and band_std need one value per extra band ({extra}), with std > 0; got "
                         f"{len(c['band_mean'])} and {len(c['band_std'])}.")
    if c["band_names"] is not None and len(c["band_names"]) != len(bands):
        raise ValueError(f"band_names needs one name per band ({len(bands)}), got {len(c['band_names'])}.")
    if c["scale"] not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {c['scale']!r}.")
    if c["divisor"] <= 0:
        raise ValueError(f"divisor must be positive, got {c['divisor']}.")
    low_high = c["percentiles"]
    if len(low_high) != 2 or not 0 <= low_high[0] < low_high[1] <= 100:
        raise ValueError(f"percentiles must be low, high with 0 <= low < high <= 100, got {low_high}.")
    if c["input_size"] < 1 or c["tile_size"] < 1:
        raise ValueError(f"input_size and tile_size must be positive, got {c['input_size']}, {c['tile_size']}.")
    for name in ("sensor_bands", "sensor_divisors"):
        if c[name] is not None and len(c[name]) != len(bands):
            raise ValueError(f"{name} needs one value per band ({len(bands)}), got {len(c[name])}.")
    if c["sensor_divisors"] is not None and any(d <= 0 for d in c["sensor_divisors"]):
        raise ValueError(f"sensor_divisors must be positive, got {c['sensor_divisors']}.")
    if c["ground_resolution"] is not None and c["ground_resolution"] <= 0:
        raise ValueError(f"ground_resolution must be positive metres per pixel, got {c['ground_resolution']}.")
    check_numbers(c)


def check_numbers(c: Mapping) -> None:
    """Values a hand-edited or hostile contract could break silently: a NaN or zero std or divisor turns every
    pixel into NaN, and the map into "no landslide"; an absurd tile side allocates without end."""
    for name in ("divisor", "ground_resolution"):
        check_finite(name, c[name])
    for name in ("percentiles", "image_mean", "image_std", "band_mean", "band_std", "sensor_divisors"):
        check_finite(name, c[name])
    if len(c["image_mean"]) != 3 or len(c["image_std"]) != 3 or min(c["image_std"]) <= 0:
        raise ValueError(f"field image_mean, image_std: three values each (R, G, B), every std above 0; got "
                         f"{c['image_mean']} and {c['image_std']}.")
    for name in ("input_size", "tile_size"):
        if c[name] > MAX_TILE_SIDE:
            raise ValueError(f"field {name}: {c[name]} px is more than {MAX_TILE_SIDE} px, no model's "
                             "input or training tile.")


def checked(values: Mapping) -> dict:
    """`values`' fields coerced and checked (defaults for those missing)."""
    fields = coerce(values)
    check(fields)
    return fields
