"""COGs laid out from the work files' compressed tiles: the same pixels at every level, in the same layout, as
GDAL's COG driver writes from the same work files (classic TIFF and BigTIFF); the fast path taken by a real
prediction, GDAL's driver where the layouts differ, and a work file short of tiles named as incomplete."""

from __future__ import annotations

import filecmp

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from helpers.models import KernelModel
from helpers.rasters import write_noise_scene as write_scene
from helpers.rasters import write_raster

from translandseg_hf.geo import compressed_tiles, write_cog
from translandseg_hf.geo.map_files import writing
from translandseg_hf.geo.map_files.cog_layout import NotAssemblable, assemble_cog, check_tiles, read_layout
from translandseg_hf.geo.map_files.writing import LAYERS, PredictionRasters, StagedOutputs, vrt_with_overviews
from translandseg_hf.inference import PredictionOptions, predict_file

TRANSFORM = from_origin(500_000, 3_000_000, 10, 10)


def mapped_rasters(tmp_path, height=1300, width=900) -> tuple[StagedOutputs, PredictionRasters]:
    """Work files (and overview levels) of a scene fed in 256-row strips, a band of nodata rows included."""
    staged = StagedOutputs()
    targets = {name: tmp_path / f"scene_{name}.tif" for name in ("probability", "mask", "uncertainty")}
    rasters = PredictionRasters(staged, targets, height, width, "EPSG:32645", TRANSFORM)
    rng = np.random.default_rng(height)
    for row in range(0, height, 256):
        rows = min(256, height - row)
        probability = rng.uniform(0, 1, (rows, width)).astype(np.float32)
        valid = np.ones((rows, width), bool)
        valid[:, : width // 7] = row > 500  # nodata columns in the first strips
        rasters.write_block(row, probability, valid, 0.5, uncertainty=probability / 4)
    rasters.close()
    return staged, rasters


def gdal_cog(rasters: PredictionRasters, name: str, path) -> None:
    """What GDAL's COG driver writes from the same work files (the path taken before `cog_layout`)."""
    vrt = path.with_suffix(".vrt")
    vrt_with_overviews(rasters.work[name], rasters.profiles[name], rasters.overviews[name].paths, vrt)
    write_cog(rasters.work[name], path, LAYERS[name][0], LAYERS[name][2], overviews=vrt)


@pytest.mark.parametrize("bigtiff", [False, True])
def test_an_assembled_cog_matches_gdals_cog_level_by_level(tmp_path, monkeypatch, bigtiff):
    if bigtiff:  # BigTIFF from GDAL's COG driver (as for outputs over 4 GB), for the sparse COG and the reference
        copy = rasterio.shutil.copy
        monkeypatch.setattr(rasterio.shutil, "copy", lambda *args, **options: copy(*args, **{**options,
                                                                                            "BIGTIFF": "YES"}))
    staged, rasters = mapped_rasters(tmp_path)
    try:
        for name in rasters.targets:
            rasters.to_cog(name)
            assembled, reference = staged.temporary[rasters.targets[name]], tmp_path / f"gdal_{name}.tif"
            gdal_cog(rasters, name, reference)
            with open(assembled, "rb") as handle:
                layout = read_layout(handle)
            with open(reference, "rb") as handle:
                gdal_layout = read_layout(handle)
            assert layout.big == bigtiff and len(layout.images) == 4  # full resolution and three overviews
            assert [sorted(image) for image in layout.images] == [sorted(image) for image in gdal_layout.images]
            for level in (None, 0, 1, 2):
                with rasterio.open(assembled, overview_level=level) as ours, \
                        rasterio.open(reference, overview_level=level) as gdals:
                    assert ours.shape == gdals.shape and ours.profile["blockxsize"] == gdals.profile["blockxsize"]
                    assert np.array_equal(ours.read(), gdals.read(), equal_nan=True), (name, level)
            assert cog_validate(str(assembled))[0]
    finally:
        staged.discard()


def test_a_prediction_lays_out_every_cog_from_its_work_files(tmp_path, monkeypatch):
    assembled = []

    def recording(sparse_cog, levels):
        assemble_cog(sparse_cog, levels)
        assembled.append(levels[0].name)
    monkeypatch.setattr(writing, "assemble_cog", recording)
    scene = write_scene(tmp_path / "scene.tif", 700, 650, nodata_rows=slice(0, 41))
    result = predict_file(KernelModel(kernel_size=3), scene, tmp_path / "out", PredictionOptions(tta=True))
    assert len(assembled) == 3  # probability, mask and uncertainty: none fell back to GDAL's COG driver
    for name in ("probability", "mask", "uncertainty"):
        assert cog_validate(str(result.outputs[name]))[0]
        with rasterio.open(result.outputs[name]) as dataset:
            assert dataset.overviews(1) == [2, 4] and dataset.crs == "EPSG:32648"


def test_a_cog_laid_out_otherwise_is_left_to_gdals_cog_driver(tmp_path, monkeypatch):
    staged, rasters = mapped_rasters(tmp_path, height=600, width=500)
    try:
        sparse = tmp_path / "sparse.tif"
        write_cog(rasters.empty_source("mask"), sparse, "uint8", "NEAREST", overviews=rasters.empty_source("mask"),
                  sparse=True)
        with pytest.raises(NotAssemblable, match="the sparse COG has 3 images, the work files 1"):
            assemble_cog(sparse, [rasters.work["mask"]])
        with pytest.raises(NotAssemblable,
                           match=r"scene_probability\..*work\.tif is not tiled and compressed as the COG is"):
            assemble_cog(sparse, [rasters.work["probability"], *rasters.overviews["probability"].paths])

        def refuse(sparse_cog, levels):
            raise NotAssemblable("another GDAL's layout")
        monkeypatch.setattr(writing, "assemble_cog", refuse)
        rasters.to_cog("probability")
        reference = tmp_path / "gdal.tif"
        gdal_cog(rasters, "probability", reference)
        assert filecmp.cmp(staged.temporary[rasters.targets["probability"]], reference, shallow=False)
    finally:
        staged.discard()


@pytest.mark.parametrize("bigtiff", ["NO", "YES"])
def test_a_work_file_short_of_tiles_is_named_as_incomplete(tmp_path, bigtiff):
    path = tmp_path / "work.tif"
    write_raster(path, np.random.default_rng(0).uniform(0, 1, (1, 700, 600)).astype(np.float32), crs=None,
                 BIGTIFF=bigtiff, **compressed_tiles("float32"))
    check_tiles(path)  # whole: no error
    with open(path, "r+b") as handle:
        layout = read_layout(handle)
    assert layout.big == (bigtiff == "YES")
    data = path.read_bytes()
    path.write_bytes(data[:-1])  # the last tile one byte short
    with pytest.raises(OSError, match=r"work\.tif is incomplete \(1 of 9 tiles missing or cut off, .* bytes "
                                      r"written\): is the disk full\?"):
        check_tiles(path)
    path.write_bytes(data[:6])
    with pytest.raises(OSError, match=r"work\.tif is incomplete \(its TIFF directory cannot be read: .*\): is the "
                                      r"disk full\?"):
        check_tiles(path)


def test_a_work_file_with_a_tile_never_written_is_named_as_incomplete(tmp_path):
    path = tmp_path / "work.tif"
    with rasterio.open(path, "w", driver="GTiff", height=512, width=512, count=1, dtype="uint8", nodata=255,
                       SPARSE_OK=True, **compressed_tiles("uint8")) as dataset:
        dataset.write(np.zeros((1, 256, 512), np.uint8), window=rasterio.windows.Window(0, 0, 512, 256))
    with pytest.raises(OSError, match=r"work\.tif is incomplete \(2 of 4 tiles missing or cut off"):
        check_tiles(path)
