"""A small synthetic Sentinel-2 L1C product with a DEM and a STAC item, and Landslide4Sense-style training patches
drawn from the same kind of landscape, so the Sentinel-2 tutorial (docs/tutorials/sentinel2-stac.md) runs offline.

    python scripts/synthetic_sentinel2.py --output s2demo

writes, under OUTPUT:
- `bands/B01.tif` ... `bands/B12.tif`, `bands/B8A.tif`: uint16 L1C digital numbers with processing baseline 04.00's
  +1000 offset, each band at its native resolution (10, 20 or 60 m), UTM zone 45N; `bands/item.json`: a STAC item
  (Planetary Computer's asset keys, `s2:processing_baseline` 04.00) whose assets are those files;
- `dem.tif`: elevation in metres at 30 m; `truth.tif`: the true landslide mask on the 10 m grid;
- `l4s/{TrainData,ValidData,TestData}/{img,mask}/`: 128 x 128 x 14 patches in the Landslide4Sense layout and value
  scale (B1-B12 with B10, slope, elevation, each divided by the dataset's constants).

The landscape is `translandseg_hf.data.synthetic.make_synthetic_scene` turned into 13 bands: vegetation and bare
soil are each given a top-of-atmosphere reflectance spectrum, mixed by the scene's scar mask, with the scene's
texture; the terrain is a tilted, rolling surface. It is not real imagery.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import h5py
import numpy as np
import pystac
import rasterio
from rasterio.transform import from_origin

from translandseg_hf.data.synthetic import make_synthetic_scene
from translandseg_hf.geo.sentinel2.bands import BAND_RESOLUTION, LANDSLIDE4SENSE_CHANNELS, LANDSLIDE4SENSE_DIVISORS

# Top-of-atmosphere reflectance, B1 ... B12 in BAND_RESOLUTION's order (B8A after B8): green canopy is dark in the
# visible and bright in the near infrared; fresh scars are bright in the visible and the short-wave infrared.
VEGETATION = dict(zip(BAND_RESOLUTION, (0.12, 0.09, 0.08, 0.05, 0.10, 0.25, 0.30, 0.32, 0.33, 0.10, 0.003, 0.17,
                                        0.08)))
BARE_SOIL = dict(zip(BAND_RESOLUTION, (0.14, 0.13, 0.15, 0.18, 0.21, 0.25, 0.27, 0.29, 0.30, 0.12, 0.004, 0.35,
                                       0.28)))
OFFSET = 1000  # digital numbers added from processing baseline 04.00 on
CRS = "EPSG:32645"
ORIGIN = (300000.0, 3100000.0)  # west, north (m)
PATCHES = {"TrainData": 40, "ValidData": 8, "TestData": 8}


def reflectance(side: int, seed: int, num_scars=(1, 4)) -> tuple[dict, np.ndarray]:
    """{band: (side, side) TOA reflectance on the 10 m grid}, and the 0/1 scar mask."""
    image, mask = make_synthetic_scene(side, seed=seed, num_scars=num_scars)
    brightness = image.astype(np.float32).mean(axis=2)
    texture = (brightness - brightness.mean()) / (brightness.std() + 1e-6)
    soil = np.clip((image[..., 0].astype(np.float32) - 80) / 90, 0, 1)  # the scene's own soft scar edges (red)
    bands = {band: ((1 - soil) * VEGETATION[band] + soil * BARE_SOIL[band]) * (1 + 0.05 * texture)
             for band in BAND_RESOLUTION}
    return bands, mask


def coarse(values: np.ndarray, band: str) -> np.ndarray:
    """The band as a coarser sensor pixel sees it: the top-left 10 m value of each block (what the product holds)."""
    factor = BAND_RESOLUTION[band] // 10
    return values[::factor, ::factor]


def elevation(side: int, cell: float = 10.0) -> np.ndarray:
    """(side, side) metres: a slope rising 0.3 m per m to the east with 40 m hills."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) * cell
    return 1200 + 0.3 * x + 40 * np.sin(x / 230) * np.cos(y / 170)


def slope_degrees(dem: np.ndarray, cell: float = 10.0) -> np.ndarray:
    dy, dx = np.gradient(dem, cell)
    return np.degrees(np.arctan(np.hypot(dx, dy)))


