"""Overviews and the quicklook made while strips stream past: equal to computing them from the finished raster."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from translandseg_hf.inference import PredictionOptions, predict_file
from translandseg_hf.inference.overviews import OverviewPyramid, halve_mean, halve_nearest, overview_factors
from translandseg_hf.inference.quicklook import QuicklookCanvas
from translandseg_hf.inference.writing import write_cog
from test_scene_outputs import KernelModel, write_scene


class ArrayLevel:
    """An overview level held in memory, written like a rasterio dataset."""

    def __init__(self, height: int, width: int, dtype):
        self.values = np.full((height, width), 77, dtype=dtype)

    def write(self, values, band, window: Window):
        self.values[window.row_off : window.row_off + window.height,
                    window.col_off : window.col_off + window.width] = values

    def close(self):
        pass


def nan_mean_2x2(values: np.ndarray) -> np.ndarray:
    height, width = -(-values.shape[0] // 2), -(-values.shape[1] // 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks: NaN, as intended
        return np.array([[np.nanmean(values[2 * i : 2 * i + 2, 2 * j : 2 * j + 2]) for j in range(width)]
                         for i in range(height)], dtype=values.dtype)


@pytest.mark.parametrize("shape", [(6, 8), (7, 5), (1, 1), (3, 1)])
def test_halve_mean_is_the_mean_of_each_blocks_valid_values(shape):
    rng = np.random.default_rng(sum(shape))
    values = rng.random(shape).astype(np.float32)
    np.testing.assert_allclose(halve_mean(values), nan_mean_2x2(values), rtol=1e-6)
    values[rng.random(shape) < 0.4] = np.nan
    values[:2, :2] = np.nan  # one block with no valid value
    np.testing.assert_allclose(halve_mean(values), nan_mean_2x2(values), rtol=1e-6)
    assert np.isnan(halve_mean(values)[0, 0])


@pytest.mark.parametrize("average", [True, False])
def test_a_pyramid_fed_in_uneven_strips_and_column_blocks_equals_halving_the_whole(average):
    height, width, block = 203, 150, 32  # odd strips carry a row into the next one; the height is odd too
    values = np.random.default_rng(0).random((height, width)).astype(np.float32)
    values[40:45] = np.nan
    levels = []

    def open_level(path, level_height, level_width):
        levels.append(ArrayLevel(level_height, level_width, np.float32))
        return levels[-1]

    pyramid = OverviewPyramid(["1", "2", "3"], height, width, average=average, open_level=open_level)
    row = 0
    for strip_height in (7, 1, 30, 64, 33, 68):
        for col in range(0, width, block):
            pyramid.add(row, col, values[row : row + strip_height, col : col + block])
        row += strip_height
    assert row == height
    pyramid.close()
    expected, halve = values, (halve_mean if average else halve_nearest)
    for level in levels:
        expected = halve(expected)
        np.testing.assert_array_equal(level.values, expected)


@pytest.mark.parametrize("shape", [(1000, 600), (256, 257), (200, 100)])
def test_overview_factors_are_the_levels_gdals_cog_driver_makes(tmp_path, shape):
    source, target = tmp_path / "source.tif", tmp_path / "cog.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # pixel coordinates intended
        with rasterio.open(source, "w", driver="GTiff", height=shape[0], width=shape[1], count=1,
                           dtype="uint8") as out:
            out.write(np.zeros(shape, np.uint8), 1)
        write_cog(source, target, "uint8", "NEAREST")
        with rasterio.open(target) as dataset:
            assert dataset.overviews(1) == overview_factors(*shape)


def test_predicts_cog_overviews_are_halvings_of_its_full_resolution(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 700, 650, nodata_rows=slice(0, 41))
    result = predict_file(KernelModel(kernel_size=3), scene, tmp_path / "out", PredictionOptions(tta=True))
    for name, halve in (("probability", halve_mean), ("uncertainty", halve_mean), ("mask", halve_nearest)):
        with rasterio.open(result.outputs[name]) as dataset:
            expected = dataset.read(1)
        for factor in (2, 4):
            expected = halve(expected)
            with rasterio.open(result.outputs[name], overview_level=factor // 2 - 1) as level:
                np.testing.assert_array_equal(level.read(1), expected)


def test_a_quicklook_canvas_samples_what_gdals_nearest_decimation_reads(tmp_path):
    path = write_scene(tmp_path / "scene.tif", 700, 650)
    canvas = QuicklookCanvas(700, 650, side=100)
    with rasterio.open(path) as dataset:
        for top in range(-16, 700, 112):  # overlapping, partly outside blocks, as tiles are read
            for left in range(-16, 650, 112):
                window = Window(left, top, 128, 128)
                block = dataset.read(window=window, boundless=True).astype(np.float32)
                canvas.add_pixels(top, left, block)
        decimated = dataset.read(out_shape=(3, *canvas.mask.shape), resampling=Resampling.nearest)
    np.testing.assert_array_equal(canvas.rgb, decimated.transpose(1, 2, 0))
