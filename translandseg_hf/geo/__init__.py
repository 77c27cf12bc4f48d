"""Everything that talks to GDAL: opening rasters (local and remote), writing COGs, pixel sizes, georeferencing and
Sentinel-2 products. The only package that imports rasterio, pyogrio, pystac or osgeo; the rest of the library calls
it. Names load on first use, so importing the package loads no GDAL."""

from ..lazy import lazy_exports

_EXPORTS = {
    "RASTER_SUFFIXES": "formats",
    "GDAL_ONLY_SUFFIXES": "formats",
    "READ_OPTIONS": "formats",
    "UNTRUSTED_DRIVERS": "formats",
    "RasterError": "failures",
    "NamedFailure": "failures",
    "RasterReadError": "failures",
    "names": "failures",
    "gdal_reason": "failures",
    "failed_read": "failures",
    "decode_failure": "failures",
    "open_failure": "failures",
    "VSI_PREFIXES": "remote",
    "REMOTE_DEFAULTS": "remote",
    "is_remote": "remote",
    "RemotePath": "remote",
    "as_input": "remote",
    "OPEN_TIME_SETTINGS": "remote",
    "configure_remote_reads": "remote",
    "NOT_FOUND": "remote",
    "ACCESS_DENIED": "remote",
    "NO_ANSWER": "remote",
    "REMOTE_FAILURES": "remote",
    "remote_failure": "remote",
    "plain_images": "opening",
    "only_drivers": "opening",
    "open_with_drivers": "opening",
    "open_raster": "opening",
    "open_checked": "opening",
    "gdal_settings": "opening",
    "RASTER_ERRORS": "opening",
    "OPEN_ERRORS": "opening",
    "Window": "opening",
    "reading": "opening",
    "open_remote": "opening",
    "pixel_area": "pixels",
    "pixel_size_m": "pixels",
    "ground_pixel_size_m": "pixels",
    "COG_BLOCK": "cog",
    "COG_DEFLATE_LEVEL": "cog",
    "cog_predictor": "cog",
    "cog_tiles": "cog",
    "compressed_tiles": "cog",
    "write_cog": "cog",
    "strips": "strips",
    "RPC_CRS": "georeferencing",
    "GEOREFERENCING": "georeferencing",
    "georeferencing_of": "georeferencing",
    "is_alpha": "georeferencing",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
