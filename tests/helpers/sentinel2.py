"""Sentinel-2 products written for tests, in the layouts ESA, Earth Search and Planetary Computer deliver: a SAFE
folder (L1C or L2A, with its MTD_MSIL1C.xml / MTD_MSIL2A.xml), a folder of band files, and a STAC item beside its COGs;
and the processor of a Landslide4Sense model that reads them.

Callers pass digital numbers on the 10 m grid, block-constant over each band's native pixel and with the baseline
offset already added; each band is written at its native resolution, so resampling it back is exact.
"""

from __future__ import annotations

import datetime
import datetime as dt
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import numpy as np
import pystac
import pytest
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.transform import Affine, array_bounds, from_origin
from rasterio.warp import transform_bounds

from translandseg_hf.geo.sentinel2.bands import BAND_RESOLUTION, SENTINEL2_BANDS, landslide4sense_source
from translandseg_hf.geo.stac_search import Scene

from helpers.rasters import write_raster

UTM_45N = "EPSG:32645"
GRID_10M = from_origin(300_000, 3_100_000, 10, 10)  # the 10 m grid of the tests' products

JP2_OPTIONS = dict(QUALITY="100", REVERSIBLE="YES", YCC="NO")  # lossless JPEG 2000
ABSOLUTE_ORBIT = "A039310"
RELATIVE_ORBIT = "R119"
# The resolutions L2A products hold each band at besides its native one (B08 only at 10 m, B10 not at all).
L2A_RESOLUTIONS = {"B1": (60,), "B2": (10, 20, 60), "B3": (10, 20, 60), "B4": (10, 20, 60), "B5": (20, 60),
                   "B6": (20, 60), "B7": (20, 60), "B8": (10,), "B8A": (20, 60), "B9": (60,), "B11": (20, 60),
                   "B12": (20, 60)}
# Earth Search v1's asset keys, eo:bands names and descriptions, as its items spell them.
EARTH_SEARCH_KEYS = {"B1": ("coastal", "Coastal aerosol (band 1)"), "B2": ("blue", "Blue (band 2)"),
                     "B3": ("green", "Green (band 3)"), "B4": ("red", "Red (band 4)"),
                     "B5": ("rededge1", "Red edge 1 (band 5)"), "B6": ("rededge2", "Red edge 2 (band 6)"),
                     "B7": ("rededge3", "Red edge 3 (band 7)"), "B8": ("nir", "NIR 1 (band 8)"),
                     "B8A": ("nir08", "NIR 2 (band 8A)"), "B9": ("nir09", "NIR 3 (band 9)"),
                     "B10": ("cirrus", "Cirrus (band 10)"), "B11": ("swir16", "SWIR 1 (band 11)"),
                     "B12": ("swir22", "SWIR 2 (band 12)")}
COMMON_NAMES = {"B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "rededge", "B6": "rededge",
                "B7": "rededge", "B8": "nir", "B8A": "nir08", "B9": "nir09", "B10": "cirrus", "B11": "swir16",
                "B12": "swir22"}


def with_offset(dn: dict, offset: int) -> dict:
    """Digital numbers with a processing baseline's offset added (0, nodata, stays 0)."""
    return {band: np.where(values > 0, values + offset, 0).astype(np.uint16) for band, values in dn.items()}


def rgb_digital_numbers(side: int) -> dict:
    """Random B2, B3, B4 digital numbers on a side x side 10 m grid, with the 04.00 baseline's offset."""
    rng = np.random.default_rng(7)
    dn = {band: rng.integers(200, 4000, size=(side, side)).astype(np.uint16) for band in ("B2", "B3", "B4")}
    return with_offset(dn, 1000)


