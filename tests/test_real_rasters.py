"""Rasters in the forms other projects publish them (issue 22): values beyond 8 bits, band numbers the file lacks.

Each case is a file written in that exact form; outputs are read back with GDAL's own gdalinfo where it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from translandseg_hf.cli import main

UTM_48N = "EPSG:32648"


def write_geotiff(path: Path, bands: np.ndarray) -> Path:
    with rasterio.open(path, "w", driver="GTiff", height=bands.shape[1], width=bands.shape[2], count=len(bands),
                       dtype=bands.dtype.name, crs=UTM_48N, transform=from_origin(500_000, 3_000_000, 0.8, 0.8)) as out:
        out.write(bands)
    return path


def sixteen_bit_scene(low: int = 69, high: int = 31_000) -> np.ndarray:
    """(3, 96, 80) uint16 from `low` to `high`, as a Landsat or orthophoto subset stores them."""
    ramp = np.linspace(low, high, 96 * 80).reshape(96, 80)
    return np.stack([ramp, ramp[::-1], ramp.T.reshape(96, 80)]).round().astype(np.uint16)


def predict(model: Path, scene: Path, output: Path, *extra: str) -> int:
    return main(["predict", "--model", str(model), str(scene), "--output", str(output), *extra])


def test_a_16_bit_scene_for_an_8_bit_model_is_refused_with_its_range_and_options(tiny_sam_folder, tmp_path, capsys):
    scene = write_geotiff(tmp_path / "landsat.tif", sixteen_bit_scene())
    assert predict(tiny_sam_folder, scene, tmp_path / "maps") == 1
    expected = (f"{scene}: the bands hold uint16 values from 69 to 31000, but the model reads 8-bit values (0-255) as "
                "they are (its contract's scale is none), so they would be clipped to white; pass --scale percentile")
    assert expected in capsys.readouterr().out
    assert not list((tmp_path / "maps").glob("landsat_*"))  # nothing written from a map that cannot be right


def test_the_16_bit_scene_maps_with_the_stretch_the_message_names(tiny_sam_folder, tmp_path, capsys):
    scene = write_geotiff(tmp_path / "landsat.tif", sixteen_bit_scene())
    assert predict(tiny_sam_folder, scene, tmp_path / "maps", "--scale", "percentile") == 0
    probability = tmp_path / "maps" / "landsat_probability.tif"
    with rasterio.open(probability) as dataset:
        values = dataset.read(1)
        assert dataset.crs == UTM_48N and values.shape == (96, 80) and np.isfinite(values).all()
    if shutil.which("gdalinfo"):
        info = subprocess.run(["gdalinfo", "-stats", str(probability)], capture_output=True, text=True)
        assert info.returncode == 0 and "ERROR" not in info.stderr, info.stderr


def test_16_bit_values_within_0_255_read_as_the_same_8_bit_scene(tiny_sam_folder, tmp_path):
    eight = (sixteen_bit_scene(0, 255 * 100) // 100).astype(np.uint8)
    for folder, bands in (("a", eight), ("b", eight.astype(np.uint16))):
        (tmp_path / folder).mkdir()
        write_geotiff(tmp_path / folder / "scene.tif", bands)
    for folder in ("a", "b"):
        assert predict(tiny_sam_folder, tmp_path / folder / "scene.tif", tmp_path / folder / "maps") == 0
    maps = [rasterio.open(tmp_path / folder / "maps" / "scene_probability.tif") for folder in ("a", "b")]
    with maps[0], maps[1]:
        assert np.array_equal(maps[0].read(1), maps[1].read(1))
