"""A synthetic landslide event before and after, with a model whose output is known, so the event-inventory tutorial
(docs/tutorials/event-inventory.md) runs offline; the tests' event (tests/helpers/event.py) draws its scars and
builds its model with the functions here.

    python scripts/synthetic_event.py --output eventdemo

writes, under OUTPUT, on one 10 m grid in UTM zone 45N:
- `before.tif`, `after.tif`: float32 surface reflectance of B2, B3, B4 and B8 (band descriptions), NaN where a
  cloud was masked, as `translandseg imagery` leaves a composite: before, vegetated slopes with a few bare patches
  (a quarry, a riverbed, old scars), one of them under a cloud; after, the same patches and new scars whose areas
  are drawn from a power law p(A) ~ A^-alpha, some only partly stripped, and another cloud;
- `dem.tif`: elevation in metres at 30 m (the terrain of scripts/synthetic_sentinel2.py);
- `truth.tif` (uint8: 0 vegetation, 1 new scar, 2 bare before and after) and `truth.json` (alpha, each scar's
  box, area and bare fraction, the clouds, the dates);
- `model/`: an exported ONNX folder (`translandseg predict --backend onnxruntime` loads it) whose graph is
  logit = LOGIT_SLOPE * (NDVI_THRESHOLD - NDVI) per pixel: bare ground (NDVI ~0.2) maps at probability ~0.98,
  vegetation (NDVI ~0.7) at ~0, a partly stripped slope in between.

Scars and patches are rectangles of whole pixels, at least GAP pixels apart, so each is one polygon of a known area.
It is not real imagery.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

CHANNELS = ("B2", "B3", "B4", "B8")  # what the model reads, in its contract's order
NDVI_THRESHOLD, LOGIT_SLOPE = 0.3, 50.0  # the model: logit = LOGIT_SLOPE * (NDVI_THRESHOLD - NDVI)
INPUT_SIDE = 64  # the model's input and training tile (px): no resizing, so the map is the per-pixel formula
GAP = 3  # pixels between any two rectangles: each is its own polygon

# The tutorial's event: a 3.84 km square, 100 scars of 12 to 600 pixels (1 px = 100 m2).
SIDE, MARGIN = 384, 8
POWER_LAW = dict(alpha=2.3, xmin_px=12, xmax_px=600, count=100)
PATCHES = [(40, 40, 10, 14), (150, 300, 12, 12), (330, 60, 6, 60), (200, 180, 9, 11), (276, 252, 14, 16)]
CLOUDS = {"before": (260, 230, 60, 80), "after": (20, 220, 90, 120)}  # row, col, height, width
# Scars only partly stripped: (share of the scars, the probability of their mix of soil and canopy). The model reads
# RGB in 8-bit steps, which maps them about 0.07 lower: mostly medium confidence, and low, mapped in part.
PROBABILITIES = {"partly stripped": (0.15, 0.75), "barely stripped": (0.08, 0.62)}
EVENT_DATE, DATES = "2023-07-14", {"before": "2023-05-02", "after": "2023-07-20"}
NOISE = 0.002  # multiplicative, per pixel and band: small, so a partly stripped scar stays one polygon
# Surface reflectance (L2A) of CHANNELS: green canopy dark in the visible, bright in the near infrared (NDVI 0.80);
# fresh soil brighter in the red than in the blue (NDVI 0.20).
VEGETATION = {"B2": 0.03, "B3": 0.06, "B4": 0.035, "B8": 0.32}
BARE_SOIL = {"B2": 0.10, "B3": 0.13, "B4": 0.16, "B8": 0.24}


# --- the truth's geometry (shared with tests/helpers/event.py) ---------------------------------------------------
def power_law_areas(rng, alpha: float, xmin_px: int, xmax_px: int, count: int) -> np.ndarray:
    """`count` areas (px) from p(A) ~ A^-alpha above xmin (inverse transform sampling), redrawn above xmax."""
    areas = []
    for _ in range(100 * count):  # bounded: P(A > xmax) is a few per cent
        area = xmin_px * (1 - rng.random()) ** (-1 / (alpha - 1))
        if area <= xmax_px:
            areas.append(area)
        if len(areas) == count:
            return np.asarray(areas)
    raise RuntimeError("too many draws above xmax: lower alpha's tail or raise xmax")


def rectangle(area_px: float, rng) -> tuple[int, int]:
    """A height and width of about `area_px` pixels, of aspect ratio 1 to 2."""
    aspect = rng.uniform(1.0, 2.0)
    height = max(2, round(np.sqrt(area_px * aspect)))
    return height, max(2, round(area_px / height))


def place(shapes, blocked: np.ndarray, rng, margin: int, gap: int = GAP, tries: int = 2000) -> list:
    """(row, col, h, w) for each (h, w), `margin` pixels inside `blocked`'s square and `gap` pixels from each other
    and from `blocked`."""
    placed, taken, side = [], blocked.copy(), blocked.shape[0]
    low, high = margin + gap, side - margin - gap
    for height, width in shapes:
        for _ in range(tries):
            row, col = int(rng.integers(low, high - height)), int(rng.integers(low, high - width))
            if not taken[row - gap:row + height + gap, col - gap:col + width + gap].any():
                break
        else:
            raise RuntimeError(f"no room for a {height} x {width} scar")
        taken[row:row + height, col:col + width] = True
        placed.append((row, col, height, width))
    return placed


def box_mask(boxes, side: int) -> np.ndarray:
    mask = np.zeros((side, side), bool)
    for row, col, height, width in boxes:
        mask[row:row + height, col:col + width] = True
    return mask


# --- the model (shared with tests/helpers/event.py) --------------------------------------------------------------
def bare_soil_contract() -> dict:
    """The model reads B2, B3, B4, B8 as reflectance (sensor value / 10000): RGB as value * 255 in 8-bit steps, then
    / 255 (mean 0, std 1), B8 as it is (band mean 0, std 1); tiles of INPUT_SIDE px at 10 m, never resized."""
    return dict(bands=[1, 2, 3, 4], scale="divisor", divisor=1.0, image_mean=[0.0] * 3, image_std=[1.0] * 3,
                input_size=INPUT_SIDE, tile_size=INPUT_SIDE, ground_resolution=10.0, band_names=list(CHANNELS),
                band_mean=[0.0], band_std=[1.0], sensor="Sentinel-2 MSI", product_level="L2A",
                sensor_bands=list(CHANNELS), sensor_divisors=[10000.0] * 4)


def bare_soil_graph():
    """pixel_values (batch, 4, S, S) -> logits (batch, 1, S, S) = LOGIT_SLOPE * (NDVI_THRESHOLD - NDVI), NDVI from
    channels 3 (B4, red) and 4 (B8, NIR)."""
    from onnx import TensorProto, helper

    def constant(name, values, kind=TensorProto.FLOAT):
        return helper.make_tensor(name, kind, [len(values)], values)

    nodes = [
        helper.make_node("Split", ["pixel_values", "split"], ["blue", "green", "red", "nir"], axis=1),
        helper.make_node("Sub", ["nir", "red"], ["difference"]),
        helper.make_node("Add", ["nir", "red"], ["total"]),
        helper.make_node("Add", ["total", "epsilon"], ["safe_total"]),
        helper.make_node("Div", ["difference", "safe_total"], ["ndvi"]),
        helper.make_node("Sub", ["threshold", "ndvi"], ["below"]),
        helper.make_node("Mul", ["below", "slope"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "bare_soil_ndvi",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 4, INPUT_SIDE, INPUT_SIDE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1, INPUT_SIDE, INPUT_SIDE])],
        initializer=[constant("split", [1, 1, 1, 1], TensorProto.INT64), constant("epsilon", [1e-6]),
                     constant("threshold", [NDVI_THRESHOLD]), constant("slope", [LOGIT_SLOPE])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="scripts.synthetic_event")


def write_bare_soil_model(folder) -> Path:
    """The exported folder `OnnxSegmentationModel` loads: model.onnx, preprocessor_config.json, onnx_config.json."""
    import onnx

    from translandseg_hf.image_processing import TransLandSegImageProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = bare_soil_graph()
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(folder / "model.onnx"))
    TransLandSegImageProcessor(**bare_soil_contract()).save_pretrained(str(folder))
    config = {"source": None, "model": {"kind": "bare-soil NDVI (scripts/synthetic_event.py)"}, "input_name": "pixel_values",
              "output_name": "logits", "image_size": INPUT_SIDE, "input_channels": 4, "dynamic_axes": ["batch"],
              "opset": 17, "quantization": None, "within_tolerance": True}
    (folder / "onnx_config.json").write_text(json.dumps(config, indent=2))
    return folder


# --- the tutorial's scenes ---------------------------------------------------------------------------------------
def bare_fraction(probability: float, vegetation: dict, soil: dict) -> float:
    """The share of bare soil in a pixel that the model maps at `probability`: NDVI of the linear mix solved for
    NDVI = NDVI_THRESHOLD - logit / LOGIT_SLOPE."""
    target = NDVI_THRESHOLD - np.log(probability / (1 - probability)) / LOGIT_SLOPE
    red, nir = vegetation["B4"], vegetation["B8"]
    d_red, d_nir = soil["B4"] - red, soil["B8"] - nir
    return float((red * (1 + target) - nir * (1 - target)) / (d_nir * (1 - target) - d_red * (1 + target)))


def scars(rng, vegetation: dict, soil: dict) -> tuple[list, list]:
    """The new scars' boxes (power-law areas, clear of the patches and of the post-event cloud) and the bare
    fraction of each: most fully stripped, PROBABILITIES' shares only partly."""
    drawn = power_law_areas(rng, **POWER_LAW)
    blocked = box_mask(PATCHES, SIDE) | box_mask([CLOUDS["after"]], SIDE)
    boxes = place([rectangle(area, rng) for area in drawn], blocked, rng, MARGIN)
    fractions = np.ones(len(boxes))
    order = rng.permutation(len(boxes))
    start = 0
    for share, probability in PROBABILITIES.values():
        count = round(share * len(boxes))
        fractions[order[start:start + count]] = bare_fraction(probability, vegetation, soil)
        start += count
    return boxes, [float(f) for f in fractions]


