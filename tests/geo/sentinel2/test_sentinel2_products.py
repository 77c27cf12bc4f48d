"""Finding a Sentinel-2 product's band files and reading its level, baseline and DN offset (geo/sentinel2/products.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from helpers.sentinel2 import (jp2_available, native, write_band, write_band_folder, write_metadata, write_safe,
                               write_stac_item)

from translandseg_hf.geo.sentinel2.bands import SENTINEL2_BANDS
from translandseg_hf.geo.sentinel2.products import Sentinel2Product, is_product, open_product

CRS = "EPSG:32645"
GRID = from_origin(300000, 3100000, 10, 10)
L2A_BANDS = tuple(band for band in SENTINEL2_BANDS if band != "B10")


def dn(bands=SENTINEL2_BANDS, size=12) -> dict:
    """Block-constant DNs on a 12 x 12 grid of 10 m pixels (6 x 6 blocks, so every band's native grid is whole)."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(1001, 5000, size=(len(bands), size // 6, size // 6))
    return {band: np.kron(block, np.ones((6, 6))).astype(np.uint16) for band, block in zip(bands, blocks)}


def rgb() -> dict:
    return dn(("B2", "B3", "B4"))


# SAFE folders


def test_l1c_safe_finds_every_band_file_and_reads_offsets_at_baseline_0400(tmp_path):
    safe = write_safe(tmp_path, dn(), CRS, GRID, level="L1C", baseline="04.00")
    product = open_product(safe)
    assert product.kind == "safe" and product.level == "L1C" and product.baseline == "04.00"
    assert list(product.bands) == list(SENTINEL2_BANDS)
    assert Path(product.band("B8A")).name == "T45RUL_20230101T045209_B8A.jp2" or not jp2_available()
    assert Path(product.band("B04")).parent.name == "IMG_DATA" and "TCI" not in " ".join(product.bands.values())
    assert not list(safe.rglob("*.aux.xml"))
    assert product.offsets == {band: -1000.0 for band in SENTINEL2_BANDS}
    assert product.offset_source == "MTD_MSIL1C.xml RADIO_ADD_OFFSET"
    assert product.nodata == {band: 0.0 for band in SENTINEL2_BANDS}


def test_l1c_safe_at_baseline_0214_has_no_offset_and_says_why(tmp_path):
    product = open_product(write_safe(tmp_path, dn(), CRS, GRID, baseline="02.14"))
    assert product.baseline == "02.14" and product.level == "L1C"
    assert product.offsets == {band: 0.0 for band in SENTINEL2_BANDS}
    assert product.offset_source == "processing baseline 02.14 (before 04.00: no offset)"


def test_l2a_safe_takes_each_band_at_its_finest_resolution_and_boa_offsets(tmp_path):
    safe = write_safe(tmp_path, dn(L2A_BANDS), CRS, GRID, level="L2A", baseline="05.09", offset=-1000)
    product = open_product(safe)
    assert product.kind == "safe" and product.level == "L2A" and product.baseline == "05.09"
    assert list(product.bands) == list(L2A_BANDS)
    folders = {band: Path(href).parent.name for band, href in product.bands.items()}
    assert folders == {"B1": "R60m", "B2": "R10m", "B3": "R10m", "B4": "R10m", "B5": "R20m", "B6": "R20m",
                       "B7": "R20m", "B8": "R10m", "B8A": "R20m", "B9": "R60m", "B11": "R20m", "B12": "R20m"}
    assert Path(product.band("B2")).stem.endswith("_B02_10m")
    assert product.offsets == {band: -1000.0 for band in SENTINEL2_BANDS}
    assert product.offset_source == "MTD_MSIL2A.xml BOA_ADD_OFFSET"


def test_geotiff_safe_is_read_like_a_jp2_one(tmp_path):
    product = open_product(write_safe(tmp_path, rgb(), CRS, GRID, level="L2A", driver="GTiff"))
    assert [Path(href).suffix for href in product.bands.values()] == [".tif"] * 3
    assert product.level == "L2A" and product.offsets["B4"] == -1000.0


def test_safe_without_metadata_has_no_offset_source_and_level_from_its_name(tmp_path):
    safe = write_safe(tmp_path, rgb(), CRS, GRID, level="L1C", driver="GTiff")
    (safe / "MTD_MSIL1C.xml").unlink()
    product = open_product(safe)
    assert product.level == "L1C" and product.baseline is None
    assert product.offsets == {} and product.offset_source is None and product.nodata == {}


def test_metadata_of_baseline_0400_without_an_offset_list_falls_back_to_the_baseline_rule(tmp_path):
    safe = write_safe(tmp_path, rgb(), CRS, GRID, driver="GTiff")
    mtd = safe / "MTD_MSIL1C.xml"
    text = mtd.read_text()
    start, end = text.index("<Radiometric_Offset_List>"), text.index("</Radiometric_Offset_List>")
    mtd.write_text(text[:start] + text[end + len("</Radiometric_Offset_List>"):])
    product = open_product(safe)
    assert product.offsets["B2"] == -1000.0
    assert product.offset_source.startswith("processing baseline 04.00 (04.00 or later: offset -1000;")


def test_two_granules_holding_one_band_are_refused_naming_both(tmp_path):
    safe = write_safe(tmp_path, rgb(), CRS, GRID, driver="GTiff")
    granule = next((safe / "GRANULE").iterdir())
    shutil.copytree(granule, granule.with_name(granule.name + "_copy"))
    with pytest.raises(ValueError, match=r"\.SAFE: two files for band B2 at 10 m: .*_B02\.tif and .*_copy.*_B02\.tif"):
        open_product(safe)


def test_corrupt_metadata_names_the_file(tmp_path):
    safe = write_safe(tmp_path, rgb(), CRS, GRID, driver="GTiff")
    (safe / "MTD_MSIL1C.xml").write_text("<n1:Level-1C_User_Product")
    with pytest.raises(ValueError, match=r"MTD_MSIL1C\.xml: not readable XML"):
        open_product(safe)


# Band folders


@pytest.mark.parametrize("names", ["{band}.tif", "T45RUL_20230101_{band}.tif", "T45RUL_20230101T045209_{band}_10m.tif"])
def test_band_folder_finds_bands_named_in_any_of_the_usual_ways(tmp_path, names):
    folder = write_band_folder(tmp_path / "scene", dn(("B2", "B3", "B4", "B8A", "B11")), CRS, GRID, names=names)
    assert is_product(folder)
    product = open_product(folder)
    assert product.kind == "folder" and list(product.bands) == ["B2", "B3", "B4", "B8A", "B11"]
    assert Path(product.band("B8A")).name == names.format(band="B8A")


def test_band_folder_without_metadata_says_nothing_of_offset_or_level(tmp_path):
    product = open_product(write_band_folder(tmp_path / "bands", rgb(), CRS, GRID))
    assert product.level is None and product.baseline is None
    assert product.offsets == {} and product.offset_source is None and product.nodata == {}


def test_band_folder_level_from_its_name_and_metadata_from_an_mtd_file_beside_the_bands(tmp_path):
    named = write_band_folder(tmp_path / "S2B_MSIL2A_20200626T095029_bands", rgb(), CRS, GRID)
    assert open_product(named).level == "L2A" and open_product(named).offset_source is None
    folder = write_band_folder(tmp_path / "with_mtd", rgb(), CRS, GRID)
    write_metadata(folder, level="L1C", baseline="02.14")
    product = open_product(folder)
    assert product.kind == "folder" and product.level == "L1C" and product.baseline == "02.14"
    assert product.offsets["B3"] == 0.0 and "02.14" in product.offset_source


def test_band_folder_keeps_auxiliary_layers_out_of_the_bands(tmp_path):
    folder = write_band_folder(tmp_path / "bands", rgb(), CRS, GRID)
    write_band(folder / "SCL.tif", np.zeros((6, 6)), CRS, GRID)
    assert is_product(folder) and list(open_product(folder).bands) == ["B2", "B3", "B4"]


def test_two_files_for_one_band_in_a_folder_are_refused_naming_both(tmp_path):
    folder = write_band_folder(tmp_path / "bands", rgb(), CRS, GRID, names="T45RUL_{band}_10m.tif")
    write_band(folder / "T45RUL_B04_20m.tif", np.zeros((6, 6)), CRS, GRID)
    with pytest.raises(ValueError, match=r"bands: two files for band B4: T45RUL_B04_10m\.tif and T45RUL_B04_20m\.tif"):
        open_product(folder)


# STAC items


def test_earth_search_item_matches_assets_by_name_and_prefers_the_cog(tmp_path):
    item = write_stac_item(tmp_path / "item" / "item.json", dn(L2A_BANDS), CRS, GRID, asset_keys="earth-search")
    product = open_product(item)
    assert product.kind == "stac" and product.level == "L2A" and product.baseline == "05.09"
    assert list(product.bands) == list(L2A_BANDS)
    assert product.band("B8A") == str((tmp_path / "item" / "B8A.tif").resolve())
    assert product.offsets == {band: -1000.0 for band in L2A_BANDS}
    assert product.offset_source == "STAC raster:bands offset/scale"
    assert product.nodata == {band: 0.0 for band in L2A_BANDS}


def test_planetary_computer_item_matches_assets_by_key_and_offsets_from_the_baseline(tmp_path):
    item = write_stac_item(tmp_path / "pc" / "item.json", dn(SENTINEL2_BANDS), CRS, GRID, asset_keys="planetary",
                           level="L1C", baseline="05.09")
    product = open_product(item)
    assert product.level == "L1C" and list(product.bands) == list(SENTINEL2_BANDS)
    assert Path(product.band("B4")).name == "T45RUL_20230101T045209_B04_10m.tif"
    assert product.offsets["B4"] == -1000.0 and product.offset_source == "STAC s2:processing_baseline 05.09"


def test_stac_offsets_at_baseline_0214(tmp_path):
    for keys in ("earth-search", "planetary"):
        product = open_product(write_stac_item(tmp_path / keys / "item.json", rgb(), CRS, GRID, asset_keys=keys,
                                               baseline="02.14"))
        assert product.offsets == {band: 0.0 for band in product.offsets} and product.offsets["B2"] == 0.0


def test_relative_hrefs_follow_the_item_and_absolute_hrefs_stay(tmp_path):
    item = write_stac_item(tmp_path / "a" / "item.json", rgb(), CRS, GRID, relative=True)
    assert json.loads(item.read_text())["assets"]["red"]["href"] == "./B04.tif"
    moved = shutil.move(str(tmp_path / "a"), str(tmp_path / "b"))
    assert open_product(Path(moved) / "item.json").band("B4") == str((tmp_path / "b" / "B04.tif").resolve())
    absolute = write_stac_item(tmp_path / "c" / "item.json", rgb(), CRS, GRID, relative=False)
    assert json.loads(absolute.read_text())["assets"]["red"]["href"] == str((tmp_path / "c" / "B04.tif").resolve())
    assert open_product(absolute).band("B4") == str((tmp_path / "c" / "B04.tif").resolve())


def test_eo_bands_name_is_read_before_the_key(tmp_path):
    item = write_stac_item(tmp_path / "item.json", rgb(), CRS, GRID, asset_keys="planetary")
    data = json.loads(item.read_text())
    data["assets"] = {f"band_{index}": asset for index, asset in enumerate(data["assets"].values())}
    item.write_text(json.dumps(data))
    assert list(open_product(item).bands) == ["B2", "B3", "B4"]


def test_stac_1_1_bands_field_names_the_band_and_carries_offset_scale_and_nodata(tmp_path):
    item = write_stac_item(tmp_path / "item.json", rgb(), CRS, GRID, asset_keys="earth-search")
    data = json.loads(item.read_text())
    for key in ("blue", "green", "red"):
        asset = data["assets"][key]
        name, raster = asset.pop("eo:bands")[0]["name"], asset.pop("raster:bands")[0]
        asset.update({"bands": [{"name": name}], "raster:offset": raster["offset"], "raster:scale": raster["scale"],
                      "nodata": 65535})
    data["assets"] = {f"band_{index}": data["assets"][key] for index, key in enumerate(("blue", "green", "red"))}
    item.write_text(json.dumps(data))
    product = open_product(item)
    assert list(product.bands) == ["B2", "B3", "B4"] and product.offsets == {"B2": -1000.0, "B3": -1000.0,
                                                                             "B4": -1000.0}
    assert product.nodata == {"B2": 65535.0, "B3": 65535.0, "B4": 65535.0}


def test_earth_search_offset_already_applied_means_none_to_add(tmp_path):
    item = write_stac_item(tmp_path / "item.json", rgb(), CRS, GRID, boa_offset_applied=True)
    product = open_product(item)
    assert product.offsets == {"B2": 0.0, "B3": 0.0, "B4": 0.0}
    assert "earthsearch:boa_offset_applied" in product.offset_source and "already" in product.offset_source


def test_stac_item_without_offset_or_baseline_says_nothing(tmp_path):
    item = write_stac_item(tmp_path / "item.json", rgb(), CRS, GRID, asset_keys="planetary")
    data = json.loads(item.read_text())
    del data["properties"]["s2:processing_baseline"], data["properties"]["s2:product_type"]
    data["collection"] = "my-scenes"
    item.write_text(json.dumps(data))
    product = open_product(item)
    assert product.offsets == {} and product.offset_source is None and product.level is None


def test_a_missing_asset_and_a_missing_file_are_named(tmp_path):
    item = write_stac_item(tmp_path / "item.json", rgb(), CRS, GRID, missing=("B3",))
    data = json.loads(item.read_text())
    del data["assets"]["red"], data["assets"]["red-jp2"]
    item.write_text(json.dumps(data))
    product = open_product(item)
    with pytest.raises(ValueError, match=r"item\.json: the product has no B4 band \(bands found: B2, B3\)"):
        product.band("B04")
    with pytest.raises(FileNotFoundError, match=r"item\.json: the product's B3 file .*B03\.tif does not exist"):
        product.band("B3")


def test_json_that_is_not_a_stac_item_is_refused(tmp_path):
    collection = tmp_path / "collection.json"
    collection.write_text(json.dumps({"type": "Collection", "stac_version": "1.0.0", "id": "c"}))
    assert not is_product(collection)
    with pytest.raises(ValueError, match=r"collection\.json: not a STAC Item \(type 'Collection'\)"):
        open_product(collection)
    feature = tmp_path / "feature.json"
    feature.write_text(json.dumps({"type": "Feature", "geometry": None, "properties": {}}))
    with pytest.raises(ValueError, match=r"feature\.json: not a STAC Item \(type 'Feature', no stac_version\)"):
        open_product(feature)


# What is and is not a product


def test_is_product_true_cases(tmp_path):
    safe = write_safe(tmp_path, rgb(), CRS, GRID, driver="GTiff")
    bare_safe = tmp_path / "empty.SAFE"
    bare_safe.mkdir()
    with_mtd = tmp_path / "with_mtd"
    write_metadata(with_mtd)
    item = write_stac_item(tmp_path / "stac" / "item.json", rgb(), CRS, GRID)
    folder = write_band_folder(tmp_path / "bands", rgb(), CRS, GRID)
    assert [is_product(path) for path in (safe, bare_safe, with_mtd, item, folder, str(folder))] == [True] * 6


def test_is_product_false_cases(tmp_path):
    scenes = tmp_path / "scenes"
    for name in ("scene.tif", "other_scene.tif"):
        write_band(scenes / name, np.zeros((4, 4)), CRS, GRID)
    mixed = write_band_folder(tmp_path / "mixed", rgb(), CRS, GRID)
    write_band(mixed / "scene.tif", np.zeros((4, 4)), CRS, GRID)
    no_rgb = write_band_folder(tmp_path / "no_rgb", dn(("B2", "B3", "B8")), CRS, GRID)
    empty = tmp_path / "empty"
    empty.mkdir()
    plain_json = tmp_path / "plain.json"
    plain_json.write_text("[1, 2]")
    single = scenes / "scene.tif"
    cases = (scenes, mixed, no_rgb, empty, plain_json, single, tmp_path / "nothing")
    assert [is_product(path) for path in cases] == [False] * len(cases)


def test_not_a_product_is_refused_naming_the_path_and_why(tmp_path):
    scenes = tmp_path / "scenes"
    write_band(scenes / "scene.tif", np.zeros((4, 4)), CRS, GRID)
    with pytest.raises(ValueError, match=r"scenes: not a Sentinel-2 product \(raster files without a band name in "
                                         r"their name: scene\.tif\); pass a SAFE folder"):
        open_product(scenes)
    no_rgb = write_band_folder(tmp_path / "no_rgb", dn(("B2", "B8")), CRS, GRID)
    with pytest.raises(ValueError, match=r"no_rgb: not a Sentinel-2 product \(no B3, B4 among the band files\)"):
        open_product(no_rgb)
    with pytest.raises(ValueError, match=r"scene\.tif: not a Sentinel-2 product \(a file that is not a STAC item"):
        open_product(scenes / "scene.tif")
    with pytest.raises(FileNotFoundError, match=r"nowhere: no such Sentinel-2 product"):
        open_product(tmp_path / "nowhere")
    bare = tmp_path / "bare.SAFE"
    bare.mkdir()
    with pytest.raises(ValueError, match=r"bare\.SAFE: a SAFE folder with no band files under GRANULE"):
        open_product(bare)


# The fixtures themselves


def test_native_takes_each_blocks_top_left_value_and_covers_the_grid():
    values = np.arange(7 * 13, dtype=np.uint16).reshape(7, 13)
    assert native(values, "B1").shape == (2, 3) and native(values, "B5").shape == (4, 7)
    assert native(values, "B1")[1, 2] == values[6, 12] and native(values, "B2") is not None
    assert np.array_equal(native(values, "B2"), values)


def test_written_bands_are_at_native_resolution_and_lossless(tmp_path):
    import rasterio

    values = dn(("B1", "B5"))
    safe = write_safe(tmp_path, values, CRS, GRID)
    product = open_product(safe)
    for band in ("B1", "B5"):
        with rasterio.open(product.band(band)) as dataset:
            assert dataset.res == ((60.0, 60.0) if band == "B1" else (20.0, 20.0))
            assert dataset.transform.c == GRID.c and dataset.transform.f == GRID.f
            assert dataset.nodata == (None if product.band(band).endswith(".jp2") else 0)
            assert np.array_equal(dataset.read(1), native(values[band], band))


def test_product_is_a_frozen_record():
    product = Sentinel2Product(path=Path("p"), kind="folder", level=None, bands={"B2": "b.tif"}, offsets={},
                               offset_source=None, baseline=None, nodata={})
    with pytest.raises(AttributeError):
        product.level = "L1C"


@pytest.mark.parametrize("url, expected", [
    ("https://stac.example.org/collections/sentinel-2-l1c/items/S2B_45RUL_20230315_0_L1C", True),  # a STAC API item
    ("s3://bucket/catalog/item.json", True), ("https://host/scene.tif", False), ("s3://bucket/items/B04.tif", False),
])
def test_a_remote_json_or_stac_api_item_url_is_a_product_and_a_raster_url_is_not(url, expected):
    assert is_product(url) is expected
