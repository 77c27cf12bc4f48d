"""Issue 37 item 8: a scene's nodata collar leaves no seam. What the model sees outside the valid pixels is filled as
the scene's own border is (reflected valid pixels), so the map of a scene with a collar matches, in its valid area,
the map of the same scene cut to its valid area; the collar itself stays nodata."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from helpers.rasters import ORIGIN, textured_rgb, write_raster
from rasterio.transform import Affine
from transformers import SamModel

from translandseg_hf import TransLandSegModel
from translandseg_hf.cli import main
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.sam_configs import tiny_sam_config

TILE, STRIDE = 64, 56  # 64 px tiles, predict's default overlap of 8 px: tiles start every 56 px
HEIGHT, WIDTH, COLLAR = 256, 368, 2 * STRIDE  # a collar of whole strides: the crop's tile grid is the scene's
PIXEL = 0.8
TOLERANCE = 0.02  # probability; black in the collar put 0.48 between the two maps next to it, and 0.2 one tile in

COLLARS = {  # side -> (the collar's rows and columns, the valid area's, the valid crop's top-left corner in metres)
    "left": ((slice(None), slice(0, COLLAR)), (slice(None), slice(COLLAR, None)),
             (ORIGIN[0] + COLLAR * PIXEL, ORIGIN[1])),
    "top": ((slice(0, COLLAR), slice(None)), (slice(COLLAR, None), slice(None)),
            (ORIGIN[0], ORIGIN[1] - COLLAR * PIXEL)),
    "right": ((slice(None), slice(WIDTH - COLLAR, None)), (slice(None), slice(0, WIDTH - COLLAR)), ORIGIN),
}


@pytest.fixture(scope="module")
def tile_model(tmp_path_factory):
    """A tiny SAM (its initializer ranges make its output follow the image) that maps 64 px tiles as they are."""
    torch.manual_seed(0)
    model = TransLandSegModel.from_sam(SamModel(tiny_sam_config()))
    model.set_image_processor(TransLandSegImageProcessor(input_size=TILE, tile_size=TILE))
    folder = tmp_path_factory.mktemp("tile-model")
    model.save_pretrained(folder)
    return folder


def probability_of(scene, model, output) -> np.ma.MaskedArray:
    assert main(["predict", str(scene), "--model", str(model), "--output", str(output), "--device", "cpu"]) == 0
    with rasterio.open(output / scene.name.replace(".tif", "_probability.tif")) as dataset:
        return dataset.read(1, masked=True)


@pytest.mark.parametrize("side", COLLARS)
def test_a_nodata_collar_leaves_the_map_of_the_valid_area_as_a_crop_to_it_gives(tile_model, tmp_path, side):
    collar, area, corner = COLLARS[side]
    bands = np.maximum(textured_rgb(WIDTH)[:, :HEIGHT], 1)  # (3, 256, 368) RGB relief, 0 only in the collar
    scene = bands.copy()
    scene[(slice(None), *collar)] = 0
    full = write_raster(tmp_path / "collar.tif", scene, nodata=0)
    crop = write_raster(tmp_path / "crop.tif", bands[(slice(None), *area)], nodata=0, crs="EPSG:32648",
                        transform=Affine(PIXEL, 0, corner[0], 0, -PIXEL, corner[1]))
    mapped, cropped = probability_of(full, tile_model, tmp_path / "maps"), probability_of(crop, tile_model,
                                                                                       tmp_path / "maps")
    assert mapped[collar].mask.all() and not mapped[area].mask.any()  # the collar stays nodata, the rest is mapped
    difference = np.abs(mapped[area].filled(np.nan) - cropped.filled(np.nan))
    assert np.nanmax(difference) <= TOLERANCE, (
        f"the {side} collar changes the valid area's probabilities by up to {np.nanmax(difference):.3f} at "
        f"{np.unravel_index(np.nanargmax(difference), difference.shape)} (of the valid area)")
