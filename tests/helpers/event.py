"""A landslide event from a known truth, served by a real STAC API (`translandseg event`, issue 40), and a model whose
output is known.

The ground: a square of vegetated slopes on the tests' 10 m UTM grid (`helpers.sentinel2.GRID_10M`), with bare
patches that were there before the event (quarries, old scars) and, after it, new bare scars whose areas are drawn
from a power law of known exponent (fixed seed), all rectangles of whole pixels a few pixels apart. Four L2A scenes
(B2, B3, B4, B8 and SCL, Earth Search's layout): the pre-event scene, the post-event scene (on the event day, with a
cloud in its SCL over part of it), and two decoys just outside the windows `translandseg event` searches by default
(120 days before, 60 after), bare everywhere and cloud-free: a window one day too wide puts one into a composite,
and then the scars vanish (pre) or the cloud is filled (post).

The model: an exported ONNX folder (`onnx_backend.runtime.OnnxSegmentationModel` loads it) whose graph is
logit = K * (NDVI_THRESHOLD - NDVI) per pixel, its contract reading the composite's reflectance as it is, so bare
ground (NDVI ~0.2) is mapped at probability ~0.98 and vegetation (NDVI ~0.7) at ~0.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pystac
import shapely
from rasterio.transform import Affine
from rasterio.warp import transform_bounds

from translandseg_hf.geo.stac_search import Scene

from helpers.rasters import write_raster
from helpers.sentinel2 import (BARE_SOIL, CLOUD, GRID_10M, S2CLOUDLESS_BANDS, UTM_45N, VEGETATION, truth_catalogue,
                               with_offset, write_stac_item)

EVENT_DATE = dt.date(2023, 4, 1)
SIDE = 256  # 10 m pixels of each scene, square (2.56 km); SCL at 20 m is 128 x 128
MARGIN = 8  # the AOI is the scene less this many pixels on each side
CHANNELS = ("B2", "B3", "B4", "B8")
POWER_LAW = dict(alpha=2.3, xmin_px=12, xmax_px=400, count=30)  # areas in 10 m pixels (1 px = 100 m2)
GAP = 3  # pixels between any two rectangles: each is its own polygon
PATCHES = [(40, 40, 10, 14), (150, 60, 12, 12), (200, 200, 8, 20)]  # pre-existing bare ground: row, col, h, w
CLOUD_BOX = (16, 152, 64, 96)  # row, col, h, w of the post-event cloud (even: whole 20 m SCL pixels)
SCL_VEGETATION, SCL_CLOUD = 4, 9  # SCL classes: vegetation, cloud high probability (masked)
NDVI_THRESHOLD, LOGIT_SLOPE = 0.3, 50.0  # the model: logit = LOGIT_SLOPE * (NDVI_THRESHOLD - NDVI)
INPUT_SIDE = 64  # the model's input and training tile (px): no resizing, so the map is the per-pixel formula
COLLECTION = "sentinel-2-l2a-test"  # helpers.sentinel2.served_items' collection


def reflectance(ground: tuple) -> dict:
    """Surface reflectance of B2, B3, B4, B8 from one of helpers.sentinel2's tuples (s2cloudless's band order; B3,
    which it lacks, halfway between B2 and B4)."""
    of = dict(zip(S2CLOUDLESS_BANDS, ground))
    return {"B2": of["B2"], "B3": (of["B2"] + of["B4"]) / 2, "B4": of["B4"], "B8": of["B8"]}


def ndvi(ground: tuple) -> float:
    values = reflectance(ground)
    return (values["B8"] - values["B4"]) / (values["B8"] + values["B4"])


@dataclass
class EventTruth:
    """What the synthetic event is, on the scenes' 10 m grid (SIDE x SIDE, origin GRID_10M)."""

    scars: list  # (row, col, height, width) of each new scar
    areas_m2: np.ndarray  # each scar's area (whole pixels)
    alpha: float  # the exponent its areas were drawn with: p(A) ~ A^-alpha
    patches: np.ndarray = field(repr=False)  # bool: bare before and after
    new: np.ndarray = field(repr=False)  # bool: the new scars
    cloud: np.ndarray = field(repr=False)  # bool: under the post-event cloud
    scenes: list = field(default_factory=list)  # the Scenes written (pre decoy, pre, post, post decoy)

    def scene(self, role: str) -> Scene:
        """The scene of `role`: pre, post, pre-decoy or post-decoy."""
        return self.scenes[("pre-decoy", "pre", "post", "post-decoy").index(role)]


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


def place(shapes, blocked: np.ndarray, rng, tries: int = 2000) -> list:
    """(row, col, h, w) for each (h, w), inside the AOI, GAP pixels from each other and from `blocked`."""
    placed, taken = [], blocked.copy()
    low, high = MARGIN + GAP, SIDE - MARGIN - GAP
    for height, width in shapes:
        for _ in range(tries):
            row, col = int(rng.integers(low, high - height)), int(rng.integers(low, high - width))
            if not taken[row - GAP:row + height + GAP, col - GAP:col + width + GAP].any():
                break
        else:
            raise RuntimeError(f"no room for a {height} x {width} scar")
        taken[row:row + height, col:col + width] = True
        placed.append((row, col, height, width))
    return placed


def box_mask(boxes) -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), bool)
    for row, col, height, width in boxes:
        mask[row:row + height, col:col + width] = True
    return mask


