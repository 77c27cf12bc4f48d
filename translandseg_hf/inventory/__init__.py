"""An event's landslide inventory: new landslides (post-event polygons the pre-event state does not explain) with the
attributes mappers use, the event's statistics and a self-contained report (`translandseg event`, `translandseg
inventory`). Built on mapped scenes (`inference`); GDAL is reached only through `geo.inventory`."""
