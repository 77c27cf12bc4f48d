"""Remote inputs read through GDAL's virtual file systems, against real servers on 127.0.0.1: a COG and a STAC item over
HTTP (a server that answers Range requests and counts the bytes it serves) and on S3 (moto's server). A remote input
maps as the same file does locally, reads only the windows it needs, and fails, naming the URL, without stopping the
other inputs of the run."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import time

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from helpers.rasters import write_textured_cog
from helpers.sentinel2 import GRID_10M as TRANSFORM
from helpers.sentinel2 import UTM_45N as CRS
from helpers.sentinel2 import rgb_digital_numbers, write_stac_item
from helpers.servers import RangeServer, S3Server, free_port

from translandseg_hf.cli import main
from translandseg_hf.inference.reading import SceneReader
from translandseg_hf.geo import REMOTE_DEFAULTS
from translandseg_hf.geo.sentinel2.products import open_product

LOG = logging.getLogger(__name__)  # the figures the README quotes: `pytest ... -o log_cli=true --log-cli-level=INFO`
SIDE = 1024
STACK_SIDE = 1536  # the STAC item's 10 m grid: 3 x 3 blocks of 512 px in each band's COG


@pytest.fixture(autouse=True)
def remote_settings_restored(monkeypatch):
    """Opening a remote file sets REMOTE_DEFAULTS in os.environ where unset: undone after each test, so no other test
    (nor the next one here) runs with them."""
    for name in REMOTE_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GDAL_HTTP_CONNECTTIMEOUT", "2")  # an unreachable port fails in seconds
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")


@pytest.fixture(scope="module")
def cog(tmp_path_factory):
    return write_textured_cog(tmp_path_factory.mktemp("cog") / "scene.tif", side=SIDE)


@pytest.fixture(scope="module")
def small_cog(cog):
    """One tile's worth, beside the scene: for runs that test something other than the reading."""
    return write_textured_cog(cog.parent / "small.tif", side=256)


@pytest.fixture(scope="module")
def local_maps(cog, tiny_sam_folder, tmp_path_factory):
    """The maps of the local COG: what every remote read of it must give."""
    output = tmp_path_factory.mktemp("local-maps")
    assert main(["predict", "--model", str(tiny_sam_folder), str(cog), "--output", str(output)]) == 0
    return output


def read_map(path):
    with rasterio.open(path) as dataset:
        return dataset.read(1), dataset.crs, dataset.transform


