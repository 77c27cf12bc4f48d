"""Remote inputs read through GDAL's virtual file systems, against real servers on 127.0.0.1: a COG and a STAC item over
HTTP (a server that answers Range requests and counts the bytes it serves) and on S3 (moto's server). A remote input
maps as the same file does locally, reads only the windows it needs, and fails, naming the URL, without stopping the
other inputs of the run."""

from __future__ import annotations

import importlib.util
import json
import time

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from remote_servers import RangeServer, S3Server, free_port
from sentinel2_fixtures import write_stac_item
from test_sentinel2_stack import CRS, TRANSFORM, l4s_contract, with_offset
from test_multispectral import multispectral

import torch
from transformers import SamModel

from translandseg_hf.cli import main
from translandseg_hf.rasters import REMOTE_DEFAULTS
from translandseg_hf.sam_configs import tiny_sam_config

SIDE = 1024
STACK_SIDE = 480  # the STAC item's 10 m grid: 4.8 km, a multiple of 6 (every 20 m and 60 m pixel whole)
requires_moto = pytest.mark.skipif(importlib.util.find_spec("moto") is None,
                                   reason="moto is not installed (pip install 'moto[server]>=5')")


@pytest.fixture(autouse=True)
def remote_settings_restored(monkeypatch):
    """Opening a remote file sets REMOTE_DEFAULTS in os.environ where unset: undone after each test, so no other test
    (nor the next one here) runs with them."""
    for name in REMOTE_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GDAL_HTTP_CONNECTTIMEOUT", "2")  # an unreachable port fails in seconds
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")


def write_cog(path, side=SIDE):
    """A 3-band uint8 RGB COG in UTM: smooth relief plus noise, as imagery compresses."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    rng = np.random.default_rng(5)
    bands = [127 + 100 * np.sin(x / (40 + 9 * k)) * np.cos(y / (55 - 7 * k)) + rng.normal(0, 8, (side, side))
             for k in range(3)]
    values = np.clip(np.stack(bands), 0, 255).astype(np.uint8)
    with rasterio.open(path, "w", driver="COG", width=side, height=side, count=3, dtype="uint8", crs=CRS,
                       transform=from_origin(300_000, 3_100_000, 0.8, 0.8), COMPRESS="DEFLATE") as dataset:
        dataset.write(values)
    return path


@pytest.fixture(scope="module")
def cog(tmp_path_factory):
    return write_cog(tmp_path_factory.mktemp("cog") / "scene.tif")


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
def test_a_cog_over_http_maps_as_the_local_file_reading_it_about_once(cog, local_maps, tiny_sam_folder, tmp_path,
                                                                       capsys):
    with RangeServer(cog.parent) as server:
        assert main(["predict", "--model", str(tiny_sam_folder), server.url("scene.tif"), "--output",
                     str(tmp_path / "maps")]) == 0
    assert_same_maps(tmp_path / "maps", local_maps)
    ratio = server.served["scene.tif"] / cog.stat().st_size
    with capsys.disabled():
        print(f"\nHTTP COG, whole map: {server.served['scene.tif']} bytes served of {cog.stat().st_size} "
              f"({ratio:.3f}x the file) in {server.requests['scene.tif']} requests")
    assert 0.5 < ratio <= 1.25


def test_failures_name_the_url_and_the_other_inputs_still_map(cog, tiny_sam_folder, tmp_path, capsys):
    closed = f"http://127.0.0.1:{free_port()}/scene_closed.tif"
    with RangeServer(cog.parent) as server:
        for name in ("denied.tif", "gone.tif"):
            (cog.parent / name).write_bytes(b"")
        server.status.update({"denied.tif": 403, "gone.tif": 404})
        signed = server.url("signed.tif") + "?X-Amz-Signature=secret&X-Amz-Credential=hidden"
        start = time.perf_counter()
        code = main(["predict", "--model", str(tiny_sam_folder), server.url("denied.tif"), server.url("gone.tif"),
                     closed, signed, server.url("scene.tif"), "--output", str(tmp_path / "maps")])
        took = time.perf_counter() - start
    out, err = capsys.readouterr()
    assert code == 1 and (tmp_path / "maps" / "scene_probability.tif").is_file()
    assert "4 failed" in out and "1 done" in out
    assert f"failed: {server.url('denied.tif')}: access denied (HTTP 403)" in out
    assert f"failed: {server.url('gone.tif')}: not found (HTTP 404)" in out
    assert f"failed: {closed}: no answer from the server" in out
    assert f"failed: {server.url('signed.tif')}: not found (HTTP 404)" in out
    assert "secret" not in out + err and "hidden" not in out + err
    assert took < 30


def test_an_input_list_mixes_local_files_and_urls(cog, local_maps, tiny_sam_folder, tmp_path):
    local = write_cog(tmp_path / "other.tif", side=256)
    with RangeServer(cog.parent) as server:
        listing = tmp_path / "inputs.txt"
        listing.write_text(f"# one input per line\nother.tif\n\n{server.url('scene.tif')}\n")
        assert main(["predict", "--model", str(tiny_sam_folder), f"@{listing}", "--output",
                     str(tmp_path / "maps")]) == 0
    assert local.is_file() and (tmp_path / "maps" / "other_probability.tif").is_file()
    assert_same_maps(tmp_path / "maps", local_maps)