def write(path: Path, array: np.ndarray, resolution: float, dtype: str, nodata=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=array.shape[1], height=array.shape[0], count=1, dtype=dtype, crs=CRS,
                   transform=from_origin(*ORIGIN, resolution, resolution), nodata=nodata)
    with rasterio.open(path, "w", **profile) as raster:
        raster.write(array.astype(dtype), 1)
    return path


def file_band(band: str) -> str:
    return band if band == "B8A" else f"B{int(band[1:]):02d}"


def write_product(output: Path, side: int, seed: int) -> None:
    """The band files, the STAC item, the DEM and the truth of one scene."""
    bands, mask = reflectance(side, seed, num_scars=(3, 5))
    for band, values in bands.items():
        digital_numbers = np.round(coarse(values, band) * 10000) + OFFSET
        write(output / "bands" / f"{file_band(band)}.tif", digital_numbers, BAND_RESOLUTION[band], "uint16", 0)
    write(output / "dem.tif", elevation(side // 3, cell=30.0), 30.0, "float32")
    write(output / "truth.tif", mask, 10.0, "uint8")
    write_stac_item(output / "bands", side)


def write_stac_item(folder: Path, side: int) -> Path:
    """A STAC item for the band files, as Planetary Computer keys them (B01 ... B12, B8A)."""
    west, north = ORIGIN
    bbox_utm = [west, north - side * 10, west + side * 10, north]
    with rasterio.open(folder / "B04.tif") as band:
        from rasterio.warp import transform_bounds
        bounds = transform_bounds(band.crs, "EPSG:4326", *bbox_utm)
    ring = [[bounds[0], bounds[1]], [bounds[2], bounds[1]], [bounds[2], bounds[3]], [bounds[0], bounds[3]],
            [bounds[0], bounds[1]]]
    item = pystac.Item(id="S2A_MSIL1C_synthetic", bbox=list(bounds), geometry={"type": "Polygon", "coordinates": [ring]},
                       datetime=datetime.datetime(2023, 9, 5, 4, 52, tzinfo=datetime.timezone.utc),
                       properties={"s2:processing_baseline": "04.00", "s2:product_type": "S2MSI1C",
                                   "platform": "Sentinel-2A", "proj:epsg": 32645})
    for band in BAND_RESOLUTION:
        key = file_band(band)
        item.add_asset(key, pystac.Asset(href=f"./{key}.tif", media_type=pystac.MediaType.GEOTIFF, roles=["data"],
                                         extra_fields={"gsd": BAND_RESOLUTION[band]}))
    item.save_object(include_self_link=False, dest_href=str(folder / "item.json"))
    return folder / "item.json"


def write_patches(root: Path, seed: int) -> None:
    """Landslide4Sense's layout and scale: channel c = sensor value / LANDSLIDE4SENSE_DIVISORS[c]."""
    dem = elevation(128)
    terrain = {"slope": slope_degrees(dem), "dem": dem}
    number = 0
    for folder, count in PATCHES.items():
        for n in range(1, count + 1):
            number += 1
            bands, mask = reflectance(128, (seed, number))
            for band in bands:  # each band as the stack puts it on the 10 m grid: coarse pixels, repeated
                factor = BAND_RESOLUTION[band] // 10
                bands[band] = np.repeat(np.repeat(coarse(bands[band], band), factor, 0), factor, 1)[:128, :128]
            sensor = {band: np.round(values * 10000) for band, values in bands.items()} | terrain
            channels = [sensor[name] / divisor for name, divisor in zip(LANDSLIDE4SENSE_CHANNELS,
                                                                        LANDSLIDE4SENSE_DIVISORS)]
            save_h5(root / folder / "img" / f"image_{n}.h5", "img", np.stack(channels, axis=-1).astype(np.float32))
            save_h5(root / folder / "mask" / f"mask_{n}.h5", "mask", mask.astype(np.uint8))


def save_h5(path: Path, key: str, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.create_dataset(key, data=array)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="Folder to write into.")
    parser.add_argument("--side", type=int, default=192, help="Scene side in 10 m pixels, a multiple of 6.")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.side % 6:
        parser.error(f"--side {args.side}: a multiple of 6, so the 20 m and 60 m bands cover the same ground")
    write_product(args.output, args.side, args.seed)
    write_patches(args.output / "l4s", args.seed)
    print(f"wrote {args.output}/bands (13 bands and item.json), dem.tif, truth.tif and "
          f"{sum(PATCHES.values())} Landslide4Sense patches in {args.output}/l4s")


if __name__ == "__main__":
    main()
