"""What an input is, decided once where inputs are collected (`runner.collect_inputs`) and handed down to
`predict_file`, `SceneReader` and the app, which then never ask again whether it is remote, a product or a plain
image. Deciding reads names (and a product's JSON or folder listing), never a raster."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from ..geo import RemotePath, as_input, is_remote
from ..geo.formats import PLAIN_IMAGE_SUFFIXES
from ..geo.sentinel2.products import is_product

KINDS = ("raster", "product", "remote", "image")  # a local raster, a Sentinel-2 product, a remote raster, a PNG/JPEG


@dataclass(frozen=True)
class SceneInput:
    """One input, classified: `kind` is one of KINDS (a remote STAC item is a "product"), `path` a local `Path` or a
    `RemotePath`. `str()` is the path's, as messages show it."""

    kind: str
    path: Union[Path, RemotePath]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def is_remote(self) -> bool:
        """Whether it is read over the network: a remote raster, or a product given by URL."""
        return isinstance(self.path, RemotePath)

    @property
    def is_product(self) -> bool:
        return self.kind == "product"

    def __str__(self) -> str:
        return str(self.path)


def classify(given: Union[str, os.PathLike, SceneInput]) -> SceneInput:
    """The input `given` names; a `SceneInput` is taken as it is (classified once)."""
    if isinstance(given, SceneInput):
        return given
    path = as_input(given)
    if is_product(path):
        return SceneInput("product", path)
    if is_remote(path):
        return SceneInput("remote", path)
    return SceneInput("image" if path.suffix.lower() in PLAIN_IMAGE_SUFFIXES else "raster", path)


def path_of(item: Union[str, os.PathLike, SceneInput]) -> Union[Path, RemotePath]:
    """The path of an input, classified or not."""
    return item.path if isinstance(item, SceneInput) else as_input(item)
