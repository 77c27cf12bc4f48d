"""Areas and perimeters on the ellipsoid, for any CRS: an inventory's numbers must not depend on the map projection.

A planar area is exact only where the projection preserves area; UTM shrinks it by up to 0.1% (k0 = 0.9996), Web
Mercator (EPSG:3857) inflates it by 1 / cos^2(latitude) (27% at 27.6 N). So polygons are taken to the CRS's own
geographic CRS (its datum, no datum shift) and measured there with PROJ's geodesics (`pyproj.Geod`, Karney 2013)
on the CRS's ellipsoid. Pixel areas (the valid AOI, the smallest landslide) are the geodesic areas of pixels on a
lattice of at most SCALE_LATTICE x SCALE_LATTICE, each standing for the pixels of its cell: a pixel's area changes
smoothly across a grid, by under 0.05% across one cell for a grid the inventory accepts (`grid.MAX_GRID_PIXELS`,
5,000 px a side at 10 m: cells of 20 px, 200 m, 0.002 degrees of latitude).

Edges between a polygon's vertices are measured as geodesics, where the map draws straight lines; for pixel-edged
polygons (edges of a few pixels) the difference is far below a pixel's area."""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import CRS as ProjCRS, Geod, Transformer

SCALE_LATTICE = 256  # pixels a side measured; the others take their cell's area


def proj_crs(crs) -> ProjCRS:
    """A rasterio CRS (or anything pyproj reads) as a pyproj CRS."""
    return ProjCRS.from_wkt(crs.to_wkt()) if hasattr(crs, "to_wkt") else ProjCRS.from_user_input(crs)


def geod_of(crs) -> Geod:
    """The geodesics of the CRS's ellipsoid."""
    ellipsoid = proj_crs(crs).ellipsoid
    return Geod(a=ellipsoid.semi_major_metre, b=ellipsoid.semi_minor_metre)


def geodesic_area_perimeter(polygons: np.ndarray, crs) -> tuple[np.ndarray, np.ndarray]:
    """(N,) areas (m2, holes subtracted) and perimeters (m, holes' outlines included, as shapely's length) of
    shapely (Multi)Polygons in `crs`, whatever their rings' orientation."""
    if not len(polygons):
        return np.zeros(0), np.zeros(0)
    source = proj_crs(crs)
    to_lon_lat = Transformer.from_crs(source, source.geodetic_crs, always_xy=True)
    geographic = shapely.transform(polygons, lambda xy: np.column_stack(to_lon_lat.transform(xy[:, 0], xy[:, 1])))
    geod = geod_of(source)
    measured = np.array([_area_perimeter(geod, polygon) for polygon in geographic], np.float64)
    return measured[:, 0], measured[:, 1]


def _area_perimeter(geod: Geod, geometry) -> tuple[float, float]:
    """One (Multi)Polygon in longitude and latitude: each ring measured on its own (pyproj's own
    `geometry_area_perimeter` leaves holes out of the perimeter and needs them wound clockwise)."""
    area = perimeter = 0.0
    for part in shapely.get_parts(geometry):
        for number, ring in enumerate([part.exterior, *part.interiors]):
            lon, lat = ring.xy
            ring_area, ring_perimeter = geod.polygon_area_perimeter(lon, lat)
            area += abs(ring_area) if number == 0 else -abs(ring_area)
            perimeter += ring_perimeter
    return area, perimeter


def pixel_areas_m2(crs, transform, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float64 area on the ellipsoid (m2) of each pixel of a grid in any CRS (projected or geographic, north-up
    or not): the geodesic area of the pixel at the centre of its lattice cell (`SCALE_LATTICE`)."""
    height, width = shape
    step = max(1, -(-max(height, width) // SCALE_LATTICE))
    rows, cols = np.arange(0, height, step) + (min(step, height) - 1) // 2, np.arange(0, width, step) + (
        min(step, width) - 1) // 2
    cc, rr = (corner.ravel() for corner in np.meshgrid(cols, rows))
    corners = [transform @ (cc + dc, rr + dr) for dc, dr in ((0, 0), (1, 0), (1, 1), (0, 1), (0, 0))]
    rings = np.stack([np.column_stack(corner) for corner in corners], axis=1)  # (P, 5, 2)
    areas = geodesic_area_perimeter(shapely.polygons(rings), crs)[0].reshape(len(rows), len(cols))
    return np.repeat(np.repeat(areas, step, axis=0), step, axis=1)[:height, :width]
