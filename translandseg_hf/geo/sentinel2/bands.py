"""Sentinel-2's bands, and Landslide4Sense's value scale in terms of them.

Landslide4Sense patches are neither reflectance nor digital numbers: each of the 14 channels is the sensor value
divided by a fixed per-band constant, published by the dataset's authors (iarai/Landslide4Sense-2022, issues #2
and #4). The channels are B1-B12 (B8A left out, B10 kept) at 10 m, then slope (degrees) and elevation (metres).
"""

from __future__ import annotations

import re
from typing import Optional

SENSOR = "Sentinel-2 MSI"
# Every band of the MSI, in the products' order (band_id 0-12 in the product metadata), at its native resolution.
BAND_RESOLUTION = {"B1": 60, "B2": 10, "B3": 10, "B4": 10, "B5": 20, "B6": 20, "B7": 20, "B8": 10, "B8A": 20,
                   "B9": 60, "B10": 60, "B11": 20, "B12": 20}
SENTINEL2_BANDS = tuple(BAND_RESOLUTION)
TERRAIN_CHANNELS = ("slope", "dem")  # from a DEM: slope in degrees (Horn's method) and elevation in metres
LANDSLIDE4SENSE_CHANNELS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12", "slope", "dem")
# Sensor value (digital number without the baseline-04.00 offset; degrees; metres) / divisor = the dataset's value.
LANDSLIDE4SENSE_DIVISORS = (
    1111.81236406, 824.63171476, 663.41636217, 445.17289745, 645.8582926, 1547.73508126, 1960.44401001,
    1941.32229668, 674.07572865, 9.04787384, 1113.98338755, 519.90397929, 20.29228266, 772.83144788,
)  # fmt: skip
# The product level the dataset used: it keeps B10, which L2A products drop, and its band means are top of atmosphere.
LANDSLIDE4SENSE_LEVEL = "L1C"
LEVEL_VALUES = {"L1C": "top of atmosphere", "L2A": "surface reflectance"}  # what each product level's values are
_BAND_NAME = re.compile(r"(?:^|[_\-. ])B(0?[1-9]|1[0-2]|8A)(?:$|[_\-. ])", re.IGNORECASE)


def canonical_band(name: str) -> Optional[str]:
    """'B04', 'b4', 'T45RUL_20230101T045209_B04_10m' -> 'B4'; 'B8A' stays; None when no band name is in it."""
    match = _BAND_NAME.search(str(name))
    if match is None:
        return None
    number = match.group(1).upper()
    return "B8A" if number == "8A" else f"B{int(number)}"


def landslide4sense_source(channels) -> dict:
    """The contract's sensor fields for Landslide4Sense channels (0-based indices into its 14): which real band each
    channel is, its divisor, and the product level."""
    channels = [int(c) for c in channels]
    return dict(sensor=SENSOR, product_level=LANDSLIDE4SENSE_LEVEL,
                sensor_bands=[LANDSLIDE4SENSE_CHANNELS[c] for c in channels],
                sensor_divisors=[LANDSLIDE4SENSE_DIVISORS[c] for c in channels])


def landslide4sense_channels(contract: dict) -> Optional[list[int]]:
    """The Landslide4Sense channels (0-based) of a contract saved before contracts named their sensor: one with the
    dataset's scaling, 128 px patches and 10 m, whose band names are L4S's (14-band models) or whose bands are 4,3,2
    without names (RGB models); None for any other contract."""
    signature = (contract.get("scale"), contract.get("divisor"), contract.get("tile_size"),
                 contract.get("ground_resolution"))
    if signature != ("divisor", 10.0, 128, 10.0):
        return None
    names = [name.lower() for name in LANDSLIDE4SENSE_CHANNELS]
    band_names = contract.get("band_names")
    if band_names is not None and all(str(name).lower() in names for name in band_names):
        return [names.index(str(name).lower()) for name in band_names]
    if band_names is None and list(contract.get("bands", ())) == [4, 3, 2]:
        return [3, 2, 1]
    return None