def event_truth(seed: int = 40) -> EventTruth:
    """The scars (power-law areas, fixed seed), the pre-existing patches and the cloud."""
    rng = np.random.default_rng(seed)
    drawn = power_law_areas(rng, POWER_LAW["alpha"], POWER_LAW["xmin_px"], POWER_LAW["xmax_px"], POWER_LAW["count"])
    patches, cloud = box_mask(PATCHES), box_mask([CLOUD_BOX])
    scars = place([rectangle(area, rng) for area in drawn], patches | cloud, rng)
    areas = np.asarray([height * width * 100.0 for _, _, height, width in scars])
    return EventTruth(scars, areas, POWER_LAW["alpha"], patches, box_mask(scars), cloud)


def digital_numbers(bare: np.ndarray, cloud: np.ndarray, seed: int) -> dict:
    """L2A digital numbers (reflectance x 10000 + the 04.00 baseline's 1000) with 2% noise: vegetation, bare soil
    where `bare`, cloud where `cloud`."""
    rng = np.random.default_rng(seed)
    grounds = [reflectance(VEGETATION), reflectance(BARE_SOIL), reflectance(CLOUD)]
    dn = {}
    for band in CHANNELS:
        values = np.where(cloud, grounds[2][band], np.where(bare, grounds[1][band], grounds[0][band]))
        values = values * rng.normal(1.0, 0.02, values.shape)
        dn[band] = np.round(values * 10000).astype(np.uint16)
    return with_offset(dn, 1000)


def write_scene(folder: Path, scene_id: str, when: dt.datetime, bare, cloud, seed: int) -> Scene:
    """One L2A STAC item with its COGs and its SCL (cloud class where `cloud`)."""
    path = write_stac_item(folder / scene_id / "item.json", digital_numbers(bare, cloud, seed), UTM_45N, GRID_10M)
    scl = np.where(cloud, SCL_CLOUD, SCL_VEGETATION).astype(np.uint8)[::2, ::2]
    write_raster(path.parent / "SCL.tif", scl, crs=UTM_45N, transform=GRID_10M @ Affine.scale(2), nodata=None)
    item = pystac.Item.from_file(str(path))
    item.add_asset("scl", pystac.Asset(href="./SCL.tif", media_type=pystac.MediaType.COG, roles=["data"]))
    item.save_object(include_self_link=False, dest_href=str(path))
    item = pystac.Item.from_file(str(path))
    return Scene(scene_id, when, "sentinel-2a", None, shapely.box(*item.bbox), item)


def write_event_scenes(folder, truth: EventTruth) -> list:
    """The four scenes, in `EventTruth.scene`'s order; their ids say their role and date."""
    folder, none = Path(folder), np.zeros((SIDE, SIDE), bool)
    everywhere = np.ones((SIDE, SIDE), bool)
    plan = [  # (day, bare ground, cloud)
        (EVENT_DATE - dt.timedelta(days=121), everywhere, none),  # one day before the default pre window
        (EVENT_DATE - dt.timedelta(days=45), truth.patches, none),
        (EVENT_DATE, truth.patches | truth.new, truth.cloud),  # the event day opens the post window
        (EVENT_DATE + dt.timedelta(days=61), everywhere, none),  # one day after the default post window
    ]
    truth.scenes = [write_scene(folder, f"S2A_T45RUL_{day:%Y%m%d}_L2A", dt.datetime.combine(
        day, dt.time(4, 52), tzinfo=dt.timezone.utc), bare, cloud, seed) for seed, (day, bare, cloud) in
        enumerate(plan)]
    return truth.scenes


def event_bounds() -> tuple:
    """W,S,E,N in WGS 84 of the scenes' rows and columns MARGIN to SIDE - MARGIN: the AOI."""
    inner = (GRID_10M.c + 10 * MARGIN, GRID_10M.f - 10 * (SIDE - MARGIN), GRID_10M.c + 10 * (SIDE - MARGIN),
             GRID_10M.f - 10 * MARGIN)
    return transform_bounds(UTM_45N, "EPSG:4326", *inner)


def event_bbox() -> str:
    return ",".join(f"{value:.7f}" for value in event_bounds())


@contextmanager
def event_catalogue(folder, truth: EventTruth):
    """A real STAC API (`rustac serve`) over the event's scenes, their assets served over HTTP by a RangeServer; its
    URL. Skips where the server cannot start."""
    from helpers.servers import RangeServer

    scenes = write_event_scenes(Path(folder) / "products", truth)
    with RangeServer(Path(folder) / "products") as assets, truth_catalogue(Path(folder), scenes, assets) as url:
        yield url


def on_grid(mask: np.ndarray, transform, height: int, width: int) -> np.ndarray:
    """The truth's `mask` on a north-up 10 m grid inside the scene (a composite's: its transform, height, width)."""
    col0, row0 = round((transform.c - GRID_10M.c) / 10), round((GRID_10M.f - transform.f) / 10)
    if col0 < 0 or row0 < 0 or row0 + height > SIDE or col0 + width > SIDE:
        raise ValueError(f"the grid (offset {row0}, {col0}, {height} x {width}) is not inside the truth's scene")
    return mask[row0:row0 + height, col0:col0 + width]


# --- the model ----------------------------------------------------------------------------------------------------
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
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tests.helpers.event")


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
    config = {"source": None, "model": {"kind": "bare-soil NDVI (tests.helpers.event)"}, "input_name": "pixel_values",
              "output_name": "logits", "image_size": INPUT_SIDE, "input_channels": 4, "dynamic_axes": ["batch"],
              "opset": 17, "quantization": None, "within_tolerance": True}
    (folder / "onnx_config.json").write_text(json.dumps(config, indent=2))
    return folder
