"""The map's files, written through GDAL as the mapping streams them: the probability, mask and uncertainty rasters
with their overviews, assembled into COGs (`writing`, `overviews`, `cog_layout`), the polygons (`polygons`) and the
quicklook (`quicklook`). The constants below are plain data, so the mapping options can quote them without GDAL."""

COLUMN_BLOCK = 4096  # columns blended and written at a time: temporaries stay small however wide the scene
DEFAULT_MIN_PIXELS = 4  # a landslide mapped from fewer pixels is noise at any resolution the model was trained at
