"""Where the inventory is blind: the AOI's pixels it could not look at, by reason, as inventory.gpkg's `unmapped`
layer and statistics.json's areas. A landslide under a cloud is missing from the inventory, not absent from the
ground; a mapper needs to see where.

- "no post-event value": the post-event probability is NaN (cloud, cloud shadow, no scene, nodata);
- "no pre-event value": the post-event map has a value, a pre-event date was given, and the change method found no
  pre-event value there (the landslides there are kept, flagged `pre_event_valid` false: new or old cannot be told).

Pixels are those of the AOI (their centres inside it, as the statistics count them; the whole grid without an
AOI), so `share_of_aoi` is a share of the same pixels as statistics.json's `masked_share`. One dissolved
MultiPolygon per reason, none for a reason without pixels; areas on the ellipsoid (`geo.inventory.areas`)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..geo.inventory.areas import geodesic_area_perimeter

NO_POST = "no post-event value"
NO_PRE = "no pre-event value"
REASONS = (NO_POST, NO_PRE)


def unmapped_pixels(post_prob: np.ndarray, pre_valid: np.ndarray, has_pre: bool,
                    inside: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """(H, W) bool per reason: the AOI's pixels (`inside`; None: the whole grid) without a post-event value, and
    those with one but without a pre-event value (only where a pre-event date was given: with one date every pixel
    lacks one, which says nothing about where)."""
    valid = np.isfinite(post_prob)
    area = np.ones(valid.shape, bool) if inside is None else np.asarray(inside, bool)
    no_pre = valid & area & ~np.asarray(pre_valid, bool) if has_pre else np.zeros(valid.shape, bool)
    return {NO_POST: area & ~valid, NO_PRE: no_pre}


def unmapped_features(pixels: dict[str, np.ndarray], total_pixels: int, grid) -> list[dict]:
    """One feature per reason with pixels: `geometry` (the pixels dissolved, in the grid's CRS), `reason`,
    `area_m2` (geodesic) and `share_of_aoi` (its pixels over the AOI's `total_pixels`)."""
    from ..geo.inventory.polygons import dissolved

    features = []
    for reason in REASONS:
        geometry = dissolved(pixels[reason], grid.transform)
        if geometry is None:
            continue
        area = float(geodesic_area_perimeter(np.array([geometry], dtype=object), grid.crs)[0][0])
        features.append({"geometry": geometry, "reason": reason, "area_m2": area,
                         "share_of_aoi": float(pixels[reason].sum() / total_pixels)})
    return features