def l4s_contract(channels, **extra):
    """The processor of a Landslide4Sense model reading `channels` (0-based, L4S order) from a Sentinel-2 stack."""
    from translandseg_hf.data.landslide4sense import LANDSLIDE4SENSE_MEAN, LANDSLIDE4SENSE_STD
    from translandseg_hf.image_processing import TransLandSegImageProcessor

    rest = list(channels[3:])
    return TransLandSegImageProcessor(
        bands=[c + 1 for c in channels], scale="divisor", divisor=10, tile_size=128, ground_resolution=10,
        input_size=64, band_mean=[LANDSLIDE4SENSE_MEAN[c] for c in rest], band_std=[LANDSLIDE4SENSE_STD[c] for c in rest],
        **landslide4sense_source(channels), **extra)


def file_band(band: str) -> str:
    """'B4' -> 'B04', as product files name bands ('B8A' stays)."""
    return band if band == "B8A" else f"B{int(band[1:]):02d}"


def jp2_available() -> bool:
    """Whether rasterio's GDAL writes JPEG 2000 (the OpenJPEG driver)."""
    with rasterio.Env() as env:
        return "JP2OpenJPEG" in env.drivers()


def write_band(path, values: np.ndarray, crs, transform, driver="GTiff", nodata=0) -> Path:
    """One band as uint16; JP2OpenJPEG writes it losslessly (QUALITY=100, REVERSIBLE=YES) and, as ESA's JP2s,
    without a nodata value (Sentinel-2's nodata, 0, is stated in the product metadata)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if driver == "JP2OpenJPEG" and not jp2_available():
        raise ValueError(f"{path}: rasterio's GDAL has no JP2OpenJPEG driver; write GTiff (check jp2_available()).")
    options = JP2_OPTIONS if driver == "JP2OpenJPEG" else {}
    values = np.asarray(values, dtype=np.uint16)
    # JPEG 2000 keeps no nodata value (GDAL would add a .jp2.aux.xml beside it, which ESA's products do not have).
    jp2 = driver == "JP2OpenJPEG"
    with rasterio.Env(GDAL_PAM_ENABLED="NO" if jp2 else "YES"):
        return write_raster(path, values, driver=driver, crs=crs, transform=transform, nodata=None if jp2 else nodata,
                            **options)


def native(values_10m: np.ndarray, band: str) -> np.ndarray:
    """The band at its native resolution from a 10 m array constant over f x f blocks: each block's top-left value,
    ceil(H/f) x ceil(W/f) (the last block may reach beyond the 10 m grid)."""
    factor = BAND_RESOLUTION[band] // 10
    return np.asarray(values_10m)[::factor, ::factor]


def at_resolution(values_10m: np.ndarray, transform, resolution: int):
    """The 10 m array and its transform at `resolution` metres (block top-left values, the transform scaled)."""
    factor = resolution // 10
    return np.asarray(values_10m)[::factor, ::factor], transform @ Affine.scale(factor)


def safe_name(level="L1C", baseline="04.00", tile="T45RUL", date="20230101T045209") -> str:
    """ESA's product name: S2A_MSIL1C_20230101T045209_N0400_R119_T45RUL_20230101T064511.SAFE."""
    return f"S2A_MSI{level}_{date}_N{baseline.replace('.', '')}_{RELATIVE_ORBIT}_{tile}_{date[:9]}064511.SAFE"


