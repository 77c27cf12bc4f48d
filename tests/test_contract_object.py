"""The contract and what the mapping side makes of it: its fallback, overrides, tile plans and fitted scalers
(`inference.contract`), its wording (`cards`), without new saved fields."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from translandseg_hf.cards import SCALING_TEXT, contract_lines, describe_contract
from translandseg_hf.geo.decimated import OVERVIEW_SIDE
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.inference.contract import TilePlan, contract_of, fit_scaler, plan_tiles, with_overrides


class FakeDataset:
    """A duck-typed rasterio dataset: `read(bands, out_shape=, masked=True)`, recording what was asked."""

    def __init__(self, values: np.ndarray):
        self.values, self.height, self.width, self.calls = values, values.shape[1], values.shape[2], []

    def read(self, bands, out_shape, masked):
        self.calls.append((bands, out_shape, masked))
        step = self.height // out_shape[1]
        return np.ma.masked_equal(self.values[[b - 1 for b in bands], ::step, ::step], 0)


def test_of_model_returns_the_models_contract_or_rgb_at_its_input_side():
    contract = TransLandSegImageProcessor(input_size=64, scale="divisor", divisor=10)
    assert contract_of(SimpleNamespace(image_processor=contract, image_size=64)) is contract
    fallback = contract_of(SimpleNamespace(image_size=32))
    assert fallback.to_dict() == TransLandSegImageProcessor(input_size=32).to_dict()


def test_with_overrides_leaves_the_original_and_rejects_a_bad_value():
    contract = TransLandSegImageProcessor(bands=[4, 3, 2], scale="divisor", divisor=10)
    processor, notes = with_overrides(contract, percentiles=(1, 99), divisor=10)
    assert processor.percentiles == [1.0, 99.0] and contract.percentiles == [2.0, 98.0]
    assert notes == ["--percentiles 1,99 overrides the model's percentiles (2,98)"]
    with pytest.raises(ValueError, match="scale must be one of"):
        with_overrides(contract, scale="gamma")


def test_plan_tiles_is_a_method_returning_a_tile_plan():
    plan = plan_tiles(TransLandSegImageProcessor(tile_size=128, ground_resolution=10), 5.0)
    assert plan == TilePlan(256, "training tiles of 128 px at 10 m; scene at 5 m (the scene's transform)")


def test_fit_scaler_stretches_a_decimated_read_or_uses_the_fixed_scaler():
    values = np.arange(1, 3 * 2048 * 2048 + 1, dtype=np.float32).reshape(3, 2048, 2048) % 1000
    dataset = FakeDataset(values)
    stretch = fit_scaler(TransLandSegImageProcessor(scale="percentile", percentiles=(0, 100)), dataset, [3, 2, 1])
    assert dataset.calls == [([3, 2, 1], (3, OVERVIEW_SIDE, OVERVIEW_SIDE), True)]
    assert stretch.low.tolist() == [1.0, 1.0, 1.0] and stretch.high.tolist() == [999.0, 999.0, 999.0]
    fixed = fit_scaler(TransLandSegImageProcessor(scale="divisor", divisor=10), dataset, [1, 2, 3])
    assert fixed.high.tolist() == [10.0] * 3 and len(dataset.calls) == 1  # no read for a fixed scaler


@pytest.mark.parametrize("scale, line, card", [
    ("none", "8-bit values as they are", "none (8-bit values as they are)"),
    ("divisor", "value / 10 * 255", "`value / 10 * 255`, clipped"),
    ("percentile", "a 2-98 percentile stretch", "a per-scene 2-98 percentile stretch"),
])
def test_describe_and_describe_lines_word_the_scaling_from_one_table(scale, line, card):
    processor = TransLandSegImageProcessor(bands=[4, 3, 2], scale=scale, divisor=10, input_size=64, tile_size=128,
                                           ground_resolution=10)
    assert set(SCALING_TEXT) == {"none", "divisor", "percentile"}
    assert describe_contract(processor) == f"bands 4,3,2, {line}; tiles of 128 px at 10 m resized to 64 px"
    assert contract_lines(processor)[:4] == ["Bands (1-based, in channel order): 4, 3, 2", f"Scaling to 0-255: {card}",
                                          "Tile size: 128 px of the scene per model input, resized to 64 px",
                                          "Ground resolution of the training imagery: 10 m per pixel"]
    unknown = TransLandSegImageProcessor()
    assert describe_contract(unknown).endswith("tiles of 1024 px (ground resolution unknown) resized to 1024 px")
    assert contract_lines(unknown)[-1] == "Ground resolution of the training imagery: unknown"


def test_the_saved_contract_has_only_its_fields(tmp_path):
    processor = TransLandSegImageProcessor(bands=[4, 3, 2], scale="divisor", divisor=10, ground_resolution=10,
                                           band_names=["red", "green", "blue"])
    processor.save_pretrained(str(tmp_path))
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert sorted(saved) == sorted(["band_mean", "band_names", "band_std", "bands", "divisor", "ground_resolution",
                                    "image_mean", "image_processor_type", "image_std", "input_size", "percentiles",
                                    "scale", "tile_size"])


PREPROCESS_OVERRIDES = [  # (per-call arguments of preprocess, the pixel_values expected from a (8, 6) image of 51s)
    ({}, lambda p, raw: p.normalize_pixels(p.resize_to_input(raw))),
    ({"do_normalize": False}, lambda p, raw: p.resize_to_input(raw)),
    ({"do_resize": False}, lambda p, raw: p.normalize_pixels(raw)),
    ({"do_resize": False, "do_normalize": False}, lambda p, raw: raw),
    ({"input_size": 16, "do_normalize": False}, lambda p, raw: TransLandSegImageProcessor(input_size=16)
     .resize_to_input(raw)),
    ({"do_resize": False, "image_mean": [0.0, 0.0, 0.0], "image_std": [1.0, 1.0, 1.0]}, lambda p, raw: raw / 255.0),
]


@pytest.mark.parametrize("overrides, expected", PREPROCESS_OVERRIDES, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_preprocess_steps_and_values_are_switched_per_call_as_in_sams_processor(overrides, expected):
    import torch

    processor = TransLandSegImageProcessor(input_size=32)
    image = np.full((8, 6, 3), 51, dtype=np.uint8)
    raw = torch.full((1, 3, 8, 6), 51.0)
    values = processor.preprocess(image, **overrides)["pixel_values"]
    assert torch.allclose(values, expected(processor, raw), atol=1e-5)
    assert processor.preprocess(image)["pixel_values"].shape == (1, 3, 32, 32)  # the call left the processor as it was
