"""Which post-event landslide pixels are new: not explained by the pre-event state.

- `probability`: the post-event probability exceeds the pre-event one by `ChangeThresholds.probability_rise`.
- `ndvi`: vegetation was lost: the relative difference NDVI as HazMapper defines it (Scheip & Wegmann 2021,
  NHESS 21, 1495-1511), rdNDVI = (NDVI_post - NDVI_pre) / sqrt(NDVI_post + NDVI_pre) x 100, is at most
  `ChangeThresholds.rdndvi`. Where NDVI_post + NDVI_pre <= 0 (bare, water or snow both times) it is undefined, and
  no vegetation was there to lose.
- `both`: both show the change where both are valid, the valid one where only one is.
- `none`: every post-event landslide pixel (one date).
A post-event landslide pixel with no valid pre-event value for the method is kept, and flagged (`pre_valid` False).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

CHANGE_METHODS = ("probability", "ndvi", "both", "none")
RED_NIR = {"B4": "red", "B8": "near-infrared"}  # the bands NDVI needs, as contracts and composites name them


@dataclass(frozen=True)
class ChangeThresholds:
    """The cut-offs of the change rules.

    probability_rise: 0.3. A landslide on a slope that was vegetated goes from a low probability (0.0-0.2 on
        vegetation for the Landslide4Sense models) to one above the mask's 0.5; a pre-existing bare patch stays
        where it was, within the 0.1-0.2 a model's output moves between two composites of the same ground.
    rdndvi: -20 (percent). A vegetated slope stripped to soil (NDVI 0.7 to 0.2) gives (0.2 - 0.7) / sqrt(0.9) x 100
        = -53; a seasonal drop of 0.1 at NDVI 0.6 gives -9. HazMapper leaves the cut-off to its user; -20 sits
        between the two.

    Each is refused (ValueError naming the option as the command line spells it) where it cannot be meant: a rise
    outside (0, 1] (30 meant as percent) or NaN, an rdNDVI not below 0 (it is a drop: a positive cut-off counts
    almost every pixel as vegetation lost) or not finite.
    """

    probability_rise: float = 0.3
    rdndvi: float = -20.0

    def __post_init__(self):
        rise, drop = self.probability_rise, self.rdndvi
        if not (isinstance(rise, numbers.Real) and 0.0 < rise <= 1.0):  # NaN fails both comparisons
            raise ValueError(f"--probability_rise {rise!r}: give the rise of the 0-1 probability that makes a pixel "
                             "new, in (0, 1] (0.3 by default; 30 percent is 0.3).")
        if not (isinstance(drop, numbers.Real) and math.isfinite(drop) and drop < 0.0):
            raise ValueError(f"--rdndvi {drop!r}: give HazMapper's relative difference NDVI (percent) at or below "
                             "which vegetation was lost, a drop below 0 (-20 by default).")

    def record(self) -> dict:
        return {"probability_rise": self.probability_rise, "rdndvi": self.rdndvi}


def rdndvi(ndvi_pre: np.ndarray, ndvi_post: np.ndarray) -> np.ndarray:
    """HazMapper's relative difference NDVI (percent), NaN where NDVI_post + NDVI_pre <= 0 or either is missing."""
    pre, post = np.asarray(ndvi_pre, np.float64), np.asarray(ndvi_post, np.float64)
    total = pre + post
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(np.isfinite(total) & (total > 0), (post - pre) / np.sqrt(np.abs(total)) * 100.0, np.nan)
    return value


def new_landslide_pixels(post_mask, post_prob, pre_prob, ndvi_pre, ndvi_post, method: str,
                         thresholds: ChangeThresholds = ChangeThresholds()) -> tuple[np.ndarray, np.ndarray]:
    """(new, pre_valid), each (H, W) bool: the post-event landslide pixels (`post_mask` where `post_prob` is valid)
    the pre-event state does not explain by `method`, and where a pre-event value the method reads was valid
    (pixels without one are among the new ones). Arrays a method does not read may be None."""
    if method not in CHANGE_METHODS:
        raise ValueError(f"change method {method!r}: choose one of {', '.join(CHANGE_METHODS)}.")
    mapped = np.asarray(post_mask, bool) & np.isfinite(post_prob)
    tests = []  # (changed, valid) per rule the method reads
    if method in ("probability", "both"):
        if pre_prob is None:
            raise ValueError(f"change method {method!r} needs the pre-event probability.")
        with np.errstate(invalid="ignore"):
            tests.append((post_prob - pre_prob >= thresholds.probability_rise, np.isfinite(pre_prob)))
    if method in ("ndvi", "both"):
        if ndvi_pre is None or ndvi_post is None:
            raise ValueError(f"change method {method!r} needs NDVI before and after the event.")
        with np.errstate(invalid="ignore"):
            tests.append((rdndvi(ndvi_pre, ndvi_post) <= thresholds.rdndvi,
                          np.isfinite(ndvi_pre) & np.isfinite(ndvi_post)))
    if not tests:  # none: one date; pre_valid says where pre-event maps exist at all
        return mapped, np.isfinite(pre_prob) if pre_prob is not None else np.zeros(mapped.shape, bool)
    agrees = np.ones(mapped.shape, bool)
    for changed, valid in tests:
        agrees &= changed | ~valid  # a rule without a valid value neither keeps nor drops the pixel
    pre_valid = np.logical_or.reduce([valid for _, valid in tests])
    return mapped & (agrees | ~pre_valid), pre_valid


def missing_ndvi_bands(channels: Sequence[str]) -> list[str]:
    """The NDVI bands (red B4, near-infrared B8) not among `channels`, each as 'B8 (near-infrared)'."""
    return [f"{band} ({name})" for band, name in RED_NIR.items() if band not in set(channels)]


def resolve_method(change: str, channels: Sequence[str], has_pre: bool, ndvi_inputs: Optional[str]) -> str:
    """The change method: `change` checked, or for 'auto' `both` where NDVI can be computed (red and near-infrared
    among the model's channels, imagery of both dates), else `probability`, and `none` without pre-event maps.
    `ndvi_inputs`: why NDVI cannot be computed from the imagery given (None where it can)."""
    if change not in ("auto", *CHANGE_METHODS):
        raise ValueError(f"--change {change!r}: choose one of auto, {', '.join(CHANGE_METHODS)}.")
    missing = missing_ndvi_bands(channels)
    if change == "auto":
        return "none" if not has_pre else "both" if not missing and ndvi_inputs is None else "probability"
    if change != "none" and not has_pre:
        raise ValueError(f"--change {change} compares the dates: give the pre-event predictions "
                         "(--pre_predictions), or --change none for the post-event map alone.")
    if change in ("ndvi", "both") and missing:
        raise ValueError(f"--change {change} needs the red and near-infrared bands for NDVI, and the model's "
                         f"channels ({', '.join(channels) or 'unnamed'}) lack {' and '.join(missing)}; use "
                         "--change probability.")
    if change in ("ndvi", "both") and ndvi_inputs is not None:
        raise ValueError(f"--change {change}: {ndvi_inputs}")
    return change
