"""Everything that talks to GDAL: opening rasters (local and remote), writing COGs, pixel sizes, georeferencing and
Sentinel-2 products. The only package that imports rasterio, pyogrio, pystac or osgeo; the rest of the library calls
it. Names load on first use, so importing the package loads no GDAL."""

from ..lazy import lazy_exports

_EXPORTS: dict[str, str] = {}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
