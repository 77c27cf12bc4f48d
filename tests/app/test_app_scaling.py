"""Issue 37 item 9: the app's refusals name the app's own controls, never `translandseg predict`'s flags, and the
page and `/map_image` offer the command line's scaling (Scaling: percentile / divisor, with a Divisor).

A 16-bit scene is the blob scene (three red landslides, `helpers.rasters`) times 100: mapped with divisor 25500
(value / 25500 * 255 = the 8-bit value) it must give exactly the 8-bit scene's maps under `RedModel`.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import rasterio
from helpers.models import RedModel
from helpers.rasters import AREAS, three_landslides, write_raster
from rasterio.transform import from_origin

gr = pytest.importorskip("gradio", reason="the app extra is not installed (pip install -e '.[app]')")

from translandseg_hf.app.session import Mapper  # noqa: E402 (gradio first: without it the module skips)
from translandseg_hf.app.ui import SCALINGS, map_image, map_upload  # noqa: E402
from translandseg_hf.image_processing import TransLandSegImageProcessor  # noqa: E402

write_geotiff = partial(write_raster, pixel_size=3.0)
CLI_FLAG = "--"  # every `translandseg predict` option starts with it; the app's words name none


def band(path) -> np.ndarray:
    with rasterio.open(path) as dataset:
        return dataset.read(1)


def sixteen_bit(tmp_path):
    return write_geotiff(tmp_path / "u16.tif", three_landslides().astype(np.uint16) * 100)


def mapper_for(tmp_path, **contract) -> Mapper:
    model = RedModel()
    if contract:
        model.image_processor = TransLandSegImageProcessor(input_size=32, **contract)
    return Mapper(model, "cpu", work_dir=tmp_path / "work")


REFUSALS = {  # name: (the model's contract, the scene, what the page says after "Could not map this file.")
    "16-bit values for an 8-bit model": (
        {}, sixteen_bit,
        r"u16\.tif: the bands hold uint16 values from 5000 to 23000, but the model reads 8-bit values \(0-255\) as "
        r"they are \(its contract's scale is none\), so they would be clipped to white; choose Scaling: percentile"),
    "a scene far coarser than the training imagery": (
        {"tile_size": 532, "ground_resolution": 0.8},
        lambda p: write_raster(p / "coarse.tif", three_landslides(), pixel_size=300.0),
        r"coarse\.tif: the scene is at 300 m per pixel and the model was trained at 0\.8 m, .* Map imagery near "
        r"0\.8 m, or map it with `translandseg predict`, which can set the tile side or the scene's resolution"),
    "a scene in degrees far coarser than the training imagery": (  # 0.0027 degrees at the equator: about 300 m
        {"tile_size": 532, "ground_resolution": 0.8},
        lambda p: write_raster(p / "degrees.tif", three_landslides(), crs="EPSG:4326",
                               transform=from_origin(105.0, 0.05, 0.0027, 0.0027)),
        r"degrees\.tif: the scene is at 29\d\.\d+ m per pixel and the model was trained at 0\.8 m, .* Map imagery near "
        r"0\.8 m, or map it with `translandseg predict`, which can set the tile side or the scene's resolution"),
    "a pixel size that makes tiles too large": (
        {"tile_size": 532, "ground_resolution": 0.8},
        lambda p: write_raster(p / "fine.tif", three_landslides(), pixel_size=1e-5),
        r"fine\.tif: tiles of 532 px at 0\.8 m are .* the resolution looks wrong; check the file's georeferencing"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_the_app_words_its_refusals_with_its_own_controls(tmp_path, case):
    contract, write, said = REFUSALS[case]
    mapper = mapper_for(tmp_path, **contract)
    with pytest.warns(UserWarning, match=said):  # gr.Warning outside a page: a Python warning
        outputs = map_upload(mapper, write(tmp_path), 0.5, "", None)
    assert outputs[:5] == (None, None, None, "", None)
    message = outputs[5].removeprefix("**Could not map this file.** ")
    assert CLI_FLAG not in message, message
    with pytest.raises(gr.Error, match=said) as raised:  # the API says the same
        map_image(mapper, write(tmp_path), 0.5, None, None)
    assert CLI_FLAG not in str(raised.value)


SCALED = {  # the page's Scaling and Divisor: (scale, divisor, the landslides counted on the 16-bit scene)
    "divisor giving the 8-bit values back": ("divisor", 25500.0, len(AREAS)),
    "a per-scene stretch": ("percentile", None, len(AREAS)),
}


@pytest.mark.parametrize("case", list(SCALED))
def test_a_16_bit_upload_maps_with_the_scaling_chosen_on_the_page_and_in_the_api(tmp_path, case):
    scale, divisor, count = SCALED[case]
    assert scale in dict((value, label) for label, value in SCALINGS)  # a choice the page offers
    mapper = mapper_for(tmp_path)
    eight_bit = mapper.map(write_geotiff(tmp_path / "u8.tif", three_landslides()), 0.5, None)
    page = map_upload(mapper, sixteen_bit(tmp_path), 0.5, "", None, scale=scale, divisor=divisor)
    assert page[5] == "" and f"**{count} landslides**" in page[3]
    run, api_count, *_ = map_image(mapper, sixteen_bit(tmp_path), 0.5, None, page[0], scale=scale, divisor=divisor)
    assert api_count == count
    if scale == "divisor":  # value / 25500 * 255 is the 8-bit scene exactly: the same maps
        assert run.maps.total_area == eight_bit.maps.total_area
        np.testing.assert_array_equal(band(run.probability), band(eight_bit.probability))


def test_a_threshold_outside_0_1_is_refused_by_the_mapper_and_by_rethreshold(tmp_path):
    """The page's slider stops at 0.01 and 0.99; a script calling the mapper or a run is refused the same way."""
    mapper = mapper_for(tmp_path)
    scene = write_geotiff(tmp_path / "blobs.tif", three_landslides())
    with pytest.raises(ValueError, match=r"threshold must be a probability between 0 and 1 \(exclusive\), got 50"):
        mapper.map(scene, 50)
    run = mapper.map(scene, 0.5)
    try:
        with pytest.raises(ValueError, match=r"threshold must be a probability between 0 and 1 \(exclusive\), got nan"):
            run.rethreshold(float("nan"), None)
        assert run.maps.threshold == 0.5
    finally:
        run.close()