def write_metadata(folder, level="L1C", baseline="04.00", offset=-1000, image_files=(), tile="T45RUL",
                   date="20230101T045209") -> Path:
    """MTD_MSIL1C.xml / MTD_MSIL2A.xml as ESA writes it (trimmed to what readers use): product type, baseline,
    IMAGE_FILE list, NODATA 0, quantification 10000 and, from baseline 04.00, an offset for every band_id."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    short = level[1:]  # "1C" / "2A"
    with_offsets = tuple(int(part) for part in baseline.split(".")) >= (4, 0)
    start = f"{date[:4]}-{date[4:6]}-{date[6:8]}T{date[9:11]}:{date[11:13]}:{date[13:15]}.024Z"
    images = "\n".join(f"            <IMAGE_FILE>{name}</IMAGE_FILE>" for name in image_files)
    if level == "L1C":
        quantification = '<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
        offsets = "\n".join(f'        <RADIO_ADD_OFFSET band_id="{index}">{offset}</RADIO_ADD_OFFSET>'
                            for index in range(len(SENTINEL2_BANDS)))
        offsets = f"      <Radiometric_Offset_List>\n{offsets}\n      </Radiometric_Offset_List>"
    else:
        quantification = ('<QUANTIFICATION_VALUES_LIST>\n        <BOA_QUANTIFICATION_VALUE unit="none">10000'
                          '</BOA_QUANTIFICATION_VALUE>\n      </QUANTIFICATION_VALUES_LIST>')
        offsets = "\n".join(f'        <BOA_ADD_OFFSET band_id="{index}">{offset}</BOA_ADD_OFFSET>'
                            for index in range(len(SENTINEL2_BANDS)))
        offsets = f"      <BOA_ADD_OFFSET_VALUES_LIST>\n{offsets}\n      </BOA_ADD_OFFSET_VALUES_LIST>"
    spectral = "\n".join(f'        <Spectral_Information bandId="{index}" physicalBand="{band}">'
                         f"<RESOLUTION>{BAND_RESOLUTION[band]}</RESOLUTION></Spectral_Information>"
                         for index, band in enumerate(SENTINEL2_BANDS))
    namespace = f"https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-{short}.xsd"
    text = f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:Level-{short}_User_Product xmlns:n1="{namespace}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>{start}</PRODUCT_START_TIME>
      <PRODUCT_URI>{safe_name(level, baseline, tile, date)}</PRODUCT_URI>
      <PROCESSING_LEVEL>Level-{short}</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI{short}</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
      <Product_Organisation>
        <Granule_List>
          <Granule imageFormat="JPEG2000">
{images}
          </Granule>
        </Granule_List>
      </Product_Organisation>
    </Product_Info>
    <Product_Image_Characteristics>
      <Special_Values>
        <SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX>
      </Special_Values>
      <Special_Values>
        <SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX>
      </Special_Values>
      {quantification}
{offsets if with_offsets else ""}
      <Spectral_Information_List>
{spectral}
      </Spectral_Information_List>
    </Product_Image_Characteristics>
  </n1:General_Info>
</n1:Level-{short}_User_Product>
"""
    path = folder / f"MTD_MSIL{short}.xml"
    path.write_text(text, encoding="utf-8")
    return path


def write_safe(root, dn_10m: dict, crs, transform, level="L1C", baseline="04.00", offset=-1000, tile="T45RUL",
               date="20230101T045209", driver=None) -> Path:
    """A SAFE folder in ESA's layout for the level, each band at its native resolution (L2A: also at the coarser
    resolutions ESA adds, and never B10, which L2A drops), a TCI beside the bands, and the MTD file at the root.
    driver None: JPEG 2000 where GDAL writes it, else GeoTIFF .tif files in the same folders."""
    driver = driver or ("JP2OpenJPEG" if jp2_available() else "GTiff")
    suffix = ".jp2" if driver == "JP2OpenJPEG" else ".tif"
    safe = Path(root) / safe_name(level, baseline, tile, date)
    granule = safe / "GRANULE" / f"{level}_{tile}_{ABSOLUTE_ORBIT}_{date}" / "IMG_DATA"
    images = []
    for band in SENTINEL2_BANDS:
        if band not in dn_10m:
            continue
        resolutions = (BAND_RESOLUTION[band],) if level == "L1C" else L2A_RESOLUTIONS.get(band, ())
        for resolution in resolutions:
            values, band_transform = at_resolution(dn_10m[band], transform, resolution)
            name = f"{tile}_{date}_{file_band(band)}" + ("" if level == "L1C" else f"_{resolution}m")
            folder = granule if level == "L1C" else granule / f"R{resolution}m"
            write_band(folder / f"{name}{suffix}", values, crs, band_transform, driver=driver)
            images.append(str((folder / name).relative_to(safe)))
    if dn_10m:
        first = next(iter(dn_10m.values()))
        tci = f"{tile}_{date}_TCI" + ("" if level == "L1C" else "_10m")
        folder = granule if level == "L1C" else granule / "R10m"
        write_band(folder / f"{tci}{suffix}", np.zeros_like(first), crs, transform, driver=driver)
    write_metadata(safe, level, baseline, offset, images, tile, date)
    return safe


