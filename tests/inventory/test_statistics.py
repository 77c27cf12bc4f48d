"""Issue 40, an event's statistics: exact numbers on a hand-made sample, the frequency-area histogram, and the
power-law tail fitted on samples drawn from known power laws (inverse-CDF sampling with a seeded Generator)."""

from __future__ import annotations

import json
import sys
from importlib.util import find_spec
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from translandseg_hf.inventory.statistics import (
    MAX_XMIN_CANDIDATES,
    fit_power_law,
    frequency_area,
    frequency_area_figure,
    inventory_statistics,
)

needs_powerlaw = pytest.mark.skipif(find_spec("powerlaw") is None,
                                    reason="the inventory extra is not installed (pip install -e '.[inventory]')")

TRUE_XMIN = 1000.0  # m2


def power_law_areas(alpha: float, count: int = 2000, seed: int = 40) -> np.ndarray:
    """`count` areas (m2) from p(A) ~ A^-alpha above TRUE_XMIN: A = xmin (1 - u)^(-1 / (alpha - 1))."""
    uniform = np.random.default_rng(seed).random(count)
    return TRUE_XMIN * (1.0 - uniform) ** (-1.0 / (alpha - 1.0))


@needs_powerlaw
@pytest.mark.parametrize("alpha", [1.8, 2.3, 2.8])
def test_the_fitted_exponent_is_within_two_sigma_of_the_true_one(alpha):
    fit = fit_power_law(power_law_areas(alpha))
    assert abs(fit["alpha"] - alpha) <= 2 * fit["alpha_sigma"], fit
    assert fit["alpha_sigma"] == pytest.approx((fit["alpha"] - 1) / np.sqrt(fit["n_tail"]))  # Clauset eq. 3.2
    assert TRUE_XMIN <= fit["xmin_m2"] < 2 * TRUE_XMIN and 1000 < fit["n_tail"] <= 2000
    assert 0 < fit["ks_distance"] < 0.05
    assert fit["library"].startswith("powerlaw ") and "Clauset" in fit["estimator"]


PIXEL_M2 = 100.0  # a 10 m pixel: TRUE_XMIN is 10 pixels


def pixel_areas(alpha: float, count: int = 1000, seed: int = 40) -> np.ndarray:
    """power_law_areas rounded to whole pixels, as an inventory's polygons are."""
    return np.maximum(np.rint(power_law_areas(alpha, count, seed) / PIXEL_M2), 1) * PIXEL_M2


@needs_powerlaw
@pytest.mark.parametrize("alpha", [1.8, 2.3, 2.8])
def test_areas_of_whole_pixels_are_fitted_as_counts_without_bias(alpha):
    fit = fit_power_law(pixel_areas(alpha), pixel_area_m2=PIXEL_M2)
    assert abs(fit["alpha"] - alpha) <= 2 * fit["alpha_sigma"], fit
    assert fit["pixel_area_m2"] == PIXEL_M2 and fit["xmin_m2"] == fit["xmin_pixels"] * PIXEL_M2
    assert "discrete" in fit["estimator"]
    # over 10 samples the mean z is near 0; the continuous fit on the same areas averages 1.7 (alpha 2.3)
    z = [(f["alpha"] - alpha) / f["alpha_sigma"]
         for f in (fit_power_law(pixel_areas(alpha, seed=seed), pixel_area_m2=PIXEL_M2) for seed in range(10))]
    assert abs(np.mean(z)) < 0.8, z


@needs_powerlaw
def test_the_statistics_pass_the_pixel_area_to_the_fit():
    areas = pixel_areas(2.3)
    statistics = inventory_statistics(areas, 10.0, 0.0, 0.0, pixel_area_m2=PIXEL_M2)
    assert statistics["power_law"] == fit_power_law(areas, pixel_area_m2=PIXEL_M2)
    assert "pixel_area_m2" not in inventory_statistics(areas, 10.0, 0.0, 0.0)["power_law"]  # as before: continuous
    with pytest.raises(ValueError, match="the pixel area must be a finite number of m2 > 0, not 0.0"):
        fit_power_law(areas, pixel_area_m2=0.0)


@needs_powerlaw
def test_the_exponent_is_the_maximum_likelihood_one_and_follows_the_data():
    areas = power_law_areas(2.3)
    fit = fit_power_law(areas)
    tail = areas[areas >= fit["xmin_m2"]]
    assert tail.size == fit["n_tail"]
    assert fit["alpha"] == pytest.approx(1 + tail.size / np.log(tail / fit["xmin_m2"]).sum())  # Clauset eq. 3.1
    steeper = fit_power_law(power_law_areas(2.8))
    assert steeper["alpha"] - fit["alpha"] > 0.3


@needs_powerlaw
def test_the_fit_does_not_depend_on_the_unit():
    areas = power_law_areas(2.3, count=500)
    in_m2, scaled = fit_power_law(areas), fit_power_law(areas * 100.0)
    assert scaled["alpha"] == pytest.approx(in_m2["alpha"], rel=1e-9)
    assert scaled["xmin_m2"] == pytest.approx(100.0 * in_m2["xmin_m2"], rel=1e-9)


@needs_powerlaw
def test_the_xmin_search_is_capped():
    fit = fit_power_law(power_law_areas(2.3, count=5000))
    assert fit["xmin_candidates"] == MAX_XMIN_CANDIDATES
    assert fit_power_law(power_law_areas(2.3, count=60))["xmin_candidates"] == 51  # every area leaving 10 above


