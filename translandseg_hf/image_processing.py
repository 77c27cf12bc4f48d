"""The image processor of a landslide model: its input contract's parameters (which raster bands, how their values
become 8-bit pixels, SAM's normalisation, the input side, how much ground one input covered in training; saved beside
the model as `preprocessor_config.json`) and the steps that follow from them, as transformers' `SamImageProcessor`
holds its parameters and `do_*` steps. It does no I/O: a saved contract is loaded by `saved_contract.load_contract`,
and scene-side work (fitting a stretch on a raster, planning tiles, command-line overrides) is
`inference.contract`'s; the contract's wording is `cards`'.

Training, evaluation, `model.predict` and `translandseg predict` all preprocess through this one class, so a map is
made from exactly the input the model learnt from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_processing_utils import INIT_SERVICE_KWARGS, BaseImageProcessor, BatchFeature
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from .contract_fields import checked

ImageLike = Union[Image.Image, np.ndarray]


class InputRefused(ValueError):
    """Input a model cannot read as it is, refused with the way out in the words of where it was given: `where` picks
    one of `remedies` ("cli": `translandseg predict`'s flags, "app": the app's controls, "python": the library),
    after `sep`. Built from a message alone (as `type(error)(message)` rebuilds one), it is that message."""

    def __init__(self, problem: str, remedies: Optional[dict] = None, where: str = "cli", sep: str = "; "):
        self.problem, self.remedies, self.sep = problem, remedies or {}, sep
        super().__init__(f"{problem}{sep}{self.remedies[where]}" if self.remedies else problem)

    def worded_for(self, where: str) -> "InputRefused":
        """The same refusal with `where`'s remedy (itself where it has none)."""
        return InputRefused(self.problem, self.remedies, where, self.sep) if where in self.remedies else self


# How a `scale: none` model meets values beyond 0-255 (or floats beyond [0, 1]): one refusal, three wordings.
EIGHT_BIT_REMEDIES = {
    "cli": "pass --scale percentile (a per-scene 2-98% stretch) or --scale divisor --divisor N (value / N * 255, with "
           "N the value that is white).",
    "app": "choose Scaling: percentile (a per-scene 2-98% stretch), or divisor with a Divisor N (value / N * 255, "
           "with N the value that is white), and map it again (the API's `scale` and `divisor`).",
    "python": "scale the image to 0-255 (or floats to [0, 1]) first, or give the model a contract that scales it "
              "(model.image_processor.scale = 'percentile', or 'divisor' with its divisor).",
}


def out_of_range(source: str, dtype, low: float, high: float, where: str = "cli") -> InputRefused:
    """The refusal of values a `scale: none` model cannot read, naming `source` (a file, or "the image")."""
    clipped = "to white" if high > 255.0 else "to black"
    return InputRefused(f"{source}: the bands hold {np.dtype(dtype)} values from {low:g} to {high:g}, but the model "
                        "reads 8-bit values (0-255) as they are (its contract's scale is none), so they would be "
                        f"clipped {clipped}", EIGHT_BIT_REMEDIES, where)


