"""An event's numbers, as event papers report them: count, total area, densities over the valid AOI, area
quantiles, and the frequency-area distribution (Malamud et al. 2004) with a power-law tail fitted by maximum
likelihood above a Kolmogorov-Smirnov-chosen cut-off (Clauset, Shalizi and Newman 2009), using the `powerlaw`
library (Alstott, Bullmore and Plenz 2014; the `inventory` extra). Areas are in m2 throughout: the exponent does
not depend on the unit, the cut-off is reported in it."""

from __future__ import annotations

import math
import warnings
from io import BytesIO
from typing import Optional

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

QUANTILES = (5, 25, 50, 75, 95)  # percent; keys of "area_quantiles"
BINS_PER_DECADE = 5  # log-spaced bins of the frequency-area histogram (Malamud et al. 2004 use a few per decade)
MIN_LANDSLIDES_FOR_FIT = 10  # fewer landslides, or a tail shorter than this, give a reason instead of an exponent
# The xmin search fits the tail once per candidate (O(candidates x n)); the library tries every unique value, which
# is O(n^2). At most this many candidates: the unique areas, or this many of them evenly spaced in rank.
MAX_XMIN_CANDIDATES = 200
ESTIMATOR = ("maximum likelihood (continuous power law) above the xmin that minimises the Kolmogorov-Smirnov "
             "distance (Clauset et al. 2009)")
# Areas of whole pixels are counts: a continuous fit on them overestimates alpha (by 1-3 sigma on 1,000 areas of
# 10 px and more, tests/inventory/test_statistics.py), the discrete one (the library's Clauset eq. 3.7 estimate,
# xmin - 1/2) does not.
DISCRETE_ESTIMATOR = ("maximum likelihood (discrete power law of pixel counts, Clauset et al. 2009 eq. 3.7) above "
                      "the xmin that minimises the Kolmogorov-Smirnov distance (Clauset et al. 2009)")


