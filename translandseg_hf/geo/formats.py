"""What the file formats are, as plain data (no GDAL loaded): the suffixes read as rasters, the formats a stranger's
file may be read as, and the options every read is made with."""

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Read through rasterio (GDAL) even where PIL reads the rest: PIL cannot read many band layouts GDAL writes.
GDAL_ONLY_SUFFIXES = (".tif", ".tiff")
# The rest: plain images, usually without georeferencing (a world file may give them some).
PLAIN_IMAGE_SUFFIXES = tuple(suffix for suffix in RASTER_SUFFIXES if suffix not in GDAL_ONLY_SUFFIXES)
# GDAL's whole-image PNG shortcut ignores libpng's errors and returns uninitialised memory for a truncated PNG, where
# reading row by row fails as it should. GDAL reads the option both when opening and when reading.
READ_OPTIONS = {"GDAL_PNG_WHOLE_IMAGE_OPTIM": "NO"}


# The formats a stranger's file may be read as (the app): GDAL picks a driver from the content, not the suffix, and a
# VRT or WMS description named `.tif` reads other files or URLs. A COG is read by the GTiff driver.
UNTRUSTED_DRIVERS = ("GTiff", "PNG", "JPEG")