@needs_powerlaw
@pytest.mark.parametrize("areas, reason", [
    ([], "0 landslides: a power-law fit needs at least 10"),
    ([120.0] * 9, "9 landslides: a power-law fit needs at least 10"),
    ([300.0] * 20, "no cut-off among 20 areas gives a power-law tail of at least 10 landslides and more than one size"),
])
def test_too_few_landslides_give_a_reason_instead_of_numbers(areas, reason):
    assert fit_power_law(np.array(areas)) == {"reason": reason}


def test_without_the_library_the_fit_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "powerlaw", None)  # import powerlaw raises ImportError
    assert fit_power_law(power_law_areas(2.3, count=50)) == {
        "reason": "the power-law fit needs the `powerlaw` package: pip install 'translandseg-hf[inventory]'"}


def test_counts_areas_densities_and_quantiles_of_a_small_sample():
    statistics = inventory_statistics(np.array([400.0, 100.0, 1000.0, 300.0, 200.0]), 2.0, 0.25, 0.1)
    assert statistics["count"] == 5 and statistics["total_area_m2"] == 2000.0
    assert statistics["density_per_km2"] == 2.5 and statistics["area_density"] == 1000.0  # m2 per km2
    # linear interpolation between ranks: the 5th percentile sits 0.2 of the way from 100 to 200, the 95th 0.8
    # of the way from 400 to 1000
    assert statistics["area_quantiles"] == pytest.approx({"5": 120.0, "25": 200.0, "50": 300.0, "75": 400.0,
                                                          "95": 880.0})
    assert statistics["masked_share"] == 0.25 and statistics["no_pre_event_share"] == 0.1
    assert statistics["power_law"] == {"reason": "5 landslides: a power-law fit needs at least 10"}
    json.dumps(statistics, allow_nan=False)  # statistics.json: plain JSON


def test_no_landslides_and_no_valid_area_give_empty_numbers():
    statistics = inventory_statistics(np.array([]), 0.0, 1.0, 0.0)
    assert statistics["count"] == 0 and statistics["total_area_m2"] == 0.0
    assert statistics["density_per_km2"] is None and statistics["area_density"] is None
    assert set(statistics["area_quantiles"].values()) == {None}
    assert statistics["frequency_area"] == {"bins_m2": [], "counts": [], "density": []}
    json.dumps(statistics, allow_nan=False)


@pytest.mark.parametrize("arguments, message", [
    (([100.0, -5.0], 1.0, 0.0, 0.0), r"landslide areas must be finite and > 0 m2; got 1 that are not \(e.g. -5.0\)"),
    (([100.0, np.nan], 1.0, 0.0, 0.0), "landslide areas must be finite and > 0 m2"),
    (([100.0], float("nan"), 0.0, 0.0), "the valid AOI area must be a finite number of km2 >= 0, not nan"),
    (([100.0], 1.0, 1.5, 0.0), "masked_share must be a share between 0 and 1, not 1.5"),
    (([100.0], 1.0, 0.0, -0.1), "no_pre_event_share must be a share between 0 and 1, not -0.1"),
])
def test_impossible_inputs_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        inventory_statistics(*arguments)


def test_the_histogram_is_log_binned_and_its_density_is_counts_over_n_times_width():
    areas = power_law_areas(2.3, count=700)
    histogram = frequency_area(areas)
    edges, counts = np.array(histogram["bins_m2"]), np.array(histogram["counts"])
    assert counts.sum() == areas.size
    assert edges[0] <= areas.min() and edges[-1] >= areas.max()
    assert np.allclose(np.log10(edges) * 5, np.round(np.log10(edges) * 5))  # at 10^(k/5): five bins a decade
    assert edges[0] > areas.min() / 10 ** 0.2 and edges[-1] < areas.max() * 10 ** 0.2  # no empty bin at either end
    assert np.allclose(histogram["density"], counts / (areas.size * np.diff(edges)))
    one_size = frequency_area(np.full(12, 250.0))
    assert one_size["counts"] == [12] and one_size["bins_m2"][0] < 250.0 < one_size["bins_m2"][-1]
    on_an_edge = frequency_area(np.array([100.0, 100.0, 1000.0]))  # 10^(10/5) and 10^(15/5): both counted
    assert on_an_edge["bins_m2"] == pytest.approx(10 ** (np.arange(10, 16) / 5)) and sum(on_an_edge["counts"]) == 3


def picture(png: bytes) -> np.ndarray:
    image = Image.open(BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB")).astype(int)


def red_line_pixels(pixels: np.ndarray) -> int:
    """Pixels of matplotlib's tab:red (214, 39, 40), the fitted tail's colour."""
    return int((np.abs(pixels - (214, 39, 40)).sum(axis=-1) < 30).sum())


@needs_powerlaw
def test_the_figure_shows_the_histogram_and_the_fitted_tail():
    fitted = picture(frequency_area_figure(inventory_statistics(power_law_areas(2.3), 50.0, 0.0, 0.0)))
    assert fitted.shape[0] > 200 and fitted.shape[1] > 200
    assert (fitted.sum(axis=-1) < 100).sum() > 500  # black histogram points, axes and labels on white
    assert red_line_pixels(fitted) > 100
    unfitted = picture(frequency_area_figure(inventory_statistics(power_law_areas(2.3, count=8), 50.0, 0.0, 0.0)))
    assert (unfitted.sum(axis=-1) < 100).sum() > 500 and red_line_pixels(unfitted) == 0
    empty = picture(frequency_area_figure(inventory_statistics(np.array([]), 50.0, 0.0, 0.0)))
    assert (empty.sum(axis=-1) < 100).sum() > 100  # axes and "no landslides"
