"""Issue 39 item 2, `translandseg predict --aoi`: the composite of an area and dates mapped in one command, exactly as
`imagery` and `predict` on its composite map it, cloud-masked pixels nodata in every output and counted in the
summary; an area with INPUT files (or without dates) refused as a usage error."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import rasterio
import shapely
from helpers.servers import RangeServer
from helpers.sentinel2 import TRUTH_SEARCH, aoi_bounds, dn_truths, scl_truths, truth_bbox, truth_catalogue, write_scenes

from translandseg_hf import cli

RASTERS = ("probability", "mask", "uncertainty")  # every raster output of a --tta run


def area_file(folder) -> str:
    """The truth's area as a GeoJSON polygon in WGS 84, as a user draws it."""
    feature = {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(shapely.box(*aoi_bounds()))}
    path = folder / "area.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return str(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, rgb_model):
    """`imagery` then `predict` on its composite, and `predict --aoi`, against one catalogue of the truth's scenes."""
    pytest.importorskip("pystac_client", reason="the imagery extra (pystac-client) is not installed")
    tmp_path = tmp_path_factory.mktemp("predict-aoi")
    scenes = write_scenes(tmp_path / "products", dn_truths(), scl_truths())
    with RangeServer(tmp_path / "products") as assets, truth_catalogue(tmp_path, scenes, assets) as stac:
        area = ["--aoi", area_file(tmp_path), *TRUTH_SEARCH, "--stac", stac, "--order", "earliest", "--cloud_mask", "scl"]
        mapping = ["--model", str(rgb_model), "--device", "cpu", "--tta"]
        separate = [cli.main(["imagery", "--model", str(rgb_model), *area, "--output", str(tmp_path / "img")]),
                    cli.main(["predict", str(tmp_path / "img" / "composite.tif"), *mapping, "--output",
                              str(tmp_path / "maps")])]
        together = cli.main(["predict", *mapping, *area, "--output", str(tmp_path / "aoi")])
    return tmp_path, separate, together


def read(path) -> np.ndarray:
    with rasterio.open(path) as raster:
        return raster.read(masked=True)


def test_predict_aoi_maps_the_composite_as_imagery_then_predict_does(runs):
    tmp_path, separate, together = runs
    assert separate == [0, 0] and together == 0
    np.testing.assert_array_equal(read(tmp_path / "aoi" / "imagery" / "composite.tif").filled(np.nan),
                                  read(tmp_path / "img" / "composite.tif").filled(np.nan))
    for name in RASTERS:
        ours, theirs = read(tmp_path / "aoi" / f"composite_{name}.tif"), read(tmp_path / "maps" / f"composite_{name}.tif")
        np.testing.assert_array_equal(ours.mask, theirs.mask)
        np.testing.assert_allclose(ours.compressed(), theirs.compressed(), atol=1e-5, rtol=0)


def test_cloud_masked_pixels_are_nodata_in_every_output(runs):
    tmp_path = runs[0]
    masked = np.isnan(read(tmp_path / "aoi" / "imagery" / "composite.tif").filled(np.nan)).all(axis=0)
    assert 0 < masked.sum() < masked.size  # the truth: somewhere no date is clear, elsewhere one is
    for name in RASTERS:
        np.testing.assert_array_equal(read(tmp_path / "aoi" / f"composite_{name}.tif").mask[0], masked, err_msg=name)


def test_the_summary_notes_the_share_masked(tmp_path_factory, rgb_model, capsys):
    """Its own run, to capture the summary: the note's share is what the composite left without a clear value."""
    pytest.importorskip("pystac_client", reason="the imagery extra (pystac-client) is not installed")
    tmp_path = tmp_path_factory.mktemp("predict-aoi-note")
    scenes = write_scenes(tmp_path / "products", dn_truths(), scl_truths())
    with RangeServer(tmp_path / "products") as assets, truth_catalogue(tmp_path, scenes, assets) as stac:
        status = cli.main(["predict", "--model", str(rgb_model), "--device", "cpu", "--bbox", truth_bbox(),
                           *TRUTH_SEARCH, "--stac", stac, "--output", str(tmp_path / "aoi")])
    out = capsys.readouterr().out
    covered = json.loads((tmp_path / "aoi" / "imagery" / "imagery.json").read_text())["covered_share"]
    masked = read(tmp_path / "aoi" / "imagery" / "composite.tif").mask.all(axis=0).mean()
    assert status == 0 and 0 < covered < 1 and masked == pytest.approx(1 - covered)
    assert f"note: {1 - covered:.1%} of the area's grid has no cloud-free value (cloud, shadow or no scene there): " \
        "nodata in the maps" in out
    assert "masked as cloud" not in out  # the composite does not tell cloud from no scene: neither does the note
    assert re.search(r"\n(?:.*\n)*note: \d+\.\d% of the area", out)  # after the summary's lines


REFUSED = [  # (predict's arguments besides --model and --output, what the error line says)
    (["scene.tif", "--bbox", "85.1,27.9,85.2,28.0", "--start", "2023-01-01", "--end", "2023-01-31"],
     "predict: give INPUT files (scene.tif) or an area (--aoi/--bbox), not both"),
    (["scene.tif", "--aoi", "area.geojson", "--start", "2023-01-01", "--end", "2023-01-31"],
     "predict: give INPUT files (scene.tif) or an area (--aoi/--bbox), not both"),
    (["--bbox", "85.1,27.9,85.2,28.0", "--start", "2023-01-01"],
     "predict --aoi/--bbox: give the days searched as --start YYYY-MM-DD and --end YYYY-MM-DD."),
    ([], "predict: give INPUT files or folders, or an area: --aoi FILE or --bbox W,S,E,N with --start and --end."),
    (["--aoi", "area.geojson", "--bbox", "85.1,27.9,85.2,28.0", "--start", "2023-01-01", "--end", "2023-01-31"],
     "give the area as --aoi FILE (GeoJSON or GPKG) or --bbox W,S,E,N (WGS 84), one of them."),
]


@pytest.mark.parametrize("arguments, said", REFUSED)
def test_an_area_with_inputs_or_without_dates_is_a_usage_error(rgb_model, tmp_path, capsys, arguments, said):
    status = cli.main(["predict", "--model", str(rgb_model), "--device", "cpu", *arguments, "--output",
                       str(tmp_path / "out")])
    assert status == 2 and f"error: {said}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any work
