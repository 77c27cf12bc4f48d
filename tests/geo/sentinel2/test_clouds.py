"""Per-pixel cloud masks (issue 39, section 1): an L2A product's SCL classes put exactly where a truth says on the 10 m
grid, in every product layout; an L1C product with a cloud drawn as s2cloudless sees it masked, the vegetation and a
bare landslide scar around it not; and the refusals, each with its message."""

from __future__ import annotations

import sys

import numpy as np
import pystac
from rasterio.transform import Affine
import pytest
from helpers.rasters import write_raster
from helpers.sentinel2 import GRID_10M, UTM_45N, rgb_digital_numbers, write_band_folder, write_safe, write_stac_item
from helpers.sentinel2 import L1C_SIDE as SIDE, SCAR, l1c_scene, requires_s2cloudless

from translandseg_hf.geo.sentinel2.clouds import cloud_mask

CRS, TRANSFORM = UTM_45N, GRID_10M
ISSUE_MASKED = (0, 1, 3, 8, 9, 10)  # the issue's list: no data, defective, shadow, cloud medium/high, thin cirrus


# ------------------------------------------------------------------------------------------------------------ SCL

SCL_SIDE = 12  # 20 m pixels: the 10 m grid is 24 x 24


def scl_truth() -> np.ndarray:
    """(12, 12) classes 0-11, each in 12 places shuffled (seed 5): where every class lies, at 20 m."""
    classes = np.arange(SCL_SIDE * SCL_SIDE) % 12
    return np.random.default_rng(5).permutation(classes).reshape(SCL_SIDE, SCL_SIDE).astype(np.uint8)


def write_scl(path, truth):
    return write_raster(path, truth, crs=CRS, transform=TRANSFORM @ Affine.scale(2), nodata=None)


def l2a_safe(tmp_path, truth):
    safe = write_safe(tmp_path, rgb_digital_numbers(2 * SCL_SIDE), CRS, TRANSFORM, level="L2A", driver="GTiff")
    r20m = next(safe.glob("GRANULE/*/IMG_DATA/R20m"))
    write_scl(r20m / "T45RUL_20230101T045209_SCL_20m.tif", truth)
    return safe


def l2a_folder(tmp_path, truth):
    folder = write_band_folder(tmp_path / "bands", rgb_digital_numbers(2 * SCL_SIDE), CRS, TRANSFORM)
    write_scl(folder / "SCL.tif", truth)
    return folder


def l2a_stac(tmp_path, truth):
    path = write_stac_item(tmp_path / "item" / "item.json", rgb_digital_numbers(2 * SCL_SIDE), CRS, TRANSFORM)
    write_scl(path.parent / "SCL.tif", truth)
    item = pystac.Item.from_file(str(path))
    item.add_asset("scl", pystac.Asset(href="./SCL.tif", media_type=pystac.MediaType.COG, roles=["data"]))
    item.save_object(include_self_link=False, dest_href=str(path))
    return path


@pytest.mark.parametrize("layout", [l2a_safe, l2a_folder, l2a_stac], ids=["safe", "folder", "stac"])
def test_scl_masks_exactly_the_masked_classes_on_the_10m_grid(tmp_path, layout):
    truth = scl_truth()
    result = cloud_mask("scl", layout(tmp_path, truth))
    expected = np.kron(np.isin(truth, ISSUE_MASKED), np.ones((2, 2), bool))  # each 20 m pixel = 2 x 2 at 10 m
    assert result.mask.shape == (24, 24) and result.mask.dtype == bool
    np.testing.assert_array_equal(result.mask, expected)
    assert result.share == pytest.approx(6 / 12)  # 6 of the 12 classes, each in 12 places
    assert (result.crs, result.transform) == (CRS, TRANSFORM)