def assert_same_maps(folder, expected, stem="scene"):
    probability, crs, transform = read_map(folder / f"{stem}_probability.tif")
    local, local_crs, local_transform = read_map(expected / "scene_probability.tif")
    assert crs == local_crs and transform == local_transform
    np.testing.assert_allclose(probability, local, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(read_map(folder / f"{stem}_mask.tif")[0], read_map(expected / "scene_mask.tif")[0])
    polygons = json.loads((folder / f"{stem}_landslides.geojson").read_text())["features"]
    assert len(polygons) == len(json.loads((expected / "scene_landslides.geojson").read_text())["features"])


# ----------------------------------------------------------------------------------------------------------- HTTP
def test_a_cog_over_http_maps_as_the_local_file_reading_it_about_once(cog, local_maps, tiny_sam_folder, tmp_path):
    with RangeServer(cog.parent) as server:
        assert main(["predict", "--model", str(tiny_sam_folder), server.url("scene.tif"), "--output",
                     str(tmp_path / "maps")]) == 0
    assert_same_maps(tmp_path / "maps", local_maps)
    ratio = server.served["scene.tif"] / cog.stat().st_size
    figure = (f"HTTP COG, whole map: {server.served['scene.tif']} bytes served of {cog.stat().st_size} ({ratio:.3f}x "
              f"the file) in {server.requests['scene.tif']} requests")
    LOG.info(figure)
    assert 0.5 < ratio <= 1.25, figure


def test_failures_name_the_url_and_the_other_inputs_still_map(cog, small_cog, tiny_sam_folder, tmp_path, capsys):
    closed = f"http://127.0.0.1:{free_port()}/scene_closed.tif"
    with RangeServer(cog.parent) as server:
        for name in ("denied.tif", "gone.tif"):
            (cog.parent / name).write_bytes(b"")
        server.status.update({"denied.tif": 403, "gone.tif": 404})
        signed = server.url("signed.tif") + "?X-Amz-Signature=secret&X-Amz-Credential=hidden"
        start = time.perf_counter()
        code = main(["predict", "--model", str(tiny_sam_folder), server.url("denied.tif"), server.url("gone.tif"),
                     closed, signed, server.url("small.tif"), "--output", str(tmp_path / "maps")])
        took = time.perf_counter() - start
    out, err = capsys.readouterr()
    assert code == 1 and (tmp_path / "maps" / "small_probability.tif").is_file()
    assert "4 failed" in out and "1 done" in out
    assert f"failed: {server.url('denied.tif')}: access denied (HTTP 403)" in out
    assert f"failed: {server.url('gone.tif')}: not found (HTTP 404)" in out
    assert f"failed: {closed}: no answer from the server" in out
    assert f"failed: {server.url('signed.tif')}: not found (HTTP 404)" in out
    assert "secret" not in out + err and "hidden" not in out + err
    assert took < 30


@pytest.mark.parametrize("name, status, words", [("denied.tif", 403, "access denied \\(HTTP 403\\)"),
                                                   ("gone.tif", 404, "not found \\(HTTP 404\\)")])
def test_a_refused_url_says_which_refusal(cog, name, status, words):
    with RangeServer(cog.parent) as server:
        server.status[name] = status
        for _ in range(2):  # GDAL remembers a failed URL: the second open still says why
            with pytest.raises(OSError, match=f"^{re.escape(server.url(name))}: {words}"):
                SceneReader(server.url(name))


def test_a_busy_server_is_asked_again_then_named(cog, monkeypatch):
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "2")
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")
    with RangeServer(cog.parent) as server:
        server.status["busy.tif"] = 503
        with pytest.raises(OSError, match=f"^{re.escape(server.url('busy.tif'))}: the server did not serve it "
                                          r"\(HTTP 503, also after 2 retries\); try again later"):
            SceneReader(server.url("busy.tif"))
    assert server.requests["busy.tif"] >= 3


def test_an_unreachable_port_fails_within_the_connect_timeout():
    closed = f"http://127.0.0.1:{free_port()}/closed.tif"
    start = time.perf_counter()
    for _ in range(2):
        with pytest.raises(OSError, match=f"^{re.escape(closed)}: no answer from the server \\(CURL error: "):
            SceneReader(closed)
    assert time.perf_counter() - start < 5


def test_a_signed_url_never_shows_its_signature(cog):
    with RangeServer(cog.parent) as server:
        signed = server.url("missing.tif") + "?X-Amz-Signature=secret&X-Amz-Credential=hidden"
        with pytest.raises(OSError, match=f"^{re.escape(server.url('missing.tif'))}: not found") as raised:
            SceneReader(signed)
    assert "secret" not in str(raised.value) and "hidden" not in repr(raised.value)


def test_a_url_without_an_extension_is_read(cog, tmp_path):
    """Download endpoints often name no file type: GDAL's allowed extensions must not refuse them unasked."""
    (tmp_path / "download").write_bytes(cog.read_bytes())
    with RangeServer(tmp_path) as server, SceneReader(server.url("download") + "?token=abc") as reader:
        assert (reader.width, reader.height) == (SIDE, SIDE) and reader.path.stem == "download"
    assert server.requests["download"] >= 1