def write_band_folder(folder, dn_10m: dict, crs, transform, names="{band}.tif") -> Path:
    """A folder of GeoTIFFs, one per band at its native resolution, named by `names` ("{band}" is B02, B8A ...)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for band, values in dn_10m.items():
        band_values, band_transform = at_resolution(values, transform, BAND_RESOLUTION[band])
        write_band(folder / names.format(band=file_band(band)), band_values, crs, band_transform)
    return folder


def write_stac_item(path, dn_10m: dict, crs, transform, asset_keys="earth-search", baseline="05.09", relative=True,
                    level="L2A", missing=(), boa_offset_applied: Optional[bool] = None) -> Path:
    """A STAC item (written with pystac) beside one COG per band at its native resolution, keyed as Earth Search v1
    ("blue", eo:bands name "blue", plus a "blue-jp2" duplicate whose JPEG 2000 is not written, as its JP2s live
    elsewhere) or as Planetary Computer ("B02"); raster:bands offset -0.1 and scale 0.0001 where the baseline is
    04.00 or later (Earth Search only: Planetary Computer states only s2:processing_baseline). `missing`: bands whose
    asset is listed but whose file is not written. `boa_offset_applied` sets earthsearch:boa_offset_applied."""
    import pystac

    if asset_keys not in ("earth-search", "planetary"):
        raise ValueError(f"asset_keys {asset_keys!r}: pass 'earth-search' or 'planetary'.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    crs = CRS.from_user_input(crs)
    first = next(iter(dn_10m.values()))
    west, south, east, north = transform_bounds(crs, "EPSG:4326", *array_bounds(*first.shape, transform))
    with_offset = tuple(int(part) for part in baseline.split(".")) >= (4, 0)
    properties = {"s2:processing_baseline": baseline, "s2:product_type": f"S2MSI{level[1:]}", "proj:epsg":
                  crs.to_epsg(), "platform": "sentinel-2a", "constellation": "sentinel-2"}
    if boa_offset_applied is not None:
        properties["earthsearch:boa_offset_applied"] = boa_offset_applied
    item = pystac.Item(id=f"S2A_45RUL_20230101_0_{level}", bbox=[west, south, east, north],
                       geometry={"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                                     [west, north], [west, south]]]},
                       datetime=datetime.datetime(2023, 1, 1, 4, 52, 9, tzinfo=datetime.timezone.utc),
                       properties=properties, collection=f"sentinel-2-{level.lower()}")
    item.stac_extensions += ["https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                             "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                             "https://stac-extensions.github.io/projection/v1.1.0/schema.json"]
    for band, values in dn_10m.items():
        resolution = BAND_RESOLUTION[band]
        band_values, band_transform = at_resolution(values, transform, resolution)
        if asset_keys == "earth-search":
            key, description = EARTH_SEARCH_KEYS[band]
            name, file_name = key, f"{file_band(band)}.tif"
        else:
            key = name = file_band(band)
            description, file_name = f"Band {band[1:]}", f"T45RUL_20230101T045209_{key}_{resolution}m.tif"
        file = path.parent / file_name
        if band not in missing:
            write_band(file, band_values, crs, band_transform, driver="COG")
        raster = {"nodata": 0, "data_type": "uint16", "spatial_resolution": resolution}
        if asset_keys == "earth-search":
            raster.update(scale=0.0001, offset=-0.1 if with_offset else 0.0)
        fields = {"eo:bands": [{"name": name, "common_name": COMMON_NAMES[band], "description": description}],
                  "gsd": resolution, "proj:shape": list(band_values.shape), "proj:transform": list(band_transform)[:6]}
        if asset_keys == "earth-search":
            fields["raster:bands"] = [raster]
        item.add_asset(key, pystac.Asset(href=str(file.resolve()), media_type=pystac.MediaType.COG,
                                         title=f"{description} - {resolution}m", roles=["data", "reflectance"],
                                         extra_fields=fields))
        if asset_keys == "earth-search":
            item.add_asset(f"{key}-jp2", pystac.Asset(href=str(file.with_suffix(".jp2").resolve()),
                                                      media_type=pystac.MediaType.JPEG2000, roles=["data"],
                                                      extra_fields=dict(fields)))
    item.add_asset("thumbnail", pystac.Asset(href=str((path.parent / "thumbnail.jpg").resolve()),
                                             media_type=pystac.MediaType.JPEG, roles=["thumbnail"]))
    metadata_key = "granule_metadata" if asset_keys == "earth-search" else "product-metadata"
    item.add_asset(metadata_key, pystac.Asset(href=str((path.parent / "metadata.xml").resolve()),
                                              media_type=pystac.MediaType.XML, roles=["metadata"]))
    item.add_asset("visual", pystac.Asset(
        href=str((path.parent / "TCI.tif").resolve()), media_type=pystac.MediaType.COG, roles=["visual"],
        extra_fields={"eo:bands": [{"name": name} for name in (("red", "green", "blue") if asset_keys ==
                                                              "earth-search" else ("B04", "B03", "B02"))]}))
    item.set_self_href(str(path.resolve()))
    if relative:
        item.make_asset_hrefs_relative()
    item.save_object(include_self_link=False, dest_href=str(path))
    return path


# Truth for the composite and `imagery`/`predict --aoi` tests: two MGRS-like tiles overlapping the area, three dates,
# L2A STAC items with SCL clouds and shadows placed where the truth says.
SIDE = 48  # 10 m pixels of the truth, square; SCL at 20 m is 24 x 24
TILES = {"A": (0, 32), "B": (16, 48)}  # 10 m columns each tile covers (16 shared)
DATES = (dt.datetime(2023, 1, 1, 4, 52, tzinfo=dt.timezone.utc), dt.datetime(2023, 1, 6, 4, 52, tzinfo=dt.timezone.utc),
         dt.datetime(2023, 1, 11, 4, 52, tzinfo=dt.timezone.utc))
BANDS = ("B2", "B3", "B4")


def scl_truths() -> list:
    """Per date, the 20 m classes: date 1 cloud (9), shadow (3) and cirrus (10); date 2 cloud (8) over the whole
    west half; date 3 one cloud (9) inside both, where no date is clear."""
    first = np.full((24, 24), 4, np.uint8)
    first[4:10, 4:10], first[14:18, 16:22], first[18:22, 2:6] = 9, 3, 10
    second = np.full((24, 24), 5, np.uint8)
    second[:, :12] = 8
    third = np.full((24, 24), 4, np.uint8)
    third[6:9, 6:9] = 9
    return [first, second, third]


def dn_truths() -> list:
    """Per date, each band's digital numbers on the 10 m grid (the ground differs from date to date)."""
    rng = np.random.default_rng(39)
    return [{band: rng.integers(200, 4000, (SIDE, SIDE)).astype(np.uint16) for band in BANDS} for _ in DATES]


