"""Per-pixel cloud masks for a Sentinel-2 product, on the product's 10 m grid (the grid `Sentinel2Stack` reads):
True where a pixel is cloud, shadow or without data, and becomes nodata.

- `scl` (L2A): the product's Scene Classification layer (SCL, 20 m, written by Sen2Cor), put on the 10 m grid by
  nearest neighbour (each 10 m pixel takes the class of the 20 m pixel it lies in); the classes of `SCL_CLASSES`
  marked masked are masked.
- `s2cloudless` (L1C): Sentinel Hub's pixel classifier (the `s2cloudless` package, its LightGBM model shipped inside
  it; the `imagery` extra), run on top-of-atmosphere reflectance (digital number, less the baseline-04.00 offset as
  `Sentinel2Stack` removes it, / 10000) averaged over 160 m cells, as Sentinel Hub computes its own CLM layer; the
  cell's mask then covers its 16 x 16 pixels of 10 m. Pixels without data in any of its bands are masked too.
- `none`: nothing masked.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from rasterio.windows import Window

from ..remote import RemotePath
from .bands import BAND_RESOLUTION, SENTINEL2_BANDS
from .products import Sentinel2Product, _auxiliary, _band_hrefs, _raster_files, open_product
from .stack import Sentinel2Stack, StackRecipe

PathLike = Union[str, os.PathLike]
CLOUD_MASKS = ("none", "scl", "s2cloudless")
MISSING_EXTRA = "--cloud_mask s2cloudless needs s2cloudless (and lightgbm): pip install 'translandseg-hf[imagery]'"

# ESA's Scene Classification classes (Sen2Cor, L2A): value -> (name, masked, why).
SCL_CLASSES = {
    0: ("no data", True, "outside the swath or not processed: no value to keep"),
    1: ("saturated or defective", True, "a sensor value that is not the ground's"),
    2: ("dark area pixels", False, "dark ground (and topographic shadow) the model must still see"),
    3: ("cloud shadow", True, "the ground darkened by a cloud: changes that are not the ground's"),
    4: ("vegetation", False, "clear ground"),
    5: ("not vegetated", False, "clear ground: bare soil and rock, where landslide scars are"),
    6: ("water", False, "clear ground"),
    7: ("unclassified", False, "mostly clear ground Sen2Cor could not name; masking it removes fresh scars too"),
    8: ("cloud medium probability", True, "cloud: bright and textureless, the commonest false landslide"),
    9: ("cloud high probability", True, "cloud"),
    10: ("thin cirrus", True, "a veil that shifts every band's values"),
    11: ("snow or ice", False, "ground the model may see; snow is not a cloud"),
}
SCL_MASKED = tuple(value for value, (_, masked, _) in SCL_CLASSES.items() if masked)  # 0, 1, 3, 8, 9, 10
STRIP_ROWS = 256  # 10 m rows read at a time (a multiple of 16): all ten bands of a full tile's strip ~110 MB

# s2cloudless: its ten bands, in the order its model reads them (s2cloudless.utils.MODEL_BANDS).
S2CLOUDLESS_BANDS = ("B1", "B2", "B4", "B5", "B8", "B8A", "B9", "B10", "B11", "B12")
S2CLOUDLESS_QUANTIFICATION = 10000.0  # L1C reflectance = (DN + offset) / 10000
# The classifier runs on 160 m cells, the resolution of Sentinel Hub's CLM layer and of s2cloudless's examples; its
# post-processing is sized in those cells. A 10 m run would need the disks scaled by 16 and 256 times the work.
S2CLOUDLESS_RESOLUTION = 160.0
S2CLOUDLESS_THRESHOLD = 0.4  # the package's default: mean cloud probability above it is cloud
S2CLOUDLESS_AVERAGE_OVER = 4  # disk radius (cells, 640 m) the probability is averaged over: no speckle
S2CLOUDLESS_DILATION = 2  # disk radius (cells, 320 m) the mask is grown by: cloud edges and haze around it


@dataclass(frozen=True)
class CloudMask:
    """A product's mask on its 10 m grid (cut to `bounds` where given): `mask` (H, W) bool, True = masked (nodata);
    `share` of the grid's pixels masked; `notes` say what was assumed (an offset no metadata states)."""

    kind: str
    mask: np.ndarray
    share: float
    crs: object = None
    transform: object = None
    notes: list = field(default_factory=list)


