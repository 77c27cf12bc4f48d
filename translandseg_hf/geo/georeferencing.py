"""How a raster's pixels map to a CRS, decided once: a geotransform, ground control points, RPCs, or none."""

from __future__ import annotations

from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import Affine

RPC_CRS = CRS.from_epsg(4326)  # RPCs map (row, column, height) to WGS 84 longitude and latitude
# The height (metres above the ellipsoid) RPCs are evaluated at where no DEM is given: the polygons of `predict` and
# the inventory's map grid both place an RPC scene's pixels at it, so that they agree.
RPC_HEIGHT = 0
GEOREFERENCING = ("transform", "gcps", "rpcs", "pixels")
# Where an image without georeferencing lies: GDAL gives it no transform, and QGIS places it at x = column, y = -row
# (pixels of 1 x 1, right side up). Its outputs state this transform and its polygons use it, so that GDAL and QGIS
# place every output where QGIS places the image.
PIXEL_PLACEMENT = Affine(1.0, 0.0, 0.0, 0.0, -1.0, 0.0)


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


def placement(transform: Affine, gcps=None, rpcs=None) -> Affine:
    """The transform a scene's outputs are written and polygonised with: its own, or PIXEL_PLACEMENT for a scene with
    no georeferencing at all (an identity transform, as rasterio reads a missing one, and no GCPs or RPCs)."""
    return PIXEL_PLACEMENT if transform.is_identity and gcps is None and rpcs is None else transform


def is_alpha(dataset, band: int) -> bool:
    """Whether 1-based `band` of an open raster is its alpha (the valid pixels)."""
    return dataset.colorinterp[band - 1] == ColorInterp.alpha


def coordinates_text(values, sep: str = ", ") -> str:
    """Coordinates for a message, in fixed point: `300000, 3099600.5` in metres, up to 6 decimals in degrees (a tenth
    of a metre), never `3.0996e+06`."""
    texts = (f"{value:.{2 if abs(value) >= 1000 else 6}f}".rstrip("0").rstrip(".") for value in values)
    return sep.join("0" if text == "-0" else text for text in texts)