@dataclass
class LinearScaler:
    """value -> (value - low) / (high - low) * 255, clipped to 0-255 and cut to whole 8-bit steps, per band: the
    training images were 8-bit, so a scene read for prediction is quantised the same way."""

    low: np.ndarray  # (C,)
    high: np.ndarray  # (C,)
    note: Optional[str] = None  # what the scaling made of the values, where a summary should say it

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
            these fields get them from the dataset's published scale when loaded (`saved_contract`).

    The steps, each on by default and switchable per call of `preprocess` (`do_resize`, `do_normalize`), with the
    input side and the normalisation overridable per call too: band values -> 0-255 pixels (`pixels_from_bands`,
    with a scaler fitted per scene where the scale is a stretch), resizing to the input side (`resize_to_input`),
    SAM's normalisation (`normalize_pixels`).
    """

    model_input_names = ["pixel_values"]
    do_resize = True  # class defaults, not saved fields: the saved contract keeps only its own fields
    do_normalize = True

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
        unknown = sorted(set(kwargs) - set(INIT_SERVICE_KWARGS))
        if unknown:  # the base class would set them as attributes: `do_normalize=False`, or a method's name
            raise ValueError(f"TransLandSegImageProcessor: unknown field(s) {', '.join(unknown)} (in "
                             "preprocessor_config.json, or passed): a contract holds only this class's parameters.")
        super().__init__()
        vars(self).update(checked(dict(
            bands=bands, scale=scale, divisor=divisor, percentiles=percentiles, image_mean=image_mean,
            image_std=image_std, input_size=input_size, tile_size=tile_size, ground_resolution=ground_resolution,
            band_names=band_names, band_mean=band_mean, band_std=band_std, sensor=sensor, product_level=product_level,
            sensor_bands=sensor_bands, sensor_divisors=sensor_divisors)))

    @property
    def extra_bands(self) -> int:
        """Bands beyond the first three (RGB)."""
        return len(self.bands) - 3

    # ------------------------------------------------------------------------------------------------ band values
    def fixed_scaler(self) -> LinearScaler:
        """The RGB scaler of `scale="none"` or `"divisor"`; a percentile stretch is fitted per scene."""
        if self.scale == "percentile":
            raise ValueError("scale='percentile' depends on the scene: fit it with scaler_for(...).")
        high = 255.0 if self.scale == "none" else self.divisor
        return LinearScaler(np.zeros(3, np.float32), np.full(3, high, np.float32))

    def fit_percentiles(self, samples: Sequence[np.ndarray]) -> LinearScaler:
        """A percentile stretch from one array of valid values per band."""
        lows, highs = [], []
        for values in samples:
            low, high = np.percentile(values, self.percentiles) if values.size else (0.0, 255.0)
            lows.append(float(low)), highs.append(float(high))
        return LinearScaler(np.asarray(lows, np.float32), np.asarray(highs, np.float32))

    def scaler_for(self, samples: Sequence[np.ndarray], dtype, source: str = "the image",
                   where: str = "python") -> LinearScaler:
        """The RGB scaler for band values: the one rule of `translandseg predict`, the app and `model.predict`.
        `samples`: one array of finite valid values per band (a scene's decimated read, or an image's pixels).
        `percentile`: the stretch fitted on them; `divisor`: value / divisor; `none`: 8-bit values as they are, and
        float values all within [0, 1] times 255 (1 is white: reflectance, scikit-image, `ToTensor`). Other values
        for `none` are refused (`out_of_range`, naming `source` and `where`'s options), never clipped."""
        if self.scale == "percentile":
            return self.fit_percentiles(samples)
        if self.scale == "divisor":
            return self.fixed_scaler()
        values = np.concatenate([np.ravel(v) for v in samples]) if len(samples) else np.zeros(0)
        if not values.size:
            return self.fixed_scaler()
        low, high = float(values.min()), float(values.max())
        if np.dtype(dtype).kind == "f" and 0.0 <= low and high <= 1.0:
            return LinearScaler(np.zeros(3, np.float32), np.ones(3, np.float32), note=(
                f"the bands hold {np.dtype(dtype)} values from {low:g} to {high:g}, read as brightness in 0-1 (1 is "
                "white) and scaled to 0-255, as the model's 8-bit contract (scale none) reads float images"))
        if 0.0 <= low and high <= 255.0:
            return self.fixed_scaler()
        raise out_of_range(source, dtype, low, high, where)

    def rgb_pixels(self, image: ImageLike) -> np.ndarray:
        """(H, W, 3) float32 pixels in 0-255 of a PIL image or an (H, W), (H, W, 3) or (H, W, 4) array, scaled by
        `scaler_for`: `model.predict` reads an image as `translandseg predict` reads it saved as a file."""
        bands = np.moveaxis(rgb_array(image), -1, 0)  # (3, H, W)
        if bands.dtype.kind == "f" and not np.isfinite(bands).all():
            raise ValueError(f"the image holds NaN or infinite {bands.dtype} values, which an array cannot mark as "
                             "nodata; fill them first (or save the image as a raster with nodata and map it with "
                             "`translandseg predict`).")
        scaler = self.scaler_for(list(bands), bands.dtype)
        return np.moveaxis(scaler(bands), 0, -1)

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

    # ------------------------------------------------------------------------------------------------ pixels
    def normalize_pixels(
        self, pixels: torch.Tensor, in_place: bool = False, image_mean: Optional[Sequence[float]] = None,
        image_std: Optional[Sequence[float]] = None,
    ) -> torch.Tensor:
        """(..., C, H, W): RGB in 0-255 -> SAM's normalised input; extra bands (already normalised) pass through.
        `in_place`: overwrite `pixels` (a scene's tiles: saves a batch-sized copy)."""
        image_mean = self.image_mean if image_mean is None else image_mean
        image_std = self.image_std if image_std is None else image_std
        mean = (torch.tensor(image_mean).view(3, 1, 1) * 255).to(pixels.device)
        std = (torch.tensor(image_std).view(3, 1, 1) * 255).to(pixels.device)
        if in_place:
            pixels[..., :3, :, :].sub_(mean).div_(std)
            return pixels
        rgb = pixels[..., :3, :, :].sub(mean).div_(std)  # one temporary
        return rgb if pixels.shape[-3] == 3 else torch.cat([rgb, pixels[..., 3:, :, :]], dim=-3)

    def resize_to_input(self, pixels: torch.Tensor, input_size: Optional[int] = None) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, S, S), bilinear (no antialiasing, no padding), as training resized."""
        side = self.input_size if input_size is None else input_size
        if tuple(pixels.shape[-2:]) == (side, side):
            return pixels
        return F.interpolate(pixels, size=(side, side), mode="bilinear", align_corners=False)

    def pixel_values_from_rgb(
        self, arrays: Sequence[np.ndarray], do_resize: Optional[bool] = None, input_size: Optional[int] = None,
        do_normalize: Optional[bool] = None, image_mean: Optional[Sequence[float]] = None,
        image_std: Optional[Sequence[float]] = None,
    ) -> torch.Tensor:
        """(B, 3, S, S) model input from (H, W, 3) 0-255 arrays of any sizes (`rgb_pixels`' output); each
        argument left None is the processor's own."""
        do_resize = self.do_resize if do_resize is None else do_resize
        do_normalize = self.do_normalize if do_normalize is None else do_normalize
        pixels = [torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)[None] for a in arrays]
        if do_resize:
            pixels = [self.resize_to_input(p, input_size) for p in pixels]
        pixels = torch.cat(pixels)  # arrays of different sizes need do_resize
        return self.normalize_pixels(pixels, image_mean=image_mean, image_std=image_std) if do_normalize else pixels

    def preprocess(
        self, images, do_resize: Optional[bool] = None, input_size: Optional[int] = None,
        do_normalize: Optional[bool] = None, image_mean: Optional[Sequence[float]] = None,
        image_std: Optional[Sequence[float]] = None, return_tensors: Optional[str] = "pt", **kwargs,
    ) -> BatchFeature:
        """`processor(images)`: PIL images or arrays, scaled as the contract says (`scaler_for`) -> `pixel_values`; the
        `do_*` steps, the input side and the normalisation may be changed for this call."""
        if isinstance(images, (Image.Image, np.ndarray)) and not (isinstance(images, np.ndarray) and images.ndim == 4):
            images = [images]
        pixel_values = self.pixel_values_from_rgb(
            [self.rgb_pixels(image) for image in images], do_resize=do_resize, input_size=input_size,
            do_normalize=do_normalize, image_mean=image_mean, image_std=image_std)
        return BatchFeature({"pixel_values": pixel_values}, tensor_type=return_tensors)


def rgb_array(image: ImageLike) -> np.ndarray:
    """(H, W, 3) values as given (uint8 for a PIL image) from a PIL image or an (H, W), (H, W, 3) or (H, W, 4)
    array (the fourth band, alpha, dropped); not real numbers are refused."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"Expected an (H, W), (H, W, 3) or (H, W, 4) image, got an array of shape {array.shape}.")
    if array.dtype.kind not in "uif":
        raise ValueError(f"Expected an image of integer or float values, got dtype {array.dtype}.")
    return array[:, :, :3]


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """(H, W, 3) float32 pixels in 0-255 as an 8-bit contract (the default) reads the image (`rgb_pixels`)."""
    return TransLandSegImageProcessor().rgb_pixels(image)
