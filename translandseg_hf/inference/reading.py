"""Windowed reads of a scene (PNG, JPEG, TIFF, GeoTIFF) through rasterio: chosen bands, scaled, reflect-padded."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..geo import Window, ground_pixel_size_m, open_checked, open_raster
from ..geo import reading as decoding
from ..geo.georeferencing import CRS, GEOREFERENCING, RPC_CRS, georeferencing_of, is_alpha  # noqa: F401 (re-exported)
from ..geo.sentinel2.stack import STACK_TAG, Sentinel2Stack, recipe_of
from ..image_processing import LinearScaler, TransLandSegImageProcessor
from .contract import fit_scaler
from .inputs import SceneInput, classify
from .tiling import fill_outside_valid

def parse_bands(text: Optional[str]) -> Optional[tuple[int, ...]]:
    """'4,3,2' -> (4, 3, 2): 1-based band numbers as rasterio and GDAL count them."""
    if text is None or text == "":
        return None
    try:
        return tuple(int(part) for part in str(text).split(","))
    except ValueError:
        raise ValueError(f"bands must be comma-separated 1-based integers such as 4,3,2, got {text!r}.") from None


def bands_to_read(wanted: Sequence[int], dataset, path: Path, sensor_bands: Optional[Sequence[str]] = None
                  ) -> tuple[int, ...]:
    """The contract's bands, checked against the file; an RGB contract reads a grey image (one band, or grey +
    alpha) as grey in all three channels. A stack (`translandseg stack`'s output, or a product stacked on the fly)
    holds the contract's sensor bands by name, so they are read by their descriptions."""
    if sensor_bands and dataset.tags().get(STACK_TAG):
        return bands_by_name(sensor_bands, dataset, path)
    wanted = tuple(wanted)
    if wanted == (1, 2, 3) and dataset.count < 3:
        return (1, 1, 1)
    missing = [band for band in wanted if band > dataset.count]
    if missing:
        which = f"band {missing[0]} is" if len(missing) == 1 else f"bands {','.join(map(str, missing))} are"
        raise ValueError(f"{path}: {which} not in the file: the model reads bands "
                         f"{','.join(map(str, wanted))}, and the file has {dataset.count} band(s): "
                         f"{describe_bands(dataset)}.")
    return wanted


def bands_by_name(names: Sequence[str], dataset, path: Path) -> tuple[int, ...]:
    """1-based indices of the bands whose descriptions are `names`, in that order."""
    found = list(dataset.descriptions)
    missing = [name for name in names if name not in found]
    if missing:
        raise ValueError(f"{path}: the stack has no {', '.join(missing)}, which the model reads (its channels: "
                         f"{', '.join(names)}); the stack holds {describe_bands(dataset)}: stack the product again "
                         "with this model (`translandseg stack --model ...`).")
    return tuple(found.index(name) + 1 for name in names)


def grey_note(dataset, bands: Sequence[int]) -> Optional[str]:
    """What reading a grey image for an RGB contract did, in the words of the summary; None for other reads."""
    if tuple(bands) != (1, 1, 1):
        return None
    if dataset.count == 1:
        return "1 band copied into the 3 RGB channels"
    second = "its alpha (the valid pixels)" if is_alpha(dataset, 2) else "not read"
    return f"band 1 of 2 copied into the 3 RGB channels; band 2 is {second}"


def describe_bands(dataset) -> str:
    names = [f"{index}" + (f" ({name})" if name else "") for index, name in enumerate(dataset.descriptions, start=1)]
    return ", ".join(names)


def quiet_overflow():
    """Float64 values beyond float32 (1e300) become infinite when cast, and inf - inf is NaN: numpy warns about both,
    while the scaling clips infinities to 0 or 255 and a percentile stretch that is not finite is refused."""
    return np.errstate(over="ignore", invalid="ignore")


def describe_window(window: Optional[Window]) -> str:
    if window is None:
        return "the pixels"
    row, col = int(window.row_off), int(window.col_off)
    return f"rows {row}-{row + int(window.height) - 1}, columns {col}-{col + int(window.width) - 1}"


def check_real_bands(dataset, bands: Sequence[int], path: Path) -> None:
    """Complex bands (radar phase, FFTs) have no brightness to scale."""
    complex_bands = [band for band in sorted(set(bands)) if np.dtype(dataset.dtypes[band - 1]).kind == "c"]
    if complex_bands:
        raise ValueError(f"{path}: band(s) {','.join(map(str, complex_bands))} hold complex numbers "
                         f"({dataset.dtypes[complex_bands[0] - 1]}); the model reads real-valued bands.")


def check_finite_stretch(scaler: LinearScaler, processor: TransLandSegImageProcessor, path: Path) -> None:
    """A percentile stretch fitted on NaN or infinite values would map the whole scene to black."""
    if not (np.isfinite(scaler.low).all() and np.isfinite(scaler.high).all()):
        low, high = processor.percentiles
        raise ValueError(f"{path}: the {low:g}-{high:g} percentile stretch is not finite, because the bands hold NaN "
                         "or infinite values (or values beyond float32) not marked as nodata; mark them as nodata, or "
                         "pass --scale divisor.")


def check_pixel_count(dataset, path: Path, max_pixels: Optional[int]) -> None:
    """A header may declare any size (a 69-byte PNG, a 200-byte VRT of 10^6 x 10^6 px), and mapping allocates by
    the declared size: refused from the header, before anything is read. None or 0: no limit."""
    pixels = int(dataset.height) * int(dataset.width)
    if max_pixels and pixels > max_pixels:
        raise ValueError(f"{path}: {dataset.width} x {dataset.height} px is {pixels:,} pixels, more than --max_pixels "
                         f"{max_pixels:,}; a header that declares a huge image is refused before anything is read "
                         "(pass --max_pixels 0 to map it anyway).")


def finite_everywhere(raw: np.ndarray) -> np.ndarray:
    """(C, h, w) band values -> (h, w) bool: True where every band is finite. NaN or infinity in a float band
    without declared nodata is nodata too: scaled, it would read as black or white and be mapped."""
    return np.isfinite(raw).all(axis=0)


def open_scene(scene: SceneInput, processor: TransLandSegImageProcessor, product_options: dict,
               dataset=None) -> tuple[object, list]:
    """An open scene and the notes its opening made: a Sentinel-2 product as its stack for the contract, any other
    input as a rasterio dataset (`dataset` where the caller opened it already); a DEM given for a raster is not
    used, which a note says."""
    path = scene.path
    if scene.is_product:
        stack = Sentinel2Stack(path, recipe_of(processor, path), **product_options)
        return stack, list(stack.notes)
    if dataset is None and not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    dataset = dataset if dataset is not None else open_checked(path)
    unused = [f"--{name} {value}" for name, value in product_options.items() if value not in (None, False)]
    return dataset, [f"{' and '.join(unused)} not used: the input is a raster, not a Sentinel-2 product"] * bool(unused)


class SceneReader:
    """An open scene: three bands mapped to 0-255 float RGB, their validity mask, and the scene's georeferencing."""

    def __init__(self, path: Union[str, os.PathLike, SceneInput],
                 processor: Optional[TransLandSegImageProcessor] = None,
                 product_options: Optional[dict] = None, max_pixels: Optional[int] = None, dataset=None):
        """`path`: a file, URL or product, or a `SceneInput` as classified where inputs are collected.
        `product_options`: how a Sentinel-2 product is stacked (`Sentinel2Stack`'s dem, offset, fill_missing);
        a product is read through its stack, any other input through rasterio. `max_pixels`: larger scenes are
        refused from the header (`check_pixel_count`; None: no limit). `dataset`: the raster already open (the app
        opened it to check the upload), read here and closed with the reader."""
        self.scene = classify(path)
        self.path = self.scene.path
        processor = processor or TransLandSegImageProcessor()
        self.dataset, self.product_notes = open_scene(self.scene, processor, product_options or {}, dataset)
        try:
            check_pixel_count(self.dataset, self.path, max_pixels)
            self.bands = bands_to_read(processor.bands, self.dataset, self.path, processor.sensor_bands)
            self.notes: list[str] = self.product_notes + [n for n in [grey_note(self.dataset, self.bands)] if n]
            check_real_bands(self.dataset, self.bands, self.path)
            # A stack made on the fly has NaN nodata and no infinity: its values are not computed twice to check.
            self.float_bands = not isinstance(self.dataset, Sentinel2Stack) and any(
                np.dtype(self.dataset.dtypes[band - 1]).kind == "f" for band in self.bands)
            self.processor = processor
            with decoding(self.path, "the overview read to fit the scaling"), quiet_overflow():
                self.scaler: LinearScaler = fit_scaler(processor, self.dataset, self.bands[:3], str(self.path))
            check_finite_stretch(self.scaler, processor, self.path)
            self.notes += [self.scaler.note] if self.scaler.note else []  # floats in 0-1 read as 0-255
        except BaseException:
            self.dataset.close()
            raise

    # ----------------------------------------------------------------------------------------------- georeferencing
    @property
    def height(self) -> int:
        return self.dataset.height

    @property
    def width(self) -> int:
        return self.dataset.width

    @property
    def crs(self):
        return self.dataset.crs

    @property
    def transform(self):
        return self.dataset.transform

    @property
    def resolution(self) -> Optional[float]:
        """Metres per pixel, for the tile plan and the scale check: in a geographic (degree) CRS estimated at the
        scene's centre (`ground_pixel_size_m`); None for plain images."""
        return ground_pixel_size_m(self.dataset.crs, self.dataset.transform, (self.height, self.width))

    @cached_property
    def georeferencing(self) -> str:
        """One of GEOREFERENCING, as `georeferencing_of` decides it."""
        return georeferencing_of(self.dataset)

    @property
    def georeferenced(self) -> bool:
        return self.georeferencing != "pixels"

    @property
    def gcps(self) -> Optional[tuple[list, CRS]]:
        """(ground control points, their CRS) where they georeference the scene (which then has no CRS or transform
        of its own), else None."""
        return (list(self.dataset.gcps[0]), self.dataset.gcps[1]) if self.georeferencing == "gcps" else None

    @property
    def rpcs(self):
        """The scene's rasterio RPC where they georeference it, else None (a scene that also has a geotransform uses
        that)."""
        return self.dataset.rpcs if self.georeferencing == "rpcs" else None

    @property
    def polygon_crs(self) -> Optional[CRS]:
        """The CRS polygons are written in: the scene's; the GCPs'; WGS 84 for RPCs; None for pixel coordinates."""
        return {"transform": self.dataset.crs, "gcps": self.dataset.gcps[1], "rpcs": RPC_CRS}.get(self.georeferencing)

    # ----------------------------------------------------------------------------------------------------- reading
    def read_rgb(self, window: Optional[Window] = None, out_shape: Optional[tuple[int, int]] = None) -> np.ndarray:
        """(3, h, w) float32 0-255 (for quicklooks); nodata pixels are 0."""
        return self.read_pixels(window, out_shape, self.bands[:3])

    def read_pixels(self, window: Optional[Window] = None, out_shape: Optional[tuple[int, int]] = None,
                    bands: Optional[Sequence[int]] = None) -> np.ndarray:
        """(C, h, w) float32 model pixels of the contract's bands: RGB in 0-255, extra bands normalised; nodata
        pixels are 0 (black, and the mean of an extra band), which `fill_nodata` replaces for the model."""
        bands = self.bands if bands is None else tuple(bands)
        raw = self.read_raw(window, out_shape, bands)
        return self.pixels_from_raw(raw, self.read_valid(window, out_shape, raw=raw if bands == self.bands else None))

    def read_raw(self, window: Optional[Window] = None, out_shape: Optional[tuple[int, int]] = None,
                 bands: Optional[Sequence[int]] = None) -> np.ndarray:
        """(C, h, w) band values as stored (uint8 for most RGB scenes: cheap to pad before scaling)."""
        bands = self.bands if bands is None else tuple(bands)
        shape = None if out_shape is None else (len(bands), *out_shape)
        with decoding(self.path, describe_window(window)):
            return self.dataset.read(list(bands), window=window, out_shape=shape)

    def pixels_from_raw(self, raw: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Raw values and their (h, w) validity -> model pixels; scaling is per pixel, so it commutes with padding."""
        with quiet_overflow():
            pixels = self.processor.pixels_from_bands(raw, self.scaler) if len(raw) > 3 else self.scaler(raw)
        if not valid.all():
            pixels[:, ~valid] = 0.0
        return pixels

    def fill_nodata(self, tiles: np.ndarray, valid: np.ndarray) -> None:
        """(B, C, T, T) model pixels, in place, outside their (B, T, T) validity: the valid pixels reflected into the
        nodata (as the scene's border is padded), and in a tile without any the contract's mean, which normalises to 0
        (`tiling.fill_outside_valid`). Black there would be a seam at the tile edge nearest a nodata collar; the
        outputs there stay nodata."""
        if valid.all():
            return
        neutral = np.zeros(tiles.shape[1], np.float32)  # extra bands are normalised already: 0 is their mean
        neutral[:3] = np.asarray(self.processor.image_mean, np.float32) * 255
        fill_outside_valid(tiles, valid, neutral)

    def read_valid(self, window: Optional[Window] = None, out_shape: Optional[tuple[int, int]] = None,
                   dataset=None, raw: Optional[np.ndarray] = None) -> np.ndarray:
        """(h, w) bool: False where every chosen band is nodata (GDAL's per-dataset mask rule), or where a float band
        holds NaN or infinity (`finite_everywhere`). `dataset`: another open handle of the same file, for a thread
        other than the one reading pixels (a GDAL handle is not shared between threads); `raw`: the chosen bands'
        values of this window where already read (else float scenes read them here)."""
        shape = None if out_shape is None else (len(set(self.bands)), *out_shape)
        source = self.dataset if dataset is None else dataset
        with decoding(self.path, describe_window(window)):
            masks = source.read_masks(sorted(set(self.bands)), window=window, out_shape=shape)  # (C, h, w)
            if self.float_bands and raw is None:
                raw = source.read(sorted(set(self.bands)), window=window, out_shape=shape)
        valid = masks.max(axis=0) > 0
        if self.float_bands:
            with quiet_overflow():
                valid &= finite_everywhere(raw)
        return valid

    def read_padded_pixels(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """(C, height, width) of the scene from (row, col), which may lie outside it: the outside is reflect-padded."""
        return self.pixels_from_raw(*self.read_padded_raw(row, col, height, width))

    def read_padded_raw(self, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(C, height, width) raw values and (height, width) validity from (row, col), reflect-padded outside the
        scene. Padding (and cutting tiles) before scaling copies a quarter of the bytes for 8-bit scenes."""
        row_lo, row_hi = max(row, 0), min(row + height, self.height)
        col_lo, col_hi = max(col, 0), min(col + width, self.width)
        window = Window(col_lo, row_lo, col_hi - col_lo, row_hi - row_lo)
        raw = self.read_raw(window)  # (C, h, w)
        valid = self.read_valid(window, raw=raw)  # (h, w)
        padding = ((row_lo - row, row + height - row_hi), (col_lo - col, col + width - col_hi))
        if any(before or after for before, after in padding):
            # numpy reflects repeatedly when a pad is wider than the image, so tiny scenes still fill a tile.
            mode = "reflect" if min(raw.shape[1:]) > 1 else "edge"
            raw, valid = np.pad(raw, ((0, 0), *padding), mode=mode), np.pad(valid, padding, mode=mode)
        return raw, valid

    def reopen(self):
        """Another handle on the scene (a file or a stacked product), for a thread other than the one reading."""
        return self.dataset.reopen() if isinstance(self.dataset, Sentinel2Stack) else open_raster(self.path)

    def close(self) -> None:
        self.dataset.close()

    def __enter__(self) -> "SceneReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
