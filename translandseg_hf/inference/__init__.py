"""Landslide maps of whole scenes: tiled, blended prediction of images and GeoTIFFs of any size, to rasters and
polygons.

`options` (what to do) imports nothing heavy, so the command line can quote its defaults; `scene` maps one input,
`runner` many. Names load on first use (torch and GDAL only when a scene is mapped)."""

from ..lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_MIN_PIXELS": "options",
    "DEFAULT_OVERLAP_DIVISOR": "options",
    "DEFAULT_THRESHOLD": "options",
    "PredictionOptions": "options",
    "FileResult": "scene",
    "output_paths": "scene",
    "predict_file": "scene",
    "collect_inputs": "runner",
    "load_model": "runner",
    "predict_files": "runner",
    "summary": "runner",
    "TileRunner": "predictor",
    "predict_scene_strips": "predictor",
    "tile_count": "predictor",
    "SceneReader": "reading",
    "parse_bands": "reading",
    "StripBlender": "tiling",
    "blending_window": "tiling",
    "tile_origins": "tiling",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
