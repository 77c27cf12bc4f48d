"""A Sentinel-2 product and a DEM as the raster a model reads: its channels, in its order, on its dataset's value scale,
on the product's 10 m grid, computed window by window.

`Sentinel2Stack` reads like an open rasterio dataset (`read`, `read_masks`, the grid's CRS and transform), so
`translandseg stack` (which writes it as a COG) and `translandseg predict` on a product (which maps it without any
intermediate file) share one implementation.

Rules, each said once where it applies:
- 20 m and 60 m bands are resampled onto the 10 m grid by nearest neighbour (GDAL's warper, through `WarpedVRT`):
  each 10 m pixel takes the value of the coarse pixel it lies in, as Google Earth Engine (where Landslide4Sense's
  patches were most likely exported) resamples by default; it invents no values and is exact for aligned grids.
- The baseline-04.00 offset (+1000 digital numbers since 25 January 2022) is read from the product and removed, so
  the same ground gives the same values before and after; values below zero after removing it become 0.
- Digital number 0 is Sentinel-2's nodata; it, and the DEM's nodata, become NaN: the stack's nodata.
- The DEM is reprojected bilinearly onto the grid; slope is Horn's, computed on the DEM's own grid (`terrain`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window, from_bounds
from rasterio.windows import transform as window_transform

from ..failures import RasterReadError, gdal_reason, open_failure
from ..georeferencing import coordinates_text
from ..opening import open_raster
from ..remote import as_input, is_remote, remote_failure
from .bands import BAND_RESOLUTION, LEVEL_VALUES, SENTINEL2_BANDS, TERRAIN_CHANNELS
from .products import BASELINE_OFFSET, Sentinel2Product, open_product
from .terrain import check_dem_covers, terrain_on_grid

PathLike = Union[str, os.PathLike]
BAND_RESAMPLING = Resampling.nearest
STACK_TAG = "TRANSLANDSEG_STACK"  # marks a written stack: its channels are read by their band descriptions
SENTINEL2_NODATA = 0


class BoundsOutsideProduct(ValueError):
    """The bounds asked for miss the product: an error for `stack --bounds`, and for a composite a scene to pass over."""


@dataclass(frozen=True)
class StackRecipe:
    """What a model reads of a product: a sensor band (or `slope` / `dem`) and a divisor per channel, in channel
    order; the product level it was trained on; a fill value (on the dataset's scale) per channel that may be
    filled when the product lacks it."""

    channels: tuple[str, ...]
    divisors: tuple[float, ...]
    level: Optional[str] = None
    fills: tuple[Optional[float], ...] = ()

    @property
    def needs_dem(self) -> bool:
        return any(channel in TERRAIN_CHANNELS for channel in self.channels)


def recipe_of(contract, product: PathLike) -> StackRecipe:
    """The recipe a contract (a `TransLandSegImageProcessor`, or the dict `saved_contract.load_contract` gives) names;
    a contract without sensor bands (a model trained on 8-bit imagery) is refused with what the model would need."""
    fields = dict(contract) if isinstance(contract, dict) else vars(contract)
    sensor_bands, divisors = fields.get("sensor_bands"), fields.get("sensor_divisors")
    if not sensor_bands or not divisors:
        scale = fields.get("scale", "none")
        raise ValueError(
            f"{product} is a Sentinel-2 product, but the model's contract names no sensor bands: it was trained on "
            f"{'8-bit ' if scale == 'none' else ''}imagery read as bands "
            f"{','.join(map(str, fields.get('bands', (1, 2, 3))))} (scale {scale}), not on Sentinel-2 values. It "
            "would need a raster of the scene in that form (for an 8-bit RGB model, a true-colour image such as the "
            "product's TCI), or use a model trained on Landslide4Sense.")
    band_mean = list(fields.get("band_mean", ()))
    fills = [band_mean[index - 3] if 0 <= index - 3 < len(band_mean) else None for index in range(len(sensor_bands))]
    return StackRecipe(tuple(sensor_bands), tuple(float(d) for d in divisors), fields.get("product_level"),
                       tuple(fills))


def parse_bounds(text: Optional[str]) -> Optional[tuple[float, float, float, float]]:
    """'minx,miny,maxx,maxy' in the product's CRS."""
    if text is None:
        return None
    try:
        values = tuple(float(part) for part in str(text).split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or values[0] >= values[2] or values[1] >= values[3]:
        raise ValueError(f"bounds must be minx,miny,maxx,maxy in the product's CRS with min < max, got {text!r}.")
    return values


class Sentinel2Stack:
    """An open product, stacked on demand. `offset` (digital numbers added before dividing) overrides the product's
    metadata; `fill_missing` fills a band the product lacks (B10 of an L2A product) with the training mean; `grid`
    (crs, transform, width, height) replaces the product's own 10 m grid (a composite's UTM grid)."""

    def __init__(self, product: PathLike, recipe: StackRecipe, dem: Optional[PathLike] = None,
                 bounds: Optional[Sequence[float]] = None, offset: Optional[float] = None,
                 fill_missing: bool = False, grid: Optional[tuple] = None):
        self.product: Sentinel2Product = open_product(product)
        self.path, self.recipe, self.notes = as_input(product), recipe, []
        self._check_dem_given(dem)
        self._check_level()
        bands = [c for c in recipe.channels if c not in TERRAIN_CHANNELS]
        self.filled = self._missing_bands(bands, fill_missing)
        self.offsets = self._offsets([b for b in bands if b not in self.filled], offset)
        self._datasets: list = []
        try:
            self._open_grid(bounds) if grid is None else self._set_grid(*grid)
            self._sources = {band: self._on_grid(self.product.band(band)) for band in bands if band not in self.filled}
            self.dem = None
            if dem is not None:
                self.dem = self._open(dem, "DEM")
                check_dem_covers(self.dem, dem, self.crs, self.transform, self.width, self.height, self.path)
        except BaseException:
            self.close()
            raise
        self._terrain_cache: Optional[tuple] = None
        self._last_read: Optional[tuple] = None

    # ------------------------------------------------------------------------------------------------ checks
    def _check_dem_given(self, dem) -> None:
        if self.recipe.needs_dem and dem is None:
            terrain = [c for c in self.recipe.channels if c in TERRAIN_CHANNELS]
            raise ValueError(f"{self.path}: the model reads {' and '.join(terrain)} from a DEM (channels "
                             f"{', '.join(self.recipe.channels)}); pass --dem DEM.tif (elevation in metres, any CRS, "
                             "covering the product).")

    def _check_level(self) -> None:
        trained, level = self.recipe.level, self.product.level
        if trained and level and trained != level:
            words = {name: values.replace(" ", "-") for name, values in LEVEL_VALUES.items()}
            self.notes.append(f"the model was trained on {trained} ({words.get(trained, trained)}) values and "
                              f"{self.path.name} is {level} ({words.get(level, level)}): its values differ, so the "
                              "maps may be off")

    def _missing_bands(self, bands: Sequence[str], fill_missing: bool) -> dict[str, float]:
        """Bands the product lacks: refused, naming them, or (`fill_missing`) filled with the training mean."""
        missing = [band for band in bands if band not in self.product.bands]
        if not missing:
            return {}
        found = ", ".join(b for b in SENTINEL2_BANDS if b in self.product.bands) or "none"
        fills = {band: self.recipe.fills[self.recipe.channels.index(band)] for band in missing}
        unfillable = [band for band, value in fills.items() if value is None]
        why = (" (an L2A product has no B10; the model was trained on L1C, top-of-atmosphere values: give the "
               "scene's L1C product)" if "B10" in missing and self.product.level == "L2A" else "")
        if not fill_missing or unfillable:
            hint = "" if unfillable else "; or pass --fill_missing to fill them with the training mean"
            raise ValueError(f"{self.path}: the product has no {', '.join(missing)}, which the model reads{why}; "
                             f"bands found: {found}{hint}.")
        self.notes.append(f"{', '.join(missing)} not in the product{why}: filled with the training mean "
                          f"({', '.join(f'{fills[b]:g}' for b in missing)} on the dataset's scale), which carries no "
                          "signal")
        return fills

    def _offsets(self, bands: Sequence[str], offset: Optional[float]) -> dict[str, float]:
        if offset is not None:
            return {band: float(offset) for band in bands}
        known = self.product.offsets
        if all(band in known for band in bands):
            return {band: float(known[band]) for band in bands}
        self.notes.append(f"no metadata of {self.path.name} states the processing baseline's offset: assuming "
                          f"{BASELINE_OFFSET:g} (baseline 04.00 or later, products since 25 January 2022); pass "
                          "--offset 0 for an older product")
        return {band: float(known.get(band, BASELINE_OFFSET)) for band in bands}

    # ------------------------------------------------------------------------------------------------ the grid
    def _open(self, path, what: str = "band file"):
        """An open file of the product (or the DEM); a failure names the product, the file and why."""
        try:
            dataset = open_raster(path)
        except RasterioIOError as error:
            why = remote_failure(path, error) if is_remote(path) else open_failure(gdal_reason(error, path))
            raise RasterReadError(self.path, f"the {what} {as_input(path)}: {why}") from error
        self._datasets.append(dataset)
        return dataset

    def _open_grid(self, bounds) -> None:
        """The grid of the product's finest band the recipe reads (10 m for Landslide4Sense), cut to `bounds`."""
        bands = [b for b in self.recipe.channels if b in self.product.bands] or list(self.product.bands)
        finest = min(bands, key=lambda band: (BAND_RESOLUTION.get(band, 1000), SENTINEL2_BANDS.index(band)))
        reference = self._open(self.product.band(finest))
        self.crs, self.transform = reference.crs, reference.transform
        self.height, self.width = reference.height, reference.width
        if bounds is not None:
            cut = from_bounds(*bounds, transform=self.transform)
            col, row = np.floor(cut.col_off + 1e-6), np.floor(cut.row_off + 1e-6)  # whole pixels that touch bounds
            window = Window(int(col), int(row), int(np.ceil(cut.col_off + cut.width - 1e-6) - col),
                            int(np.ceil(cut.row_off + cut.height - 1e-6) - row))
            full = Window(0, 0, self.width, self.height)
            try:
                window = window.intersection(full)
            except Exception:  # rasterio's WindowError: no overlap
                window = None
            if window is None or window.width < 1 or window.height < 1:
                raise BoundsOutsideProduct(f"{self.path}: --bounds {coordinates_text(bounds, ',')} lie outside "
                                           f"the product ({coordinates_text(reference.bounds)} in {self.crs}).")
            self.transform = window_transform(window, self.transform)
            self.height, self.width = int(window.height), int(window.width)

    def _set_grid(self, crs, transform, width: int, height: int) -> None:
        """A grid given (a composite's: `composite.composite_grid`), which every band is warped onto."""
        self.crs, self.transform, self.width, self.height = crs, transform, int(width), int(height)

    def _on_grid(self, href: str):
        """A band's dataset read on the grid: itself where its grid is the grid, else a nearest-neighbour warp."""
        source = self._open(href)
        if (source.crs, source.transform, source.height, source.width) == (self.crs, self.transform,
                                                                             self.height, self.width):
            return source
        vrt = WarpedVRT(source, crs=self.crs, transform=self.transform, width=self.width, height=self.height,
                        resampling=BAND_RESAMPLING, src_nodata=SENTINEL2_NODATA, nodata=SENTINEL2_NODATA)
        self._datasets.append(vrt)
        return vrt

    # ------------------------------------------------------------------------------------------------ a dataset
    @property
    def count(self) -> int:
        return len(self.recipe.channels)

    @property
    def dtypes(self) -> tuple[str, ...]:
        return ("float32",) * self.count

    @property
    def descriptions(self) -> tuple[str, ...]:
        return self.recipe.channels

    @property
    def colorinterp(self) -> tuple:
        return (ColorInterp.undefined,) * self.count

    @property
    def gcps(self) -> tuple[list, None]:
        return [], None

    @property
    def rpcs(self) -> None:
        return None

    def tags(self, bidx: int = 0) -> dict:
        return {STACK_TAG: "sensor values / divisor"} if bidx == 0 else {}

    def read(self, indexes=None, window: Optional[Window] = None, out_shape=None, masked: bool = False):
        """(C, h, w) float32 of the 1-based channels `indexes` (all by default; an int gives (h, w)). A pixel where
        any channel has no data (digital number 0, the DEM's nodata) is NaN in every channel: the stack's nodata."""
        single = isinstance(indexes, int)
        indexes = list(range(1, self.count + 1)) if indexes is None else [indexes] if single else list(indexes)
        window = window or Window(0, 0, self.width, self.height)
        shape = tuple(out_shape[-2:]) if out_shape is not None else (int(window.height), int(window.width))
        values = self._read_all(window, shape)
        if indexes != list(range(1, self.count + 1)):
            values = values[[i - 1 for i in indexes]]
        if masked:
            values = np.ma.masked_invalid(values)
        return values[0] if single else values

    def read_masks(self, indexes=None, window: Optional[Window] = None, out_shape=None) -> np.ndarray:
        """(C, h, w) uint8: 255 where the pixel has data in every channel, else 0."""
        count = self.count if indexes is None else 1 if isinstance(indexes, int) else len(list(indexes))
        valid = np.isfinite(self.read(1, window, out_shape))
        return np.repeat((valid * np.uint8(255))[None], count, axis=0)

    def _read_all(self, window: Window, shape: tuple[int, int]) -> np.ndarray:
        """Every channel of a window, NaN where any has no data. The last window is kept, as a scene reader asks for
        a window's values and then its validity; the array returned is that kept one: read it, do not change it."""
        key = (window.col_off, window.row_off, window.width, window.height, shape)
        if self._last_read is None or self._last_read[0] != key:
            self._last_read = None  # one window's channels in memory at a time
            values = np.empty((self.count, *shape), np.float32)
            for index, (name, divisor) in enumerate(zip(self.recipe.channels, self.recipe.divisors)):
                values[index] = self._channel(name, divisor, window, shape)
            values[:, ~np.isfinite(values).all(axis=0)] = np.nan
            self._last_read = (key, values)
        return self._last_read[1]

    def _channel(self, name: str, divisor: float, window: Window, shape: tuple[int, int]) -> np.ndarray:
        if name in TERRAIN_CHANNELS:
            slope, elevation = self._terrain(window, shape)
            return (slope if name == "slope" else elevation) / np.float32(divisor)
        if name in self.filled:
            return np.full(shape, self.filled[name], np.float32)
        dn = self._sources[name].read(1, window=window, out_shape=shape).astype(np.float32)
        nodata = dn == SENTINEL2_NODATA
        dn += np.float32(self.offsets[name])
        np.maximum(dn, 0.0, out=dn)
        dn /= np.float32(divisor)
        dn[nodata] = np.nan
        return dn

    def _terrain(self, window: Window, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Slope and elevation of a window, computed once for both channels."""
        key = (window.col_off, window.row_off, window.width, window.height, shape)
        if self._terrain_cache is None or self._terrain_cache[0] != key:
            self._terrain_cache = (key, terrain_on_grid(self.dem, self.crs, self.transform, window, shape))
        return self._terrain_cache[1]

    def reopen(self) -> "Sentinel2Stack":
        """Another handle on the same stack, for another thread (GDAL handles are not shared between threads)."""
        twin = object.__new__(Sentinel2Stack)
        twin.__dict__.update(self.__dict__)
        twin._datasets, twin._terrain_cache, twin._last_read = [], None, None
        twin._sources = {band: twin._on_grid(self.product.band(band)) for band in self._sources}
        twin.dem = None if self.dem is None else twin._open(self.dem.name)
        return twin

    def close(self) -> None:
        for dataset in reversed(getattr(self, "_datasets", [])):
            dataset.close()
        self._datasets = []

    def __enter__(self) -> "Sentinel2Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