def cloud_mask(kind: str, product: PathLike, bounds: Optional[Sequence[float]] = None) -> CloudMask:
    """The `kind` mask ('none', 'scl' or 's2cloudless') of the product at `product` (a SAFE folder, a folder of band
    files or a STAC item), on its 10 m grid cut to `bounds` (minx, miny, maxx, maxy in the product's CRS)."""
    if kind not in CLOUD_MASKS:
        raise ValueError(f"--cloud_mask {kind!r}: choose one of {', '.join(CLOUD_MASKS)}.")
    opened = open_product(product)
    if kind == "scl":
        return _scl_mask(opened, product, bounds)
    if kind == "s2cloudless":
        return _s2cloudless_mask(opened, product, bounds)
    with _grid(opened, product, bounds) as stack:
        return CloudMask("none", np.zeros((stack.height, stack.width), bool), 0.0, stack.crs, stack.transform)


def _grid(product: Sentinel2Product, path: PathLike, bounds, channels: Optional[Sequence[str]] = None):
    """A `Sentinel2Stack` of `channels` (default: only the product's finest band, which sets the grid)."""
    if channels is None:
        channels = (min(product.bands, key=lambda band: (BAND_RESOLUTION[band], SENTINEL2_BANDS.index(band))),)
    recipe = StackRecipe(tuple(channels), (S2CLOUDLESS_QUANTIFICATION,) * len(channels))
    return Sentinel2Stack(path, recipe, bounds=bounds)


# ---------------------------------------------------------------------------------------------------- SCL (L2A)


def _scl_mask(product: Sentinel2Product, path: PathLike, bounds) -> CloudMask:
    if product.level == "L1C":
        raise ValueError(f"{path}: --cloud_mask scl reads the Scene Classification (SCL) of L2A products, and this "
                         "product is L1C (no SCL): use --cloud_mask s2cloudless (pip install "
                         "'translandseg-hf[imagery]') or --cloud_mask none.")
    href = scl_href(product)
    with _grid(product, path, bounds) as stack:
        scl = stack._on_grid(href)  # nearest neighbour onto the 10 m grid, as the 20 m bands are
        mask = np.empty((stack.height, stack.width), bool)
        for row in range(0, stack.height, STRIP_ROWS):
            window = Window(0, row, stack.width, min(STRIP_ROWS, stack.height - row))
            mask[row:row + int(window.height)] = np.isin(scl.read(1, window=window), SCL_MASKED)
        return CloudMask("scl", mask, float(mask.mean()) if mask.size else 0.0, stack.crs, stack.transform)


def scl_href(product: Sentinel2Product) -> str:
    """The path or href of the product's SCL layer: `R20m/*_SCL_20m.jp2` in a SAFE folder, a file named SCL in a band
    folder, the `scl`/`SCL` asset of a STAC item (Earth Search, Planetary Computer)."""
    found: list = []
    if product.kind == "safe":
        found = sorted(Path(product.path).glob("GRANULE/*/IMG_DATA/R20m/*_SCL_20m.*"))
        found = found or sorted(file for file in Path(product.path).glob("GRANULE/*/IMG_DATA/**/*")
                                if file.is_file() and _is_scl(file))
    elif product.kind == "folder":
        found = [file for file in _raster_files(Path(product.path)) if _is_scl(file)]
    elif product.kind == "stac":
        found = _stac_scl(product.path)
    if not found:
        where = {"safe": "GRANULE/*/IMG_DATA/R20m/*_SCL_20m.jp2", "folder": "a file named SCL (SCL.tif)",
                 "stac": "an asset keyed scl or SCL"}[product.kind]
        raise ValueError(f"{product.path}: no Scene Classification layer (looked for {where}); --cloud_mask scl "
                         "needs the product's SCL: pass a product that has it, or --cloud_mask none.")
    return str(found[0])


