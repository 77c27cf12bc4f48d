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
ground (NDVI ~0.2) is mapped at probability ~0.98 and vegetation (NDVI ~0.7) at ~0. The model and the scars'
geometry are scripts/synthetic_event.py's, the event tutorial's generator.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
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


def _script(name: str):
    """scripts/NAME.py as a module (scripts are not a package), loaded once."""
    module_name = f"translandseg_script_{name}"
    if module_name not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(module_name, path)
        sys.modules[module_name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[module_name]


# The truth's geometry and the bare-soil model are the tutorial's (docs/tutorials/event-inventory.md): one
# implementation, in scripts/synthetic_event.py.
_event_script = _script("synthetic_event")
CHANNELS, GAP, INPUT_SIDE = _event_script.CHANNELS, _event_script.GAP, _event_script.INPUT_SIDE
NDVI_THRESHOLD, LOGIT_SLOPE = _event_script.NDVI_THRESHOLD, _event_script.LOGIT_SLOPE
power_law_areas, rectangle = _event_script.power_law_areas, _event_script.rectangle
place, box_mask = _event_script.place, _event_script.box_mask
bare_soil_contract, bare_soil_graph = _event_script.bare_soil_contract, _event_script.bare_soil_graph
write_bare_soil_model = _event_script.write_bare_soil_model

EVENT_DATE = dt.date(2023, 4, 1)
SIDE = 256  # 10 m pixels of each scene, square (2.56 km); SCL at 20 m is 128 x 128
MARGIN = 8  # the AOI is the scene less this many pixels on each side
POWER_LAW = dict(alpha=2.3, xmin_px=12, xmax_px=400, count=30)  # areas in 10 m pixels (1 px = 100 m2)
PATCHES = [(40, 40, 10, 14), (150, 60, 12, 12), (200, 200, 8, 20)]  # pre-existing bare ground: row, col, h, w
CLOUD_BOX = (16, 152, 64, 96)  # row, col, h, w of the post-event cloud (even: whole 20 m SCL pixels)
SCL_VEGETATION, SCL_CLOUD = 4, 9  # SCL classes: vegetation, cloud high probability (masked)
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


def event_truth(seed: int = 40) -> EventTruth:
    """The scars (power-law areas, fixed seed), the pre-existing patches and the cloud."""
    rng = np.random.default_rng(seed)
    drawn = power_law_areas(rng, POWER_LAW["alpha"], POWER_LAW["xmin_px"], POWER_LAW["xmax_px"], POWER_LAW["count"])
    patches, cloud = box_mask(PATCHES, SIDE), box_mask([CLOUD_BOX], SIDE)
    scars = place([rectangle(area, rng) for area in drawn], patches | cloud, rng, MARGIN)
    areas = np.asarray([height * width * 100.0 for _, _, height, width in scars])
    return EventTruth(scars, areas, POWER_LAW["alpha"], patches, box_mask(scars, SIDE), cloud)


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
