"""How far an exported graph's landslide probabilities are from torch's, and how far they may be.

fp32 is checked on a seeded batch of standard-normal pixel_values: a graph that computes the model's function matches
it there to 1e-7, so noise is a strict test of the trace. int8 is checked on the input the model really gets: dynamic
quantisation's error depends on the ranges of the activations, which noise does not have (on the demo model noise
flips 5% of pixels, its scenes 0.3%). The package ships no imagery, so its real batch is synthetic landslide
scenes (`data.synthetic`, what the demo trains on) made through the model's own contract: its input side, its bands
as band values, its scaling and normalisation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..image_processing import LinearScaler, TransLandSegImageProcessor

THRESHOLD = 0.5  # where a pixel's class flips: predict's and model.predict's default (inference.options)
CHECK_BATCH = 2  # inputs in the fp32 check, and at least as many scenes in int8's
CHECK_PIXELS = 2**16  # int8's scenes hold at least this many pixels: 16 of 64 px, 2 of 256 px or more
NOISE_SEED, SCENE_SEED = 0, 37  # scenes unlike the demo's own (its dataset draws (0, i))


@dataclass(frozen=True)
class Agreement:
    """What was measured: the largest |probability difference| and the share of pixels whose class flips."""

    max_probability_difference: float
    flipped_pixel_share: float
    measured_on: str


@dataclass(frozen=True)
class Tolerance:
    """How far an export may be from torch; None: not bounded (recorded only)."""

    max_probability_difference: float
    flipped_pixel_share: Optional[float] = None

    def exceeded_by(self, agreement: Agreement) -> list[str]:
        """The measured figures over their bound, worded for a message (NaN counts as over)."""
        over = []
        if not agreement.max_probability_difference <= self.max_probability_difference:
            over.append(f"max |probability difference| {agreement.max_probability_difference:.3g} > "
                        f"{self.max_probability_difference:g}")
        if self.flipped_pixel_share is not None and not agreement.flipped_pixel_share <= self.flipped_pixel_share:
            over.append(f"{agreement.flipped_pixel_share:.2%} of pixels flip class at {THRESHOLD:g} > "
                        f"{self.flipped_pixel_share:.2%}")
        return over

    def as_dict(self) -> dict:
        return asdict(self)


# fp32: anything further than this is a broken export (a correct trace matches torch to 1e-7), refused.
FP32_TOLERANCE = Tolerance(max_probability_difference=1e-3)
# int8: dynamic quantisation moves every probability a little; the map must stay the model's: at most 1 pixel in 200
# changing class, and no pixel moving by more than 0.5 (a confident answer reversed). A trained tiny SAM is far within
# (0.008, no pixel); the demo model (11 of 16 epochs) is over (0.71, 0.27%), as are random tiny SAMs (~2% flip).
INT8_TOLERANCE = Tolerance(max_probability_difference=0.5, flipped_pixel_share=0.005)
TOLERANCES = {None: FP32_TOLERANCE, "int8": INT8_TOLERANCE}


def check_batch(model: nn.Module, quantize: Optional[str]) -> tuple[torch.Tensor, str]:
    """The batch a graph is checked on, and its description for onnx_config.json."""
    if quantize is None:
        generator = torch.Generator().manual_seed(NOISE_SEED)
        noise = torch.randn(CHECK_BATCH, model.input_channels, model.image_size, model.image_size, generator=generator)
        return noise, f"a seeded batch of {CHECK_BATCH} standard-normal pixel_values"
    count = max(CHECK_BATCH, -(-CHECK_PIXELS // model.image_size**2))
    return contract_batch(model, count), (f"{count} synthetic landslide scenes (data.synthetic, seeds ({SCENE_SEED}, "
                                          f"i)) of {model.image_size} px made into pixel_values by the model's "
                                          "contract")


def contract_batch(model: nn.Module, count: int) -> torch.Tensor:
    """(count, C, S, S) pixel_values as mapping makes them: scenes given as the contract's band values, then scaled
    (`pixels_from_bands`) and normalised (`normalize_pixels`) by the model's own image processor."""
    from ..data.synthetic import make_synthetic_scene

    processor = model.image_processor
    scenes = [make_synthetic_scene(model.image_size, seed=(SCENE_SEED, index))[0] for index in range(count)]
    pixels = [processor.pixels_from_bands(*band_values(processor, scene)) for scene in scenes]
    return processor.normalize_pixels(torch.from_numpy(np.stack(pixels)))


def band_values(processor: TransLandSegImageProcessor, scene: np.ndarray) -> tuple[np.ndarray, LinearScaler]:
    """An (S, S, 3) 8-bit scene as the (C, S, S) band values the contract reads, and the scaler that makes them
    pixels again: RGB at the contract's scale (8-bit, or x divisor / 255; a per-scene stretch is taken as already
    applied), each extra band (near-infrared, slope, DEM, ...) one of the scene's channels standardised, at the
    contract's band_mean / band_std."""
    if processor.scale == "percentile":
        scaler = LinearScaler(np.zeros(3, np.float32), np.full(3, 255.0, np.float32))
    else:
        scaler = processor.fixed_scaler()
    rgb = scene.transpose(2, 0, 1).astype(np.float32) + 0.5  # the middle of each 8-bit step: scaling gives it back
    rgb *= scaler.high[:, None, None] / np.float32(255.0)
    extra = [mean + std * standardised(rgb[index % 3])
             for index, (mean, std) in enumerate(zip(processor.band_mean, processor.band_std))]
    return np.concatenate([rgb, np.asarray(extra, np.float32).reshape(-1, *rgb.shape[1:])]), scaler


def standardised(channel: np.ndarray) -> np.ndarray:
    return (channel - channel.mean()) / (channel.std() + 1e-6)


def compare(expected: np.ndarray, got: np.ndarray, measured_on: str) -> Agreement:
    """Two probability maps of one batch (torch's, the graph's) compared, pixel by pixel."""
    flipped = float(np.mean((got > THRESHOLD) != (expected > THRESHOLD)))
    return Agreement(float(np.abs(got - expected).max()), flipped, measured_on)
