"""`translandseg predict` and `translandseg_hf.inference`: georeferencing kept, seamless tiles, nodata, bad input.

Two stand-ins for a trained model keep these tests fast and exact: a tiny random SAM (64 px input) where SAM itself
matters, and a CNN-baseline stand-in with the same `image_size` / `forward(pixel_values).logits` interface whose
logits depend on each pixel (or its 3x3 neighbourhood) alone, so a tiled pass can be compared with a whole-scene one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import torch
from PIL import Image
from pyogrio.raw import read as read_layer
from rasterio.transform import from_origin

from translandseg_hf import TransLandSegModel
from translandseg_hf.cli import main
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.inference import (
    PredictionOptions,
    SceneReader,
    blending_window,
    predict_file,
    predict_files,
    predict_scene_strips,
    tile_origins,
)
from translandseg_hf.geo.map_files.polygons import mask_polygons
from translandseg_hf.inference.reading import open_raster
from translandseg_hf.inference.predictor import TileRunner

from conftest import SHARED_DATA, requires_shared_data
from helpers.models import LocalModel
from helpers.rasters import blob_scene, write_raster

UTM_48N = "EPSG:32648"
PIXEL_SIZE = 3.0  # metres
TRANSFORM = from_origin(500_000.0, 3_000_000.0, PIXEL_SIZE, PIXEL_SIZE)


normalize = TransLandSegImageProcessor().normalize_pixels  # SAM's normalisation, as the models' default contract

write_geotiff = partial(write_raster, pixel_size=PIXEL_SIZE)  # TRANSFORM's grid


@pytest.fixture(scope="module")
def sam_model() -> TransLandSegModel:
    from transformers import SamModel

    from translandseg_hf.sam_configs import tiny_sam_config

    torch.manual_seed(0)
    return TransLandSegModel.from_sam(SamModel(tiny_sam_config())).eval()


@pytest.fixture(scope="module")
def saved_model(sam_model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    sam_model.save_pretrained(folder)
    return folder


def read_band(path: Path) -> tuple[np.ndarray, dict]:
    with open_raster(path) as dataset:  # a plain PNG output has no georeferencing, as intended
        return dataset.read(1), dataset.profile


# ------------------------------------------------------------------------------------------------------ tiling
def test_blending_window_is_smooth_positive_and_crossfades():
    window = blending_window(64, 16)
    assert window.min() > 0 and window.max() == 1.0
    assert np.allclose(window[48:] + window[:16], 1.0)  # two neighbours' ramps sum to one across the overlap
    origins = tile_origins(100, 64, 16)
    assert origins[0] == -8 and origins[-1] + 64 >= 100 and np.all(np.diff(origins) == 48)


def test_tiled_pointwise_model_equals_whole_scene_pass(tmp_path):
    """Blending is a weighted mean, so a model whose logits depend on each pixel alone gives them back exactly."""
    scene = np.random.default_rng(0).integers(0, 256, (3, 75, 101), dtype=np.uint8)
    path = write_geotiff(tmp_path / "scene.tif", scene)
    model = LocalModel(image_size=32, kernel_size=1)
    with SceneReader(path) as reader:
        strips = list(predict_scene_strips(reader, TileRunner(model, "cpu"), overlap=8, batch_size=3))
    assert [row for row, _ in strips] == sorted(row for row, _ in strips) and strips[0][0] == 0
    tiled = np.concatenate([maps for _, maps in strips], axis=1)[0]  # (H, W): the logits channel
    with torch.no_grad():
        whole = model(normalize(torch.from_numpy(scene).float())[None]).logits[0, 0].numpy()
    assert tiled.shape == (75, 101) and len(strips) > 2
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_tiled_3x3_model_agrees_with_whole_scene_away_from_seams(tmp_path):
    """With context across tile edges, only pixels next to a tile border may differ: masks agree on > 99% of pixels."""
    scene = np.random.default_rng(1).integers(0, 256, (3, 120, 150), dtype=np.uint8)
    path = write_geotiff(tmp_path / "scene.tif", scene)
    model = LocalModel(image_size=32, kernel_size=3)
    with SceneReader(path) as reader:
        strips = predict_scene_strips(reader, TileRunner(model, "cpu"), overlap=8)
        tiled = np.concatenate([maps for _, maps in strips], axis=1)[0]
    with torch.no_grad():
        whole = model(normalize(torch.from_numpy(scene).float())[None]).logits[0, 0].numpy()
    assert ((tiled > 0) == (whole > 0)).mean() > 0.99
    # A 3x3 filter sees past a tile only on the tile's outermost pixels: everywhere else the blend is exact.
    edge_rows, edge_cols = np.zeros(120, bool), np.zeros(150, bool)
    for edges, length in ((edge_rows, 120), (edge_cols, 150)):
        for origin in tile_origins(length, 32, 8):
            edges[[i for i in (origin, origin + 31) if 0 <= i < length]] = True
    away = ~edge_rows[:, None] & ~edge_cols[None, :]
    np.testing.assert_allclose(tiled[away], whole[away], atol=1e-4)
    assert not np.allclose(tiled, whole, atol=1e-4)  # the seams are blended, not copied from one tile


def test_one_tile_scene_equals_direct_forward(sam_model, tmp_path):
    scene = np.random.default_rng(2).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    path = write_geotiff(tmp_path / "tile.tif", scene)
    result = predict_file(sam_model, path, tmp_path / "out")
    probability, _ = read_band(result.outputs["probability"])
    with torch.no_grad():
        direct = torch.sigmoid(sam_model(normalize(torch.from_numpy(scene).float())[None]).logits)[0, 0].numpy()
    np.testing.assert_allclose(probability, direct, atol=1e-5)


def test_image_smaller_than_input_is_resized_as_in_training(sam_model, tmp_path):
    """A 40 x 50 image (Bijie has 61 x 61 ones) is resized to the input and back, like `predict_proba` does."""
    image = np.random.default_rng(6).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "small.png")
    result = predict_file(sam_model, tmp_path / "small.png", tmp_path / "out")
    probability, _ = read_band(result.outputs["probability"])
    np.testing.assert_allclose(probability, sam_model.predict_proba([image])[0], atol=1e-5)
    mask_png = np.asarray(Image.open(result.outputs["mask_png"]))
    np.testing.assert_array_equal(mask_png == 255, probability > 0.5)


# ------------------------------------------------------------------------------------------------------ georeferencing
def test_multi_tile_geotiff_keeps_crs_transform_shape_and_format(sam_model, tmp_path):
    scene = np.random.default_rng(3).integers(0, 256, (3, 100, 130), dtype=np.uint8)
    path = write_geotiff(tmp_path / "scene.tif", scene)
    result = predict_file(sam_model, path, tmp_path / "out", PredictionOptions(overlap=16, batch_size=4))
    assert result.status == "done" and result.tiles > 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "scene_landslides.geojson", "scene_landslides.gpkg", "scene_mask.tif", "scene_probability.tif",
        "scene_quicklook.png",
    ]
    for name, dtype in (("probability", "float32"), ("mask", "uint8")):
        with rasterio.open(result.outputs[name]) as dataset:
            assert dataset.crs.to_epsg() == 32648 and dataset.transform == TRANSFORM
            assert dataset.shape == (100, 130) and dataset.dtypes[0] == dtype
            assert dataset.compression.name.lower() == "deflate" and dataset.block_shapes[0] == (256, 256)
    mask, profile = read_band(result.outputs["mask"])
    assert profile["nodata"] == 255 and set(np.unique(mask)) <= {0, 1}
    assert np.isnan(read_band(result.outputs["probability"])[1]["nodata"])
    assert Image.open(result.outputs["quicklook"]).size == (130, 100)


def test_polygon_area_equals_mask_area_and_min_area_filters(tmp_path):
    path = write_geotiff(tmp_path / "blobs.tif", blob_scene())
    model = LocalModel(image_size=32)
    result = predict_file(model, path, tmp_path / "out", PredictionOptions(overlap=8))
    mask, _ = read_band(result.outputs["mask"])
    expected = (blob_scene()[0] == 200).astype(np.uint8)
    np.testing.assert_array_equal(mask, expected)  # the pointwise model marks exactly the red landslides
    for output in ("geojson", "gpkg"):
        meta, _, geometry, fields = read_layer(result.outputs[output])
        assert list(meta["fields"]) == ["id", "area", "area_unit"] and set(fields[2]) == {"m2"}
        assert meta["crs"] == {"geojson": "EPSG:4326", "gpkg": "EPSG:32648"}[output]  # GeoJSON: RFC 7946's WGS 84
        polygons = shapely.from_wkb(geometry)
        assert len(polygons) == 3
        pixel_area = mask.sum() * PIXEL_SIZE**2
        if output == "gpkg":  # in the scene's CRS, in metres
            assert shapely.area(polygons).sum() == pytest.approx(pixel_area, rel=1e-9)
        assert fields[1].sum() == pytest.approx(pixel_area, rel=1e-9)  # the areas are the scene CRS's m2 in both
    # A landslide split by polygonisation blocks comes out whole.
    blocked = mask_polygons(result.outputs["mask"], block_rows=7)
    assert len(blocked) == 3 and shapely.area(blocked).sum() == pytest.approx(mask.sum() * PIXEL_SIZE**2)

    smallest = 300 * PIXEL_SIZE**2  # the 10 x 25 px landslide is under it, the others over
    filtered = predict_file(model, path, tmp_path / "filtered", PredictionOptions(overlap=8, min_area=smallest))
    _, _, _, fields = read_layer(filtered.outputs["geojson"])
    assert len(fields[1]) == 2 and fields[1].min() >= smallest


def test_nodata_stays_nodata_and_valid_stays_valid(tmp_path):
    scene = blob_scene()
    scene[:, 30:45, 0:40] = 0  # nodata in every band
    scene[0, 80:85, 90:100] = 0  # zero in one band only: a valid pixel (GDAL's per-dataset mask rule)
    path = write_geotiff(tmp_path / "holes.tif", scene, nodata=0)
    result = predict_file(LocalModel(image_size=32), path, tmp_path / "out", PredictionOptions(overlap=8))
    nodata = (scene == 0).all(axis=0)
    probability, _ = read_band(result.outputs["probability"])
    mask, _ = read_band(result.outputs["mask"])
    np.testing.assert_array_equal(np.isnan(probability), nodata)
    np.testing.assert_array_equal(mask == 255, nodata)
    assert set(np.unique(mask[~nodata])) == {0, 1}


# ---------------------------------------------------------------------------------------------------- bands and scaling
def test_band_selection_and_scaling(tmp_path):
    rng = np.random.default_rng(4)
    bands = rng.integers(0, 10_000, (5, 40, 50), dtype=np.uint16)
    bands[3] = 5000  # the band read as red: exactly half the divisor
    path = write_geotiff(tmp_path / "sentinel.tif", bands)
    divided = TransLandSegImageProcessor(bands=(4, 3, 2), scale="divisor", divisor=10_000)
    with SceneReader(path, divided) as reader:
        rgb = reader.read_rgb()  # (3, H, W), cut to whole 8-bit steps as the training images were
        np.testing.assert_array_equal(rgb[0], 127.0)
        np.testing.assert_array_equal(rgb[1], np.floor((bands[2] / 10_000 * 255).astype(np.float32)))
    with SceneReader(path, TransLandSegImageProcessor(scale="percentile", percentiles=(2, 98))) as reader:
        rgb = reader.read_rgb()
        assert rgb.min() == 0 and rgb.max() == 255
        assert 0.01 <= (rgb == 255).mean() <= 0.04 and 0.01 <= (rgb == 0).mean() <= 0.04  # ~2% at each end
    out_of_range = r"sentinel\.tif: band 7 is not in the file: the model reads bands 7,3,2, and the file has 5 band\(s\): 1, 2, 3, 4, 5\."
    with pytest.raises(ValueError, match=out_of_range):
        SceneReader(path, TransLandSegImageProcessor(bands=(7, 3, 2)))


# ------------------------------------------------------------------------------------------------------ CLI and faults
def test_cli_skips_unreadable_file_reports_it_and_exits_non_zero(saved_model, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a_broken.tif").write_bytes(b"not a tiff at all")
    good = np.random.default_rng(5).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(good).save(inputs / "b_good.png")
    code = main(["predict", "--model", str(saved_model), str(inputs), "--output", str(tmp_path / "out")])
    output = capsys.readouterr()
    assert code == 1
    assert "a_broken.tif" in output.out and "1 done, 0 skipped, 1 failed" in output.out
    failed_lines = [line for line in output.out.splitlines() if "failed:" in line]
    assert failed_lines and all(line.count("a_broken.tif") == 1 for line in failed_lines), failed_lines
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "b_good_mask.png" in names and "b_good_mask.tif" in names and not any("a_broken" in n for n in names)
    assert not any(name.endswith(".tmp") or name.startswith(".") for name in names)

    stopped = main(["predict", "--model", str(saved_model), str(inputs), "--output", str(tmp_path / "stop"),
                    "--on-error", "stop"])
    assert stopped == 1 and not (tmp_path / "stop" / "b_good_mask.tif").exists()


def test_cli_band_out_of_range_names_available_bands(saved_model, tmp_path, capsys):
    path = write_geotiff(tmp_path / "three.tif", blob_scene())
    code = main(["predict", "--model", str(saved_model), str(path), "--output", str(tmp_path / "out"),
                 "--bands", "4,3,2"])
    output = capsys.readouterr().out
    assert code == 1
    assert "three.tif: band 4 is not in the file: the model reads bands 4,3,2, and the file has 3 band(s): 1, 2, 3." in output


def test_existing_outputs_are_kept_unless_overwrite(tmp_path):
    path = write_geotiff(tmp_path / "blobs.tif", blob_scene())
    model = LocalModel(image_size=32)
    first = predict_file(model, path, tmp_path / "out")
    digest = hashlib.sha256(first.outputs["mask"].read_bytes()).hexdigest()
    first.outputs["mask"].write_bytes(first.outputs["mask"].read_bytes() + b"marker")
    again = predict_file(model, path, tmp_path / "out")
    assert again.status == "skipped" and "--overwrite" in again.message
    assert first.outputs["mask"].read_bytes().endswith(b"marker")
    replaced = predict_file(model, path, tmp_path / "out", PredictionOptions(overwrite=True))
    assert replaced.status == "done"
    assert hashlib.sha256(first.outputs["mask"].read_bytes()).hexdigest() == digest


def test_failure_mid_scene_leaves_no_outputs(tmp_path):
    class FailingModel(LocalModel):
        calls = 0

        def forward(self, pixel_values):
            FailingModel.calls += 1
            if FailingModel.calls > 2:
                raise RuntimeError("device lost")
            return super().forward(pixel_values)

    path = write_geotiff(tmp_path / "blobs.tif", blob_scene())
    results = predict_files(FailingModel(image_size=32), [path], tmp_path / "out", show_progress=False)
    assert results[0].status == "failed" and "device lost" in results[0].message
    assert list((tmp_path / "out").iterdir()) == []  # neither a truncated GeoTIFF nor a temporary file


# ------------------------------------------------------------------------------------------------------ real samples
@requires_shared_data
def test_real_bijie_and_landslide4sense_samples_end_to_end(sam_model, tmp_path):
    bijie = sorted((SHARED_DATA / "bijie" / "landslide" / "image").glob("*.png"), key=lambda p: p.stat().st_size)[:1]
    l4s = sorted((SHARED_DATA / "landslide4sense-rgb" / "image").glob("*.png"))[:1]
    results = predict_files(sam_model, bijie + l4s, tmp_path / "out", show_progress=False)
    assert [r.status for r in results] == ["done"] * 2
    for path, result in zip(bijie + l4s, results):
        image = Image.open(path).convert("RGB")
        mask = np.asarray(Image.open(result.outputs["mask_png"]))
        assert mask.shape == (image.height, image.width) and set(np.unique(mask)) <= {0, 255}
        assert result.outputs["quicklook"].is_file() and result.outputs["gpkg"].is_file()
        assert "geojson" not in result.outputs and not (tmp_path / "out" / f"{path.stem}_landslides.geojson").exists()
        probability, _ = read_band(result.outputs["probability"])
        assert np.isfinite(probability).all() and 0 <= probability.min() <= probability.max() <= 1


@requires_shared_data
def test_real_sichuan_orthophoto_end_to_end(tmp_path):
    """1024 px tiles of aerial imagery, with the CNN-baseline stand-in (a tiny SAM would need 300+ tiles here)."""
    path = sorted((SHARED_DATA / "sichuan" / "images").glob("*.png"))[0]
    result = predict_file(LocalModel(image_size=256, kernel_size=3), path, tmp_path / "out")
    mask = np.asarray(Image.open(result.outputs["mask_png"]))
    assert result.status == "done" and result.tiles > 1 and mask.shape == (1024, 1024)
    assert "geojson" not in result.outputs  # pixel coordinates: the GeoPackage only
    _, _, _, fields = read_layer(result.outputs["gpkg"])
    assert set(fields[2]) <= {"pixels"}
    every = predict_file(LocalModel(image_size=256, kernel_size=3), path, tmp_path / "all",
                         PredictionOptions(min_area=0))
    _, _, _, every_fields = read_layer(every.outputs["gpkg"])
    assert every_fields[1].sum() == pytest.approx((mask == 255).sum())  # polygons cover the mask exactly
    # By default specks under 4 pixels are dropped, and nothing else.
    assert sorted(fields[1]) == sorted(every_fields[1][every_fields[1] >= 4]) and len(fields[1]) < len(every_fields[1])


def test_two_processes_split_the_files(saved_model, tmp_path):
    """`accelerate launch -m translandseg_hf.cli predict`: each process maps its own share of the inputs."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(4):
        Image.fromarray(np.full((30, 30, 3), 40 * index, dtype=np.uint8)).save(inputs / f"image{index}.png")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "translandseg_hf.cli", "predict", "--model", str(saved_model), str(inputs),
               "--output", str(tmp_path / "out")]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "[process 0] 2 done" in result.stdout and "[process 1] 2 done" in result.stdout
    assert len(list((tmp_path / "out").glob("*_mask.png"))) == 4


