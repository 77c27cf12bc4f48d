"""The composite on one grid (issue 39, section 1): two MGRS-like tiles of L2A STAC items over the AOI at three dates,
SCL clouds, shadow and cirrus placed where a truth says, the second date entirely cloudy over the AOI's west half.
The composite equals the truth wherever a cloud-free value exists, is nodata where none does, source.tif names the
scene (tile and date) each pixel came from, and scenes.gpkg's shares add up to the share covered. An AOI across a
UTM zone boundary gets its centroid's zone."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
import rasterio
import rasterio.transform
import rasterio.warp
import shapely
from pyogrio.raw import read as read_layer
from rasterio.transform import Affine
from rasterio.warp import transform_bounds
from helpers.servers import RangeServer, free_port
from helpers.sentinel2 import BANDS, SIDE, aoi_bounds, dn_truths, l4s_contract, scl_truths
from helpers.sentinel2 import TRUTH_SEARCH, assert_composite_is_the_truth, truth_bbox, truth_catalogue
from helpers.sentinel2 import with_offset, write_scenes, write_stac_item
from helpers.sentinel2 import CHANNELS, expected, truth_window

from translandseg_hf import cli
from translandseg_hf.geo.aoi import Aoi
from translandseg_hf.geo.sentinel2.clouds import CLOUD_MASKS
from translandseg_hf.geo.sentinel2.composite import SOURCE_NODATA, composite, composite_grid
from translandseg_hf.geo.sentinel2.stack import recipe_of
from translandseg_hf.geo.stac_search import ORDERS
from translandseg_hf.saved_contract import model_contract

@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("composite")
    dns, scls = dn_truths(), scl_truths()
    scenes = write_scenes(tmp_path, dns, scls)
    aoi = Aoi(shapely.box(*aoi_bounds()), "the test's box")
    contract = l4s_contract(CHANNELS)
    result = composite(scenes, aoi, contract, tmp_path / "out", cloud_mask_kind="scl", block=16)  # blocks: 3 x 3
    return result, dns, scls, recipe_of(contract, "product").divisors


def test_composite_is_the_truth_where_clear_and_nodata_where_not(made):
    result, dns, scls, divisors = made
    grid = result.grid
    assert grid.crs.to_epsg() == 32645 and grid.resolution == 10
    rows, cols = truth_window(grid)
    values, source = expected(dns, scls, divisors, rows, cols)
    with rasterio.open(result.path("composite.tif")) as written:
        assert written.descriptions == BANDS and written.crs == grid.crs and written.transform == grid.transform
        np.testing.assert_array_equal(written.read(), values)
    with rasterio.open(result.path("source.tif")) as written:
        assert written.dtypes == ("uint16",) and written.nodata == SOURCE_NODATA
        np.testing.assert_array_equal(written.read(1), source)
    # the truth's cases all occur: nodata where no date is clear, every date and both tiles supplying pixels
    assert (source == SOURCE_NODATA).any() and {0, 1, 3, 4} <= set(np.unique(source).tolist())


def test_scenes_gpkg_shares_sum_to_the_covered_share(made):
    result = made[0]
    with rasterio.open(result.path("source.tif")) as written:
        covered = float((written.read(1) != SOURCE_NODATA).mean())
    meta, _, geometry, data = read_layer(str(result.path("scenes.gpkg")))[:4]
    columns = dict(zip(meta["fields"], data))
    assert sum(columns["share"]) == pytest.approx(covered) == pytest.approx(result.covered_share) and covered < 1
    used = [scene.id for scene, pixels in zip(result.scenes, result.supplied) if pixels]
    assert list(columns["id"]) == used and len(geometry) == len(used)
    record = json.loads(result.path("imagery.json").read_text())
    assert [entry["used"] for entry in record["scenes"]] == [bool(pixels) for pixels in result.supplied]
    # the second date's tile A: clear only where the first date's tiles were clear already
    assert result.supplied[2] == 0 and record["scenes"][2]["reason"] == (
        "every pixel it has clear was already filled by the scenes before it")
    assert 0 < record["scenes"][2]["masked_share"] < 1
    assert record["grid"]["crs"] == "EPSG:32645" and record["resampling"]["reflectance"] == "nearest"
    with sqlite3.connect(result.path("scenes.gpkg")) as database:  # GeoPackage 1.2, as the polygons: Debian 12's GDAL
        assert database.execute("PRAGMA user_version").fetchone()[0] == 10200


@pytest.mark.parametrize("bbox, epsg", [("89.7,27.0,90.1,27.1", 32645), ("89.9,27.0,90.3,27.1", 32646),
                                        ("89.9,-27.1,90.3,-27.0", 32746)],
                         ids=["centroid-west-of-90E", "centroid-east-of-90E", "south"])
def test_an_aoi_across_a_utm_boundary_gets_its_centroids_zone(bbox, epsg):
    aoi = Aoi.from_bbox(bbox)
    grid = composite_grid(aoi, 10)
    assert grid.crs.to_epsg() == epsg
    west, north = grid.transform.c, grid.transform.f
    assert west % 10 == 0 and north % 10 == 0 and grid.transform.a == 10 and grid.transform.e == -10
    inner = transform_bounds("EPSG:4326", grid.crs, *aoi.bounds, densify_pts=21)
    assert west <= inner[0] and north >= inner[3]
    assert west + 10 * grid.width >= inner[2] > west + 10 * (grid.width - 1)


def test_imagery_command_searches_the_catalogue_and_writes_the_composite(tmp_path, rgb_model, capsys):
    pytest.importorskip("pystac_client", reason="the imagery extra (pystac-client) is not installed")
    dns, scls = dn_truths(), scl_truths()
    scenes = write_scenes(tmp_path / "products", dns, scls)
    with RangeServer(tmp_path / "products") as assets, truth_catalogue(tmp_path, scenes, assets) as stac:
        status = cli.main(["imagery", "--model", str(rgb_model), "--bbox", truth_bbox(), *TRUTH_SEARCH, "--stac", stac,
                           "--order", "earliest", "--cloud_mask", "scl", "--output", str(tmp_path / "out")])
    assert status == 0 and "6 scenes" in capsys.readouterr().out
    with rasterio.open(tmp_path / "out" / "composite.tif") as written:
        assert written.descriptions == ("B4", "B3", "B2")
    recipe = recipe_of(model_contract(rgb_model), "product")
    assert_composite_is_the_truth(tmp_path / "out", dns, scls, recipe.divisors, recipe.channels)
    record = json.loads((tmp_path / "out" / "imagery.json").read_text())
    assert record["search"]["query"]["order"] == "earliest" and len(record["search"]["considered"]) == 6


def test_imagery_command_needs_one_area(rgb_model, tmp_path, capsys):
    assert cli.main(["imagery", "--model", str(rgb_model), "--start", "2023-01-01", "--end", "2023-01-31",
                     "--output", str(tmp_path)]) == 2
    assert "give the area as --aoi FILE (GeoJSON or GPKG) or --bbox W,S,E,N (WGS 84), one of them." in \
        capsys.readouterr().err
    assert cli.IMAGERY_ORDERS == ORDERS and set(cli.CLOUD_MASKS) == set(CLOUD_MASKS)  # the CLI's copies


def test_a_tile_of_the_next_zone_is_reprojected_onto_the_centroids_zone(tmp_path):
    """A tile delivered in UTM 46N west of 90 deg E (as MGRS tiles overlap the next zone): the AOI's centroid is in
    zone 45, so the composite is on UTM 45N, each pixel the tile's value at (or, where GDAL's approximate transform
    rounds the other way, beside) the pixel its centre falls in: nearest neighbour, no value invented."""
    zone46 = "EPSG:32646"
    east, north = rasterio.warp.transform("EPSG:4326", zone46, [89.95], [27.0])
    transform = Affine.translation(60 * (east[0] // 60), 60 * (north[0] // 60)) @ Affine.scale(10, -10)
    dn = dn_truths()[0]
    path = write_stac_item(tmp_path / "tile" / "item.json", with_offset(dn, 1000), zone46, transform)
    inner = (transform.c + 60, transform.f - 420, transform.c + 420, transform.f - 60)
    aoi = Aoi(shapely.box(*transform_bounds(zone46, "EPSG:4326", *inner)), "west of 90E")
    assert aoi.geometry.centroid.x < 90
    result = composite([path], aoi, l4s_contract(CHANNELS), tmp_path / "out", cloud_mask_kind="none", block=16)
    grid = result.grid
    assert grid.crs.to_epsg() == 32645 and result.covered_share == 1.0
    with rasterio.open(result.path("composite.tif")) as written:
        values = written.read(1)
    cols, rows = np.meshgrid(np.arange(grid.width), np.arange(grid.height))
    x, y = rasterio.transform.xy(grid.transform, rows.ravel(), cols.ravel(), offset="center")
    x46, y46 = rasterio.warp.transform(grid.crs, zone46, x, y)
    row46, col46 = (np.asarray(v) for v in rasterio.transform.rowcol(transform, x46, y46))
    truth = dn["B2"].astype(np.float32) / np.float32(recipe_of(l4s_contract(CHANNELS), "p").divisors[0])
    exact = values.ravel() == truth[row46, col46]
    beside = np.zeros_like(exact)
    for d_row in (-1, 0, 1):
        for d_col in (-1, 0, 1):
            near = truth[np.clip(row46 + d_row, 0, SIDE - 1), np.clip(col46 + d_col, 0, SIDE - 1)]
            beside |= values.ravel() == near
    assert exact.mean() > 0.95 and beside.all()


# AOI (W,S,E,N), resolution (m), what the refusal says after the AOI's name (None: a grid within the limit)
SIZE_CASES = [
    ("0,0,20,20", 10, r"its composite grid is 223,732 x 224,977 = 50,334,554,164 px at 10 m \(2,237\.3 x 2,249\.8 km, "
                      r"5,033,455 km2\), over the composite's limit of 150,000,000 px \(15,000 km2 at 10 m: each "
                      r"scene's cloud mask is held whole\); composite a smaller AOI, or split the area into parts"),
    ("85,27,86.5,28.2", 10, r"= 200,854,855 px at 10 m \(149\.4 x 134\.4 km, 20,085 km2\), over the composite's limit"),
    ("85,27,86.5,28.2", 30, r"= 22,320,360 px at 30 m \(149\.4 x 134\.5 km, 20,088 km2\) \(200,883,240 px at the cloud "
                            r"masks' 10 m\), over the composite's limit of 150,000,000 px"),
    ("85,27,86.1,28.1", 10, None),  # one Sentinel-2 tile's 109.8 km square, and more, fits
]


@pytest.mark.parametrize("bbox, resolution, said", SIZE_CASES, ids=["20-degrees", "over-at-10m", "over-at-masks-10m",
                                                                     "a-whole-tile"])
def test_a_composite_grid_over_the_limit_is_refused_naming_the_aoi(bbox, resolution, said):
    if said is None:
        grid = composite_grid(Aoi.from_bbox(bbox), resolution)
        assert grid.width * grid.height > 10_980 ** 2
        return
    with pytest.raises(ValueError, match=rf"^AOI bbox {bbox}: {said}" if said.startswith("its") else said):
        composite_grid(Aoi.from_bbox(bbox), resolution)


def test_imagery_refuses_an_aoi_over_the_limit_before_searching(rgb_model, tmp_path, capsys):
    """The catalogue is a port nobody serves: a search would fail with 'did not answer', not with the limit."""
    status = cli.main(["imagery", "--model", str(rgb_model), "--bbox", "85,27,86.5,28.2", *TRUTH_SEARCH, "--stac",
                       f"http://127.0.0.1:{free_port()}/", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and "AOI bbox 85,27,86.5,28.2: its composite grid is 14,939 x 13,445 = 200,854,855 px" in err
    assert "did not answer" not in err and not (tmp_path / "out").exists()


def test_composite_refuses_the_grid_before_reading_a_scene(tmp_path, monkeypatch):
    from translandseg_hf.geo.sentinel2 import composite as module

    monkeypatch.setattr(module, "MAX_COMPOSITE_PIXELS", 100)
    with pytest.raises(ValueError, match=r"^AOI the test's box: its composite grid is \d+ x \d+ = [\d,]+ px at 10 m "
                                         r"\(.*\), over the composite's limit of 100 px"):
        composite([tmp_path / "no-such-product"], Aoi(shapely.box(*aoi_bounds()), "the test's box"),
                  l4s_contract(CHANNELS), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_scene_after_those_that_fill_the_grid_is_never_opened(tmp_path):
    """One clear tile covers the AOI: the scenes after it (a product that does not exist) are never read, and
    imagery.json says so."""
    dn = dn_truths()[0]
    transform = Affine.translation(60 * 5000, 60 * 50000) @ Affine.scale(10, -10)
    path = write_stac_item(tmp_path / "tile" / "item.json", with_offset(dn, 1000), "EPSG:32645", transform)
    inner = (transform.c + 60, transform.f - 420, transform.c + 420, transform.f - 60)
    aoi = Aoi(shapely.box(*transform_bounds("EPSG:32645", "EPSG:4326", *inner)), "inside the tile")
    never = tmp_path / "missing" / "item.json"
    result = composite([path, never], aoi, l4s_contract(CHANNELS), tmp_path / "out", cloud_mask_kind="none",
                       block=16)
    assert result.covered_share == 1.0 and result.supplied[1] == 0
    entry = json.loads(result.path("imagery.json").read_text())["scenes"][1]
    assert (entry["href"], entry["used"], entry["masked_share"]) == (str(never), False, None)
    assert entry["reason"] == "not read: the scenes before it had filled every pixel by then"
