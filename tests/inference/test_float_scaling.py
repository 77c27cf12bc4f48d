"""Issue 37 item 4: one scaling rule, the contract's (`scaler_for`), for `translandseg predict` and `model.predict`.
A float raster in [0, 1] maps as its 8-bit twin does, and `model.predict` on the same array agrees with the command
line; values a `scale: none` model cannot read as 8-bit are refused, with the options of where they were given."""

from __future__ import annotations

import re

import numpy as np
import pytest
import rasterio
from helpers.rasters import three_landslides, write_raster

from translandseg_hf import load_segmentation_model
from translandseg_hf.cli import main
from translandseg_hf.inference import predict_file

TWINS = {  # name: the 8-bit scene's values written another way, that the one rule reads as the same 0-255 pixels
    "float32 in [0, 1]": lambda u8: u8.astype(np.float32) / 255,
    "float64 in [0, 1]": lambda u8: u8 / 255.0,
    "float32 in 0-255": lambda u8: u8.astype(np.float32),
}
REFUSED = {  # name: (values, what the command line says, what model.predict says)
    "float32 beyond 255": (lambda u8: u8.astype(np.float32) * 4,
                           r"the bands hold float32 values from 200 to 920, but the model reads 8-bit values \(0-255\) "
                           r"as they are \(its contract's scale is none\), so they would be clipped to white; pass "
                           r"--scale percentile",
                           r"scale the image to 0-255 \(or floats to \[0, 1\]\) first, or give the model a contract"),
    "float32 below 0": (lambda u8: u8.astype(np.float32) / 255 - 0.5,
                        r"the bands hold float32 values from -0.303922 to 0.401961, but the model reads 8-bit values "
                        r"\(0-255\) as they are \(its contract's scale is none\), so they would be clipped to black; "
                        r"pass --scale percentile",
                        r"so they would be clipped to black; scale the image to 0-255"),
}


def scene() -> np.ndarray:
    """(3, 90, 110) uint8: three red landslides on dark ground (one tile for the tiny model: mapped whole)."""
    return three_landslides()


def predict(model, output, *scenes) -> tuple[int, str]:
    return main(["predict", "--model", str(model), *map(str, scenes), "--output", str(output), "--device", "cpu"])


def mask_of(output, stem: str) -> np.ndarray:
    with rasterio.open(output / f"{stem}_mask.tif") as mask:
        return mask.read(1)


@pytest.mark.parametrize("twin", list(TWINS))
def test_a_float_scene_maps_as_its_8_bit_twin_and_as_model_predict(tiny_sam_folder, tmp_path, capsys, twin):
    u8 = scene()
    values = TWINS[twin](u8)
    paths = [write_raster(tmp_path / "u8.tif", u8), write_raster(tmp_path / "float.tif", values),
             write_raster(tmp_path / "black.tif", np.zeros_like(u8))]
    assert predict(tiny_sam_folder, tmp_path / "maps", *paths) == 0
    said = capsys.readouterr()
    from_u8, from_float, black = (mask_of(tmp_path / "maps", stem) for stem in ("u8", "float", "black"))
    assert not np.array_equal(from_u8, black)  # the model sees the scene: a scene read as black would differ
    np.testing.assert_array_equal(from_float, from_u8)
    in_memory = load_segmentation_model(tiny_sam_folder).predict(np.moveaxis(values, 0, -1))[0]
    np.testing.assert_array_equal(in_memory, from_float)
    in_unit_range = "[0, 1]" in twin
    assert ("read as brightness in 0-1 (1 is white) and scaled to 0-255" in said.out + said.err) == in_unit_range


@pytest.mark.parametrize("case", list(REFUSED))
def test_floats_an_8_bit_model_cannot_read_are_refused_with_the_options_of_each_path(
        tiny_sam_folder, tmp_path, capsys, case):
    make, on_the_command_line, in_python = REFUSED[case]
    values = make(scene())
    path = write_raster(tmp_path / "float.tif", values)
    assert predict(tiny_sam_folder, tmp_path / "maps", path) == 1
    said = capsys.readouterr()
    assert f"{path}: the bands hold float32 values from" in said.out + said.err
    assert not (tmp_path / "maps" / "float_mask.tif").exists()
    model = load_segmentation_model(tiny_sam_folder)
    with pytest.raises(ValueError, match=re.escape(f"{path}: ") + on_the_command_line):
        predict_file(model, path, tmp_path / "maps", device="cpu")  # what the command line reports, whole
    with pytest.raises(ValueError, match=rf"^the image: the bands hold float32 .*{in_python}"):
        model.predict(np.moveaxis(values, 0, -1))
