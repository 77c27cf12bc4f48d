"""A model's input contract, saved beside it as `preprocessor_config.json`: which raster bands, how their values
become 8-bit pixels, SAM's normalisation, the input side, and how much ground one input covered in training.

Training, evaluation, `model.predict` and `translandseg predict` all preprocess through this one class, so a map is
made from exactly the input the model learnt from.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from .geo.sentinel2.bands import LEVEL_VALUES, landslide4sense_channels, landslide4sense_source

ImageLike = Union[Image.Image, np.ndarray]
SCALES = ("none", "divisor", "percentile")
PREPROCESSOR_CONFIG = "preprocessor_config.json"
OVERRIDABLE = ("bands", "scale", "divisor", "percentiles")  # what `translandseg predict` may change of a contract
OVERVIEW_SIDE = 1024  # the decimated read for percentiles: about a million pixels, whatever the scene's size
MAX_TILE_SIDE = 2**15  # px: SAM takes 1024, the largest training tiles a few thousand; more is a broken contract
# How each scale is worded: (the one line of `describe`, the model card's line of `describe_lines`).
SCALING_TEXT = {
    "none": ("8-bit values as they are", "none (8-bit values as they are)"),
    "divisor": ("value / {divisor:g} * 255", "`value / {divisor:g} * 255`, clipped"),
    "percentile": ("a {low:g}-{high:g} percentile stretch", "a per-scene {low:g}-{high:g} percentile stretch"),
}


@dataclass
class LinearScaler:
    """value -> (value - low) / (high - low) * 255, clipped to 0-255 and cut to whole 8-bit steps, per band: the
    training images were 8-bit, so a scene read for prediction is quantised the same way."""

    low: np.ndarray  # (C,)
    high: np.ndarray  # (C,)

    def __call__(self, bands: np.ndarray) -> np.ndarray:
        """(C, H, W) raw values -> (C, H, W) float32 whole numbers in 0-255 (NaN becomes 0)."""
        scaled = bands.astype(np.float32)  # a copy, computed in place below: scenes are large
        if bands.dtype == np.uint8 and not self.low.any() and (self.high == 255).all():
            return scaled  # 8-bit values as they are: (x - 0) / 255 * 255 gives x back exactly
        low, high = self.low[:, None, None], self.high[:, None, None]
        with np.errstate(invalid="ignore", over="ignore"):
            scaled -= low
            scaled /= np.where(high > low, high - low, 1.0).astype(np.float32)
            scaled *= np.float32(255.0)
            np.clip(scaled, 0.0, 255.0, out=scaled)
        np.floor(scaled, out=scaled)
        if np.issubdtype(bands.dtype, np.floating):
            scaled[np.isnan(scaled)] = 0.0
        return scaled


@dataclass
class TilePlan:
    """The tile side in scene pixels, and why (printed in the summary)."""

    size: int
    reason: str


def listed(name: str, values) -> list:
    """A contract's list field as a list; a number or a string where a list belongs names the field."""
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Iterable):
        raise ValueError(f"field {name}: expected a list, got {values!r}.")
    return list(values)


def number(name: str, value, kind: type = float):
    """A contract's number as `kind`, or a ValueError naming the field (a string, a list, true/false, null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"field {name}: expected a number, got {value!r}.")
    if kind is int and not (np.isfinite(value) and float(value).is_integer()):
        raise ValueError(f"field {name}: expected a whole number, got {value!r}.")
    return kind(value)


def text(name: str, value) -> Optional[str]:
    """A contract's optional name (sensor, product level): a string or None."""
    if value is not None and not isinstance(value, str):
        raise ValueError(f"field {name}: expected a string or null, got {value!r}.")
    return value


def numbers(name: str, values, kind: type = float) -> list:
    return [number(name, value, kind) for value in listed(name, values)]


def check_finite(name: str, values) -> None:
    """NaN or infinity in a contract's field (JSON's NaN and Infinity literals parse as floats) is refused."""
    values = [] if values is None else values if isinstance(values, list) else [values]
    if not all(np.isfinite(value) for value in values):
        raise ValueError(f"field {name}: every value must be a finite number, got {values}.")


