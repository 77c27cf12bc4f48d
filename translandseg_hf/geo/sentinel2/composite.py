"""Scenes found for an area and dates as one cloud-free raster on one grid (`translandseg imagery`, issue 39).

- The grid: the UTM zone of the AOI's centroid (WGS 84 / UTM, north or south), at the model's ground resolution
  (10 m for Landslide4Sense), its edges on whole multiples of the resolution, covering the AOI's bounds.
- Each scene is stacked by `Sentinel2Stack` straight onto that grid (the model's channels in its order, on the
  dataset's scale; offsets, B10 and DEM rules as `translandseg stack` applies them), reprojected by GDAL's warper.
  One resampling method per layer (`RESAMPLING`): reflectance bands nearest neighbour (as the stack resamples its
  20 m and 60 m bands: no value invented, none mixed across a cloud's edge); the cloud mask (SCL classes or
  s2cloudless) nearest (classes); the DEM bilinear (as the stack reads it).
- Each scene's cloud mask (`clouds.cloud_mask`) is computed on its own grid, put on the composite's by nearest
  neighbour, and its pixels become nodata; each output pixel takes the first scene, in the order given, with a
  valid cloud-free value there, so a cloud in one scene is filled from the next.
- Block by block (`BLOCK` pixels square): memory holds the output's block and one scene's, each scene's mask (one
  byte per pixel of the AOI on its grid), and GDAL's block cache, bounded to 128 MB: 50 km x 50 km at 10 m from 4
  synthetic scenes peaked at 0.59 GiB RSS. A scene is opened and its mask made only when a block first needs it, so
  the scenes after those that fill every block are never read; a grid over MAX_COMPOSITE_PIXELS is refused first.

Outputs in the folder: composite.tif (float32 COG, NaN where no scene has a value), source.tif (uint16 COG, the
index of the scene in the order given, `SOURCE_NODATA` where none), scenes.gpkg (one row per scene used, its share
of the grid) and imagery.json (the search record, the grid, every scene's masked share and why it was used or not).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import rasterio
import shapely
from pyogrio.raw import write as write_layer
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window, bounds as window_bounds
from rasterio.windows import transform as window_transform

from ...io_utils import StagedFiles
from ..aoi import WGS84, as_aoi
from ..cog import cog_tiles, write_cog
from ..grid import Grid, utm_crs
from ..map_files.polygons import POLYGON_FILE_OPTIONS
from ..opening import open_raster
from ..stac_search import ORDER_KEYS, ORDERS
from .clouds import CloudMask, cloud_mask
from .stack import STACK_TAG, BoundsOutsideProduct, Sentinel2Stack, StackRecipe, recipe_of
from .terrain import DENSIFY_POINTS
from .write import GDAL_CACHE_BYTES

PathLike = Union[str, os.PathLike]
BLOCK = 512  # composite pixels square per block: 14 float32 channels of 4 scenes ~ 60 MB
SOURCE_NODATA = 65535  # source.tif where no scene has a cloud-free value
RESAMPLING = {"reflectance": "nearest", "cloud mask": "nearest", "dem": "bilinear"}
OUTPUTS = ("composite.tif", "source.tif", "scenes.gpkg", "imagery.json")
# The largest composite made, in pixels of the grid and in 10 m pixels of its area (MASK_RESOLUTION), whichever is
# more. The rasters are written block by block, but each scene read holds its cloud mask whole: one byte per 10 m
# pixel of the grid's extent it covers (a 10,980 x 10,980 px tile cut to the extent: at most 120.6 M bytes). At the
# limit that is 150 MB a scene, ~1 GB with the blocks and GDAL's cache where six scenes are needed; the work files
# hold 4 bytes a channel a pixel (14 channels: 8.4 GB, twice while the COGs are written). A whole tile must fit.
MAX_COMPOSITE_PIXELS = 150_000_000  # 12,247 px square: 15,000 km2 at 10 m, one tile (12,056 km2) and its margins
MASK_RESOLUTION = 10.0  # metres: cloud masks are made on the product's 10 m grid, whatever the composite's


def composite_grid(aoi, resolution: float, max_pixels: Optional[int] = None) -> Grid:
    """The UTM grid of the AOI's centroid's zone at `resolution`, on whole multiples of it, covering the AOI;
    refused (`check_composite_size`) over `max_pixels` (None: MAX_COMPOSITE_PIXELS), before anything is searched."""
    aoi = as_aoi(aoi)
    centroid = aoi.geometry.centroid
    crs = utm_crs(centroid.x, centroid.y)
    west, south, east, north = transform_bounds(WGS84, crs, *aoi.bounds, densify_pts=DENSIFY_POINTS)
    west, south = math.floor(west / resolution) * resolution, math.floor(south / resolution) * resolution
    east, north = math.ceil(east / resolution) * resolution, math.ceil(north / resolution) * resolution
    width, height = max(1, round((east - west) / resolution)), max(1, round((north - south) / resolution))
    grid = Grid(crs, from_origin(west, north, resolution, resolution), width, height, f"AOI {aoi.described}")
    check_composite_size(grid, MAX_COMPOSITE_PIXELS if max_pixels is None else max_pixels)
    return grid


def check_composite_size(grid: Grid, max_pixels: int) -> None:
    """ValueError naming the AOI, its grid in px and km, the resolution and the limit where the grid, or its area
    in 10 m pixels (where each scene's cloud mask is held whole), is over `max_pixels` (0: no limit)."""
    resolution = grid.resolution
    pixels = grid.width * grid.height
    at_mask = pixels * max(1.0, resolution / MASK_RESOLUTION) ** 2
    if not max_pixels or max(pixels, at_mask) <= max_pixels:
        return
    km = (grid.width * resolution / 1000, grid.height * resolution / 1000)
    masks = (f" ({at_mask:,.0f} px at the cloud masks' {MASK_RESOLUTION:g} m)" if at_mask > pixels else "")
    raise ValueError(f"{grid.path}: its composite grid is {grid.width:,} x {grid.height:,} = {pixels:,} px at "
                     f"{resolution:g} m ({km[0]:,.1f} x {km[1]:,.1f} km, {km[0] * km[1]:,.0f} km2){masks}, over the "
                     f"composite's limit of {max_pixels:,} px ({max_pixels * MASK_RESOLUTION ** 2 / 1e6:,.0f} km2 "
                     f"at {MASK_RESOLUTION:g} m: each scene's cloud mask is held whole); composite a smaller AOI, "
                     "or split the area into parts and composite each.")


def scene_href(scene) -> str:
    """Where a scene's product is read: its STAC item's own href (a found `Scene`), or a product path."""
    item = getattr(scene, "item", None)
    if item is None:
        return str(scene)
    href = item.get_self_href()
    if not href:
        raise ValueError(f"scene {scene.id}: its STAC item has no self link, so its assets cannot be located.")
    return href


class SceneOnGrid:
    """One scene stacked on the grid, with its cloud mask on its own grid (put on the grid block by block). Opened
    (`open`) only when a block first needs it: a scene after those that fill every block is never read."""

    def __init__(self, scene, recipe: StackRecipe, grid: Grid, kind: str, dem=None, offset=None,
                 fill_missing=False):
        self.scene, self.href = scene, scene_href(scene)
        self._given = dict(recipe=recipe, grid=grid, kind=kind, dem=dem, offset=offset, fill_missing=fill_missing)
        self.stack: Optional[Sentinel2Stack] = None
        self.mask: Optional[CloudMask] = None
        self.opened = self._closed = False

    def open(self) -> "SceneOnGrid":
        """The scene stacked on the grid and its cloud mask computed (held until `close`), once."""
        if self.opened:
            return self
        given, grid = self._given, self._given["grid"]
        stack = Sentinel2Stack(self.href, given["recipe"], dem=given["dem"], offset=given["offset"],
                               fill_missing=given["fill_missing"], grid=(grid.crs, grid.transform, grid.width,
                                                                         grid.height))
        self.stack = stack
        try:
            self.mask = self._mask(given["kind"], grid)
        except BaseException:
            self.stack = None
            stack.close()
            raise
        self.opened = True
        return self

    def _mask(self, kind: str, grid: Grid) -> Optional[CloudMask]:
        """The scene's mask on its own grid, cut to the composite's extent; None where the scene misses it."""
        product = self.stack.product
        with open_raster(product.band(next(iter(product.bands)))) as band:
            crs = band.crs
        extent = transform_bounds(grid.crs, crs, *grid.record()["bounds"], densify_pts=DENSIFY_POINTS)
        try:
            return cloud_mask(kind, self.href, bounds=extent)
        except BoundsOutsideProduct:
            return None

    def cloud(self, window: Window, grid: Grid) -> np.ndarray:
        """(h, w) bool: True where the scene's mask covers the block (or its mask does not reach)."""
        shape = (int(window.height), int(window.width))
        if self.mask is None:
            return np.ones(shape, bool)
        on_grid = np.ones(shape, np.uint8)
        # the bool mask viewed as bytes: not copied for every block
        reproject(self.mask.mask.view(np.uint8), on_grid, src_transform=self.mask.transform,
                  src_crs=self.mask.crs, dst_transform=window_transform(window, grid.transform), dst_crs=grid.crs,
                  resampling=Resampling.nearest, src_nodata=None, dst_nodata=1, init_dest_nodata=True)
        return on_grid.astype(bool)

    def close(self) -> None:
        if self.opened and not self._closed:
            self.stack.close()
            self._closed = True


@dataclass
class Composite:
    """What `composite` wrote: the output paths, the grid, and per scene (in the order used) its pixels supplied."""

    folder: Path
    grid: Grid
    scenes: list
    supplied: list
    covered_share: float
    record: dict

    def path(self, name: str) -> Path:
        return self.folder / name


def composite(scenes: Sequence, aoi, contract, output_dir: PathLike, ground_resolution: Optional[float] = None,
              cloud_mask_kind: str = "scl", order: Optional[str] = None, search=None, dem: Optional[PathLike] = None,
              offset: Optional[float] = None, fill_missing: bool = False, block: int = BLOCK) -> Composite:
    """Composite `scenes` (found `Scene`s, or product paths, first preferred; `order` one of ORDERS re-sorts found
    scenes) over `aoi` for the model whose `contract` (or `StackRecipe`) names its channels, at `ground_resolution`
    (default: the contract's), each masked by `cloud_mask_kind`; writes OUTPUTS into `output_dir`. `search`: the
    `SearchResult` the scenes came from, recorded in imagery.json."""
    if not scenes:
        raise ValueError("no scene to composite: the search found none (see its message).")
    if order is not None:
        if order not in ORDERS:
            raise ValueError(f"--order {order!r}: choose one of {', '.join(ORDERS)}.")
        scenes = sorted(scenes, key=ORDER_KEYS[order])
    aoi = as_aoi(aoi)
    grid = grid_for(aoi, contract, ground_resolution)  # an AOI over the limit: refused before any scene is read
    recipe = contract if isinstance(contract, StackRecipe) else recipe_of(contract, scene_href(scenes[0]))
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    opened: list = []
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):  # not GDAL's 5% of RAM: a bounded block cache
            for scene in scenes:
                opened.append(SceneOnGrid(scene, recipe, grid, cloud_mask_kind, dem, offset, fill_missing))
            supplied = _write_rasters(opened, grid, recipe, folder, block)
    finally:
        for scene in opened:
            scene.close()
    total = grid.width * grid.height
    covered = float(sum(supplied)) / total
    record = _record(search, grid, opened, supplied, total, cloud_mask_kind, covered)
    _write_scenes(folder / "scenes.gpkg", opened, supplied, total)
    (folder / "imagery.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return Composite(folder, grid, [s.scene for s in opened], supplied, covered, record)


def grid_for(aoi, contract, ground_resolution: Optional[float] = None) -> Grid:
    """`composite_grid` at `ground_resolution` (default: the model's `contract`'s): callers make it before searching,
    so an AOI over the limit is refused before any request."""
    resolution = ground_resolution or _contract_field(contract, "ground_resolution")
    if not resolution:
        raise ValueError("the model's contract states no ground_resolution: pass ground_resolution (metres).")
    return composite_grid(aoi, float(resolution))


def _contract_field(contract, name: str):
    fields = dict(contract) if isinstance(contract, dict) else vars(contract)
    return fields.get(name)


def _write_rasters(opened: list, grid: Grid, recipe: StackRecipe, folder: Path, block: int) -> list:
    """composite.tif and source.tif, block by block through tiled work files, then as COGs; pixels per scene."""
    staged = StagedFiles()
    targets = {name: folder / name for name in ("composite.tif", "source.tif")}
    work = {name: staged.scratch_for(target) for name, target in targets.items()}
    common = dict(driver="GTiff", height=grid.height, width=grid.width, crs=grid.crs, transform=grid.transform,
                  BIGTIFF="IF_SAFER", **cog_tiles())
    supplied = [0] * len(opened)
    try:
        with rasterio.open(work["composite.tif"], "w", count=len(recipe.channels), dtype="float32",
                           nodata=float("nan"), interleave="band", **common) as values, \
                rasterio.open(work["source.tif"], "w", count=1, dtype="uint16", nodata=SOURCE_NODATA,
                              **common) as source:
            values.update_tags(**{STACK_TAG: "sensor values / divisor"})  # predict reads its channels by name
            for index, name in enumerate(recipe.channels, start=1):
                values.set_band_description(index, name)
            for row in range(0, grid.height, block):
                for col in range(0, grid.width, block):
                    window = Window(col, row, min(block, grid.width - col), min(block, grid.height - row))
                    out, origin = _block(opened, grid, window, len(recipe.channels), supplied)
                    values.write(out, window=window)
                    source.write(origin, 1, window=window)
        write_cog(work["composite.tif"], staged.path_for(targets["composite.tif"]), "float32", "AVERAGE")
        write_cog(work["source.tif"], staged.path_for(targets["source.tif"]), "uint16", "NEAREST")
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    return supplied


def _block(opened: list, grid: Grid, window: Window, count: int, supplied: list) -> tuple[np.ndarray, np.ndarray]:
    """One block: each pixel from the first scene with a finite, unmasked value there."""
    shape = (int(window.height), int(window.width))
    out = np.full((count, *shape), np.nan, np.float32)
    origin = np.full(shape, SOURCE_NODATA, np.uint16)
    empty = np.ones(shape, bool)
    for index, scene in enumerate(opened):
        if not empty.any():
            break
        if scene.open().mask is None:
            continue
        values = scene.stack.read(window=window)
        take = empty & np.isfinite(values).all(axis=0) & ~scene.cloud(window, grid)
        out[:, take] = values[:, take]
        origin[take] = index
        empty &= ~take
        supplied[index] += int(take.sum())
    return out, origin


def _scene_fields(scene) -> dict:
    found = getattr(scene, "item", None) is not None
    return {"id": scene.id if found else Path(str(scene)).name,
            "datetime": scene.datetime.isoformat() if found and scene.datetime else None,
            "platform": scene.platform if found else None,
            "cloud_cover": scene.cloud_cover if found else None}


def _record(search, grid: Grid, opened: list, supplied: list, total: int, kind: str, covered: float) -> dict:
    """imagery.json: the search, the grid, the resampling, and each scene with its masked share and its use."""
    entries = []
    for index, (scene, pixels) in enumerate(zip(opened, supplied)):
        reason = ("supplies the pixels source.tif marks with its index" if pixels else
                  "not read: the scenes before it had filled every pixel by then" if not scene.opened else
                  "does not reach the grid" if scene.mask is None else
                  f"masked ({kind}) wherever it reaches the grid" if scene.mask.share >= 1 else
                  "every pixel it has clear was already filled by the scenes before it")
        entries.append({"index": index, **_scene_fields(scene.scene), "href": scene.href,
                        "masked_share": None if scene.mask is None else scene.mask.share,
                        "supplied_share": pixels / total, "used": bool(pixels), "reason": reason,
                        "notes": (list(scene.stack.notes) if scene.opened else [])
                        + ([] if scene.mask is None else list(scene.mask.notes))})
    return {"search": None if search is None else search.record(), "grid": grid.record(), "cloud_mask": kind,
            "resampling": RESAMPLING, "covered_share": covered, "source_nodata": SOURCE_NODATA, "scenes": entries}


def _write_scenes(path: Path, opened: list, supplied: list, total: int) -> None:
    """scenes.gpkg: one row per scene used, its footprint (WGS 84) and the share of the grid it supplied."""
    rows = [(scene, pixels) for scene, pixels in zip(opened, supplied) if pixels]
    fields = ["id", "datetime", "platform", "cloud_cover", "share"]
    columns = {name: [] for name in fields}
    geometry = []
    for scene, pixels in rows:
        for name, value in _scene_fields(scene.scene).items():
            columns[name].append(value)
        columns["share"].append(pixels / total)
        footprint = _footprint(scene)
        geometry.append(shapely.to_wkb(shapely.MultiPolygon([footprint]) if footprint.geom_type == "Polygon"
                                       else footprint))
    columns["cloud_cover"] = [np.nan if value is None else value for value in columns["cloud_cover"]]
    data = [np.array(columns[name], dtype=np.float64 if name in ("cloud_cover", "share") else object)
            for name in fields]
    if path.exists():
        path.unlink()
    write_layer(str(path), np.array(geometry, dtype=object), data, fields, layer="scenes", driver="GPKG",
                geometry_type="MultiPolygon", crs=WGS84, **POLYGON_FILE_OPTIONS["GPKG"])


def _footprint(scene: SceneOnGrid):
    footprint = getattr(scene.scene, "footprint", None)
    if footprint is not None:
        return footprint
    mask = scene.mask
    box = shapely.box(*window_bounds(Window(0, 0, mask.mask.shape[1], mask.mask.shape[0]), mask.transform))
    return shapely.box(*transform_bounds(mask.crs, WGS84, *box.bounds))
