"""Finding a Sentinel-2 product's band files and reading what its metadata says (level, baseline, DN offset).

A product comes as ESA's SAFE folder (L1C: `GRANULE/*/IMG_DATA/*_B??.jp2`; L2A: `IMG_DATA/R10m|R20m|R60m`), as a
folder of per-band files named by band (`B04.tif`), or as a STAC item whose assets are the bands. Nothing here opens a
raster: the bands are paths or hrefs GDAL opens later, so a remote STAC item costs one JSON read.

Since processing baseline 04.00 (25 January 2022) the digital numbers carry +1000; the metadata states the value to
add (-1000) per band. `offsets` holds that value where a source says it, and `offset_source` says which source.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from ..failures import RasterReadError
from ..remote import RemotePath, as_input, is_remote
from .bands import BAND_RESOLUTION, SENTINEL2_BANDS, canonical_band

PathLike = Union[str, os.PathLike]
BAND_FILE_SUFFIXES = (".tif", ".tiff", ".jp2")
METADATA_FILES = {"MTD_MSIL1C.xml": "L1C", "MTD_MSIL2A.xml": "L2A"}
PRODUCT_TYPES = {"S2MSI1C": "L1C", "S2MSI2A": "L2A"}
OFFSET_BASELINE = "04.00"  # the first processing baseline whose digital numbers carry +1000
BASELINE_OFFSET = -1000.0  # the value added to a digital number from that baseline on
RGB_BANDS = ("B2", "B3", "B4")
# Sentinel-2 layers that are not spectral bands, found beside the bands in SAFE folders and downloads: a folder of
# band files holding them is still a band folder.
AUXILIARY_LAYERS = ("TCI", "SCL", "AOT", "WVP", "CLD", "SNW", "visual", "preview", "thumbnail")
# Earth Search (element84) v1 names its assets, and their eo:bands, by these names, not by band.
EARTH_SEARCH_NAMES = {"coastal": "B1", "blue": "B2", "green": "B3", "red": "B4", "rededge1": "B5", "rededge2": "B6",
                      "rededge3": "B7", "nir": "B8", "nir08": "B8A", "nir09": "B9", "cirrus": "B10", "swir16": "B11",
                      "swir22": "B12"}
_RESOLUTION_FOLDER = re.compile(r"^R(\d+)m$")
_BASELINE = re.compile(r"^(\d{1,2})\.(\d{2})$")


@dataclass(frozen=True)
class Sentinel2Product:
    """A product's band files and what its metadata says; `offsets[band]` is added to the band's digital numbers."""

    path: Path
    kind: str  # "safe", "folder" or "stac"
    level: Optional[str]  # "L1C", "L2A" or None where nothing says
    bands: dict = field(default_factory=dict)  # canonical band -> path or href
    offsets: dict = field(default_factory=dict)  # canonical band -> value added to the DN
    offset_source: Optional[str] = None
    baseline: Optional[str] = None
    nodata: dict = field(default_factory=dict)  # canonical band -> nodata DN where the source says

    def band(self, name: str) -> str:
        """The path or href of a band ('B4', 'B04' alike); a local file that is not there fails here, naming it, so
        a product missing a band the model does not read still serves the others."""
        band = canonical_band(name)
        if band is None or band not in self.bands:
            found = ", ".join(self.bands) or "none"
            raise ValueError(f"{self.path}: the product has no {band or name} band (bands found: {found}); "
                             f"pass a product that holds it, or a model that does not read it.")
        href = self.bands[band]
        if "://" not in href and not Path(href).exists():
            raise FileNotFoundError(f"{self.path}: the product's {band} file {href} does not exist; the product is "
                                    f"incomplete (download it again).")
        return href


def is_product(path: PathLike) -> bool:
    """Whether `path` looks like a Sentinel-2 product, from names and the JSON alone (no raster is opened). A remote
    `.json` or STAC API item URL is taken for a STAC item (reading it says if it is not one)."""
    if is_remote(path):  # a .json, or a STAC API's item URL (.../collections/C/items/ID), is taken for an item
        remote = as_input(path)
        return remote.suffix.lower() == ".json" or ("/items/" in str(remote) and not remote.suffix)
    path = Path(path)
    if path.is_dir():
        if path.suffix.upper() == ".SAFE" or any((path / name).is_file() for name in METADATA_FILES):
            return True
        rasters = _raster_files(path)
        named = [canonical_band(file.stem) for file in rasters if not _auxiliary(file)]
        return bool(named) and None not in named and set(RGB_BANDS) <= set(named)
    if path.is_file() and path.suffix.lower() == ".json":
        return _stac_item_type(path) is None
    return False


def open_product(path: PathLike) -> Sentinel2Product:
    """The product at `path`: a SAFE folder, a folder of band files, or a STAC item JSON (local or remote)."""
    if is_remote(path):
        return _open_stac(as_input(path))
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such Sentinel-2 product; pass a SAFE folder, a folder of band files "
                                f"named by band (B04.tif), or a STAC item JSON.")
    if path.is_file() and path.suffix.lower() == ".json":
        wrong = _stac_item_type(path)
        if wrong is not None:
            raise ValueError(f"{path}: not a STAC Item ({wrong}); pass the JSON of one item, whose assets are the "
                             f"bands.")
        return _open_stac(path)
    if not is_product(path):
        raise ValueError(f"{path}: not a Sentinel-2 product ({_not_product_reason(path)}); pass a SAFE folder, a "
                         f"folder of band files named by band (B02.tif, B03.tif, B04.tif ...), or a STAC item JSON.")
    if path.suffix.upper() == ".SAFE" or (path / "GRANULE").is_dir():
        return _open_safe(path)
    return _open_band_folder(path)


# SAFE folders and band folders


def _open_safe(path: Path) -> Sentinel2Product:
    files = [file for file in sorted(path.glob("GRANULE/*/IMG_DATA/**/*")) if file.suffix.lower() in BAND_FILE_SUFFIXES]
    bands = _finest_bands(path, files)
    if not bands:
        raise ValueError(f"{path}: a SAFE folder with no band files under GRANULE/*/IMG_DATA (*_B02.jp2, or "
                         f"R10m/*_B02_10m.jp2 in L2A); the product is incomplete (download it again).")
    # Only L2A products sort their bands into resolution folders: the layout says the level where nothing else does.
    layout_level = "L2A" if any(_RESOLUTION_FOLDER.match(Path(file).parent.name) for file in bands.values()) else None
    return _with_metadata(path, "safe", bands, layout_level)


def _open_band_folder(path: Path) -> Sentinel2Product:
    files = [file for file in _raster_files(path) if not _auxiliary(file)]
    by_band: dict[str, Path] = {}
    for file in files:
        band = canonical_band(file.stem)
        if band is None:
            continue
        if band in by_band:
            raise ValueError(f"{path}: two files for band {band}: {by_band[band].name} and {file.name}; keep one "
                             f"file per band in the folder.")
        by_band[band] = file
    return _with_metadata(path, "folder", {band: str(file) for band, file in by_band.items()})


def _finest_bands(product: Path, files) -> dict:
    """Each band's file at its finest resolution (L2A holds B02 in R10m, R20m and R60m); two files of one band at
    one resolution (two granules) fail, naming both."""
    chosen: dict[str, tuple[int, Path]] = {}
    for file in files:
        band = canonical_band(file.stem)
        if band is None:
            continue
        resolution = _file_resolution(file, band)
        if band in chosen and chosen[band][0] == resolution:
            raise ValueError(f"{product}: two files for band {band} at {resolution} m: {chosen[band][1]} and {file}; "
                             f"pass a product with one granule.")
        if band not in chosen or resolution < chosen[band][0]:
            chosen[band] = (resolution, file)
    return {band: str(chosen[band][1]) for band in SENTINEL2_BANDS if band in chosen}


def _file_resolution(file: Path, band: str) -> int:
    match = _RESOLUTION_FOLDER.match(file.parent.name)
    return int(match.group(1)) if match else BAND_RESOLUTION[band]


def _with_metadata(path: Path, kind: str, bands: dict, layout_level: Optional[str] = None) -> Sentinel2Product:
    bands = {band: bands[band] for band in SENTINEL2_BANDS if band in bands}
    metadata = next((path / name for name in METADATA_FILES if (path / name).is_file()), None)
    if metadata is None:
        return Sentinel2Product(path=path, kind=kind, level=_level_from_name(path.name) or layout_level, bands=bands)
    facts = read_metadata_file(metadata)
    level = facts["level"] or _level_from_name(path.name) or layout_level
    nodata = {band: facts["nodata"] for band in bands} if facts["nodata"] is not None else {}
    return Sentinel2Product(path=path, kind=kind, level=level, bands=bands, offsets=facts["offsets"],
                            offset_source=facts["offset_source"], baseline=facts["baseline"], nodata=nodata)


def read_metadata_file(metadata: Path) -> dict:
    """Level, baseline, per-band offsets (and their source) and the nodata DN from MTD_MSIL1C.xml / MTD_MSIL2A.xml.
    Namespaces differ between baselines, so elements are matched by local name."""
    try:
        root = ElementTree.parse(metadata).getroot()
    except ElementTree.ParseError as error:
        raise ValueError(f"{metadata}: not readable XML ({error}); the product metadata is truncated or corrupt "
                         f"(download the product again).") from error
    elements = [(_local_name(element.tag), element) for element in root.iter()]
    text = {name: (element.text or "").strip() for name, element in reversed(elements)}
    level = PRODUCT_TYPES.get(text.get("PRODUCT_TYPE", "")) or METADATA_FILES[metadata.name]
    baseline = text.get("PROCESSING_BASELINE") or None
    offset_tag = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
    listed = [element for name, element in elements if name == offset_tag]
    if not listed:
        offset_tag = "RADIO_ADD_OFFSET" if offset_tag == "BOA_ADD_OFFSET" else "BOA_ADD_OFFSET"
        listed = [element for name, element in elements if name == offset_tag]
    if listed:
        offsets = {_band_of_id(element.get("band_id"), metadata): float((element.text or "").strip())
                   for element in listed}
        offsets = {band: offsets[band] for band in SENTINEL2_BANDS if band in offsets}
        source = f"{metadata.name} {offset_tag}"
    else:
        offsets, source = baseline_offsets(baseline, f"{metadata.name} lists no offsets", metadata)
    return dict(level=level, baseline=baseline, offsets=offsets, offset_source=source,
                nodata=_nodata_value(elements))


def baseline_offsets(baseline: Optional[str], note: str, where) -> tuple[dict, Optional[str]]:
    """Every band's offset as the processing baseline implies it, and the source in words; ({}, None) without one."""
    if baseline is None:
        return {}, None
    if has_baseline_offset(baseline, where):
        return ({band: BASELINE_OFFSET for band in SENTINEL2_BANDS},
                f"processing baseline {baseline} ({OFFSET_BASELINE} or later: offset {BASELINE_OFFSET:g}; {note})")
    no_offset = f"processing baseline {baseline} (before {OFFSET_BASELINE}: no offset)"
    return {band: 0.0 for band in SENTINEL2_BANDS}, no_offset


