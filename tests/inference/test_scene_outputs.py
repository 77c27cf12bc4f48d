"""Scene mapping outputs: Cloud-Optimized GeoTIFFs, the same maps with or without pipelined I/O, test-time
augmentation with its uncertainty map, and polygon simplification."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import rasterio
import shapely
import torch
from PIL import Image
from pyogrio.raw import read as read_layer
from rio_cogeo.cogeo import cog_validate

from translandseg_hf.cli import main
from translandseg_hf.inference import PredictionOptions, predict_file
from translandseg_hf.inference.tta import TestTimeAugmentation, d4_predict

from helpers.models import KernelModel
from helpers.rasters import write_raster
from helpers.rasters import write_noise_scene as write_scene


def read(path):
    with rasterio.open(path) as dataset:
        return dataset.read(1), dataset.profile, dataset.overviews(1)


def test_outputs_are_valid_cogs_with_overviews_and_the_inputs_georeferencing(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 700, 650, nodata_rows=slice(0, 40))
    result = predict_file(KernelModel(), scene, tmp_path / "out", PredictionOptions(tta=True))
    for name in ("probability", "mask", "uncertainty"):
        valid, errors, _ = cog_validate(str(result.outputs[name]))
        assert valid, (name, errors)
        data, profile, overviews = read(result.outputs[name])
        assert overviews == [2, 4] and profile["crs"].to_epsg() == 32648 and profile["transform"].a == 0.8
        assert profile["compress"] == "deflate" and profile["blockxsize"] == 256
    probability, _, _ = read(result.outputs["probability"])
    mask, profile, _ = read(result.outputs["mask"])
    assert np.isnan(probability[:40]).all() and (mask[:40] == 255).all() and profile["nodata"] == 255
    assert np.isfinite(probability[40:]).all() and set(np.unique(mask[40:])) <= {0, 1}


def test_pipelined_and_serial_io_write_the_same_maps(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 300, 260)
    model = KernelModel(kernel_size=3)
    pipelined = predict_file(model, scene, tmp_path / "a", PredictionOptions(pipelined=True))
    serial = predict_file(model, scene, tmp_path / "b", PredictionOptions(pipelined=False))
    assert pipelined.tiles == serial.tiles > 50
    for name in ("probability", "mask"):
        np.testing.assert_array_equal(read(pipelined.outputs[name])[0], read(serial.outputs[name])[0])


def test_tta_of_an_equivariant_model_is_its_plain_output_with_zero_uncertainty():
    model, pixel_values = KernelModel(kernel_size=1), torch.randn(2, 3, 32, 32)
    output = d4_predict(model, pixel_values)
    torch.testing.assert_close(output.logits, model(pixel_values).logits, rtol=0, atol=1e-5)
    assert output.uncertainty.abs().max() < 1e-6


def mirrored(image: np.ndarray, mirror: str) -> np.ndarray:
    """One of the four mirror symmetries of the (..., H, W) grid, each its own inverse."""
    return {"left-right": image[..., ::-1], "up-down": image[..., ::-1, :], "transpose": image.swapaxes(-2, -1),
            "anti-transpose": image[..., ::-1, ::-1].swapaxes(-2, -1)}[mirror]


def turned(image: np.ndarray, quarters: int) -> np.ndarray:
    return np.rot90(image, quarters, axes=(-2, -1))


# D4 written out as the symmetries of a square, with numpy: 4 turns (undone by the opposite turn) and 4 mirrors.
D4_BY_HAND = [(partial(turned, quarters=q), partial(turned, quarters=-q)) for q in range(4)] + [
    (partial(mirrored, mirror=m), partial(mirrored, mirror=m))
    for m in ("left-right", "up-down", "transpose", "anti-transpose")]


def test_tta_is_the_mean_logit_and_the_probability_spread_over_the_eight_symmetries():
    model = KernelModel(kernel_size=3)  # a random 3 x 3 kernel: not symmetric, so the 8 passes disagree
    pixel_values = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    output = TestTimeAugmentation(model)(pixel_values)
    logits = []
    for forward, inverse in D4_BY_HAND:
        with torch.no_grad():
            transformed = torch.from_numpy(np.ascontiguousarray(forward(pixel_values.numpy())))
            logits.append(inverse(model(transformed).logits.numpy()))
    logits = np.stack(logits).astype(np.float64)  # (8, B, 1, S, S)
    probabilities = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(output.logits.numpy(), logits.mean(0), rtol=0, atol=1e-5)
    np.testing.assert_allclose(output.uncertainty.numpy(), probabilities.std(0), rtol=0, atol=1e-6)
    assert (probabilities.max(0) - probabilities.min(0) > 0.05).mean() > 0.5  # the spread is there to be measured


def test_tta_over_a_folder_of_png_and_geotiff_writes_every_output(tmp_path, capsys):
    from translandseg_hf.sam_configs import tiny_sam_config
    from transformers import SamModel

    from translandseg_hf import TransLandSegModel

    torch.manual_seed(0)
    TransLandSegModel.from_sam(SamModel(tiny_sam_config())).save_pretrained(tmp_path / "model")
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_scene(inputs / "ortho.tif", 90, 120)
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(inputs / "photo.png")
    assert main(["predict", "--model", str(tmp_path / "model"), str(inputs), "--output", str(tmp_path / "maps"),
                 "--tta"]) == 0
    names = {path.name for path in (tmp_path / "maps").iterdir()}
    for stem in ("ortho", "photo"):
        for suffix in ("probability.tif", "mask.tif", "uncertainty.tif", "landslides.gpkg", "quicklook.png"):
            assert f"{stem}_{suffix}" in names
    assert "ortho_landslides.geojson" in names  # a PNG's polygons are in pixel coordinates: the GeoPackage only
    assert "photo_landslides.geojson" not in names and len(names) == 12
    assert "photo_mask.png" in names and not any(name.startswith(".") for name in names)
    assert "2 done, 0 skipped, 0 failed" in capsys.readouterr().out


def test_simplify_reduces_vertices_and_keeps_areas_close(tmp_path):
    bands = np.full((3, 120, 120), 40, np.uint8)
    yy, xx = np.mgrid[:120, :120]
    bands[0][(yy - 60) ** 2 + (xx - 60) ** 2 < 40 ** 2] = 250  # a red disc: a staircase outline
    write_raster(tmp_path / "disc.tif", bands, pixel_size=1.0)
    model = KernelModel(kernel_size=1)
    with torch.no_grad():  # logit = red - 0.5 in normalised units: the disc, and nothing else
        model.conv.weight.copy_(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
    exact = predict_file(model, tmp_path / "disc.tif", tmp_path / "exact", PredictionOptions(tile_size=128))
    simple = predict_file(model, tmp_path / "disc.tif", tmp_path / "simple", PredictionOptions(tile_size=128,
                                                                                               simplify=1.5))
    (_, _, exact_wkb, exact_fields), (_, _, simple_wkb, simple_fields) = (
        read_layer(result.outputs["geojson"]) for result in (exact, simple))
    assert len(exact_wkb) == len(simple_wkb) == 1
    vertices = [shapely.get_num_coordinates(shapely.from_wkb(wkb[0])) for wkb in (exact_wkb, simple_wkb)]
    assert vertices[1] < vertices[0] / 3
    assert simple_fields[1][0] == pytest.approx(exact_fields[1][0], rel=0.03)  # the area field
