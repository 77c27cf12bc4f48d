"""Where the imagery comes from (issue 39, section 3): L2A assets served through S3 (moto) composite to the truth as
the HTTP ones do; an L1C pair whose first date has a cloud drawn as s2cloudless sees it has that cloud filled from
the second date; an item missing a band the model reads is refused naming the item and the band."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.warp import transform_bounds
from helpers.servers import S3Server
from helpers.sentinel2 import GRID_10M, UTM_45N, aoi_bounds, dn_truths, l4s_contract, scl_truths
from helpers.sentinel2 import write_safe, write_scenes
from helpers.sentinel2 import TRUTH_SEARCH, assert_composite_is_the_truth, truth_bbox, truth_catalogue
from helpers.sentinel2 import CHANNELS, L1C_SIDE, l1c_scene, requires_s2cloudless, truth_window

from translandseg_hf import cli
from translandseg_hf.geo.aoi import Aoi
from translandseg_hf.geo.sentinel2.composite import SOURCE_NODATA, composite
from translandseg_hf.geo.sentinel2.stack import recipe_of
from translandseg_hf.saved_contract import model_contract


class BucketUrls:
    """served_items' `assets`: each file's s3:// URL in the bucket, under its scene folder."""

    def __init__(self, bucket: str):
        self.bucket = bucket

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{name}"


def test_l2a_assets_on_s3_composite_to_the_truth(tmp_path, rgb_model, monkeypatch, capsys):
    pytest.importorskip("pystac_client", reason="the imagery extra (pystac-client) is not installed")
    if importlib.util.find_spec("moto") is None:
        pytest.skip("moto is not installed (pip install 'moto[server]>=5')")
    dns, scls = dn_truths(), scl_truths()
    scenes = write_scenes(tmp_path / "products", dns, scls)
    with S3Server() as s3:
        for name, value in dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
                                AWS_S3_ENDPOINT=s3.endpoint, AWS_HTTPS="NO", AWS_VIRTUAL_HOSTING="FALSE").items():
            monkeypatch.setenv(name, value)
        client = s3.client()
        client.create_bucket(Bucket="scenes")
        for file in (tmp_path / "products").glob("*/*.tif"):
            client.upload_file(str(file), "scenes", f"{file.parent.name}/{file.name}")
        with truth_catalogue(tmp_path, scenes, BucketUrls("scenes")) as stac:
            status = cli.main(["imagery", "--model", str(rgb_model), "--bbox", truth_bbox(), *TRUTH_SEARCH, "--stac",
                               stac, "--order", "earliest", "--cloud_mask", "scl", "--output", str(tmp_path / "out")])
    assert status == 0 and "6 scenes" in capsys.readouterr().out
    recipe = recipe_of(model_contract(rgb_model), "product")
    assert_composite_is_the_truth(tmp_path / "out", dns, scls, recipe.divisors, recipe.channels)


@requires_s2cloudless
def test_an_l1c_cloud_seen_by_s2cloudless_is_filled_from_the_next_date(tmp_path):
    cloudy, truth = l1c_scene()
    cloudy["B3"] = cloudy["B2"].copy()  # s2cloudless reads no B3; the model does (green close to blue here)
    clear = {band: values.copy() for band, values in cloudy.items()}
    for band in clear:  # the second date: the ground around the cloud, the cloud gone (vegetation beneath)
        clear[band][truth] = np.median(cloudy[band][~truth]).astype(np.uint16)
    products = [write_safe(tmp_path / name, dn, UTM_45N, GRID_10M, level="L1C", baseline="04.00", driver="GTiff",
                           date=date) for name, dn, date in (("cloudy", cloudy, "20230101T045209"),
                                                             ("clear", clear, "20230106T045209"))]
    margin = 40  # 10 m pixels: the WGS 84 box's UTM bounds reach beyond the UTM box it came from
    inner = (GRID_10M.c + 10 * margin, GRID_10M.f - 10 * (L1C_SIDE - margin), GRID_10M.c + 10 * (L1C_SIDE - margin),
             GRID_10M.f - 10 * margin)
    aoi = Aoi(shapely.box(*transform_bounds(UTM_45N, "EPSG:4326", *inner)), "the L1C box")
    contract = l4s_contract(CHANNELS)
    result = composite(products, aoi, contract, tmp_path / "out", cloud_mask_kind="s2cloudless", block=128)
    with rasterio.open(result.path("composite.tif")) as written, rasterio.open(result.path("source.tif")) as source:
        rows, cols = truth_window(written)
        values, origin = written.read(), source.read(1)
    cloud = truth[rows, cols]
    assert cloud.any() and (origin[cloud] == 1).all()  # every cloud pixel from the second date
    assert (origin[~cloud] == 0).mean() > 0.5 and (origin != SOURCE_NODATA).all()  # the clear ground from the first
    divisors = recipe_of(contract, "product").divisors
    for index, band in enumerate(("B2", "B3", "B4")):
        second = (clear[band][rows, cols].astype(np.float32) - 1000) / np.float32(divisors[index])
        np.testing.assert_array_equal(values[index][cloud], second[cloud])
    assert result.record["scenes"][0]["masked_share"] > cloud.mean() * 0.9


def test_an_item_missing_a_band_the_model_reads_is_named(tmp_path):
    scenes = write_scenes(tmp_path, dn_truths(), scl_truths())
    item = scenes[3].item  # the second date's tile B: its red band not delivered
    del item.assets["red"], item.assets["red-jp2"]
    item.save_object(include_self_link=False, dest_href=item.get_self_href())
    aoi = Aoi(shapely.box(*aoi_bounds()), "the test's box")
    href = Path(item.get_self_href())
    with pytest.raises(ValueError, match=rf"^{href}: the product has no B4, which the model reads; bands found: B2, "
                                         r"B3\.$"):
        composite(scenes, aoi, l4s_contract(CHANNELS), tmp_path / "out", cloud_mask_kind="scl", block=16)
