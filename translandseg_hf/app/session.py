"""One model serving many uploads: each upload is checked, mapped by `predict_file` into its own folder, and kept
(probability raster and display image) so that a new threshold re-derives its maps without the model."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch

from ..hub import local_path
from ..image_processing import TransLandSegImageProcessor
from ..inference import PredictionOptions, SceneReader, load_model, predict_file
from ..inference.options import DEFAULT_THRESHOLD
from . import DEFAULT_MAX_PIXELS
from .maps import Maps, derive_maps, maps_from_outputs
from .upload import SceneHeader, by_name, check_upload
from .views import display_rgb

DISPLAY_SIDE = 1024  # the longest side of the images shown in the page


@dataclass
class Run:
    """A mapped upload: its header, the probability raster, the image to draw on, and the maps shown now."""

    header: SceneHeader
    folder: Path
    probability: Path
    rgb: np.ndarray  # (h, w, 3) uint8, decimated to DISPLAY_SIDE
    maps: Maps
    derivations: int = 0

    def rethreshold(self, threshold: float, min_area: Optional[float]) -> Maps:
        """The maps at a new threshold and minimum area, from the kept probabilities (the model is not run)."""
        if (threshold, min_area) != (self.maps.threshold, self.maps.min_area):
            self.derivations += 1
            folder = self.folder / f"threshold-{self.derivations}"
            previous = self.maps.files["mask"].parent
            self.maps = derive_maps(self.probability, self.maps, threshold, min_area, folder)
            if previous.name.startswith("threshold-"):  # the page holds copies of what it shows
                shutil.rmtree(previous, ignore_errors=True)
        return self.maps

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def model_name(model) -> str:
    """A Hub id as it is; a local folder by its name (the page need not show where it lies); else the class."""
    if not isinstance(model, (str, os.PathLike)):
        return type(model).__name__
    return Path(model).name if local_path(model, "a saved model folder") is not None else str(model)


class Mapper:
    """The app's model, device and working folder; `map` turns an upload into a `Run`."""

    def __init__(self, model: Union[str, torch.nn.Module], device: Optional[str] = None,
                 max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, work_dir: Optional[Path] = None,
                 backend: str = "torch"):
        self.name = model_name(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = load_model(model, backend).to(self.device).eval()  # backend onnxruntime: for CPU machines
        self.contract = TransLandSegImageProcessor.of_model(self.model)  # as `predict_file` reads it
        self.max_pixels = max_pixels
        self._own_work_dir = None if work_dir else tempfile.TemporaryDirectory(prefix="translandseg-app-")
        self.work_dir = Path(work_dir or self._own_work_dir.name)  # a folder of its own goes when the app exits

    def check(self, path) -> SceneHeader:
        return check_upload(path, self.contract, self.max_pixels)

    def map(self, path, threshold: float = DEFAULT_THRESHOLD, min_area: Optional[float] = None,
            on_progress: Optional[Callable[[int, int], None]] = None) -> Run:
        """Check the upload, then map it as `translandseg predict` would, calling `on_progress(tiles done, tiles)`;
        ValueError or FileNotFoundError names the file on bad input."""
        header = self.check(path)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{header.path.stem}-", dir=self.work_dir))
        options = PredictionOptions(threshold=threshold, min_area=min_area)
        done = 0

        def on_tiles(count: int) -> None:
            nonlocal done
            done += count
            if on_progress is not None:
                on_progress(min(done, header.tiles), header.tiles)

        try:
            result = predict_file(self.model, header.path, folder, options, self.device, on_tiles=on_tiles)
            if result.status != "done":  # a fresh folder has no outputs to skip for; should it happen, say so
                raise ValueError(f"{header.path}: {result.message}")
            with SceneReader(header.path, self.contract) as reader:
                rgb = display_rgb(reader, DISPLAY_SIDE)
        except (ValueError, FileNotFoundError) as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise by_name(error, header.path) from error
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        maps = maps_from_outputs(result.outputs, threshold, min_area)
        return Run(header, folder, Path(result.outputs["probability"]), rgb, maps)