def decimated_read(dataset, bands: Sequence[int]) -> np.ma.MaskedArray:
    """(C, h, w) masked values of `bands` of an open rasterio dataset, decimated by GDAL to about OVERVIEW_SIDE on
    the longer side."""
    factor = max(1, int(np.ceil(max(dataset.height, dataset.width) / OVERVIEW_SIDE)))
    shape = (len(bands), max(1, dataset.height // factor), max(1, dataset.width // factor))
    return dataset.read(list(bands), out_shape=shape, masked=True)


class TransLandSegImageProcessor(BaseImageProcessor):
    r"""
    The input contract of a landslide model, and the preprocessing that follows from it.

    Args:
        bands (`list[int]`): 1-based raster bands in the model's channel order (`[4, 3, 2]` for Landslide4Sense RGB).
        scale (`str`): how band values become 0-255 pixels: `"none"` (already 8-bit), `"divisor"`
            (`value / divisor * 255`, clipped) or `"percentile"` (a per-scene stretch between `percentiles`).
        divisor (`float`): the divisor of `scale="divisor"` (10 for Landslide4Sense, as the paper's authors).
        percentiles (`list[float]`): low and high percentiles of `scale="percentile"`.
        image_mean, image_std (`list[float]`): SAM's normalisation, on pixels rescaled to [0, 1].
        input_size (`int`): side of the square model input; every image or tile is resized to it.
        tile_size (`int`): scene pixels one model input covered in training (128 for Landslide4Sense patches, the
            median image side for Bijie); scene mapping cuts tiles of this side (at the training resolution).
        ground_resolution (`float`, *optional*): metres per pixel of the training imagery (0.8 Bijie, 10 L4S).
        band_names (`list[str]`, *optional*): a name per band, in channel order.
        band_mean, band_std (`list[float]`, *optional*): per-band statistics of the bands after the first three (the
            extra bands, e.g. near-infrared, slope, DEM), which are normalised with them rather than scaled to 8 bits.
        sensor (`str`, *optional*): the sensor the training imagery came from ("Sentinel-2 MSI").
        product_level (`str`, *optional*): its product level ("L1C": top of atmosphere; "L2A": surface reflectance).
        sensor_bands (`list[str]`, *optional*): the sensor's band (or `slope` / `dem`) each channel is, in channel
            order; `translandseg stack` builds a product's input from them.
        sensor_divisors (`list[float]`, *optional*): per channel, sensor value (digital number without its offset,
            degrees, metres) / divisor = the value the model was trained on. Landslide4Sense contracts saved before
            these fields get them from the dataset's published scale when loaded.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        bands: Sequence[int] = (1, 2, 3),
        scale: str = "none",
        divisor: float = 10000.0,
        percentiles: Sequence[float] = (2.0, 98.0),
        image_mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
        image_std: Sequence[float] = IMAGENET_DEFAULT_STD,
        input_size: int = 1024,
        tile_size: Optional[int] = None,
        ground_resolution: Optional[float] = None,
        band_names: Optional[Sequence[str]] = None,
        band_mean: Sequence[float] = (),
        band_std: Sequence[float] = (),
        sensor: Optional[str] = None,
        product_level: Optional[str] = None,
        sensor_bands: Optional[Sequence[str]] = None,
        sensor_divisors: Optional[Sequence[float]] = None,
        **kwargs,
    ):
        kwargs.pop("image_processor_type", None)
        super().__init__(**kwargs)
        self.bands = numbers("bands", bands, int)
        self.scale = scale
        self.divisor = number("divisor", divisor)
        self.percentiles = numbers("percentiles", percentiles)
        self.image_mean, self.image_std = numbers("image_mean", image_mean), numbers("image_std", image_std)
        self.input_size = number("input_size", input_size, int)
        self.tile_size = self.input_size if tile_size is None else number("tile_size", tile_size, int)
        self.ground_resolution = None if ground_resolution is None else number("ground_resolution", ground_resolution)
        self.band_names = None if band_names is None else [str(name) for name in listed("band_names", band_names)]
        self.band_mean, self.band_std = numbers("band_mean", band_mean), numbers("band_std", band_std)
        self.sensor, self.product_level = text("sensor", sensor), text("product_level", product_level)
        self.sensor_bands = None if sensor_bands is None else [str(name) for name in listed("sensor_bands",
                                                                                              sensor_bands)]
        self.sensor_divisors = None if sensor_divisors is None else numbers("sensor_divisors", sensor_divisors)
        if sensor is None and sensor_bands is None:
            self._fill_landslide4sense_source()
        self._check()

    def _fill_landslide4sense_source(self) -> None:
        """A Landslide4Sense contract saved before contracts named their sensor gets the dataset's."""
        channels = landslide4sense_channels(dict(scale=self.scale, divisor=self.divisor, tile_size=self.tile_size,
                                                 ground_resolution=self.ground_resolution, bands=self.bands,
                                                 band_names=self.band_names))
        for name, value in ({} if channels is None else landslide4sense_source(channels)).items():
            setattr(self, name, value)

    @property
    def extra_bands(self) -> int:
        """Bands beyond the first three (RGB)."""
        return len(self.bands) - 3

    def _check(self) -> None:
        if len(self.bands) < 3 or any(band < 1 for band in self.bands):
            raise ValueError(f"bands must be three or more 1-based band numbers (R, G, B first), got {self.bands}.")
        extra = len(self.bands) - 3
        if len(self.band_mean) != extra or len(self.band_std) != extra or any(s <= 0 for s in self.band_std):
            raise ValueError(f"band_mean and band_std need one value per extra band ({extra}), with std > 0; got "
                             f"{len(self.band_mean)} and {len(self.band_std)}.")
        if self.band_names is not None and len(self.band_names) != len(self.bands):
            raise ValueError(f"band_names needs one name per band ({len(self.bands)}), got {len(self.band_names)}.")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}.")
        if self.divisor <= 0:
            raise ValueError(f"divisor must be positive, got {self.divisor}.")
        if len(self.percentiles) != 2 or not 0 <= self.percentiles[0] < self.percentiles[1] <= 100:
            raise ValueError(f"percentiles must be low, high with 0 <= low < high <= 100, got {self.percentiles}.")
        if self.input_size < 1 or self.tile_size < 1:
            raise ValueError(f"input_size and tile_size must be positive, got {self.input_size}, {self.tile_size}.")
        for name in ("sensor_bands", "sensor_divisors"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.bands):
                raise ValueError(f"{name} needs one value per band ({len(self.bands)}), got {len(values)}.")
        if self.sensor_divisors is not None and any(d <= 0 for d in self.sensor_divisors):
            raise ValueError(f"sensor_divisors must be positive, got {self.sensor_divisors}.")
        if self.ground_resolution is not None and self.ground_resolution <= 0:
            raise ValueError(f"ground_resolution must be positive metres per pixel, got {self.ground_resolution}.")
        self._check_numbers()

    def _check_numbers(self) -> None:
        """Values a hand-edited or hostile contract could break silently: a NaN or zero std or divisor turns every
        pixel into NaN, and the map into "no landslide"; an absurd tile side allocates without end."""
        for name in ("divisor", "ground_resolution"):
            check_finite(name, getattr(self, name))
        for name in ("percentiles", "image_mean", "image_std", "band_mean", "band_std", "sensor_divisors"):
            check_finite(name, getattr(self, name))
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ValueError(f"field image_mean, image_std: three values each (R, G, B), every std above 0; got "
                             f"{self.image_mean} and {self.image_std}.")
        for name in ("input_size", "tile_size"):
            if getattr(self, name) > MAX_TILE_SIDE:
                raise ValueError(f"field {name}: {getattr(self, name)} px is more than {MAX_TILE_SIDE} px, no model's "
                                 "input or training tile.")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "TransLandSegImageProcessor":
        """A saved contract; from a local folder it is read by `hub.read_json_config` (size-capped, no JSON bombs)
        and every error names the file and the field. Hub ids go through transformers' loader."""
        path = Path(pretrained_model_name_or_path) / PREPROCESSOR_CONFIG
        if not path.is_file():
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        return cls.from_config_file(path, **kwargs)

    @classmethod
    def from_config_file(cls, path: Path, **overrides) -> "TransLandSegImageProcessor":
        """The contract saved at `path` (a `preprocessor_config.json`); a ValueError names the file and the field."""
        from .hub import read_json_config

        values = read_json_config(path)
        try:
            return cls(**{**values, **overrides})
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from error

    @classmethod
    def legacy(cls, input_size: int, folder) -> "TransLandSegImageProcessor":
        """The contract assumed for a model saved before contracts were: RGB, no scaling, tiles of the input side."""
        warnings.warn(f"{folder} has no {PREPROCESSOR_CONFIG} (saved before models recorded their input): assuming "
                      f"bands 1,2,3 as 8-bit RGB and tiles of {input_size} px; pass --bands/--scale if that is wrong.",
                      UserWarning, stacklevel=3)
        return cls(input_size=input_size)

    @classmethod
    def of_model(cls, model) -> "TransLandSegImageProcessor":
        """The contract a live model carries, or RGB at its input side for one built without a contract."""
        return getattr(model, "image_processor", None) or cls(input_size=int(model.image_size))

    def with_overrides(
        self, bands: Optional[Sequence[int]] = None, scale: Optional[str] = None, divisor: Optional[float] = None,
        percentiles: Optional[Sequence[float]] = None,
    ) -> tuple["TransLandSegImageProcessor", list[str]]:
        """A copy of this contract with the given options in place; and one note per option that differs."""
        given = {"bands": None if bands is None else [int(b) for b in bands], "scale": scale,
                 "divisor": None if divisor is None else float(divisor),
                 "percentiles": None if percentiles is None else [float(p) for p in percentiles]}
        processor, notes = copy.deepcopy(self), []
        for name in OVERRIDABLE:
            value = given[name]
            if value is not None and value != getattr(self, name):
                notes.append(f"--{name} {value} overrides the model's {getattr(self, name)}")
                setattr(processor, name, value)
        processor._check()
        return processor, notes

    def plan_tiles(
        self, scene_resolution: Optional[float], tile_size: Optional[int] = None, resolution: Optional[float] = None,
    ) -> TilePlan:
        """Tiles cover the ground one training input covered: the contract's tile side scaled by training resolution
        / scene resolution when both are known; `tile_size` (scene px) and `resolution` (m per px) override."""
        if tile_size is not None:
            if not 1 <= tile_size <= MAX_TILE_SIDE:
                raise ValueError(f"tile_size must be 1-{MAX_TILE_SIDE} px, got {tile_size}.")
            return TilePlan(int(tile_size), "--tile_size")
        scene = resolution if resolution is not None else scene_resolution
        trained = self.ground_resolution
        if trained and scene:
            side = max(1, round(self.tile_size * trained / scene))
            source = "--resolution" if resolution is not None else "the scene's transform"
            if side > MAX_TILE_SIDE:  # a tile is allocated whole: a pixel size of a micrometre would ask for TBs
                raise ValueError(f"tiles of {self.tile_size} px at {trained:g} m are {side} px at {scene:g} m per "
                                 f"pixel ({source}), more than {MAX_TILE_SIDE} px: the resolution looks wrong; pass "
                                 "--resolution (metres per pixel) or --tile_size.")
            return TilePlan(side, f"training tiles of {self.tile_size} px at {trained:g} m; scene at {scene:g} m "
                                  f"({source})")
        unknown = "the scene's resolution" if trained else "the training resolution"
        return TilePlan(self.tile_size, f"the training tile size ({unknown} is unknown)")

    # ------------------------------------------------------------------------------------------------ band values
    def fixed_scaler(self) -> LinearScaler:
        """The RGB scaler of `scale="none"` or `"divisor"`; a percentile stretch is fitted per scene."""
        if self.scale == "percentile":
            raise ValueError("scale='percentile' depends on the scene: fit it with fit_percentiles(...).")
        high = 255.0 if self.scale == "none" else self.divisor
        return LinearScaler(np.zeros(3, np.float32), np.full(3, high, np.float32))

    def pixels_from_bands(self, raw: np.ndarray, scaler: Optional[LinearScaler] = None) -> np.ndarray:
        """(C, H, W) raw band values, in the contract's band order -> (C, H, W) float32: RGB scaled to 8-bit steps
        in 0-255, extra bands normalised with `band_mean` / `band_std`. Training and prediction both call this."""
        rgb = (scaler or self.fixed_scaler())(raw[:3])
        if not self.extra_bands:
            return rgb
        mean = np.asarray(self.band_mean, np.float32)[:, None, None]
        std = np.asarray(self.band_std, np.float32)[:, None, None]
        extra = np.nan_to_num((raw[3:].astype(np.float32) - mean) / std, nan=0.0)
        return np.concatenate([rgb, extra])

    def fit_percentiles(self, samples: Sequence[np.ndarray]) -> LinearScaler:
        """A percentile stretch from one array of valid values per band."""
        lows, highs = [], []
        for values in samples:
            low, high = np.percentile(values, self.percentiles) if values.size else (0.0, 255.0)
            lows.append(float(low)), highs.append(float(high))
        return LinearScaler(np.asarray(lows, np.float32), np.asarray(highs, np.float32))

    def fit_scaler(self, dataset, bands: Sequence[int]) -> LinearScaler:
        """The contract's scaler for `bands` of an open rasterio dataset (a percentile stretch is fitted on a
        decimated read of the whole scene)."""
        if self.scale != "percentile":
            return self.fixed_scaler()
        values = [band.compressed() for band in decimated_read(dataset, bands)]
        return self.fit_percentiles([v[np.isfinite(v)] if v.dtype.kind == "f" else v for v in values])  # NaN: nodata

    # ------------------------------------------------------------------------------------------------ description
    def _scaling_text(self, form: int) -> str:
        low, high = self.percentiles
        return SCALING_TEXT[self.scale][form].format(divisor=self.divisor, low=low, high=high)

    def describe(self) -> str:
        """One line for summaries and the app: bands, scaling, tiles."""
        ground = f" at {self.ground_resolution:g} m" if self.ground_resolution else " (ground resolution unknown)"
        return (f"bands {','.join(map(str, self.bands))}, {self._scaling_text(0)}; tiles of {self.tile_size} px"
                f"{ground} resized to {self.input_size} px")

    def describe_lines(self) -> list[str]:
        """The model card's input section: what `translandseg predict` will read and how."""
        ground = f"{self.ground_resolution:g} m per pixel" if self.ground_resolution else "unknown"
        return [f"Bands (1-based, in channel order): {', '.join(map(str, self.bands))}",
                f"Scaling to 0-255: {self._scaling_text(1)}",
                f"Tile size: {self.tile_size} px of the scene per model input, resized to {self.input_size} px",
                f"Ground resolution of the training imagery: {ground}"] + self.describe_source()

    def describe_source(self) -> list[str]:
        """The sensor lines of the model card: the product level, and the real band and divisor of each channel."""
        if self.sensor_bands is None:
            return []
        level = self.product_level
        level = f"{level} ({LEVEL_VALUES[level]})" if level in LEVEL_VALUES else level
        lines = [f"Sensor: {self.sensor or 'unknown'}" + (f", product level {level}" if level else "")]
        if self.sensor_divisors is not None:
            pairs = [f"{band} / {divisor:g}" for band, divisor in zip(self.sensor_bands, self.sensor_divisors)]
            lines.append("Channels from the sensor (value / divisor = the training value): " + ", ".join(pairs))
        else:
            lines.append("Channels from the sensor: " + ", ".join(self.sensor_bands))
        return lines

    # ------------------------------------------------------------------------------------------------ pixels
    def normalize_pixels(self, pixels: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """(..., C, H, W): RGB in 0-255 -> SAM's normalised input; extra bands (already normalised) pass through.
        `in_place`: overwrite `pixels` (a scene's tiles: saves a batch-sized copy)."""
        mean = (torch.tensor(self.image_mean).view(3, 1, 1) * 255).to(pixels.device)
        std = (torch.tensor(self.image_std).view(3, 1, 1) * 255).to(pixels.device)
        if in_place:
            pixels[..., :3, :, :].sub_(mean).div_(std)
            return pixels
        rgb = pixels[..., :3, :, :].sub(mean).div_(std)  # one temporary
        return rgb if pixels.shape[-3] == 3 else torch.cat([rgb, pixels[..., 3:, :, :]], dim=-3)

    def resize_to_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, S, S), bilinear (no antialiasing, no padding), as training resized."""
        size = (self.input_size, self.input_size)
        if tuple(pixels.shape[-2:]) == size:
            return pixels
        return F.interpolate(pixels, size=size, mode="bilinear", align_corners=False)

    def pixel_values_from_rgb(self, arrays: Sequence[np.ndarray]) -> torch.Tensor:
        """(B, 3, S, S) model input from (H, W, 3) 0-255 arrays of any sizes (`to_rgb_array`'s output)."""
        resized = [self.resize_to_input(torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)[None])
                   for a in arrays]
        return self.normalize_pixels(torch.cat(resized))

    def preprocess(self, images, return_tensors: Optional[str] = "pt", **kwargs) -> BatchFeature:
        """`processor(images)`: PIL images or arrays (uint8 0-255, or float in [0, 1]) -> `pixel_values`."""
        if isinstance(images, (Image.Image, np.ndarray)) and not (isinstance(images, np.ndarray) and images.ndim == 4):
            images = [images]
        pixel_values = self.pixel_values_from_rgb([to_rgb_array(image) for image in images])
        return BatchFeature({"pixel_values": pixel_values}, tensor_type=return_tensors)


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """(H, W, 3) pixel values in 0-255 from a PIL image or an (H, W), (H, W, 3) or (H, W, 4) array: uint8 as given,
    or float32 for float images in [0, 1] (what matplotlib, scikit-image and `ToTensor` produce), scaled by 255."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"Expected an (H, W), (H, W, 3) or (H, W, 4) image, got an array of shape {array.shape}.")
    array = array[:, :, :3]
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if np.isfinite(low) and np.isfinite(high) and low >= 0.0 and high <= 1.0:
            return array.astype(np.float32) * 255.0
        raise ValueError(f"Expected uint8 values in 0-255 or float values in [0, 1], got {array.dtype} values in "
                         f"[{low:g}, {high:g}]; scale the image to one of these ranges first.")
    raise ValueError(f"Expected uint8 values in 0-255 or float values in [0, 1], got dtype {array.dtype}; "
                     "scale the image first.")