def has_baseline_offset(baseline: str, where="the product") -> bool:
    """Whether digital numbers of this processing baseline ("04.00", "02.14") carry the +1000 offset."""
    match = _BASELINE.match(str(baseline).strip())
    if match is None:
        raise ValueError(f"{where}: processing baseline {baseline!r} is not of the form NN.NN (04.00, 02.14).")
    return (int(match.group(1)), int(match.group(2))) >= (4, 0)


def _band_of_id(band_id, metadata: Path) -> str:
    if band_id is None or not band_id.strip().isdigit() or int(band_id) >= len(SENTINEL2_BANDS):
        raise ValueError(f"{metadata}: offset band_id {band_id!r} is not one of 0-{len(SENTINEL2_BANDS) - 1}.")
    return SENTINEL2_BANDS[int(band_id)]


def _nodata_value(elements) -> Optional[float]:
    for name, element in elements:
        if name == "Special_Values":
            values = {_local_name(child.tag): (child.text or "").strip() for child in element}
            if values.get("SPECIAL_VALUE_TEXT") == "NODATA" and values.get("SPECIAL_VALUE_INDEX"):
                return float(values["SPECIAL_VALUE_INDEX"])
    return None


def _local_name(tag) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _level_from_name(name: str) -> Optional[str]:
    upper = name.upper()
    return "L1C" if "MSIL1C" in upper else "L2A" if "MSIL2A" in upper else None


