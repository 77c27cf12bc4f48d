"""GDAL's part of an event's inventory (`translandseg_hf.inventory`): rasters read onto the post-event probability's
grid (`grid`), NDVI from named bands (`ndvi`), slope and elevation from a DEM (`terrain`), labelled polygons of new
landslide pixels (`polygons`) and the two layers of inventory.gpkg (`layers`)."""