def reflectance(bare: np.ndarray, cloud: np.ndarray, shade: np.ndarray, rng, vegetation, soil) -> np.ndarray:
    """(4, SIDE, SIDE) float32: vegetation mixed with bare soil by `bare` (0-1), lit by `shade`, NaN under `cloud`."""
    bands = []
    for band in CHANNELS:
        values = (vegetation[band] + (soil[band] - vegetation[band]) * bare) * shade
        values = values * rng.normal(1.0, NOISE, values.shape)
        bands.append(np.where(cloud, np.nan, values))
    return np.stack(bands).astype(np.float32)


def hillshade(dem: np.ndarray, cell: float = 10.0) -> np.ndarray:
    """0.9 to 1.1: the terrain's light from the north-west, so the slopes show in the pictures."""
    dy, dx = np.gradient(dem, cell)
    lit = (-dx + dy) / np.sqrt(2)  # rising to the east darkens, as does falling to the south
    return 1 + 0.1 * np.tanh(3 * (lit - lit.mean()))


def write_raster(path: Path, array: np.ndarray, resolution: float, nodata=None, descriptions=()) -> Path:
    """A GeoTIFF of `array` ((bands,) H, W) on the tutorial's grid (synthetic_sentinel2's UTM 45N origin)."""
    import rasterio
    from rasterio.transform import from_origin
    from synthetic_sentinel2 import CRS, ORIGIN

    array = array[None] if array.ndim == 2 else array
    profile = dict(driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0],
                   dtype=array.dtype.name, crs=CRS, transform=from_origin(*ORIGIN, resolution, resolution),
                   nodata=nodata, tiled=True, blockxsize=128, blockysize=128, compress="deflate")
    with rasterio.open(path, "w", **profile) as raster:
        raster.write(array)
        for index, name in enumerate(descriptions, start=1):
            raster.set_band_description(index, name)
    return path


