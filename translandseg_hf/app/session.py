"""One model serving many uploads: each upload is checked, mapped by `predict_file` into its own folder, and kept
(probability raster and display image) so that a new threshold re-derives its maps without the model."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch

from ..hub import local_path
from ..inference import PredictionOptions, SceneReader, load_model, predict_file
from ..image_processing import TransLandSegImageProcessor
from ..inference.contract import contract_of, with_overrides
from ..inference.options import DEFAULT_THRESHOLD, check_threshold
from ..geo import UNTRUSTED_DRIVERS, RemotePath, is_remote, only_drivers
from ..url_policy import UrlPolicy, UrlRefused, refuse, shown
from . import DEFAULT_MAX_PIXELS
from .egress import EgressProxy, operator_proxy, routed
from .maps import Maps, derive_maps, maps_from_outputs
from .upload import SceneHeader, by_name, for_the_app, open_upload
from .views import display_rgb

NO_URLS = "not fetched: this app maps uploaded files only"  # `--no_urls`
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
        check_threshold(threshold)  # the page's slider is bounded; a script calling this is not
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
    """The app's model, device and working folder; `map` turns an upload into a `Run`, `map_url` a URL that
    `url_policy` lets through (None: no URLs, `--no_urls`)."""

    def __init__(self, model: Union[str, torch.nn.Module], device: Optional[str] = None,
                 max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, work_dir: Optional[Path] = None,
                 backend: str = "torch", url_policy: Optional[UrlPolicy] = UrlPolicy()):
        self.name = model_name(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = load_model(model, backend).to(self.device).eval()  # backend onnxruntime: for CPU machines
        self.contract = contract_of(self.model)  # as `predict_file` reads it
        self.max_pixels = max_pixels
        self._own_work_dir = None if work_dir else tempfile.TemporaryDirectory(prefix="translandseg-app-")
        self.work_dir = Path(work_dir or self._own_work_dir.name)  # a folder of its own goes when the app exits
        self.url_policy = url_policy
        self.egress: Optional[EgressProxy] = None  # started at the first URL mapped (app/egress.py)

    def fetched(self, url) -> tuple[RemotePath, bytes]:
        """The URL GDAL is to read (the last redirect, each hop checked) and the file's first bytes; UrlRefused,
        with one message for every reason, where the policy (or `--no_urls`) refuses it."""
        url = url.url if isinstance(url, RemotePath) else str(url).strip()
        if self.url_policy is None:
            raise UrlRefused(f"{shown(url) or 'URL'}: {NO_URLS}")
        fetched = self.url_policy.fetch(url)
        return RemotePath(fetched.url), fetched.head

    def check(self, path) -> SceneHeader:
        """The upload's header (`check_upload`); a URL (str or RemotePath) goes through the URL policy first."""
        header, reader = self.open(path)
        reader.close()
        return header

    def open(self, path, contract: Optional[TransLandSegImageProcessor] = None) -> tuple[SceneHeader, SceneReader]:
        """`check`, keeping the reader it opened (`open_upload`), which the upload is mapped with; the caller closes
        it. `contract`: the model's with a scaling chosen (`scaled_contract`)."""
        head = None
        if is_remote(path):
            path, head = self.fetched(path)
        return open_upload(path, contract or self.contract, self.max_pixels, head)

    def scaled_contract(self, scale: Optional[str] = None, divisor: Optional[float] = None
                        ) -> TransLandSegImageProcessor:
        """The model's contract with the page's or the API's scaling (`translandseg predict`'s --scale and
        --divisor); None or "" keeps the contract's own."""
        return with_overrides(self.contract, scale=scale or None, divisor=divisor or None)[0]

    def map_url(self, url: str, threshold: float = DEFAULT_THRESHOLD, min_area: Optional[float] = None,
                on_progress: Optional[Callable[[int, int], None]] = None, scale: Optional[str] = None,
                divisor: Optional[float] = None) -> Run:
        """`map` for the text of the URL box or the API's `url`: a local path, `file://` or `/vsi...` is refused
        like a private host (one message), never opened."""
        text = str(url).strip()
        if self.url_policy is None:
            raise UrlRefused(f"{shown(text) or 'URL'}: {NO_URLS}")
        return self.map(RemotePath(self.url_policy.checked(text)), threshold, min_area, on_progress, scale, divisor)

    def map(self, path, threshold: float = DEFAULT_THRESHOLD, min_area: Optional[float] = None,
            on_progress: Optional[Callable[[int, int], None]] = None, scale: Optional[str] = None,
            divisor: Optional[float] = None) -> Run:
        """Check the upload, then map it as `translandseg predict` would, calling `on_progress(tiles done, tiles)`;
        `scale` and `divisor` replace the contract's scaling (None: the model's own, `scaled_contract`).
        ValueError or OSError names the file on bad input. Every raster opened meanwhile, by any reader and
        thread, is read as a PNG, JPEG or GeoTIFF only; a URL's every request goes through the egress proxy, and
        a mapping during which it refused one fails with the URL policy's one refusal."""
        contract = self.scaled_contract(scale, divisor)
        proxy = self.egress_for(path)
        refused = proxy.refusals if proxy is not None else 0
        with only_drivers(UNTRUSTED_DRIVERS), routed(proxy):
            try:
                run = self.map_checked(path, threshold, min_area, on_progress, contract)
            except (ValueError, OSError):
                if proxy is not None and proxy.refusals > refused:
                    raise refuse(as_url(path)) from None  # GDAL's words would tell a closed port from a private host
                raise
        if proxy is not None and proxy.refusals > refused:
            run.close()
            raise refuse(as_url(path))
        return run

    def egress_for(self, path) -> Optional[EgressProxy]:
        """The proxy GDAL's requests for `path` go through: the app's own for a URL (started at the first), none
        for an upload, with `--no_urls`, or where the operator set a proxy of their own (`operator_proxy`)."""
        if self.url_policy is None or not is_remote(path) or operator_proxy():
            return None
        if self.egress is None:
            self.egress = EgressProxy(self.url_policy).start()
        return self.egress

    def map_checked(self, path, threshold, min_area, on_progress,
                    contract: Optional[TransLandSegImageProcessor] = None) -> Run:
        """`map` within the driver allow-list."""
        contract = contract or self.contract
        header, reader = self.open(path, contract)  # the one open of the upload: checked, mapped and shown through it
        with reader:
            return self.map_open(header, reader, threshold, min_area, on_progress, contract)

    def map_open(self, header: SceneHeader, reader: SceneReader, threshold, min_area, on_progress,
                 contract: Optional[TransLandSegImageProcessor] = None) -> Run:
        """`map_checked` with the upload's reader open (fitted with `contract`, which `predict_file` maps with)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{header.path.stem}-", dir=self.work_dir))
        contract = contract or self.contract
        options = PredictionOptions(threshold=threshold, min_area=min_area, scale=contract.scale,
                                    divisor=contract.divisor)
        done = 0

        def on_tiles(count: int) -> None:
            nonlocal done
            done += count
            if on_progress is not None:
                on_progress(min(done, header.tiles), header.tiles)

        try:
            result = predict_file(self.model, reader.scene, folder, options, self.device, on_tiles=on_tiles,
                                  reader=reader)
            if result.status != "done":  # a fresh folder has no outputs to skip for; should it happen, say so
                raise ValueError(f"{header.path}: {result.message}")
            rgb = display_rgb(reader, DISPLAY_SIDE)
        except (ValueError, OSError) as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise by_name(for_the_app(error), header.path) from error
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        maps = maps_from_outputs(result.outputs, threshold, min_area)
        return Run(header, folder, Path(result.outputs["probability"]), rgb, maps)

    def close(self) -> None:
        """Stop the egress proxy and remove the work folder the app made for itself (a `work_dir` given is the
        caller's, and stays)."""
        if self.egress is not None:
            self.egress.close()
            self.egress = None
        if self._own_work_dir is not None:
            self._own_work_dir.cleanup()


def as_url(path) -> str:
    """The URL a remote path was given as (a RemotePath's, or the text)."""
    return path.url if isinstance(path, RemotePath) else str(path)


@contextmanager
def removed_on_signals(cleanup: Callable[[], None], signals=(signal.SIGTERM, signal.SIGINT)):
    """While this holds, a stop (SIGTERM: a Space or container stopping; SIGINT: Ctrl+C) runs `cleanup` first, then
    does what the signal did before (KeyboardInterrupt for SIGINT, exit for SIGTERM); the handlers before are back
    after. Only the main thread can set handlers: elsewhere nothing is set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) or signal.SIG_DFL for number in signals}

    def on_signal(number, frame):
        cleanup()
        before = previous[number]
        if callable(before):
            before(number, frame)
        elif before != signal.SIG_IGN:
            signal.signal(number, signal.SIG_DFL)
            signal.raise_signal(number)

    for number in signals:
        signal.signal(number, on_signal)
    try:
        yield on_signal
    finally:
        for number, before in previous.items():
            signal.signal(number, before)
