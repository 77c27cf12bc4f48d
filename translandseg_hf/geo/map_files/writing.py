"""Output rasters: probability (float32, NaN nodata), mask (uint8 0/1, 255 nodata) and, with test-time augmentation,
uncertainty (float32) as Cloud-Optimized GeoTIFFs.

Strips go into tiled work files compressed as the COGs will be (DEFLATE, by every core, while the model runs), and
their overview levels are made as they arrive (`overviews`); once the model is done, GDAL's COG driver writes each
output's header and directories alone and `cog_layout` copies the compressed tiles in, so nothing is read back or
recompressed. Each output appears under a temporary name beside its target and is renamed only when all are
complete, so an interrupted run never leaves a truncated file.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Optional
from xml.etree import ElementTree

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from ...io_utils import StagedFiles as StagedOutputs  # noqa: F401 (the name callers use)
from ..cog import compressed_tiles, write_cog
from ..georeferencing import placement
from ..opening import plain_images
from . import COLUMN_BLOCK
from .cog_layout import NotAssemblable, assemble_cog, check_tiles
from .overviews import OverviewPyramid, overview_factors

PROBABILITY_NODATA = float("nan")
MASK_NODATA = 255  # 0 and 1 are classes, so 255 marks pixels without data
LAYERS = {"probability": ("float32", PROBABILITY_NODATA, "AVERAGE"), "mask": ("uint8", MASK_NODATA, "NEAREST"),
          "uncertainty": ("float32", PROBABILITY_NODATA, "AVERAGE")}  # dtype, nodata, overview resampling


def work_profile(height: int, width: int, crs, transform: Optional[Affine], dtype: str, nodata, gcps=None,
                 rpcs=None) -> dict:
    """Tiled and compressed as the COG will be (`geo.cog.compressed_tiles`), with the input's georeferencing: its CRS
    and transform, or its ground control points (`(points, their CRS)`, as rasterio's `dataset.gcps`), or its RPCs;
    an image with none of these gets `georeferencing.PIXEL_PLACEMENT`, where QGIS places the image. `transform` None:
    pixels only (an overview level, which its VRT georeferences)."""
    profile = dict(driver="GTiff", height=height, width=width, count=1, dtype=dtype, nodata=nodata, BIGTIFF="IF_SAFER",
                   **compressed_tiles(dtype))
    if gcps is not None:  # rasterio writes `crs` as the GCPs' projection when `gcps` is given
        profile["gcps"], profile["crs"] = list(gcps[0]), gcps[1]
    elif crs is not None:
        profile["crs"] = crs
    if rpcs is not None:
        profile["rpcs"] = rpcs
    placed = None if transform is None else placement(transform, gcps, rpcs)
    if placed is not None and not placed.is_identity:  # GCPs and RPCs alone: no transform, which would win over them
        profile["transform"] = placed
    return profile


def vrt_with_overviews(source: Optional[Path], profile: dict, levels: list[Path], path: Path) -> None:
    """Write at `path` a VRT of `source`'s band 1 whose overviews are the `levels` files: how GDAL takes overviews
    made elsewhere (rasterio writes neither VRTs nor overview levels, hence the XML here). `profile`: the one
    `source` was written with (`work_profile`), so `source` is not reopened (a plain image would warn, in a thread).
    With no `source`, every pixel is nodata: the empty raster a sparse COG's directories are made from."""
    root = ElementTree.Element("VRTDataset", rasterXSize=str(profile["width"]), rasterYSize=str(profile["height"]))
    if profile.get("gcps"):
        add_gcps(root, profile["gcps"], profile.get("crs"))
    elif profile.get("crs") is not None:
        ElementTree.SubElement(root, "SRS").text = CRS.from_user_input(profile["crs"]).to_wkt()
    if profile.get("rpcs") is not None:
        metadata = ElementTree.SubElement(root, "Metadata", domain="RPC")
        for key, value in profile["rpcs"].to_gdal().items():
            ElementTree.SubElement(metadata, "MDI", key=key).text = str(value)
    if profile.get("transform") is not None:
        ElementTree.SubElement(root, "GeoTransform").text = ", ".join(
            repr(value) for value in profile["transform"].to_gdal())
    band = ElementTree.SubElement(root, "VRTRasterBand", dataType=GDAL_TYPES[profile["dtype"]], band="1")
    nodata = profile["nodata"]
    ElementTree.SubElement(band, "NoDataValue").text = "nan" if np.isnan(nodata) else repr(nodata)
    sources = [("Overview", level) for level in levels]
    if source is not None:
        sources.insert(0, ("SimpleSource", source))
    for kind, file in sources:
        element = ElementTree.SubElement(band, kind)
        ElementTree.SubElement(element, "SourceFilename", relativeToVRT="0").text = str(file)
        ElementTree.SubElement(element, "SourceBand").text = "1"
    ElementTree.ElementTree(root).write(path)


def add_gcps(root: ElementTree.Element, gcps: list, crs) -> None:
    """The VRT's GCPList: the points and their CRS, as GDAL's VRT format writes them."""
    projection = CRS.from_user_input(crs).to_wkt() if crs is not None else ""
    points = ElementTree.SubElement(root, "GCPList", Projection=projection)
    for index, gcp in enumerate(gcps):
        ElementTree.SubElement(points, "GCP", Id=str(gcp.id or index + 1), Info=str(gcp.info or ""),
                               Pixel=repr(float(gcp.col)), Line=repr(float(gcp.row)), X=repr(float(gcp.x)),
                               Y=repr(float(gcp.y)), Z=repr(float(gcp.z or 0.0)))


GDAL_TYPES = {"float32": "Float32", "uint8": "Byte"}


class PredictionRasters:
    """The output rasters of one scene: blocks written to work files (with their overview levels), then turned
    into COGs at staged paths. `gcps` (`(points, their CRS)`) or `rpcs`: the input's, kept in every output."""

    def __init__(self, staged: StagedOutputs, targets: dict[str, Path], height, width, crs, transform,
                 gcps=None, rpcs=None):
        self.staged, self.targets = staged, {name: targets[name] for name in LAYERS if name in targets}
        self.work = {name: staged.scratch_for(path) for name, path in self.targets.items()}
        # Column blocks start at multiples of COLUMN_BLOCK (2^12): more halvings than that (scenes over a million px)
        # would split pixels, so GDAL's COG driver makes those levels itself.
        levels = len(overview_factors(height, width))
        self.complete_overviews = levels <= COLUMN_BLOCK.bit_length() - 1
        levels = levels if self.complete_overviews else 0
        self.profiles = {name: work_profile(
            height, width, crs, transform, *LAYERS[name][:2], gcps=gcps, rpcs=rpcs) for name in self.targets}
        with plain_images():
            self.datasets = {name: rasterio.open(self.work[name], "w", **self.profiles[name]) for name in self.targets}
            self.overviews = {name: OverviewPyramid(
                [staged.scratch_for(path) for _ in range(levels)], height, width, average=LAYERS[name][2] == "AVERAGE",
                open_level=partial(open_work_level, dtype=LAYERS[name][0], nodata=LAYERS[name][1]),
            ) for name, path in self.targets.items()}

    @property
    def mask_path(self) -> Path:
        """The finished mask (a work file until `to_cogs`), for the PNG mask of a plain image."""
        return self.work["mask"]

    def write_block(self, row: int, probability: np.ndarray, valid: np.ndarray, threshold: float,
                    uncertainty: Optional[np.ndarray] = None, col: int = 0) -> np.ndarray:
        """(h, w) probabilities (and uncertainty) and validity whose top-left pixel is scene (row, col); returns the
        (h, w) uint8 mask written. `col` is a multiple of `tiling.COLUMN_BLOCK` (the overviews halve whole blocks)."""
        layers = {"probability": np.where(valid, probability, np.nan).astype(np.float32),
                  "mask": np.where(valid, (probability > threshold).astype(np.uint8), np.uint8(MASK_NODATA))}
        if uncertainty is not None and "uncertainty" in self.datasets:
            layers["uncertainty"] = np.where(valid, uncertainty, np.nan).astype(np.float32)
        window = Window(col, row, probability.shape[1], probability.shape[0])
        for name, values in layers.items():
            try:
                self.datasets[name].write(values, 1, window=window)
                self.overviews[name].add(row, col, values)
            except Exception as error:
                error.output = self.targets[name]  # GDAL's "Write failed" names no file: the caller names the output
                raise
        return layers["mask"]

    def close(self, check: bool = True) -> None:
        """Close the work files (all of them, whatever fails first), then check each has all its tiles
        (`cog_layout.check_tiles`). `check=False` when another error is already on its way (an incomplete file is
        then expected, and that error says why)."""
        closers = [closer for name, dataset in self.datasets.items()
                   for closer in (dataset.close, self.overviews[name].close)]
        errors = []
        for closer in closers:
            try:
                closer()
            except Exception as error:  # noqa: BLE001 - every file is closed; the first failure is raised
                errors.append(error)
        if errors:
            raise errors[0]
        if not check:
            return
        for name in self.datasets:
            for path in (self.work[name], *self.overviews[name].paths):
                check_tiles(path)

    def to_cogs(self) -> None:
        """Write every output as a COG at its staged path (renamed into place by `StagedOutputs.commit`), one
        thread each: GDAL's COG driver computes part of its work on one core."""
        with ThreadPoolExecutor(len(self.targets)) as pool:
            list(pool.map(self.to_cog, self.targets))

    def to_cog(self, name: str) -> None:
        """GDAL's sparse COG with the work files' tiles copied in; where the overviews are GDAL's to make (or another
        GDAL lays the COG out otherwise), GDAL's COG driver from the work files."""
        target, (dtype, _, resampling) = self.targets[name], LAYERS[name]
        output, levels = self.staged.path_for(target), self.overviews[name].paths
        if self.complete_overviews:
            empty = self.empty_source(name)
            write_cog(empty, output, dtype, resampling, overviews=empty, sparse=True)
            try:
                return assemble_cog(output, [self.work[name], *levels])
            except NotAssemblable:
                pass
        vrt = None
        if levels:  # none for scenes whose overviews GDAL makes
            vrt = self.staged.scratch_for(target.with_suffix(".vrt"))
            vrt_with_overviews(self.work[name], self.profiles[name], levels, vrt)
        write_cog(self.work[name], output, dtype, resampling, overviews=vrt)

    def empty_source(self, name: str) -> Path:
        """A VRT shaped and georeferenced as output `name`, overview levels included, with no pixels: what GDAL's COG
        driver makes the sparse COG's directories from."""
        target, levels = self.targets[name], []
        for level in self.overviews[name].datasets:  # closed work files keep their shape
            levels.append(self.staged.scratch_for(target.with_suffix(".vrt")))
            vrt_with_overviews(None, work_profile(level.height, level.width, None, None, *LAYERS[name][:2]), [],
                               levels[-1])
        empty = self.staged.scratch_for(target.with_suffix(".vrt"))
        vrt_with_overviews(None, self.profiles[name], levels, empty)
        return empty


def open_work_level(path: Path, height: int, width: int, dtype: str, nodata):
    """An overview level's work file: pixels only (the VRT gives the georeferencing)."""
    return rasterio.open(path, "w", **work_profile(height, width, None, None, dtype, nodata))