def test_scl_cut_to_bounds_is_the_truth_cut(tmp_path):
    truth = scl_truth()
    bounds = (TRANSFORM.c + 40, TRANSFORM.f - 200, TRANSFORM.c + 200, TRANSFORM.f - 40)  # 10 m rows/cols 4-19
    result = cloud_mask("scl", l2a_safe(tmp_path, truth), bounds=bounds)
    expected = np.kron(np.isin(truth, ISSUE_MASKED), np.ones((2, 2), bool))[4:20, 4:20]
    np.testing.assert_array_equal(result.mask, expected)


def test_none_masks_nothing(tmp_path):
    result = cloud_mask("none", l2a_safe(tmp_path, scl_truth()))
    assert result.mask.shape == (24, 24) and not result.mask.any() and result.share == 0.0


# ---------------------------------------------------------------------------------------------------- s2cloudless

CLEAR_DISTANCE = 100  # 10 m pixels (1 km): beyond the 640 m averaging and 320 m dilation disks around the cloud


@requires_s2cloudless
def test_s2cloudless_masks_the_cloud_and_not_the_ground(tmp_path):
    dn, truth = l1c_scene()
    product = write_safe(tmp_path, dn, CRS, TRANSFORM, level="L1C", baseline="04.00", driver="GTiff")
    result = cloud_mask("s2cloudless", product)
    assert result.mask.shape == (SIDE, SIDE) and result.notes == []  # the offset is the metadata's
    assert result.mask[truth].mean() >= 0.99  # the whole cloud
    rows, cols = np.mgrid[0:SIDE, 0:SIDE]
    distance = np.maximum(np.maximum(192 - rows, rows - 431), np.maximum(192 - cols, cols - 431))
    far = distance > CLEAR_DISTANCE
    assert result.mask[far].mean() <= 0.01  # clear ground a kilometre away: left
    assert not result.mask[SCAR].any()  # the bright landslide scar is not a cloud
    assert result.share == pytest.approx(result.mask.mean())
    assert truth.mean() <= result.share <= 2.5 * truth.mean()  # the cloud and a dilated rim, no more


# --------------------------------------------------------------------------------------------------------- refusals


def l1c_safe(tmp_path):
    return write_safe(tmp_path, rgb_digital_numbers(24), CRS, TRANSFORM, level="L1C", driver="GTiff")


def l2a_without_scl(tmp_path):
    return write_safe(tmp_path, rgb_digital_numbers(24), CRS, TRANSFORM, level="L2A", driver="GTiff")


ERRORS = [
    # (kind, product, message)
    ("scl", l1c_safe, r"--cloud_mask scl reads the Scene Classification \(SCL\) of L2A products, and this product is "
                      r"L1C \(no SCL\): use --cloud_mask s2cloudless \(pip install 'translandseg-hf\[imagery\]'\)"),
    ("scl", l2a_without_scl, r"no Scene Classification layer \(looked for GRANULE/\*/IMG_DATA/R20m/\*_SCL_20m.jp2\)"),
    ("s2cloudless", l2a_without_scl, r"s2cloudless reads top-of-atmosphere \(L1C\) values, B10 among them, and this "
                                     r"product is L2A .*: use --cloud_mask scl"),
    ("fmask", l1c_safe, r"--cloud_mask 'fmask': choose one of none, scl, s2cloudless"),
]


@pytest.mark.parametrize("kind, product, message", ERRORS, ids=[f"{k}-{p.__name__}" for k, p, _ in ERRORS])
def test_refusals_name_the_product_and_the_way_out(tmp_path, kind, product, message):
    path = product(tmp_path)
    with pytest.raises(ValueError, match=message) as caught:
        cloud_mask(kind, path)
    assert kind == "fmask" or str(path) in str(caught.value)


def test_s2cloudless_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "s2cloudless", None)  # import s2cloudless raises ImportError, as if absent
    with pytest.raises(ImportError, match=r"--cloud_mask s2cloudless needs s2cloudless \(and lightgbm\): "
                                          r"pip install 'translandseg-hf\[imagery\]'"):
        cloud_mask("s2cloudless", l1c_safe(tmp_path))