def test_an_input_list_mixes_local_files_and_urls(small_cog, tiny_sam_folder, tmp_path):
    """The local files after a URL are read as local files: a PNG's world file is still found beside it."""
    local = write_textured_cog(tmp_path / "other.tif", side=256)  # small_cog's pixels
    with rasterio.open(local) as dataset:
        Image.fromarray(np.moveaxis(dataset.read(), 0, -1)).save(tmp_path / "plain.png")
    (tmp_path / "plain.pgw").write_text("0.8\n0\n0\n-0.8\n300000.4\n3099999.6\n")
    with RangeServer(small_cog.parent) as server:
        listing = tmp_path / "inputs.txt"
        listing.write_text(f"# one input per line\nother.tif\n\n{server.url('small.tif')}\nplain.png\n")
        assert main(["predict", "--model", str(tiny_sam_folder), f"@{listing}", "--output",
                     str(tmp_path / "maps")]) == 0
    assert server.requests["small.tif"] >= 1
    np.testing.assert_allclose(read_map(tmp_path / "maps" / "small_probability.tif")[0],
                               read_map(tmp_path / "maps" / "other_probability.tif")[0], atol=1e-6)
    assert read_map(tmp_path / "maps" / "plain_probability.tif")[2] == from_origin(300_000, 3_100_000, 0.8, 0.8)


# ----------------------------------------------------------------------------------------------------- STAC items
@pytest.fixture(scope="module")
def stac_item(tmp_path_factory):
    """An Earth Search-style L1C item beside its three 10 m COGs (512 px blocks), asset hrefs relative to it."""
    folder = tmp_path_factory.mktemp("stac")
    return write_stac_item(folder / "item.json", rgb_digital_numbers(STACK_SIDE), CRS, TRANSFORM, level="L1C")


AOI = "300200,3099500,300600,3099900"  # 40 x 40 px of the 10 m grid, inside the item's first block


def read_stack(path):
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.transform, dataset.descriptions


def test_stack_bounds_on_a_stac_item_over_http_reads_a_small_part_of_it(stac_item, rgb_model, tmp_path):
    assert main(["stack", "--model", str(rgb_model), "--sentinel2", str(stac_item), "--bounds", AOI, "--output",
                 str(tmp_path / "local.tif")]) == 0
    with RangeServer(stac_item.parent) as server:
        assert main(["stack", "--model", str(rgb_model), "--sentinel2", server.url("item.json"), "--bounds", AOI,
                     "--output", str(tmp_path / "remote.tif")]) == 0
    local, remote = read_stack(tmp_path / "local.tif"), read_stack(tmp_path / "remote.tif")
    assert remote[0].shape == (3, 40, 40) and remote[1:] == local[1:]
    np.testing.assert_array_equal(remote[0], local[0])
    bands = [name for name in server.served if name.endswith(".tif")]
    assert sorted(bands) == ["B02.tif", "B03.tif", "B04.tif"]
    total = sum((stac_item.parent / name).stat().st_size for name in bands)
    fraction = sum(server.served[name] for name in bands) / total
    figure = (f"HTTP STAC item, stack --bounds of 40 x 40 px of {STACK_SIDE} x {STACK_SIDE}: "
              f"{sum(server.served[name] for name in bands)} bytes of the band COGs' {total} ({fraction:.3%})")
    LOG.info(figure)
    assert fraction < 0.25, figure


def test_a_stac_item_url_that_fails_says_why_within_the_timeout(rgb_model, tmp_path, capsys):
    closed = f"http://127.0.0.1:{free_port()}/closed.json"
    small = write_stac_item(tmp_path / "item" / "item.json", rgb_digital_numbers(96), CRS, TRANSFORM, level="L1C")
    with RangeServer(small.parent) as server:
        server.status["denied.json"] = 403
        signed = server.url("absent.json") + "?X-Amz-Signature=secret"
        cases = ((server.url("denied.json"), "access denied \\(HTTP 403\\)"), (signed, "not found \\(HTTP 404\\)"),
                 (closed, "no answer from the server"))
        start = time.perf_counter()
        for url, words in cases:
            with pytest.raises(OSError, match=f"^{re.escape(url.split('?')[0])}: cannot read the STAC item: {words}"):
                open_product(url)
        assert time.perf_counter() - start < 5
        assert main(["predict", "--model", str(rgb_model), signed, server.url("item.json"), "--output",
                     str(tmp_path / "maps")]) == 1
    out, err = capsys.readouterr()
    assert "1 done" in out and f"failed: {server.url('absent.json')}: cannot read the STAC item: not found" in out
    assert "secret" not in out + err


