"""From a Sentinel-2 product and a DEM to a Landslide4Sense model's input: a product made from an L4S patch by inverting
the published scale is stacked back into the patch, at either processing baseline, and mapped as the patch is."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from conftest import tiny_atl
from helpers.models import multispectral
from helpers.rasters import write_raster
from helpers.sentinel2 import GRID_10M, UTM_45N, l4s_contract, with_offset, write_band_folder, write_safe, write_stac_item

from transformers import SamModel

from translandseg_hf import TransLandSegModel
from translandseg_hf.cards import contract_lines, sensor_lines
from translandseg_hf.cli import main
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.geo.sentinel2.bands import BAND_RESOLUTION, LANDSLIDE4SENSE_DIVISORS
from translandseg_hf.geo.sentinel2.stack import Sentinel2Stack, recipe_of
from translandseg_hf.saved_contract import load_contract, model_contract
from translandseg_hf.sam_configs import tiny_sam_config
from translandseg_hf.geo.sentinel2.terrain import horn_slope

SIDE = 96  # a multiple of 2 and 6: every 20 m and 60 m pixel lies whole on the 10 m grid
CRS, TRANSFORM = UTM_45N, GRID_10M
ORDER = (3, 2, 1, 0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)  # RGB first, as the 14-band recipe trains
S2_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12")


def mountain(rows: int, cols: int) -> np.ndarray:
    """A smooth relief of a few hundred metres, as a real DEM is at 10 m."""
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    return (1500 + 300 * np.exp(-((x - cols / 2) ** 2 + (y - rows / 3) ** 2) / (2 * (cols / 5) ** 2))
            + 40 * np.sin(x / 9) * np.cos(y / 13)).astype(np.float32)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """DNs per band (block-constant at each band's resolution, 0 = nodata in one corner), the DEM (the 10 m grid and
    one pixel around it) and the patch they make on the dataset's scale, as the 14 channels in L4S order."""
    folder = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(3)
    dn = {}
    for band in S2_BANDS:
        factor = BAND_RESOLUTION[band] // 10
        coarse = rng.integers(200, 4000, size=(SIDE // factor, SIDE // factor)).astype(np.uint16)
        dn[band] = np.kron(coarse, np.ones((factor, factor), np.uint16))
    for band in S2_BANDS:
        dn[band][:6, :6] = 0  # outside the swath in every band
    dem = mountain(SIDE + 2, SIDE + 2)
    dem_path = folder / "dem.tif"
    write_raster(dem_path, dem, crs=CRS, transform=from_origin(300_000 - 10, 3_100_000 + 10, 10, 10), nodata=-9999)
    slope = horn_slope(dem.astype(np.float64), 10.0, 10.0)
    channels = [dn[band].astype(np.float32) / np.float32(d) for band, d in zip(S2_BANDS, LANDSLIDE4SENSE_DIVISORS)]
    channels += [slope.astype(np.float32) / np.float32(LANDSLIDE4SENSE_DIVISORS[12]),
                 dem[1:-1, 1:-1] / np.float32(LANDSLIDE4SENSE_DIVISORS[13])]
    patch = np.stack(channels)
    patch[:, :6, :6] = np.nan
    return dict(folder=folder, dn=dn, dem=dem_path, patch=patch)


def read_stack(path):
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.descriptions, dataset


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A 14-band and an RGB Landslide4Sense model (tiny random SAMs, band embedding non-zero)."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    sam = SamModel(tiny_sam_config()).eval()
    full = multispectral(sam)
    torch.nn.init.normal_(full.sam.vision_encoder.atl_adapters["default"].band_project.weight, std=0.2)
    full.set_image_processor(l4s_contract(ORDER))
    full.eval().save_pretrained(folder / "full")
    rgb = multispectral(sam, extra=0, seed=1)
    rgb.set_image_processor(l4s_contract(ORDER[:3]))
    rgb.eval().save_pretrained(folder / "rgb")
    return folder


def test_stack_reproduces_the_patch_at_baseline_04_00_and_02_14(scene, models, tmp_path):
    new = write_safe(tmp_path / "new", with_offset(scene["dn"], 1000), CRS, TRANSFORM, baseline="04.00")
    old = write_safe(tmp_path / "old", scene["dn"], CRS, TRANSFORM, baseline="02.14", date="20190101T045209")
    stacks = []
    for product, name in ((new, "new.tif"), (old, "old.tif")):
        assert main(["stack", "--model", str(models / "full"), "--sentinel2", str(product), "--dem",
                     str(scene["dem"]), "--output", str(tmp_path / name)]) == 0
        values, descriptions, dataset = read_stack(tmp_path / name)
        assert descriptions == tuple(S2_BANDS[c] if c < 12 else ("slope", "dem")[c - 12] for c in ORDER)
        assert dataset.crs == CRS and dataset.transform == TRANSFORM and (dataset.width, dataset.height) == (SIDE,) * 2
        stacks.append(values)
    expected = scene["patch"][list(ORDER)]
    np.testing.assert_allclose(stacks[0], expected, rtol=1e-6, atol=2e-5, equal_nan=True)
    np.testing.assert_array_equal(stacks[0], stacks[1])


def test_the_stack_is_a_cog_gdal_reads_with_its_band_names(scene, models, tmp_path):
    if shutil.which("gdalinfo") is None:
        pytest.skip("gdalinfo (Debian's gdal-bin) is not installed")
    product = write_safe(tmp_path, with_offset(scene["dn"], 1000), CRS, TRANSFORM)
    assert main(["stack", "--model", str(models / "full"), "--sentinel2", str(product), "--dem", str(scene["dem"]),
                 "--output", str(tmp_path / "stack.tif")]) == 0
    info = json.loads(subprocess.run(["gdalinfo", "-json", str(tmp_path / "stack.tif")], capture_output=True,
                                     text=True, check=True).stdout)
    assert [band["description"] for band in info["bands"]][:4] == ["B4", "B3", "B2", "B1"]
    assert info["bands"][-1]["description"] == "dem" and info["bands"][0]["noDataValue"] == "NaN"
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    assert "32645" in info["coordinateSystem"]["wkt"].split("ID[")[-1]


def test_predict_on_the_product_matches_the_patch_and_the_stack(scene, models, tmp_path, capsys):
    product = write_safe(tmp_path, with_offset(scene["dn"], 1000), CRS, TRANSFORM)
    patch = tmp_path / "patch.tif"
    write_raster(patch, scene["patch"], crs=CRS, transform=TRANSFORM, nodata=float("nan"))
    assert main(["stack", "--model", str(models / "full"), "--sentinel2", str(product), "--dem", str(scene["dem"]),
                 "--output", str(tmp_path / "stacked.tif")]) == 0
    for source in (product, patch, tmp_path / "stacked.tif"):
        assert main(["predict", "--model", str(models / "full"), str(source), "--dem", str(scene["dem"]),
                     "--output", str(tmp_path / "maps")]) == 0
    maps = {}
    for stem in (product.stem, "patch", "stacked"):
        with rasterio.open(tmp_path / "maps" / f"{stem}_probability.tif") as dataset:
            maps[stem] = dataset.read(1)
            assert dataset.crs == CRS and dataset.transform == TRANSFORM
    assert np.isnan(maps["patch"][:6, :6]).all() and np.isfinite(maps["patch"][6:, 6:]).all()
    np.testing.assert_allclose(maps[product.stem], maps["patch"], atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(maps["stacked"], maps["patch"], atol=1e-5, equal_nan=True)
    assert "--dem" in capsys.readouterr().out  # the rasters were told their --dem was not used


def test_an_rgb_model_needs_only_b4_b3_b2_and_no_dem(scene, models, tmp_path):
    rgb = {band: scene["dn"][band] for band in ("B2", "B3", "B4")}
    folder = write_band_folder(tmp_path / "bands", with_offset(rgb, 1000), CRS, TRANSFORM)
    (folder / "MTD_MSIL1C.xml").write_text((write_safe(tmp_path / "safe", with_offset(rgb, 1000), CRS, TRANSFORM)
                                            / "MTD_MSIL1C.xml").read_text())
    assert main(["predict", "--model", str(models / "rgb"), str(folder), "--output", str(tmp_path / "maps")]) == 0
    with rasterio.open(tmp_path / "maps" / "bands_probability.tif") as dataset:
        assert dataset.width == SIDE and np.isfinite(dataset.read(1)[6:, 6:]).all()


def test_a_product_without_offset_metadata_warns_once_and_assumes_04_00(scene, models, tmp_path):
    rgb = with_offset({band: scene["dn"][band] for band in ("B2", "B3", "B4")}, 1000)
    folder = write_band_folder(tmp_path / "bands", rgb, CRS, TRANSFORM)
    processor = l4s_contract(ORDER[:3])
    with Sentinel2Stack(folder, recipe_of(processor, folder)) as stack:
        assert len(stack.notes) == 1 and "assuming -1000 (baseline 04.00 or later" in stack.notes[0]
        np.testing.assert_allclose(stack.read(1)[6:, 6:], scene["patch"][3][6:, 6:], rtol=1e-6)
    with Sentinel2Stack(folder, recipe_of(processor, folder), offset=0) as stack:
        assert stack.notes == []
        np.testing.assert_allclose(stack.read(1)[6:, 6:], (rgb["B4"][6:, 6:] / 445.17289745), rtol=1e-6)


def test_bounds_cut_an_area_of_interest(scene, models, tmp_path):
    product = write_safe(tmp_path, with_offset(scene["dn"], 1000), CRS, TRANSFORM)
    assert main(["stack", "--model", str(models / "rgb"), "--sentinel2", str(product), "--output",
                 str(tmp_path / "aoi.tif"), "--bounds", "300200,3099500,300400,3099800"]) == 0
    values, descriptions, dataset = read_stack(tmp_path / "aoi.tif")
    assert descriptions == ("B4", "B3", "B2") and values.shape == (3, 30, 20)
    assert dataset.transform == from_origin(300_200, 3_099_800, 10, 10)
    np.testing.assert_allclose(values, scene["patch"][[3, 2, 1], 20:50, 20:40], rtol=1e-6)


def test_what_is_missing_is_named(scene, models, tmp_path, capsys):
    new = with_offset(scene["dn"], 1000)
    product = write_safe(tmp_path / "l1c", new, CRS, TRANSFORM)
    out = str(tmp_path / "x.tif")
    assert main(["stack", "--model", str(models / "full"), "--sentinel2", str(product), "--output", out]) == 2
    assert "the model reads slope and dem from a DEM" in capsys.readouterr().err

    l2a = write_safe(tmp_path / "l2a", new, CRS, TRANSFORM, level="L2A")
    assert main(["stack", "--model", str(models / "full"), "--sentinel2", str(l2a), "--dem", str(scene["dem"]),
                 "--output", out]) == 2
    assert "the product has no B10, which the model reads (an L2A product has no B10" in capsys.readouterr().err
    assert main(["stack", "--model", str(models / "full"), "--sentinel2", str(l2a), "--dem", str(scene["dem"]),
                 "--output", str(tmp_path / "filled.tif"), "--fill_missing"]) == 0
    err = capsys.readouterr().err
    assert "B10 not in the product" in err and "filled with the training mean" in err and "trained on L1C" in err

    partial = write_safe(tmp_path / "partial", {b: v for b, v in new.items() if b != "B8"}, CRS, TRANSFORM)
    assert main(["stack", "--model", str(models / "full"), "--sentinel2", str(partial), "--dem", str(scene["dem"]),
                 "--output", out]) == 2
    assert f"{partial}: the product has no B8, which the model reads" in capsys.readouterr().err

    small = tmp_path / "small_dem.tif"
    write_raster(small, np.full((1, 20, 20), 100, np.float32), crs=CRS, transform=TRANSFORM)
    assert main(["stack", "--model", str(models / "full"), "--sentinel2", str(product), "--dem", str(small),
                 "--output", out]) == 2
    assert f"{small}: the DEM does not cover {product}" in capsys.readouterr().err

    item = write_stac_item(tmp_path / "stac" / "item.json", new, CRS, TRANSFORM, missing=("B3",))
    assert main(["stack", "--model", str(models / "rgb"), "--sentinel2", str(item), "--output", out]) == 2
    assert "the product's B3 file" in capsys.readouterr().err and not (tmp_path / "x.tif").exists()


def test_a_model_trained_on_8_bit_imagery_says_what_it_would_need(scene, tiny_sam, tmp_path, capsys):
    product = write_safe(tmp_path, with_offset(scene["dn"], 1000), CRS, TRANSFORM)
    model = TransLandSegModel.from_sam(tiny_sam, tiny_atl("translandseg"))
    model.set_image_processor(TransLandSegImageProcessor(input_size=64, ground_resolution=0.8))
    model.save_pretrained(tmp_path / "bijie")
    assert main(["predict", "--model", str(tmp_path / "bijie"), str(product), "--output", str(tmp_path / "m")]) == 1
    out = capsys.readouterr().out
    assert "is a Sentinel-2 product, but the model's contract names no sensor bands: it was trained on 8-bit" in out
    assert "a true-colour image such as the product's TCI" in out


def test_a_stac_item_maps_as_the_safe_folder(scene, models, tmp_path):
    new = with_offset({band: scene["dn"][band] for band in ("B2", "B3", "B4")}, 1000)
    item = write_stac_item(tmp_path / "stac" / "item.json", new, CRS, TRANSFORM, level="L1C")
    safe = write_safe(tmp_path, new, CRS, TRANSFORM)
    contract = model_contract(models / "rgb")
    with Sentinel2Stack(item, recipe_of(contract, item)) as a, Sentinel2Stack(safe, recipe_of(contract, safe)) as b:
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.notes == []


def test_an_old_landslide4sense_contract_gets_its_sensor_when_loaded(tmp_path):
    saved = dict(bands=[4, 3, 2], scale="divisor", divisor=10.0, tile_size=128, ground_resolution=10.0,
                 input_size=1024, image_processor_type="TransLandSegImageProcessor")
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(saved))
    processor = TransLandSegImageProcessor(**load_contract(tmp_path))
    assert processor.sensor_bands == ["B4", "B3", "B2"] and processor.product_level == "L1C"
    assert processor.sensor_divisors == [445.17289745, 663.41636217, 824.63171476]
    assert contract_lines(processor)[-2:] == [
        "Sensor: Sentinel-2 MSI, product level L1C (top of atmosphere)",
        "Channels from the sensor (value / divisor = the training value): B4 / 445.173, B3 / 663.416, B2 / 824.632"]
    recipe = recipe_of(model_contract(tmp_path), "S2.SAFE")  # `translandseg stack` reads the JSON without torch
    assert recipe.channels == ("B4", "B3", "B2") and recipe.divisors[0] == 445.17289745 and recipe.level == "L1C"
    bijie = TransLandSegImageProcessor(ground_resolution=0.8)
    assert bijie.sensor_bands is None and sensor_lines(bijie) == []
    with pytest.raises(ValueError, match="S2.SAFE is a Sentinel-2 product, but the model's contract names no sensor"):
        recipe_of(bijie, "S2.SAFE")
