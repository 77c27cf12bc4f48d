"""One raster factory for every test (`write_raster`) and the scenes the tests write with it.

Scenes are arrays (C, H, W); `write_raster` writes them with rasterio as GeoTIFF, COG, PNG or JPEG 2000, on a
north-up UTM 48N grid unless the call gives its own georeferencing.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.errors import NotGeoreferencedWarning
from rasterio.rpc import RPC
from rasterio.transform import Affine, from_origin

UTM_48N = "EPSG:32648"
ORIGIN = (500_000.0, 3_000_000.0)  # metres in UTM 48N, as Bijie's scenes
GEOREFERENCING = ("crs", "transform", "gcps", "rpcs")


def write_raster(path, bands, *, nodata=None, driver="GTiff", pixel_size: float = 0.8, **options):
    """Write `bands` ((C, H, W), or (H, W) for one band) with its own dtype; returns `path`.

    Georeferencing is what `options` gives (crs, transform, gcps, rpcs: e.g. `crs=None` alone for a scene without
    any); where it gives none, a north-up grid in UTM 48N at `pixel_size` metres from ORIGIN. Other `options` are
    rasterio's creation options (COMPRESS, BIGTIFF, ...).
    """
    bands = np.asarray(bands)
    bands = bands[None] if bands.ndim == 2 else bands
    if not any(name in options for name in GEOREFERENCING):
        options.update(crs=UTM_48N, transform=from_origin(*ORIGIN, pixel_size, pixel_size))
    count, height, width = bands.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a scene without a CRS or grid is intended
        with rasterio.open(path, "w", driver=driver, height=height, width=width, count=count,
                           dtype=bands.dtype.name, nodata=nodata, **options) as dataset:
            dataset.write(bands)
    return path


def random_rgb(height: int, width: int | None = None, seed: int = 0) -> np.ndarray:
    """(3, H, W) uint8 noise: a scene where nothing is special."""
    return np.random.default_rng(seed).integers(0, 256, (3, height, width or height), dtype=np.uint8)


def write_noise_scene(path, height: int = 150, width: int = 170, nodata_rows=slice(0, 0)):
    """Random 8-bit RGB (seed 3) on the 0.8 m grid, nodata 0, with `nodata_rows` set to it."""
    bands = random_rgb(height, width, seed=3)
    bands[:, nodata_rows] = 0
    return write_raster(path, bands, nodata=0)


# --- the blob scene: three bright-red landslides on dark ground, in every form of georeferencing ------------------
BLOB_HEIGHT, BLOB_WIDTH = 90, 110
ROTATED = Affine.translation(*ORIGIN) @ Affine.rotation(-7.0) @ Affine.scale(3.0, -3.0)  # a 3 m grid turned 7 degrees


def blob_scene(height: int = BLOB_HEIGHT, width: int = BLOB_WIDTH, reds=(200, 200, 200)) -> np.ndarray:
    """(3, H, W) uint8: dark ground with three red landslides, one with a hole, two crossing 32 px tile edges."""
    scene = np.full((3, height, width), 50, dtype=np.uint8)
    scene[0, 5:40, 20:70] = reds[0]
    scene[0, 15:25, 35:50] = 50  # a hole in the first landslide
    scene[0, 50:85, 10:30] = reds[1]
    scene[0, 60:70, 80:105] = reds[2]
    return scene


RED = {"large": 200, "faint": 150, "small": 230}  # probabilities ~0.79, ~0.61 and ~0.86 under models.RedModel
AREAS = {"large": 35 * 50 - 10 * 15, "faint": 35 * 20, "small": 10 * 25}  # pixels (the large one has a hole)


def three_landslides(height: int = BLOB_HEIGHT, width: int = BLOB_WIDTH) -> np.ndarray:
    """The blob scene with the three landslides of RED and AREAS: a threshold or a minimum area keeps 3, 2 or 1."""
    return blob_scene(height, width, reds=tuple(RED.values()))


LANDSLIDE_PIXELS = int((blob_scene()[0] == 200).sum())


def corner_gcps() -> list[GroundControlPoint]:
    """Five points of the rotated 3 m grid: the corners and the centre (an exact affine, so the fit is exact)."""
    pixels = [(0, 0), (0, BLOB_WIDTH), (BLOB_HEIGHT, 0), (BLOB_HEIGHT, BLOB_WIDTH), (BLOB_HEIGHT / 2, BLOB_WIDTH / 2)]
    return [GroundControlPoint(row, col, *(ROTATED @ (col, row)), id=str(index + 1))
            for index, (row, col) in enumerate(pixels)]


def affine_rpc(height: int, width: int, degrees: float = 0.0001, longitude: float = 105.0,
               latitude: float = 27.0) -> RPC:
    """RPCs affine in longitude and latitude: `degrees` per pixel, north up, the scene's middle at (longitude,
    latitude); pixel (row, col) covers longitude + (col - width/2) * degrees, latitude - (row - height/2) * degrees."""
    zeros = [0.0] * 20
    return RPC(height_off=0, height_scale=500, lat_off=latitude, lat_scale=degrees * height / 2,
               long_off=longitude, long_scale=degrees * width / 2, line_off=height / 2, line_scale=height / 2,
               samp_off=width / 2, samp_scale=width / 2, line_num_coeff=[0.0, 0.0, -1.0] + zeros[3:],
               line_den_coeff=[1.0] + zeros[1:], samp_num_coeff=[0.0, 1.0] + zeros[2:],
               samp_den_coeff=[1.0] + zeros[1:], err_bias=None, err_rand=None)


def write_blob_tif(path: Path, **georeferencing) -> Path:
    """The blob scene as a GeoTIFF georeferenced by `georeferencing` alone (gcps, rpcs, a transform without CRS)."""
    return write_raster(path, blob_scene(BLOB_HEIGHT, BLOB_WIDTH), **georeferencing)


def check_gdal_reads(folder: Path) -> None:
    """gdalinfo reads every raster, ogrinfo every vector file, each with exit status 0."""
    for tool, suffixes in (("gdalinfo", (".tif", ".png")), ("ogrinfo", (".geojson", ".gpkg"))):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} (Debian's gdal-bin) is not installed")
        for path in sorted(p for p in folder.iterdir() if p.suffix in suffixes):
            command = [tool, str(path)] + (["-so", "-al"] if tool == "ogrinfo" else [])
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{tool} {path.name}: {done.stderr}"


# --- a textured RGB scene, as imagery compresses -------------------------------------------------------------------
def textured_rgb(side: int) -> np.ndarray:
    """(3, side, side) uint8: smooth relief plus noise."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    rng = np.random.default_rng(5)
    bands = [127 + 100 * np.sin(x / (40 + 9 * k)) * np.cos(y / (55 - 7 * k)) + rng.normal(0, 8, (side, side))
             for k in range(3)]
    return np.clip(np.stack(bands), 0, 255).astype(np.uint8)


def write_textured_cog(path, side: int = 1024):
    """The textured RGB scene as a DEFLATE COG in UTM 45N at 0.8 m (the remote-input tests' scene)."""
    return write_raster(path, textured_rgb(side), driver="COG", crs="EPSG:32645",
                        transform=from_origin(300_000, 3_100_000, 0.8, 0.8), COMPRESS="DEFLATE")
