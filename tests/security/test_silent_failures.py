"""Issue 35 §4, silent wrong maps and errors without a name: hostile or broken model folders, contracts, ONNX graphs
and rasters either map correctly (non-finite values are nodata) or fail with a message naming the file and field.

Each table is one parametrised test, so the next hostile case is one row.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from safetensors.torch import load_file, save_file

from translandseg_hf import load_segmentation_model
from translandseg_hf.baselines import BaselineConfig, BaselineSegmentationModel
from translandseg_hf.cli import main
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.inference import PredictionOptions, predict_file, predict_files
from translandseg_hf.inference.scene import NO_VALID_PIXELS

from helpers.models import Graph
from helpers.rasters import write_raster

ROOT = Path(__file__).resolve().parents[2]
BOMB_SIDE = 10**6
DEEP_JSON = "[" * 100_000 + "]" * 100_000


# ------------------------------------------------------------------------------------------------ model folders
def edit_json(name: str, **fields):
    def edit(folder: Path) -> None:
        values = json.loads((folder / name).read_text())
        values.update(fields)
        (folder / name).write_text(json.dumps(values))  # NaN and Infinity written as JSON's NaN literals
    return edit


def write_text(name: str, text: str):
    return lambda folder: (folder / name).write_text(text)


def huge_json(name: str):
    return lambda folder: (folder / name).write_text(" " * (17 * 2**20) + "{}")


def drop_a_tensor(folder: Path) -> None:
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    del tensors[sorted(tensors)[0]]
    save_file(tensors, str(folder / "adapter_model.safetensors"))


BROKEN_FOLDERS = [  # (how the saved tiny TransLandSeg folder is broken, the error expected)
    (edit_json("preprocessor_config.json", image_std=[0, 0, 0]),
     r"preprocessor_config\.json: field image_mean, image_std: three values each \(R, G, B\), every std above 0"),
    (edit_json("preprocessor_config.json", image_std=[float("nan")] * 3),
     r"preprocessor_config\.json: field image_std: every value must be a finite number, got \[nan, nan, nan\]"),
    (edit_json("preprocessor_config.json", divisor=float("nan")),
     r"preprocessor_config\.json: field divisor: every value must be a finite number, got \[nan\]"),
    (edit_json("preprocessor_config.json", divisor=0),
     r"preprocessor_config\.json: divisor must be positive, got 0\.0"),
    (edit_json("preprocessor_config.json", tile_size=10**9),
     r"preprocessor_config\.json: field tile_size: 1000000000 px is more than 32768 px"),
    (edit_json("preprocessor_config.json", tile_size=2.5),
     r"preprocessor_config\.json: field tile_size: expected a whole number, got 2\.5"),
    (edit_json("preprocessor_config.json", percentiles=[98, 2]),
     r"preprocessor_config\.json: percentiles must be low, high with 0 <= low < high <= 100"),
    (edit_json("preprocessor_config.json", percentiles=[2, float("inf")]),
     r"preprocessor_config\.json: percentiles must be low, high with 0 <= low < high <= 100, got \[2\.0, inf\]"),
    (edit_json("preprocessor_config.json", bands=5),  # was: 'int' object is not iterable
     r"preprocessor_config\.json: field bands: expected a list, got 5"),
    (edit_json("preprocessor_config.json", input_size="64"),
     r"preprocessor_config\.json: field input_size: expected a number, got '64'"),
    (write_text("preprocessor_config.json", DEEP_JSON),
     r"preprocessor_config\.json: nested too deeply to be a config \(a JSON bomb\?\)"),
    (huge_json("preprocessor_config.json"),
     r"preprocessor_config\.json: 17,825,794 bytes, more than the 16,777,216 a model's JSON file may have"),
    (write_text("preprocessor_config.json", "[1, 2]"),
     r"preprocessor_config\.json: holds a JSON list, not an object of fields"),
    (edit_json("adapter_config.json", peft_type="NOPE"),  # was: error: 'NOPE'
     r"adapter_config\.json: field peft_type: expected an adapter type PEFT knows, such as 'ATL', got 'NOPE'"),
    (edit_json("adapter_config.json", image_size="big"),  # was: '<' not supported between 'str' and 'int'
     r"adapter_config\.json: field image_size: expected a whole number or null, got 'big'"),
    (write_text("adapter_config.json", DEEP_JSON),
     r"adapter_config\.json: nested too deeply to be a config"),
    (huge_json("adapter_config.json"), r"adapter_config\.json: 17,825,794 bytes, more than"),
    (write_text("base_model/config.json", DEEP_JSON),
     r"base_model/config\.json: nested too deeply to be a config"),
    (drop_a_tensor,  # was: KeyError: 'base_model.model...weight'
     r"adapter_model\.safetensors: tensor 'base_model\.model\.\S+' is missing: the file is incomplete or was saved "
     r"for another model"),
]


@pytest.fixture
def model_copy(tiny_sam_folder, tmp_path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_sam_folder, folder)
    return folder


@pytest.mark.parametrize("damage, message", BROKEN_FOLDERS)
def test_a_broken_model_folder_is_refused_by_file_and_field(model_copy, damage, message):
    damage(model_copy)
    with pytest.raises(ValueError, match=rf"{model_copy}/{message}"):
        load_segmentation_model(model_copy)


def test_predict_names_the_file_and_field_of_a_broken_folder(model_copy, tmp_path, capsys):
    edit_json("adapter_config.json", peft_type="NOPE")(model_copy)
    code = main(["predict", str(write_scene(tmp_path / "scene.png")), "--model", str(model_copy), "--output",
                 str(tmp_path / "out"), "--device", "cpu"])
    assert code == 1
    assert f"error: {model_copy}/adapter_config.json: field peft_type: expected an adapter type PEFT knows" in \
        capsys.readouterr().err


STACK_BOMBS = [  # (how the contract is broken, the error expected): `stack` reads the contract without torch
    (write_text("preprocessor_config.json", DEEP_JSON),
     r"preprocessor_config\.json: nested too deeply to be a config \(a JSON bomb\?\)"),
    (huge_json("preprocessor_config.json"),
     r"preprocessor_config\.json: 17,825,794 bytes, more than the 16,777,216 a model's JSON file may have"),
]


@pytest.mark.parametrize("damage, message", STACK_BOMBS)
def test_stack_refuses_a_contract_bomb_by_file(model_copy, tmp_path, capsys, damage, message):
    damage(model_copy)
    code = main(["stack", "--model", str(model_copy), "--sentinel2", str(tmp_path), "--output", str(tmp_path / "s.tif")])
    assert code == 2
    assert re.search(rf"error: {model_copy}/{message}", capsys.readouterr().err)


ITEM_BOMBS = [  # (a local STAC item JSON, the reason the error gives): read whole by pystac, so refused unread
    (write_text("item.json", DEEP_JSON), r"not a STAC Item \(JSON nested too deeply to be a STAC item\)"),
    (huge_json("item.json"), r"not a STAC Item \(17,825,794 bytes, more than a STAC item's 16,777,216\)"),
]


@pytest.mark.parametrize("write, reason", ITEM_BOMBS)
def test_a_local_stac_item_bomb_is_refused_by_file(tmp_path, write, reason):
    from translandseg_hf.geo.sentinel2.products import open_product

    write(tmp_path)
    with pytest.raises(ValueError, match=rf"{tmp_path}/item\.json: {reason}"):
        open_product(tmp_path / "item.json")


def test_a_baseline_config_field_of_the_wrong_type_is_named(tmp_path):
    BaselineSegmentationModel(BaselineConfig("unet", "resnet18", None, image_size=64)).save_pretrained(tmp_path)
    edit_json("baseline_config.json", in_channels=[3])(tmp_path)
    with pytest.raises(ValueError, match=rf"{tmp_path}/baseline_config\.json: field in_channels: expected a whole "
                                         r"number, got \[3\]"):
        load_segmentation_model(tmp_path)


# ------------------------------------------------------------------------------------------------ NaN probabilities
def write_scene(path: Path, values=None, dtype="uint8", side: int = 64) -> Path:
    """A plain (un-georeferenced) 3-band scene; random 8-bit values unless given."""
    if values is None:
        values = np.random.default_rng(0).integers(0, 256, (3, side, side)).astype(dtype)
    return write_raster(path, values, driver="PNG" if path.suffix == ".png" else "GTiff", crs=None)


def nan_weights(folder: Path) -> None:
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    save_file({key: torch.full_like(value, float("nan")) for key, value in tensors.items()},
              str(folder / "adapter_model.safetensors"))


def onnx_folder(folder: Path, rule, size: int = 64) -> Path:
    """An exported folder as `translandseg export` lays it out, whose graph computes `rule`."""
    folder.mkdir()
    torch.onnx.export(Graph(rule).eval(), (torch.zeros(1, 3, size, size),), str(folder / "model.onnx"),
                      input_names=["pixel_values"], output_names=["logits"], dynamo=False,
                      dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}})
    TransLandSegImageProcessor(input_size=size).save_pretrained(str(folder))
    (folder / "onnx_config.json").write_text(json.dumps(
        {"input_name": "pixel_values", "output_name": "logits", "image_size": size, "input_channels": 3}))
    return folder


def all_nan(pixel_values):
    return pixel_values[:, :1] * float("nan")


NAN_MODELS = [  # (how the model is made to give NaN everywhere, the model's name in the message)
    ("nan weights", lambda tmp, copy: (nan_weights(copy), copy)[1]),
    ("onnx graph giving NaN", lambda tmp, copy: onnx_folder(tmp / "nan-graph", all_nan)),
]


@pytest.mark.parametrize("case, make", NAN_MODELS, ids=[row[0] for row in NAN_MODELS])
def test_a_model_giving_only_nan_fails_naming_the_model(model_copy, tmp_path, case, make):
    """Was: a clean "no landslide" map and exit status 0."""
    model = make(tmp_path, model_copy)
    scene = write_scene(tmp_path / "scene.png")
    with pytest.raises(ValueError, match=rf"^{model}: the model gave no finite probability on {scene}; its weights or "
                                         r"contract \(preprocessor_config\.json\) hold NaN or infinite values"):
        predict_files(str(model), [scene], tmp_path / "out", device="cpu", on_error="raise", show_progress=False)
    assert not list((tmp_path / "out").glob("scene_*")), "no output of a failed map is left"


def test_nan_probabilities_are_nodata_not_no_landslide(tmp_path):
    """A graph that gives NaN on the bright half of the scene and a low logit elsewhere: the bright half is nodata
    (255 in the mask, NaN probability), the rest mapped. Was: 0 ("no landslide") everywhere."""
    model = load_segmentation_model(onnx_folder(tmp_path / "half", lambda x: torch.where(
        x[:, :1] > 0, torch.full_like(x[:, :1], float("nan")), torch.full_like(x[:, :1], -5.0))))
    values = np.zeros((3, 64, 64), np.uint8)
    values[:, :, :32] = 255
    result = predict_file(model, write_scene(tmp_path / "scene.png", values), tmp_path / "out",
                          PredictionOptions(), device="cpu")
    with rasterio.open(result.outputs["mask"]) as mask, rasterio.open(result.outputs["probability"]) as probability:
        mask, probability = mask.read(1), probability.read(1)
    assert (mask[:, :32] == 255).all() and (mask[:, 32:] == 0).all()
    assert np.isnan(probability[:, :32]).all() and np.isfinite(probability[:, 32:]).all()


ONNX_FAULTS = [  # (what is wrong with the exported folder, the error expected)
    ("output at half the input side", lambda folder: onnx_folder(folder, lambda x: x[:, :1, ::2, ::2]),
     r"model\.onnx gives \{'logits': \['batch', 1, 32, 32\]\}, but the model takes 64 px inputs, so logits must be "
     r"\(batch, 1, 64, 64\)"),
    ("three output channels", lambda folder: onnx_folder(folder, lambda x: x * 1.0),
     r"model\.onnx gives \{'logits': \['batch', 3, 64, 64\]\}"),
    ("image_size a string", lambda folder: edit_json("onnx_config.json", image_size="64")(
        onnx_folder(folder, all_nan)) or folder, r"onnx_config\.json: field image_size: expected a whole number of px"),
    ("nested onnx_config", lambda folder: write_text("onnx_config.json", DEEP_JSON)(
        onnx_folder(folder, all_nan)) or folder, r"onnx_config\.json: nested too deeply to be a config"),
]


@pytest.mark.parametrize("case, make, message", ONNX_FAULTS, ids=[row[0] for row in ONNX_FAULTS])
def test_an_exported_folder_that_does_not_fit_its_config_is_refused_by_name(tmp_path, case, make, message):
    folder = tmp_path / "exported"
    make(folder)
    with pytest.raises(ValueError, match=rf"{folder}/{message}"):
        load_segmentation_model(folder)


# ------------------------------------------------------------------------------------------------ float rasters
def float_scene(fill):
    def make(path: Path) -> Path:
        values = np.random.default_rng(0).uniform(0, 255, (3, 64, 64)).astype(np.float32)
        fill(values)
        return write_scene(path, values)
    return make


def nan_everywhere(values):
    values[:] = np.nan


def infinite_left_half(values):
    values[:, :, :32] = np.inf


def nan_in_one_band_of_the_left_half(values):
    values[1, :, :32] = -np.inf


FLOAT_SCENES = [  # (a float scene without declared nodata, the columns that must be nodata in the mask)
    ("all NaN", float_scene(nan_everywhere), slice(0, 64)),  # was: read as black, and 6 polygons
    ("+inf on the left", float_scene(infinite_left_half), slice(0, 32)),
    ("-inf in one band", float_scene(nan_in_one_band_of_the_left_half), slice(0, 32)),
]


@pytest.mark.parametrize("case, make, nodata", FLOAT_SCENES, ids=[row[0] for row in FLOAT_SCENES])
def test_non_finite_float_pixels_are_nodata(tiny_sam_folder, tmp_path, case, make, nodata):
    scene = make(tmp_path / "scene.tif")
    result = predict_file(load_segmentation_model(tiny_sam_folder), scene, tmp_path / "out", device="cpu")
    with rasterio.open(result.outputs["mask"]) as mask:
        values = mask.read(1)
    assert (values[:, nodata] == 255).all()
    outside = np.ones(64, bool)
    outside[nodata] = False
    assert (values[:, outside] != 255).all()
    assert (NO_VALID_PIXELS in result.notes) == (not outside.any())


def test_reflectance_given_to_an_8_bit_model_is_said_once(tiny_sam_folder, tmp_path, capsys):
    scene = write_scene(tmp_path / "scene.tif", np.random.default_rng(0).random((3, 64, 64), dtype=np.float32))
    result = predict_file(load_segmentation_model(tiny_sam_folder), scene, tmp_path / "out", device="cpu")
    expected = (r"the bands hold float32 values from \S+ to \S+, read as brightness in 0-1 \(1 is white\) and scaled "
                r"to 0-255, as the model's 8-bit contract \(scale none\) reads float images")
    assert sum(bool(re.match(expected, note)) for note in result.notes) == 1
    assert len(re.findall(rf"warning: {scene}: {expected}", capsys.readouterr().err)) == 1


# ------------------------------------------------------------------------------------------------ header bombs
def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: Path) -> Path:
    """A valid 66-byte PNG whose IHDR declares 10^6 x 10^6 RGB pixels (correct CRCs: GDAL opens it)."""
    header = struct.pack(">IIBBBBB", BOMB_SIDE, BOMB_SIDE, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0"))
                     + png_chunk(b"IEND", b""))
    return path


def vrt_bomb(path: Path) -> Path:
    """A 192-byte VRT of three empty 10^6 x 10^6 bands."""
    bands = "".join(f'<VRTRasterBand dataType="Byte" band="{band}"/>' for band in (1, 2, 3))
    path.write_text(f'<VRTDataset rasterXSize="{BOMB_SIDE}" rasterYSize="{BOMB_SIDE}">{bands}</VRTDataset>')
    return path


# Run in a child whose address space is capped at what it holds after loading the model + 2 GiB: before the check,
# mapping these headers ran into MemoryError after a minute or more (past 6 GB without the cap).
CAPPED_PREDICT = """
import re, resource, sys
from translandseg_hf import load_segmentation_model
from translandseg_hf.cli import main
load_segmentation_model(sys.argv[1])
held = int(re.search(r"VmSize:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
resource.setrlimit(resource.RLIMIT_AS, (held + 2 * 2**30, held + 2 * 2**30))
sys.exit(main(["predict", sys.argv[2], "--model", sys.argv[1], "--output", sys.argv[3], "--device", "cpu"]))
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the address space from /proc")
@pytest.mark.parametrize("bomb", [png_bomb, vrt_bomb], ids=["png", "vrt"])
def test_a_header_bomb_is_refused_from_the_header(tiny_sam_folder, tmp_path, bomb):
    path = bomb(tmp_path / f"bomb.{bomb.__name__[:3]}")
    assert path.stat().st_size < 200
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               PYTHONPATH=str(ROOT))
    child = subprocess.run([sys.executable, "-c", CAPPED_PREDICT, str(tiny_sam_folder), str(path),
                            str(tmp_path / "out")], capture_output=True, text=True, timeout=120, env=env)
    assert child.returncode == 1, child.stderr[-2000:]
    assert (f"failed: {path}: 1000000 x 1000000 px is 1,000,000,000,000 pixels, more than --max_pixels "
            "20,000,000,000; a header that declares a huge image is refused before anything is read (pass "
            "--max_pixels 0 to map it anyway)") in child.stdout
    assert "MemoryError" not in child.stderr


def test_max_pixels_is_an_option_of_predict(tiny_sam_folder, tmp_path, capsys):
    scene = write_scene(tmp_path / "scene.png")
    assert main(["predict", str(scene), "--model", str(tiny_sam_folder), "--output", str(tmp_path / "out"),
                 "--device", "cpu", "--max_pixels", "4095"]) == 1
    assert f"failed: {scene}: 64 x 64 px is 4,096 pixels, more than --max_pixels 4,095" in capsys.readouterr().out
    assert main(["predict", str(scene), "--model", str(tiny_sam_folder), "--output", str(tmp_path / "out"),
                 "--device", "cpu", "--max_pixels", "0"]) == 0


ABSURD_TILES = [  # (predict's arguments, the refusal): a tile is allocated whole, (C, side, side) float32
    (["--tile_size", "40000"], r"tile_size must be 1-32768 px, got 40000"),
    (["--resolution", "0.000001"], r"tiles of 64 px at 10 m are 640000000 px at 1e-06 m per pixel \(--resolution\), "
                                   r"more than 32768 px: the resolution looks wrong"),
]


@pytest.mark.parametrize("arguments, message", ABSURD_TILES, ids=["tile_size", "resolution"])
def test_an_absurd_tile_side_is_refused_before_allocating_it(model_copy, tmp_path, capsys, arguments, message):
    edit_json("preprocessor_config.json", ground_resolution=10.0)(model_copy)
    edit_json("preprocessor_config.json", tile_size=64)(model_copy)
    scene = write_scene(tmp_path / "scene.png")
    assert main(["predict", str(scene), "--model", str(model_copy), "--output", str(tmp_path / "out"), "--device",
                 "cpu", *arguments]) == 1
    assert re.search(rf"failed: {scene}: {message}", capsys.readouterr().out)


# ------------------------------------------------------------------------------------------------ read-only outputs
def read_only(output: Path) -> None:
    output.chmod(0o444)


def folder_in_place(output: Path) -> None:
    output.unlink()
    output.mkdir()


UNREPLACEABLE = [  # (what is done to an existing output, the message of `predict --overwrite`)
    (read_only, "{}: the output is read-only, and --overwrite does not replace read-only files; make it writable "
                "(chmod u+w) or remove it to map this input again."),
    (folder_in_place, "{}: a folder where an output goes; move it away to map this input."),
]


@pytest.mark.parametrize("damage, message", UNREPLACEABLE, ids=["read-only file", "folder"])
def test_an_output_overwrite_cannot_replace_is_named_before_any_work(tiny_sam_folder, tmp_path, capsys, damage,
                                                                      message):
    scene, out = write_scene(tmp_path / "scene.png"), tmp_path / "out"
    arguments = ["predict", str(scene), "--model", str(tiny_sam_folder), "--output", str(out), "--device", "cpu"]
    assert main(arguments) == 0
    target = out / "scene_probability.tif"
    damage(target)
    before = sorted(path.name for path in out.iterdir())
    capsys.readouterr()
    assert main([*arguments, "--overwrite"]) == 1
    assert f"failed: {scene}: {message.format(target)}" in capsys.readouterr().out
    assert sorted(path.name for path in out.iterdir()) == before, "nothing written, no work file left"