def _is_scl(file: Path) -> bool:
    return _auxiliary(file) and "SCL" in file.stem.upper().replace("-", "_").replace(".", "_").split("_")


def _stac_scl(path) -> list:
    import pystac

    from .stac_io import RemoteStacIO

    href = path.network_url if isinstance(path, RemotePath) else str(path)
    item = pystac.Item.from_file(href, stac_io=RemoteStacIO())
    key = next((key for key in item.assets if key.lower() == "scl"), None)
    if key is None:
        return []
    return list(_band_hrefs(path, {"SCL": (key, item.assets[key])}).values())  # absolute, credentials as the bands'


# ---------------------------------------------------------------------------------------------- s2cloudless (L1C)


def s2cloudless_detector():
    """s2cloudless's detector with this module's threshold, averaging and dilation (its model file inside it)."""
    try:
        from s2cloudless import S2PixelCloudDetector
    except ImportError:
        raise ImportError(MISSING_EXTRA) from None
    return S2PixelCloudDetector(threshold=S2CLOUDLESS_THRESHOLD, all_bands=False,
                                average_over=S2CLOUDLESS_AVERAGE_OVER, dilation_size=S2CLOUDLESS_DILATION)


def _s2cloudless_mask(product: Sentinel2Product, path: PathLike, bounds) -> CloudMask:
    if product.level == "L2A":
        raise ValueError(f"{path}: s2cloudless reads top-of-atmosphere (L1C) values, B10 among them, and this product "
                         "is L2A (surface reflectance, no B10): use --cloud_mask scl.")
    detector = s2cloudless_detector()
    with _grid(product, path, bounds, S2CLOUDLESS_BANDS) as stack:
        factor = max(1, int(round(S2CLOUDLESS_RESOLUTION / abs(stack.transform.a))))
        cells, nodata = _cell_reflectance(stack, factor)  # (h, w, 10) at 160 m; (H, W) at 10 m
        probability = detector.get_cloud_probability_maps(np.nan_to_num(cells)[None])
        coarse = detector.get_mask_from_prob(probability)[0].astype(bool)
        mask = np.repeat(np.repeat(coarse, factor, axis=0), factor, axis=1)[:stack.height, :stack.width] | nodata
        return CloudMask("s2cloudless", mask, float(mask.mean()) if mask.size else 0.0, stack.crs, stack.transform,
                         list(stack.notes))


def _cell_reflectance(stack: Sentinel2Stack, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Each band's mean reflectance over factor x factor cells of the grid (NaN where a cell has no data), read a
    strip of whole cells at a time; and where the 10 m grid has no data in any band."""
    height, width = stack.height, stack.width
    rows, cols = -(-height // factor), -(-width // factor)
    cells = np.full((rows, cols, stack.count), np.nan, np.float32)
    nodata = np.empty((height, width), bool)
    step = max(factor, STRIP_ROWS // factor * factor)
    for row in range(0, height, step):
        strip = stack.read(window=Window(0, row, width, min(step, height - row)))  # (10, h, W) reflectance
        nodata[row:row + strip.shape[1]] = ~np.isfinite(strip).all(axis=0)  # no data in any of the bands
        padded = np.full((stack.count, -(-strip.shape[1] // factor) * factor, cols * factor), np.nan, np.float32)
        padded[:, :strip.shape[1], :width] = strip
        blocks = padded.reshape(stack.count, padded.shape[1] // factor, factor, cols, factor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a cell without data: NaN, as it should be
            mean = np.nanmean(blocks, axis=(2, 4))
        cells[row // factor:row // factor + mean.shape[1]] = mean.transpose(1, 2, 0)
    return cells, nodata