# ------------------------------------------------------------------------------------------------------------- S3
@pytest.fixture(scope="module")
def s3_server():
    if importlib.util.find_spec("moto") is None:
        pytest.skip("moto is not installed (pip install 'moto[server]>=5')")
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3_server, monkeypatch, request):
    """A bucket of its own (GDAL's cache is per URL), and GDAL and botocore pointed at moto by the usual variables."""
    for name, value in dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
                            AWS_S3_ENDPOINT=s3_server.endpoint, AWS_HTTPS="NO", AWS_VIRTUAL_HOSTING="FALSE").items():
        monkeypatch.setenv(name, value)
    name = "bucket-" + request.node.name.replace("_", "-")[5:40].strip("-")
    s3_server.client().create_bucket(Bucket=name)
    return name


def upload(s3_server, bucket, files, prefix=""):
    client = s3_server.client()
    for file in files:
        client.upload_file(str(file), bucket, prefix + file.name)


def test_a_cog_on_s3_maps_as_the_local_file(s3_server, bucket, cog, local_maps, tiny_sam_folder, tmp_path):
    upload(s3_server, bucket, [cog])
    assert main(["predict", "--model", str(tiny_sam_folder), f"s3://{bucket}/scene.tif", "--output",
                 str(tmp_path / "maps")]) == 0
    assert_same_maps(tmp_path / "maps", local_maps)


def test_a_stac_item_on_s3_stacks_and_maps_as_the_local_item(s3_server, bucket, stac_item, rgb_model, tmp_path):
    upload(s3_server, bucket, [stac_item, *stac_item.parent.glob("B0?.tif")], prefix="item/")
    remote = f"s3://{bucket}/item/item.json"
    for product, name in ((str(stac_item), "local.tif"), (remote, "remote.tif")):
        assert main(["stack", "--model", str(rgb_model), "--sentinel2", product, "--bounds", AOI, "--output",
                     str(tmp_path / name)]) == 0
    local, stacked = read_stack(tmp_path / "local.tif"), read_stack(tmp_path / "remote.tif")
    assert stacked[0].shape == (3, 40, 40) and stacked[1:] == local[1:]
    np.testing.assert_array_equal(stacked[0], local[0])


def test_a_stac_item_with_a_missing_asset_is_named_and_the_others_map(s3_server, bucket, rgb_model, tmp_path,
                                                                         capsys):
    dn = rgb_digital_numbers(96)
    good = write_stac_item(tmp_path / "good" / "item.json", dn, CRS, TRANSFORM, level="L1C")
    partial = write_stac_item(tmp_path / "partial" / "partial.json", dn, CRS, TRANSFORM, level="L1C", missing=("B3",))
    upload(s3_server, bucket, [good, *good.parent.glob("B0?.tif")], prefix="good/")
    upload(s3_server, bucket, [partial, *partial.parent.glob("B0?.tif")], prefix="partial/")
    assert main(["predict", "--model", str(rgb_model), f"s3://{bucket}/partial/partial.json",
                 f"s3://{bucket}/good/item.json", f"s3://{bucket}/none/absent.json", "--output",
                 str(tmp_path / "maps")]) == 1
    out = capsys.readouterr().out
    assert "1 done" in out and "2 failed" in out
    assert main(["predict", "--model", str(rgb_model), str(good), "--output", str(tmp_path / "local")]) == 0
    np.testing.assert_allclose(read_map(tmp_path / "maps" / "item_probability.tif")[0],
                               read_map(tmp_path / "local" / "item_probability.tif")[0], atol=1e-6, equal_nan=True)
    assert (f"failed: s3://{bucket}/partial/partial.json: the band file s3://{bucket}/partial/B03.tif: not found "
            "(HTTP 404)") in out
    assert f"failed: s3://{bucket}/none/absent.json: cannot read the STAC item: not found (HTTP 404)" in out
