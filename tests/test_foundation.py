"""The layer-0 foundation every reader and writer shares: raster wording and pixel size, staged files that reach the
disk before they are renamed, the local-path-or-Hub decision, the data_dir check and the on_error vocabulary."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import pytest
from rasterio.crs import CRS
from rasterio.transform import Affine

from translandseg_hf import io_utils
from translandseg_hf.errors import ON_ERROR, check_on_error
from translandseg_hf.hub import check_data_dir, is_local, local_folder
from translandseg_hf.io_utils import StagedFiles, atomic_write_bytes, replace_folder
from translandseg_hf.geo import (
    RASTER_SUFFIXES,
    decode_failure,
    gdal_reason,
    open_failure,
    pixel_area,
    pixel_size_m,
    reading,
)


# ----------------------------------------------------------------------------------------------------------- rasters
def test_the_failure_wording_is_the_one_predict_uses():
    assert decode_failure("the pixels", "libpng error") == (
        "cannot decode the pixels (libpng error); the file is truncated or corrupt.")
    assert open_failure("not recognized") == "not a readable image or raster (not recognized)."
    assert ".tif" in RASTER_SUFFIXES and ".png" in RASTER_SUFFIXES


def test_gdal_reason_names_the_file_once_and_unwraps_a_failed_read(tmp_path):
    path = tmp_path / "scene.tif"
    try:
        try:
            raise OSError(f"{path}: TIFFReadEncodedTile() failed.")
        except OSError as cause:
            raise OSError("Read failed. See previous exception for details.") from cause
    except OSError as error:
        assert gdal_reason(error, path) == "TIFFReadEncodedTile() failed."
    assert gdal_reason(OSError(f"'{path}' not recognized as a supported file format."), path) == (
        "not recognized as a supported file format.")


def test_a_failed_read_names_the_file_and_what_was_read(tmp_path):
    from rasterio.errors import RasterioIOError

    path = tmp_path / "cut.png"
    with pytest.raises(ValueError, match=re.escape(f"{path}: cannot decode rows 0-9 (libpng error: "
                                                   "Read Error); the file is truncated or corrupt.")):
        with reading(path, "rows 0-9"):
            try:
                raise RasterioIOError(f"{path.name}: libpng error: Read Error")
            except RasterioIOError as cause:
                raise RasterioIOError("Read failed. See previous exception for details.") from cause


def test_pixel_area_and_size_of_a_north_up_a_rotated_and_a_plain_grid():
    utm = CRS.from_epsg(32633)
    north_up = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
    assert pixel_area(north_up) == 100.0 and pixel_size_m(utm, north_up) == 10.0
    rotated = Affine.rotation(30.0) @ Affine.scale(2.0, -2.0)
    t = rotated
    assert pixel_area(rotated) == abs(t.a * t.e - t.b * t.d)
    assert pixel_size_m(utm, rotated) == float(math.sqrt(abs(t.a * t.e - t.b * t.d))) * 1.0
    assert math.isclose(pixel_size_m(utm, rotated), 2.0)
    assert pixel_size_m(None, north_up) is None
    assert pixel_size_m(CRS.from_epsg(4326), Affine(0.001, 0, 10, 0, -0.001, 45)) is None
    feet = CRS.from_epsg(2227)  # California zone 3, US survey feet
    assert math.isclose(pixel_size_m(feet, north_up), 10.0 * feet.linear_units_factor[1])


# ------------------------------------------------------------------------------------------------------ staged files
@pytest.fixture
def synced(monkeypatch):
    """The paths os.fsync was called on, in order (file or folder)."""
    calls = []
    real_fsync = os.fsync

    def record(descriptor):
        calls.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(io_utils.os, "fsync", record)
    return calls


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names descriptors through /proc")
def test_commit_syncs_each_file_before_renaming_it_and_the_folder_after(tmp_path, synced):
    staged = StagedFiles()
    targets = [tmp_path / "out" / "a.tif", tmp_path / "out" / "b.geojson"]
    temporaries = [staged.path_for(target) for target in targets]
    scratch = staged.scratch_for(targets[0])
    for temporary in temporaries:
        temporary.write_text("whole")
    scratch.write_text("work")
    assert not any(target.exists() for target in targets)
    staged.commit()
    assert [target.read_text() for target in targets] == ["whole", "whole"]
    assert synced == [*map(str, temporaries), str(tmp_path / "out")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.tif", "b.geojson"]


def test_discard_leaves_neither_outputs_nor_temporary_files(tmp_path):
    staged = StagedFiles()
    target = tmp_path / "a.tif"
    staged.path_for(target).write_text("half")
    staged.scratch_for(target).write_text("work")
    staged.discard()
    assert list(tmp_path.iterdir()) == []


def test_explain_names_the_output_a_temporary_file_was_becoming(tmp_path):
    staged = StagedFiles()
    temporary = staged.path_for(tmp_path / "scene_mask.tif")
    assert staged.explain(OSError(f"{temporary}: No space left on device")) == (
        "scene_mask.tif: No space left on device")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names descriptors through /proc")
def test_atomic_bytes_are_synced_before_the_rename(tmp_path, synced):
    atomic_write_bytes(tmp_path / "figure.png", b"\x89PNG")
    assert (tmp_path / "figure.png").read_bytes() == b"\x89PNG"
    assert len(synced) == 2 and synced[1] == str(tmp_path) and synced[0].startswith(str(tmp_path / ".figure.png."))
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def test_replace_folder_swaps_a_whole_folder_and_deletes_the_old_one(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "old.txt").write_text("old")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "metrics.json").write_text("{}")
    replace_folder(tmp_path / "new", tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["metrics.json"]


def test_replace_folder_puts_the_old_one_back_when_the_new_cannot_move_in(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "old.txt").write_text("old")
    with pytest.raises(FileNotFoundError):
        replace_folder(tmp_path / "missing", tmp_path / "run")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# --------------------------------------------------------------------------------------------------------------- hub
def test_is_local_counts_paths_that_no_longer_exist(tmp_path):
    assert is_local(tmp_path) and is_local(str(tmp_path / "gone" / "sam"))
    assert not is_local("facebook/sam-vit-base") and not is_local("sam-vit-base")


def test_local_folder_refuses_a_file_in_the_callers_words(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"")
    assert local_folder(tmp_path, "a saved model") == tmp_path
    assert local_folder("facebook/sam-vit-base", "a saved model") is None
    with pytest.raises(FileNotFoundError, match=re.escape(f"{file} is a file, not a folder with a saved model.")):
        local_folder(file, "a saved model")
    with pytest.raises(FileNotFoundError, match=re.escape(f"{file} is a file, not a saved model folder.")):
        local_folder(file, "a saved model folder", "is a file, not a saved model folder.")
    with pytest.raises(FileNotFoundError, match=re.escape("./missing does not exist (expected a saved model).")):
        local_folder("./missing", "a saved model")


def test_check_data_dir_names_the_dataset(tmp_path):
    assert check_data_dir("synthetic", None) is None
    assert check_data_dir("bijie", str(tmp_path)) == tmp_path
    with pytest.raises(ValueError, match=re.escape("Dataset 'bijie' needs data_dir (the folder holding it).")):
        check_data_dir("bijie", None)
    with pytest.raises(FileNotFoundError, match=re.escape(f"data_dir {tmp_path / 'no'} does not exist (dataset "
                                                          "'folder').")):
        check_data_dir("folder", tmp_path / "no")
    assert check_data_dir("folder", tmp_path / "no", must_exist=False) == tmp_path / "no"


# ----------------------------------------------------------------------------------------------------------- on_error
def test_on_error_accepts_its_values_and_the_old_spelling_of_raise():
    assert [check_on_error(value) for value in ON_ERROR] == ["raise", "skip"]
    with pytest.warns(FutureWarning, match=r'on_error="stop" is the old spelling of "raise"'):
        assert check_on_error("stop") == "raise"
    with pytest.raises(ValueError, match=re.escape("on_error must be one of ('raise', 'skip'), got 'ignore'")):
        check_on_error("ignore")


# ------------------------------------------------------------------------------------------------------------ presets
def test_the_atl_presets_load_without_peft_and_are_the_ones_atl_uses():
    code = ("import sys; from translandseg_hf.atl.presets import PRESETS; print('peft' in sys.modules); "
            "from translandseg_hf.atl import ATLConfig, PRESETS as P; import translandseg_hf as t; "
            "print(P is PRESETS and t.PRESETS is PRESETS and ATLConfig.from_preset('translandseg-1').middle_layers"
            " == ['c', 'c', 'c'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("first", ["translandseg_hf.atl.layer", "translandseg_hf.atl.config",
                                   "translandseg_hf.atl.model", "translandseg_hf.atl.presets, peft"])
def test_atl_is_registered_whichever_atl_module_is_imported_first(first):
    code = f"import {first}; from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING as m; print('ATL' in m)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