# -------------------------------------------------------------------------------------------------- what a run leaves
def stderr_of(code: str, terminal: bool) -> str:
    """Standard error of `python -c code`: a pipe, or a 100-column terminal (a pseudo-terminal)."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if not terminal:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                              check=True, timeout=300).stderr
    import fcntl
    import pty
    import struct
    import termios

    reader, writer = pty.openpty()
    fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # tqdm draws nothing 0 columns wide
    process = subprocess.Popen([sys.executable, "-c", code], stderr=writer, stdout=subprocess.DEVNULL, env=environment)
    os.close(writer)
    chunks = []
    while True:
        try:
            chunk = os.read(reader, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(reader)
    assert process.wait(timeout=300) == 0
    return b"".join(chunks).decode("utf-8", "replace")


def test_loading_weights_bars_show_on_a_terminal_only(saved_model):
    code = f"from translandseg_hf import load_segmentation_model; load_segmentation_model({str(saved_model)!r})"
    assert "Loading weights" in stderr_of(code, terminal=True)  # the bundled base SAM, read by transformers
    assert stderr_of(code, terminal=False) == ""


@pytest.mark.parametrize(("umask", "file_mode", "folder_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)],
                         ids=["umask022", "umask077"])
def test_saved_model_files_get_the_umask_modes(sam_model, tmp_path, umask, file_mode, folder_mode):
    previous = os.umask(umask)
    try:
        sam_model.save_pretrained(tmp_path / "model")
    finally:
        os.umask(previous)
    saved = {str(p.relative_to(tmp_path)): stat_mode(p) for p in (tmp_path / "model").rglob("*")}
    assert "model/adapter_model.safetensors" in saved and "model/base_model/model.safetensors" in saved
    assert saved == {name: folder_mode if (tmp_path / name).is_dir() else file_mode for name in saved}


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_cli_predict_on_a_png_leaves_maps_readable_by_others_and_nothing_on_stderr(saved_model, tmp_path):
    """A plain PNG has no georeferencing, as intended: no NotGeoreferencedWarning on stderr, only the one warning
    that its polygons are in the GeoPackage alone (no GeoJSON, which would claim WGS 84).
    300 px: more than one 256 px block, so overview levels and their VRT are made."""
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    command = [sys.executable, "-W", "always::UserWarning", "-m", "translandseg_hf.cli", "predict", "--model",
               str(saved_model), str(tmp_path / "a.png"), "--output", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            umask=0o022, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NotGeoreferencedWarning" not in result.stderr and result.stderr == (
        f"warning: {tmp_path / 'a.png'}: no GeoJSON: the image has no georeferencing, so its polygons are in pixel "
        "coordinates, which GeoJSON cannot state; they are in a_landslides.gpkg with an undefined CRS\n")
    written = {p.name: stat_mode(p) for p in (tmp_path / "out").iterdir()}
    assert set(written) == {"a_mask.tif", "a_probability.tif", "a_mask.png", "a_quicklook.png",
                            "a_landslides.gpkg"}
    assert set(written.values()) == {0o644}, written
