"""How a raster's pixels map to a CRS, decided once: a geotransform, ground control points, RPCs, or none."""

from __future__ import annotations

from rasterio.crs import CRS
from rasterio.enums import ColorInterp

RPC_CRS = CRS.from_epsg(4326)  # RPCs map (row, column, height) to WGS 84 longitude and latitude
GEOREFERENCING = ("transform", "gcps", "rpcs", "pixels")


def georeferencing_of(dataset) -> str:
    """How the scene's pixels map to a CRS: "transform" (a CRS and a geotransform), "gcps" (ground control points
    with their CRS), "rpcs" (rational polynomial coefficients, to WGS 84), or "pixels" (none of these). A geotransform
    or GCPs without a CRS give coordinates in no CRS, so they count as "pixels"; a geotransform wins over GCPs and
    RPCs, as in GDAL's warper."""
    if dataset.crs is not None and not dataset.transform.is_identity:
        return "transform"
    points, crs = dataset.gcps
    if points and crs is not None:
        return "gcps"
    if dataset.rpcs is not None:
        return "rpcs"
    return "pixels"


def is_alpha(dataset, band: int) -> bool:
    """Whether 1-based `band` of an open raster is its alpha (the valid pixels)."""
    return dataset.colorinterp[band - 1] == ColorInterp.alpha
