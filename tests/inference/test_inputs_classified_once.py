"""An input is classified once, where inputs are collected (`inference/inputs.py`), and handed down: the app opens an
upload once for checking and mapping (plus the second handle the writer thread reads validity through) and fits its
percentile stretch once; `translandseg predict` opens a scene once (and that second handle)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from translandseg_hf.geo import RemotePath
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.inference import PredictionOptions, predict_file
from translandseg_hf.inference.inputs import SceneInput, classify
from translandseg_hf.inference.runner import collect_inputs

from helpers.models import RedModel
from helpers.rasters import write_raster


def write_scene(path: Path, dtype: str = "uint8", georeferenced: bool = True) -> Path:
    bands = (np.arange(3 * 40 * 50) % 251).reshape(3, 40, 50).astype(dtype)
    georeferencing = dict(pixel_size=3.0) if georeferenced else dict(crs=None)
    return write_raster(path, bands, driver="GTiff" if path.suffix == ".tif" else "PNG", **georeferencing)


@pytest.fixture
def counted(monkeypatch):
    """The rasters opened (every open goes through `geo.opening.open_with_drivers`), and how many times a percentile
    stretch is fitted."""
    from translandseg_hf.geo import opening

    counts = {"opened": [], "fits": 0}
    open_with_drivers = opening.open_with_drivers

    def counting_open(*args, **kwargs):
        counts["opened"].append(Path(args[0]))
        return open_with_drivers(*args, **kwargs)

    monkeypatch.setattr(opening, "open_with_drivers", counting_open)
    from translandseg_hf.inference import reading

    fit = reading.fit_scaler

    def counting_fit(*args, **kwargs):
        counts["fits"] += 1
        return fit(*args, **kwargs)

    monkeypatch.setattr(reading, "fit_scaler", counting_fit)
    return counts


def test_inputs_are_classified_where_they_are_collected(tmp_path):
    scene = write_scene(tmp_path / "scene.tif")
    image = write_scene(tmp_path / "photo.png", georeferenced=False)
    product = tmp_path / "S2_product"
    product.mkdir()
    for name in ("B02", "B03", "B04"):
        write_scene(product / f"{name}.tif")
    kinds = {item.path.name: item.kind for item in map(classify, collect_inputs(
        [scene, image, product, "https://example.com/a/remote.tif"]))}
    assert kinds == {"scene.tif": "raster", "photo.png": "image", "S2_product": "product", "remote.tif": "remote"}
    assert isinstance(classify("https://example.com/a/remote.tif").path, RemotePath)
    assert classify(classify(scene)) == classify(scene)  # a classified input is taken as it is


def test_predict_opens_a_scene_once_and_fits_its_stretch_once(tmp_path, counted):
    scene = write_scene(tmp_path / "scene.tif", dtype="uint16")
    options = PredictionOptions(scale="percentile")
    result = predict_file(RedModel(), scene, tmp_path / "out", options)
    assert result.status == "done", result.message
    assert result.path == scene
    assert (counted["opened"].count(scene), counted["fits"]) == (2, 1)  # the reader's handle and the writer's
    # (before: 3 opens; the outputs' georeferencing was read from the scene even for a fresh folder)


def test_the_app_opens_an_upload_once_and_fits_its_stretch_once(tmp_path, counted):
    pytest.importorskip("gradio", reason="the app extra is not installed")
    from translandseg_hf.app.session import Mapper

    scene = write_scene(tmp_path / "upload.tif")
    mapper = Mapper(RedModel(), "cpu", work_dir=tmp_path / "work")
    run = mapper.map(scene)
    assert run.header.path == scene and run.header.tiles > 0
    assert (counted["opened"].count(scene), counted["fits"]) == (2, 1)  # before: 6 opens, 3 fits
    # (the check's reader, which maps and draws the upload too, and the writer thread's handle)
    run.close()


def test_a_classified_input_is_what_predict_file_takes(tmp_path):
    scene = classify(write_scene(tmp_path / "scene.tif"))
    assert isinstance(scene, SceneInput)
    result = predict_file(RedModel(), scene, tmp_path / "out")
    assert result.status == "done" and result.path == scene.path