def write_scenes(tmp_path, dns, scls) -> list:
    """Six found scenes, date by date, tile A then tile B: L2A STAC items with their COGs and SCL."""
    scenes = []
    for when, dn, scl in zip(DATES, dns, scls):
        for tile, (first, last) in TILES.items():
            transform = GRID_10M @ Affine.translation(first, 0)
            bands = with_offset({band: values[:, first:last] for band, values in dn.items()}, 1000)
            path = write_stac_item(tmp_path / f"{tile}{when:%Y%m%d}" / "item.json", bands, UTM_45N, transform)
            write_raster(path.parent / "SCL.tif", scl[:, first // 2:last // 2], crs=UTM_45N,
                         transform=transform @ Affine.scale(2), nodata=None)
            item = pystac.Item.from_file(str(path))
            item.add_asset("scl", pystac.Asset(href="./SCL.tif", media_type=pystac.MediaType.COG, roles=["data"]))
            item.save_object(include_self_link=False, dest_href=str(path))
            item = pystac.Item.from_file(str(path))
            scenes.append(Scene(f"S2A_T45RU{tile}_{when:%Y%m%d}", when, "sentinel-2a", 10.0,
                                shapely.box(*item.bbox), item))
    return scenes


def aoi_bounds() -> tuple:
    """W,S,E,N in WGS 84 of the truth's 10 m rows and columns 6 to 42."""
    inner = (GRID_10M.c + 60, GRID_10M.f - 420, GRID_10M.c + 420, GRID_10M.f - 60)
    return transform_bounds(UTM_45N, "EPSG:4326", *inner)


def served_items(folder, scenes, assets) -> list:
    """The scenes' files for `rustac serve`: a collection and the items, their assets fetched from `assets` (a RangeServer)."""
    features = []
    for scene in scenes:
        item = scene.item.to_dict(include_self_link=False)
        where = Path(scene.item.get_self_href()).parent.name
        for asset in item["assets"].values():
            asset["href"] = assets.url(f"{where}/{Path(asset['href']).name}")
        item.update(id=scene.id, collection="sentinel-2-l2a-test", links=[])
        item["properties"]["datetime"] = f"{scene.datetime:%Y-%m-%dT%H:%M:%SZ}"
        features.append(item)
    collection = {"type": "Collection", "stac_version": "1.0.0", "id": "sentinel-2-l2a-test", "description": "truth",
                  "license": "proprietary", "links": [], "extent": {"spatial": {"bbox": [[80, 20, 95, 35]]},
                  "temporal": {"interval": [["2023-01-01T00:00:00Z", None]]}}}
    (folder / "collection.json").write_text(json.dumps(collection))
    (folder / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return [folder / "collection.json", folder / "items.json"]



TRUTH_SEARCH = ["--start", "2023-01-01", "--end", "2023-01-31", "--collection", "sentinel-2-l2a-test"]  # all 6 scenes


def truth_bbox() -> str:
    """`--bbox` of the truth's area (`aoi_bounds`)."""
    return ",".join(f"{value:.7f}" for value in aoi_bounds())


@contextmanager
def truth_catalogue(folder, scenes, assets):
    """A real STAC API (`rustac serve`) listing the truth's scenes, their assets fetched from `assets` (a server or
    bucket with `.url(path)`); its URL. The test skips where the server cannot start."""
    from helpers.servers import StacApiServer

    server = StacApiServer(served_items(folder, scenes, assets)).start()
    if server is None:
        pytest.skip("no STAC API server: rustac serve did not start")
    try:
        yield server.url
    finally:
        server.stop()

# --- an L1C scene with a cloud as s2cloudless sees it (test_clouds, test_imagery_sources) -------------------------
from importlib.util import find_spec  # noqa: E402

requires_s2cloudless = pytest.mark.skipif(
    find_spec("s2cloudless") is None or find_spec("lightgbm") is None,
    reason="s2cloudless and lightgbm (the imagery extra) are not installed: pip install 'translandseg-hf[imagery]'")

L1C_SIDE = 672  # 10 m pixels (6.72 km): 42 cells of 160 m, and whole 20 m and 60 m pixels
S2CLOUDLESS_BANDS = ("B1", "B2", "B4", "B5", "B8", "B8A", "B9", "B10", "B11", "B12")
# Top-of-atmosphere reflectance in s2cloudless's bands: vegetation (red edge and NIR high, cirrus band dark), bare soil
# of a landslide scar (bright in red and SWIR, still clear sky), and a thick cloud: bright and flat in every band,
# bright in B10 (1375 nm, water vapour absorbs the ground's light: only high, cold cloud tops reflect there).
VEGETATION = (0.12, 0.09, 0.05, 0.09, 0.30, 0.32, 0.10, 0.003, 0.17, 0.08)
BARE_SOIL = (0.15, 0.13, 0.18, 0.20, 0.28, 0.30, 0.12, 0.004, 0.35, 0.28)
CLOUD = (0.50, 0.50, 0.50, 0.50, 0.55, 0.55, 0.20, 0.05, 0.35, 0.25)
CLOUD_AREA = (slice(192, 432), slice(192, 432))  # 2.4 km square
SCAR = (slice(560, 640), slice(40, 140))  # a landslide 1.3 km from the cloud


def l1c_scene() -> tuple[dict, np.ndarray]:
    """Digital numbers of an L1C product at baseline 04.00 (reflectance x 10000 + 1000) with 2% noise, and the truth:
    True inside the cloud."""
    rng = np.random.default_rng(11)
    truth = np.zeros((L1C_SIDE, L1C_SIDE), bool)
    truth[CLOUD_AREA] = True
    dn = {}
    for index, band in enumerate(S2CLOUDLESS_BANDS):
        reflectance = np.full((L1C_SIDE, L1C_SIDE), VEGETATION[index])
        reflectance[SCAR] = BARE_SOIL[index]
        reflectance[truth] = CLOUD[index]
        reflectance *= rng.normal(1.0, 0.02, reflectance.shape)
        dn[band] = np.round(reflectance * 10000 + 1000).astype(np.uint16)
    return dn, truth


# --- what the composite of the truth must hold (test_composite, test_imagery_sources) ---------------------------
from translandseg_hf.geo.sentinel2.clouds import SCL_MASKED  # noqa: E402
from translandseg_hf.geo.sentinel2.composite import SOURCE_NODATA  # noqa: E402

CHANNELS = (1, 2, 3)  # Landslide4Sense's B2, B3, B4


def expected(dns, scls, divisors, rows, cols, bands=BANDS):
    """What the composite must hold on the grid's rows/cols of the truth: each pixel from the first scene (dates in
    order, tile A before B) covering it and clear there; NaN and SOURCE_NODATA where none is."""
    values = np.full((len(bands), SIDE, SIDE), np.nan, np.float32)
    source = np.full((SIDE, SIDE), SOURCE_NODATA, np.uint16)
    column = np.arange(SIDE)[None, :].repeat(SIDE, axis=0)
    for date, (dn, scl) in enumerate(zip(dns, scls)):
        clear = ~np.isin(np.kron(scl, np.ones((2, 2), np.uint8)), SCL_MASKED)
        for number, (first, last) in enumerate(TILES.values()):
            take = clear & (column >= first) & (column < last) & (source == SOURCE_NODATA)
            for index, band in enumerate(bands):
                values[index][take] = dn[band][take] / np.float32(divisors[index])
            source[take] = 2 * date + number
    return values[:, rows, cols], source[rows, cols]


def truth_window(grid) -> tuple:
    """The truth's rows and columns under the composite's grid."""
    col0, row0 = round((grid.transform.c - GRID_10M.c) / 10), round((GRID_10M.f - grid.transform.f) / 10)
    return slice(row0, row0 + grid.height), slice(col0, col0 + grid.width)


def assert_composite_is_the_truth(folder, dns, scls, divisors, channels) -> None:
    """`folder`'s composite.tif and source.tif hold what `expected` says, on their grid's part of the truth."""
    with rasterio.open(folder / "composite.tif") as written, rasterio.open(folder / "source.tif") as source:
        rows, cols = truth_window(written)
        values, origin = expected(dns, scls, divisors, rows, cols, bands=channels)
        np.testing.assert_array_equal(written.read(), values)
        np.testing.assert_array_equal(source.read(1), origin)