def _raster_files(folder: Path) -> list:
    return sorted(file for file in folder.iterdir() if file.is_file() and file.suffix.lower() in BAND_FILE_SUFFIXES)


def _auxiliary(file: Path) -> bool:
    parts = re.split(r"[_\-. ]", file.stem.upper())
    return any(layer.upper() in parts for layer in AUXILIARY_LAYERS)


def _not_product_reason(path: Path) -> str:
    if not path.is_dir():
        return "a file that is not a STAC item JSON"
    rasters = _raster_files(path)
    unnamed = [file.name for file in rasters if not _auxiliary(file) and canonical_band(file.stem) is None]
    if unnamed:
        return f"raster files without a band name in their name: {', '.join(unnamed[:5])}"
    named = {canonical_band(file.stem) for file in rasters if not _auxiliary(file)}
    if not named:
        return "no .tif, .tiff or .jp2 band files and no MTD_MSIL1C.xml / MTD_MSIL2A.xml"
    return f"no {', '.join(band for band in RGB_BANDS if band not in named)} among the band files"


# STAC items


def _stac_item_type(path: Path) -> Optional[str]:
    """None for a STAC Item JSON, else what the file is instead, in words."""
    from .stac_io import MAX_ITEM_BYTES

    try:
        if path.stat().st_size > MAX_ITEM_BYTES:  # read whole by pystac too: a huge file is refused unread
            return f"{path.stat().st_size:,} bytes, more than a STAC item's {MAX_ITEM_BYTES:,}"
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"not readable JSON: {error}"
    except RecursionError:
        return "JSON nested too deeply to be a STAC item"
    if not isinstance(data, dict):
        return "JSON that is not an object"
    if data.get("type") != "Feature" or "stac_version" not in data:
        kind = data.get("type", "no type")
        return f"type {kind!r}" + ("" if "stac_version" in data else ", no stac_version")
    return None


