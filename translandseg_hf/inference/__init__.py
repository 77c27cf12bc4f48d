"""Landslide maps of whole scenes: tiled, blended prediction of images and GeoTIFFs of any size, to rasters and polygons."""

from .pipeline import (
    FileResult,
    PredictionOptions,
    collect_inputs,
    load_model,
    output_paths,
    predict_file,
    predict_files,
    summary,
)
from .predictor import TileRunner, predict_scene_strips, tile_count
from .reading import SceneReader, parse_bands
from .tiling import StripBlender, blending_window, tile_origins

__all__ = [
    "FileResult",
    "PredictionOptions",
    "SceneReader",
    "StripBlender",
    "TileRunner",
    "blending_window",
    "collect_inputs",
    "load_model",
    "output_paths",
    "parse_bands",
    "predict_file",
    "predict_files",
    "predict_scene_strips",
    "summary",
    "tile_count",
    "tile_origins",
]