def inventory_statistics(areas_m2: np.ndarray, valid_area_km2: float, masked_share: float,
                         no_pre_event_share: float, *, pixel_area_m2: Optional[float] = None,
                         masked_area_km2: Optional[float] = None, no_pre_event_area_km2: Optional[float] = None) -> dict:
    """The event's statistics as JSON-ready values (statistics.json, the report). Densities are per km2 of the AOI
    that was mapped (valid pixels); with no valid area they are None. `pixel_area_m2`: the maps' pixel area, where
    the areas are whole pixels (`fit_power_law`). `masked_area_km2`, `no_pre_event_area_km2`: the areas the two
    shares are of (None: not measured), where the inventory could not look (inventory.gpkg's `unmapped`)."""
    areas = _checked_areas(areas_m2)
    if not (math.isfinite(valid_area_km2) and valid_area_km2 >= 0):
        raise ValueError(f"the valid AOI area must be a finite number of km2 >= 0, not {valid_area_km2!r}")
    for name, share in (("masked_share", masked_share), ("no_pre_event_share", no_pre_event_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be a share between 0 and 1, not {share!r}")
    total = float(areas.sum())
    quantiles = np.percentile(areas, QUANTILES) if areas.size else [None] * len(QUANTILES)
    return {
        "count": int(areas.size),
        "total_area_m2": total,
        "valid_area_km2": float(valid_area_km2),
        "density_per_km2": areas.size / valid_area_km2 if valid_area_km2 > 0 else None,
        "area_density": total / valid_area_km2 if valid_area_km2 > 0 else None,  # m2 of landslides per km2
        "area_quantiles": {str(q): (None if v is None else float(v)) for q, v in zip(QUANTILES, quantiles)},
        "masked_share": float(masked_share),
        "masked_area_km2": _km2_or_none(masked_area_km2, "masked_area_km2"),
        "no_pre_event_share": float(no_pre_event_share),
        "no_pre_event_area_km2": _km2_or_none(no_pre_event_area_km2, "no_pre_event_area_km2"),
        "frequency_area": frequency_area(areas),
        "power_law": fit_power_law(areas, pixel_area_m2),
    }


def _km2_or_none(value: Optional[float], name: str) -> Optional[float]:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number of km2 >= 0, not {value!r}")
    return None if value is None else float(value)


def _checked_areas(areas_m2) -> np.ndarray:
    areas = np.asarray(areas_m2, dtype=np.float64).ravel()
    bad = areas[~(np.isfinite(areas) & (areas > 0))]
    if bad.size:
        raise ValueError(f"landslide areas must be finite and > 0 m2; got {bad.size} that are not "
                         f"(e.g. {float(bad[0])!r})")
    return areas


def frequency_area(areas_m2) -> dict:
    """The histogram in log-spaced bins and its probability density p(A) = counts / (n * bin width), per m2, as
    Malamud et al. (2004) plot it. Edges at 10^(k / BINS_PER_DECADE) m2, the same for every event, from the one
    below the smallest area to the one above the largest."""
    areas = _checked_areas(areas_m2)
    if areas.size == 0:
        return {"bins_m2": [], "counts": [], "density": []}
    first = math.floor(math.log10(areas.min()) * BINS_PER_DECADE)
    last = max(first + 1, math.ceil(math.log10(areas.max()) * BINS_PER_DECADE))
    edges = 10.0 ** (np.arange(first, last + 1) / BINS_PER_DECADE)
    edges[0], edges[-1] = min(edges[0], areas.min()), max(edges[-1], areas.max())  # rounding must not drop one
    counts, _ = np.histogram(areas, bins=edges)
    density = counts / (areas.size * np.diff(edges))
    return {"bins_m2": edges.tolist(), "counts": counts.astype(int).tolist(), "density": density.tolist()}


def _xmin_candidates(areas: np.ndarray) -> np.ndarray:
    """Unique areas that leave at least MIN_LANDSLIDES_FOR_FIT in the tail, at most MAX_XMIN_CANDIDATES of them."""
    ordered = np.sort(areas)
    unique = np.unique(ordered[: ordered.size - MIN_LANDSLIDES_FOR_FIT + 1])
    unique = unique[unique < ordered[-1]]  # a tail of one size is no power law
    if unique.size > MAX_XMIN_CANDIDATES:
        unique = unique[np.unique(np.linspace(0, unique.size - 1, MAX_XMIN_CANDIDATES).round().astype(int))]
    return unique


def _tail_fit(powerlaw, values: np.ndarray, xmin: float, discrete: bool):
    """The library's power law fitted by maximum likelihood above `xmin` (its D is the KS distance)."""
    return powerlaw.Fit(values, xmin=float(xmin), discrete=discrete, verbose=0).power_law


def fit_power_law(areas_m2, pixel_area_m2: Optional[float] = None) -> dict:
    """alpha of p(A) ~ A^-alpha above xmin, its standard error sigma = (alpha - 1) / sqrt(n_tail) (Clauset et al.
    2009, eq. 3.2), xmin (m2), n_tail and the KS distance; or {"reason": ...} when it cannot be fitted. With
    `pixel_area_m2` the areas are whole pixels: the pixel counts are fitted as a discrete power law."""
    areas = _checked_areas(areas_m2)
    if areas.size < MIN_LANDSLIDES_FOR_FIT:
        return {"reason": f"{areas.size} landslides: a power-law fit needs at least {MIN_LANDSLIDES_FOR_FIT}"}
    try:
        import powerlaw
    except ImportError:
        return {"reason": "the power-law fit needs the `powerlaw` package: pip install 'translandseg-hf[inventory]'"}
    discrete = pixel_area_m2 is not None
    if discrete and not (math.isfinite(pixel_area_m2) and pixel_area_m2 > 0):
        raise ValueError(f"the pixel area must be a finite number of m2 > 0, not {pixel_area_m2!r}")
    unit = pixel_area_m2 if discrete else 1.0
    values = np.maximum(np.rint(areas / unit), 1.0) if discrete else areas
    best: Optional[tuple] = None
    candidates = _xmin_candidates(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library warns on every candidate whose numerical fit wanders
        for xmin in candidates:
            tail = _tail_fit(powerlaw, values, xmin, discrete)
            usable = tail.in_range() and not tail.noise_flag and np.isfinite(tail.D)  # as the library's own search
            if usable and (best is None or tail.D < best[0]):
                best = (float(tail.D), float(xmin), tail)
    if best is None:
        return {"reason": f"no cut-off among {areas.size} areas gives a power-law tail of at least "
                          f"{MIN_LANDSLIDES_FOR_FIT} landslides and more than one size"}
    distance, xmin, tail = best
    fit = {"alpha": float(tail.alpha), "alpha_sigma": float(tail.standard_err), "xmin_m2": xmin * unit,
           "n_tail": int(np.count_nonzero(values >= xmin)), "ks_distance": distance,
           "estimator": DISCRETE_ESTIMATOR if discrete else ESTIMATOR, "xmin_candidates": int(candidates.size),
           "library": f"powerlaw {powerlaw.__version__}"}
    return {**fit, "pixel_area_m2": float(pixel_area_m2), "xmin_pixels": int(xmin)} if discrete else fit


def tail_density(power_law: dict, count: int, areas_m2: np.ndarray) -> np.ndarray:
    """The fitted tail as a density of the whole sample, comparable with the histogram's p(A):
    (n_tail / n) (alpha - 1) / xmin (A / xmin)^-alpha for A >= xmin."""
    alpha, xmin = power_law["alpha"], power_law["xmin_m2"]
    return power_law["n_tail"] / count * (alpha - 1) / xmin * (np.asarray(areas_m2) / xmin) ** -alpha


def frequency_area_figure(statistics: dict) -> bytes:
    """PNG of the frequency-area distribution: log-log p(A) of the histogram's bins and the fitted tail's line."""
    histogram, power_law = statistics["frequency_area"], statistics["power_law"]
    figure = Figure(figsize=(6.0, 4.5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    edges, density = np.asarray(histogram["bins_m2"]), np.asarray(histogram["density"])
    if density.size:
        centres = np.sqrt(edges[:-1] * edges[1:])  # geometric: the middle of a log bin
        shown = density > 0
        axes.loglog(centres[shown], density[shown], "o", color="black", label="landslides (log bins)")
    if "alpha" in power_law:
        line = np.logspace(math.log10(power_law["xmin_m2"]), math.log10(edges[-1]), 50)
        axes.loglog(line, tail_density(power_law, statistics["count"], line), "-", color="tab:red",
                    label=f"power law: alpha = {power_law['alpha']:.2f} ± {power_law['alpha_sigma']:.2f}, "
                          f"xmin = {power_law['xmin_m2']:,.0f} m²")
    else:
        axes.set_title(power_law.get("reason", "no power-law fit"), fontsize=9)
    if not density.size:
        axes.text(0.5, 0.5, "no landslides", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("landslide area A (m²)")
    axes.set_ylabel("probability density p(A) (1/m²)")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
    buffer = BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()