def _open_stac(path: Path) -> Sentinel2Product:
    import pystac

    from .stac_io import RemoteStacIO, read_failure

    try:
        href = path.network_url if isinstance(path, RemotePath) else str(path)
        item = pystac.Item.from_file(href, stac_io=RemoteStacIO())
    except (pystac.STACError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a readable STAC Item ({error}); pass the JSON of one item.") from error
    except OSError as error:
        raise RasterReadError(path, f"cannot read the STAC item: {read_failure(error)}") from error
    chosen: dict[str, tuple[bool, str, object]] = {}
    for key, asset in item.assets.items():
        band = _asset_band(key, asset)
        if band is None or not _raster_asset(asset):
            continue
        tiff = "tif" in (asset.media_type or "").lower() or asset.href.lower().endswith((".tif", ".tiff"))
        if band in chosen:
            if chosen[band][0] == tiff:
                raise ValueError(f"{path}: two assets for band {band}: {chosen[band][1]!r} and {key!r}; pass an item "
                                 f"with one asset per band.")
            if not tiff:
                continue
        chosen[band] = (tiff, key, asset)
    if not chosen:
        raise ValueError(f"{path}: a STAC item with no band assets (assets: {', '.join(item.assets) or 'none'}); "
                         f"pass an item whose assets are the bands, keyed or eo:bands-named B02, blue ...")
    bands = _band_hrefs(path, {band: chosen[band][1:] for band in SENTINEL2_BANDS if band in chosen})
    assets = {band: chosen[band][2] for band in bands}
    properties = item.properties
    baseline = properties.get("s2:processing_baseline")
    baseline = str(baseline) if baseline is not None else None
    offsets, source = _stac_offsets(path, properties, assets, baseline)
    nodata = {band: float(value) for band, asset in assets.items()
              if (value := _raster_field(asset, "nodata")) is not None}
    return Sentinel2Product(path=path, kind="stac", level=_stac_level(item), bands=bands, offsets=offsets,
                            offset_source=source, baseline=baseline, nodata=nodata)


def _band_hrefs(path, chosen: dict) -> dict:
    """Each band's absolute href (`chosen`: band -> (asset key, asset)). An item read from the network names only
    files on the network, relative hrefs resolved against its URL, and the user's GDAL credentials are kept from
    assets on another host (`stac_io`); a local item is the user's own and names what it names."""
    if not isinstance(path, RemotePath):
        return {band: asset.get_absolute_href() for band, (key, asset) in chosen.items()}
    from .stac_io import keep_credentials_from, network_href

    item_url = str(RemotePath(path.network_url))  # without the query: a signature is never shown
    hrefs = {key: network_href(item_url, key, asset.href) for key, asset in chosen.values()}
    keep_credentials_from(item_url, hrefs)
    return {band: hrefs[key] for band, (key, _) in chosen.items()}


def _asset_band(key: str, asset) -> Optional[str]:
    """The band an asset holds: its one eo:bands (STAC 1.0) or bands (STAC 1.1) name, else its key; Earth Search's
    names ("blue", "rededge1", "blue-jp2") by its table. Multi-band assets (the true-colour image) hold none."""
    described = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
    if len(described) > 1:
        return None
    names = [entry.get("name") for entry in described if isinstance(entry, dict) and entry.get("name")] + [key]
    for name in names:
        band = canonical_band(name) or EARTH_SEARCH_NAMES.get(re.sub(r"-jp2$", "", str(name).lower()))
        if band is not None:
            return band
    return None


def _raster_asset(asset) -> bool:
    media_type = (asset.media_type or "").lower()
    roles = set(asset.roles or ())
    if roles & {"thumbnail", "overview", "metadata", "visual"}:
        return False
    if media_type:
        return media_type.startswith(("image/tiff", "image/jp2", "image/vnd.stac.geotiff"))
    return asset.href.lower().split("?")[0].endswith(BAND_FILE_SUFFIXES)


def _raster_field(asset, name: str):
    """A field of the asset's one band: raster:bands[0] (STAC 1.0), bands[0] or the asset itself (STAC 1.1,
    where offset and scale are raster:offset and raster:scale)."""
    raster_bands = asset.extra_fields.get("raster:bands") or []
    if raster_bands and isinstance(raster_bands[0], dict) and name in raster_bands[0]:
        return raster_bands[0][name]
    qualified = name if name == "nodata" else f"raster:{name}"
    bands = asset.extra_fields.get("bands") or []
    if bands and isinstance(bands[0], dict) and qualified in bands[0]:
        return bands[0][qualified]
    return asset.extra_fields.get(qualified)


def _stac_offsets(path: Path, properties: dict, assets: dict, baseline: Optional[str]):
    if properties.get("earthsearch:boa_offset_applied") is True:
        return ({band: 0.0 for band in assets},
                "STAC earthsearch:boa_offset_applied true (the offset is already removed from the DNs)")
    offsets = {}
    for band, asset in assets.items():
        offset, scale = _raster_field(asset, "offset"), _raster_field(asset, "scale")
        if offset is None and scale is None:
            continue
        offsets[band] = round(float(offset or 0.0) / float(scale if scale else 1.0), 6) + 0.0
    if offsets and len(offsets) == len(assets):
        return offsets, "STAC raster:bands offset/scale"
    implied, source = baseline_offsets(baseline, "STAC s2:processing_baseline", path)
    if source is not None:
        source = f"STAC s2:processing_baseline {baseline}"
        if offsets:
            source = f"STAC raster:bands offset/scale, elsewhere s2:processing_baseline {baseline}"
        return {**implied, **offsets}, source
    return offsets, ("STAC raster:bands offset/scale" if offsets else None)


def _stac_level(item) -> Optional[str]:
    properties = item.properties
    level = PRODUCT_TYPES.get(str(properties.get("s2:product_type", "")).upper())
    if level is None:
        processing = str(properties.get("processing:level", "")).upper().replace("LEVEL-", "L")
        level = processing if processing in ("L1C", "L2A") else None
    if level is None:
        collection = str(item.collection_id or "").lower()
        level = "L1C" if collection.endswith("l1c") else "L2A" if collection.endswith("l2a") else None
    return level
