"""Overviews, polygons and the quicklook made while strips stream past: equal to making them from the finished
raster."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import shapely
import torch
from rasterio.enums import Resampling
from rasterio.features import shapes
from rasterio.transform import Affine, from_origin
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from helpers.models import KernelModel, PointwiseModel
from helpers.rasters import write_noise_scene as write_scene
from helpers.rasters import write_raster

from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.inference import PredictionOptions, predict_file
from translandseg_hf.geo.map_files.overviews import (
    OverviewPyramid,
    halve_mean,
    halve_nearest,
    overview_factors,
)
from translandseg_hf.geo.map_files.polygons import (
    PolygonCollector,
    connected_labels,
    to_map,
)
from translandseg_hf.inference.predictor import TileRunner
from translandseg_hf.geo.map_files.quicklook import QuicklookCanvas
from translandseg_hf.inference.tiling import COLUMN_BLOCK, StripBlender
from translandseg_hf.geo.map_files.writing import (
    PredictionRasters,
    StagedOutputs,
    write_cog,
)


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
    with pytest.raises(ValueError, match="a block at column 4 cannot be halved 3 times into whole pixels"):
        pyramid.add(0, 4, values[:2, :2])
    expected, halve = values, (halve_mean if average else halve_nearest)
    for level in levels:
        expected = halve(expected)
        np.testing.assert_array_equal(level.values, expected)


@pytest.mark.parametrize("shape", [(1000, 600), (256, 257), (200, 100)])
def test_overview_factors_are_the_levels_gdals_cog_driver_makes(tmp_path, shape):
    source, target = tmp_path / "source.tif", tmp_path / "cog.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # pixel coordinates intended
        write_raster(source, np.zeros(shape, np.uint8), crs=None)
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


def test_polygons_collected_in_row_and_column_blocks_are_those_of_the_whole_mask():
    rng = np.random.default_rng(5)
    mask = np.zeros((90, 70), dtype=np.uint8)
    for _ in range(25):  # rectangles that overlap each other and the block boundaries
        top, left = rng.integers(0, 85), rng.integers(0, 65)
        mask[top : top + rng.integers(2, 20), left : left + rng.integers(2, 20)] = 1
    mask[rng.random(mask.shape) < 0.02] = 1  # single pixels, some touching others only at a corner
    transform = from_origin(500_000, 3_000_000, 0.8, 0.8)
    whole = [shapely.geometry.shape(geometry) for geometry, _ in shapes(mask, mask=mask == 1, transform=transform)]
    collector = PolygonCollector()
    for top in range(0, 90, 16):
        for left in range(0, 70, 24):
            collector.add(top, left, mask[top : top + 16, left : left + 24])
    collected = to_map(collector.pixel_polygons(), transform)
    assert len(collected) == len(whole) > 25
    assert shapely.area(collected).sum() == pytest.approx(mask.sum() * 0.8**2)
    assert shapely.union_all(collected).symmetric_difference(shapely.union_all(whole)).area == pytest.approx(0)


@pytest.mark.parametrize("block, overlap", [(4096, 8), (40, 8), (7, 8), (40, 24), (7, 31), (40, 0)])
def test_blending_in_column_blocks_gives_each_pixel_once_the_weighted_mean_of_its_tiles(block, overlap):
    height, width, tile = 150, 170, 32  # overlaps over 2/3 of the tile finish no row with the first tile row
    blender = StripBlender(height, width, tile, overlap, channels=2, block=block)
    weights_2d = np.outer(blender.window, blender.window)
    total, weight = np.zeros((2, height + 2 * tile, width + 2 * tile)), np.zeros((height + 2 * tile, width + 2 * tile))
    blended = np.full((2, height, width), np.nan, dtype=np.float32)
    rng = np.random.default_rng(0)
    for row in blender.row_origins:
        for col in blender.col_origins:
            logits = rng.normal(size=(2, tile, tile)).astype(np.float32)
            total[:, tile + row : 2 * tile + row, tile + col : 2 * tile + col] += logits * weights_2d
            weight[tile + row : 2 * tile + row, tile + col : 2 * tile + col] += weights_2d
            for top, left, values in blender.add(row, col, logits):
                rows, cols = slice(top, top + values.shape[1]), slice(left, left + values.shape[2])
                assert np.isnan(blended[:, rows, cols]).all()  # every block is handed over once
                blended[:, rows, cols] = values
    expected = total[:, tile : tile + height, tile : tile + width] / weight[tile : tile + height, tile : tile + width]
    np.testing.assert_allclose(blended, expected, rtol=1e-5, atol=1e-6)
    first = -(overlap // 2)
    with pytest.raises(ValueError, match=rf"tile at \({first + 5}, {first}\) added where the tile at \({first}, "
                                         rf"{first}\) comes next"):
        StripBlender(height, width, tile, overlap).add(first + 5, first, np.zeros((tile, tile), np.float32))


def test_connected_labels_follow_chains_in_any_order():
    first, second = np.array([6, 1, 2, 4, 0]), np.array([5, 2, 6, 3, 1])  # 0-1-2-6-5 and 3-4, given out of order
    np.testing.assert_array_equal(connected_labels(8, first, second), [0, 0, 0, 3, 3, 0, 0, 7])


def test_a_scene_wider_than_a_column_block_maps_as_one_whole_pass(tmp_path):
    scene = write_scene(tmp_path / "wide.tif", 70, COLUMN_BLOCK + 300)  # two column blocks, two tile rows
    model = PointwiseModel(image_size=64)
    result = predict_file(model, scene, tmp_path / "out", PredictionOptions(tile_size=64, overlap=8))
    with rasterio.open(scene) as dataset:
        pixels = torch.from_numpy(dataset.read().astype(np.float32))[None]
    with torch.no_grad():
        whole = torch.sigmoid(model(TransLandSegImageProcessor(input_size=64).normalize_pixels(pixels)).logits)
    with rasterio.open(result.outputs["probability"]) as dataset:
        np.testing.assert_allclose(dataset.read(1), whole[0, 0].numpy(), atol=1e-6)
        assert dataset.overviews(1) == [2, 4, 8, 16, 32]
    assert all(cog_validate(str(result.outputs[name]))[0] for name in ("probability", "mask"))



def test_tile_runner_leaves_the_callers_tiles_as_they_were():
    tiles = np.random.default_rng(0).uniform(0, 255, (2, 3, 64, 64)).astype(np.float32)
    before = tiles.copy()
    TileRunner(PointwiseModel(image_size=64), "cpu")(tiles)
    np.testing.assert_array_equal(tiles, before)


def test_scenes_too_large_to_halve_in_column_blocks_leave_their_overviews_to_gdal(tmp_path):
    staged, target = StagedOutputs(), {"probability": tmp_path / "p.tif", "mask": tmp_path / "m.tif"}
    huge = PredictionRasters(staged, target, 2**20 + 1, 10, None, Affine.identity())  # 13 levels: over 2^12
    small = PredictionRasters(staged, target, 2**20, 10, None, Affine.identity())  # 12 levels
    assert not huge.complete_overviews and huge.overviews["probability"].paths == []
    assert small.complete_overviews and len(small.overviews["probability"].paths) == 12
    for rasters in (huge, small):
        rasters.close(check=False)
    staged.discard()