def write_event(output: Path, seed: int) -> dict:
    """The two dates' rasters, the DEM, the truth and the model; the truth's record (also truth.json)."""
    from synthetic_sentinel2 import elevation

    output.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vegetation, soil = VEGETATION, BARE_SOIL
    boxes, fractions = scars(rng, vegetation, soil)
    patches = box_mask(PATCHES, SIDE)
    shade = hillshade(elevation(SIDE))
    new = np.zeros((SIDE, SIDE), np.float32)
    for (row, col, height, width), fraction in zip(boxes, fractions):
        new[row:row + height, col:col + width] = fraction
    for date, bare in (("before", patches.astype(np.float32)), ("after", np.maximum(patches, new))):
        cloud = box_mask([CLOUDS[date]], SIDE)
        write_raster(output / f"{date}.tif", reflectance(bare, cloud, shade, rng, vegetation, soil), 10.0,
                     nodata=float("nan"), descriptions=CHANNELS)
    write_raster(output / "dem.tif", elevation(SIDE // 3, cell=30.0).astype(np.float32), 30.0)
    truth = np.where(new > 0, 1, np.where(patches, 2, 0)).astype(np.uint8)
    write_raster(output / "truth.tif", truth, 10.0)
    write_bare_soil_model(output / "model")
    record = {"alpha": POWER_LAW["alpha"], "event_date": EVENT_DATE, "dates": DATES, "clouds": CLOUDS,
              "patches": PATCHES, "pixel_area_m2": 100.0,
              "scars": [{"box": list(box), "area_m2": box[2] * box[3] * 100.0, "bare_fraction": round(fraction, 4)}
                        for box, fraction in zip(boxes, fractions)]}
    (output / "truth.json").write_text(json.dumps(record, indent=1))
    return record


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="Folder to write into.")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    record = write_event(args.output, args.seed)
    areas = [scar["area_m2"] for scar in record["scars"]]
    print(f"wrote {args.output}: before.tif ({DATES['before']}), after.tif ({DATES['after']}), dem.tif, truth.tif, "
          f"truth.json and model/; {len(areas)} new scars of {min(areas):.0f} to {max(areas):.0f} m2 "
          f"(power law, alpha {POWER_LAW['alpha']}), {len(PATCHES)} bare patches before and after")


if __name__ == "__main__":
    main()
