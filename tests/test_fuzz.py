"""Fuzzed inputs: every loader and `translandseg predict`'s reader takes a file or names it.

Random bytes, truncated and bit-flipped PNG / TIFF / JPEG / HDF5 files, 1 x N rasters, every dtype, NaN and infinite
values, masks of other sizes or with more classes: each case loads, or raises the documented error (`DatasetError`
for the loaders, a ValueError starting with the path for the reader) naming the file. Never another exception, a
numpy warning or a hang. The examples are few and fixed by default (the "ci" profile in conftest.py); run
`python -m pytest tests/test_fuzz.py --hypothesis-profile=long` for hundreds of new ones.
"""

from __future__ import annotations

import io
import re
import signal
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import datasets
import h5py
import numpy as np
import pytest
import rasterio
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from transformers import SamModel

from translandseg_hf import TransLandSegModel
from translandseg_hf.cli import main
from translandseg_hf.data import DatasetError, SkippedItemsWarning, load_bijie, load_image_folder, load_landslide4sense
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.inference import SceneReader
from translandseg_hf.sam_configs import tiny_sam_config

datasets.disable_progress_bars()

GENERIC = re.compile(r"Read failed|See previous exception|Traceback|object has no attribute")
SPECIAL_FLOATS = [np.nan, np.inf, -np.inf, 1e300, -1e300, 0.0]
DTYPES = ["uint8", "uint16", "int16", "uint32", "float32", "float64", "complex64"]
# Per example, a guard against hangs only: an example takes well under a second here, and a loaded CI machine may be
# many times slower without anything being wrong, so no speed is part of pass or fail (hypothesis's deadline is off,
# see conftest.py). Five minutes still turns a hung read into a named failure instead of a stalled run.
HANG_SECONDS = 300


# --------------------------------------------------------------------------------------------------- files
def encode(array: np.ndarray, suffix: str) -> bytes:
    """(C, H, W) as the suffix's format where PIL can write it (PNG: 8-bit, or 16-bit grey; JPEG: 8-bit grey or
    RGB), else as a GeoTIFF under that name (a misnamed file is a case too)."""
    bands, dtype = array.shape[0], array.dtype
    pil_writes = suffix == ".png" and (dtype == np.uint8 or (dtype == np.uint16 and bands == 1))
    pil_writes = pil_writes or (suffix in (".jpg", ".jpeg") and dtype == np.uint8 and bands in (1, 3))
    if pil_writes:
        buffer = io.BytesIO()
        Image.fromarray(array[0] if bands == 1 else np.ascontiguousarray(np.moveaxis(array, 0, -1))).save(
            buffer, format="PNG" if suffix == ".png" else "JPEG")
        return buffer.getvalue()
    with warnings.catch_warnings(), rasterio.MemoryFile() as memory:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain rasters, as intended
        with memory.open(driver="GTiff", count=bands, height=array.shape[1], width=array.shape[2],
                         dtype=dtype) as dataset:
            dataset.write(array)
        return memory.read()


@st.composite
def arrays(draw, shape, dtypes) -> np.ndarray:
    """Random values of a drawn dtype, with NaN, infinities and float32 overflows placed among them."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    top = {"b": 2, "u": 256, "i": 128}.get(dtype.kind, 300)
    values = rng.integers(0, top, shape) if dtype.kind in "bui" else rng.random(shape) * top
    array = np.asarray(values).astype(dtype)
    if dtype.kind in "fc" and array.size:
        for position, value in draw(st.lists(st.tuples(st.integers(0, array.size - 1), st.sampled_from(SPECIAL_FLOATS)),
                                             max_size=4)):
            with np.errstate(over="ignore"):
                array.flat[position] = value
    return array


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """The file as written (most often), cut short (in its pixels more often than in its header), with a flipped
    byte, or replaced by random bytes."""
    how = draw(st.sampled_from(["intact", "intact", "truncated", "truncated", "flipped", "random"]))
    if how == "truncated":
        return data[: draw(st.one_of(st.integers(len(data) // 2, len(data) - 1), st.integers(0, len(data) - 1)))]
    if how == "flipped":
        position = draw(st.integers(0, len(data) - 1))
        return data[:position] + bytes([data[position] ^ draw(st.integers(1, 255))]) + data[position + 1:]
    if how == "random":
        return draw(st.binary(max_size=300))
    return data


@st.composite
def image_files(draw, dtypes=DTYPES, suffixes=(".png", ".tif", ".jpg")) -> tuple[bytes, str, tuple[int, int]]:
    """Bytes, suffix and the (height, width) of the raster they were written from (1 x N included)."""
    shape = (draw(st.sampled_from([1, 2, 3, 4])), draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    suffix = draw(st.sampled_from(suffixes))
    return draw(damaged(encode(draw(arrays(shape, dtypes)), suffix))), suffix, shape[1:]


def case(array: np.ndarray, suffix: str, keep: float = 1.0) -> tuple[bytes, str, tuple[int, int]]:
    """A fixed example, as `image_files` draws them: `keep` is the share of the file left."""
    data = encode(array, suffix)
    return data[: int(len(data) * keep)], suffix, array.shape[1:]


RGB = np.random.default_rng(1).integers(0, 256, (3, 30, 40), np.uint8)
HUGE = np.full((3, 6, 8), 1e300)  # beyond float32: infinite once cast
INFINITE = np.where(RGB[:, :6, :8] > 128, np.inf, 1.0).astype(np.float32)
# Cases that were mishandled before the loaders and the reader were fixed, run besides the drawn ones.
TRUNCATED_PNG, TRUNCATED_TIFF = case(RGB, ".png", keep=0.5), case(RGB, ".tif", keep=0.5)
SIXTEEN_BIT_PNG, COMPLEX_TIFF = case(RGB[:1].astype(np.uint16) * 200, ".png"), case(RGB.astype(np.complex64), ".tif")


@contextmanager
def strict(seconds: float = HANG_SECONDS):
    """Every warning is an error (numpy's RuntimeWarning above all), and a hang fails the example."""

    def interrupt(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s: a hang (or a machine far too loaded to test on)")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def rgb_png(height: int, width: int) -> bytes:
    return encode(np.full((3, height, width), 90, np.uint8), ".png")


def mask_png(height: int, width: int) -> bytes:
    return encode((np.arange(height * width).reshape(1, height, width) % 3 * 100).astype(np.uint8), ".png")


def loads_or_names_the_file(load, bad: Path, rows: int) -> None:
    """`load(on_error=...)` with `rows` samples, one of them holding `bad`: all load, with 0/1 masks, or the error
    and the skip report name `bad` and say what is wrong with it (not a library's generic message)."""
    try:
        with strict():
            loaded = load(on_error="raise")
    except DatasetError as error:
        assert bad.name in str(error) and not GENERIC.search(str(error)), str(error)
        skipped = []
        with strict(), pytest.warns(SkippedItemsWarning, match=re.escape(bad.name)):
            loaded = load(on_error="skip", skipped=skipped)
        assert len(skipped) == 1 and sum(split.num_rows for split in loaded.values()) == rows - 1
        return
    assert sum(split.num_rows for split in loaded.values()) == rows
    for split in loaded.values():
        for sample in split:
            if "mask" in sample:
                assert set(np.unique(np.asarray(sample["mask"]))) <= {0, 1}
                if isinstance(sample["image"], Image.Image):
                    assert sample["image"].size == sample["mask"].size


# --------------------------------------------------------------------------------------------------- loaders
@given(file=image_files(), role=st.sampled_from(["image", "mask"]), other_size=st.booleans())
@example(file=TRUNCATED_TIFF, role="image", other_size=False)
@example(file=SIXTEEN_BIT_PNG, role="image", other_size=False)
@example(file=case(RGB, ".tif"), role="mask", other_size=True)
def test_image_folder_loads_any_file_or_names_it(file, role, other_size):
    data, suffix, (height, width) = file
    partner_size = (height + 1, width) if other_size else (height, width)  # a mask of another size is a case
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write(root / "img" / "b.png", rgb_png(5, 7))
        write(root / "gt" / "b.png", mask_png(5, 7))
        if role == "image":
            bad = write(root / "img" / f"a{suffix}", data)
            write(root / "gt" / "a.png", mask_png(*partner_size))
        else:
            write(root / "img" / "a.png", rgb_png(*partner_size))
            bad = write(root / "gt" / f"a{suffix}", data)
        loads_or_names_the_file(lambda **kw: load_image_folder(root / "img", root / "gt", cache_dir=root / "cache",
                                                               **kw), bad, rows=2)


@given(file=image_files(), role=st.sampled_from(["image", "mask", "dem"]))
@example(file=TRUNCATED_TIFF, role="mask")
@example(file=case(RGB, ".png", keep=0.1), role="dem")
def test_bijie_loads_any_file_or_names_it(file, role):
    data, suffix, (height, width) = file
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "bijie"
        for stem, size in (("df001", (height, width)), ("df002", (5, 7))):
            write(root / "landslide/image" / f"{stem}.png", rgb_png(*size))
            write(root / "landslide/mask" / f"{stem}.png", mask_png(*size))
            write(root / "landslide/dem" / f"{stem}.png", mask_png(*size))
        (root / "landslide" / role / "df001.png").unlink()
        bad = write(root / "landslide" / role / f"df001{suffix}", data)
        loads_or_names_the_file(lambda **kw: load_bijie(root, split="train", include_dem=True,
                                                        cache_dir=Path(folder) / "cache", **kw), bad, rows=2)


@st.composite
def h5_files(draw, key: str, shapes) -> bytes:
    """An HDF5 file holding `key` (or another key, or a group), of a drawn shape and dtype, damaged or not."""
    handle_bytes = io.BytesIO()
    with h5py.File(handle_bytes, "w") as handle:
        stored = draw(st.sampled_from([key, key, key, "data", "group"]))
        if stored == "group":
            handle.create_group(key)
        else:
            array = draw(arrays(draw(st.sampled_from(shapes)), ["uint8", "int16", "float32", "float64", "bool",
                                                                 "complex64"]))
            handle.create_dataset(stored, data=array)
    return draw(damaged(handle_bytes.getvalue()))


PATCH_SHAPES = [(128, 128, 14), (128, 128, 14), (128, 128, 14), (128, 128, 13), (14, 128, 128), (1, 128, 14),
                (0, 0, 14), ()]
MASK_SHAPES = [(128, 128), (128, 128), (128, 128, 1), (64, 128), (128, 128, 3), (1, 128), (0,)]


def h5_case(key: str, array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.create_dataset(key, data=array)
    return buffer.getvalue()


@given(file=st.one_of(st.tuples(st.just("img"), h5_files("img", PATCH_SHAPES)),
                      st.tuples(st.just("mask"), h5_files("mask", MASK_SHAPES))),
       bands=st.sampled_from(["rgb", [0, 3, 13]]))
@example(file=("img", h5_case("img", np.ones((128, 128, 14), np.complex64))), bands="rgb")  # DatasetGenerationError
@example(file=("img", h5_case("img", np.full((128, 128, 14), 1e300))), bands=[0, 3, 13])  # overflow
@example(file=("mask", h5_case("mask", np.full((128, 128), np.nan, np.float32))), bands="rgb")  # was landslide
def test_landslide4sense_loads_any_patch_or_names_it(file, bands):
    role, data = file
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "l4s"
        for n in (1, 2):
            with h5py.File(write(root / "TrainData/img" / f"image_{n}.h5", b""), "w") as handle:
                handle.create_dataset("img", data=rng.uniform(-2, 14, (128, 128, 14)).astype(np.float32))
            with h5py.File(write(root / "TrainData/mask" / f"mask_{n}.h5", b""), "w") as handle:
                handle.create_dataset("mask", data=(rng.random((128, 128)) > 0.7).astype(np.uint8))
        bad = write(root / "TrainData" / role / f"{'image' if role == 'img' else 'mask'}_1.h5", data)
        loads_or_names_the_file(lambda **kw: load_landslide4sense(root, bands=bands, cache_dir=Path(folder) / "cache",
                                                                  **kw), bad, rows=2)


# --------------------------------------------------------------------------------------------------- the reader
@given(file=image_files(suffixes=(".png", ".tif", ".jpg", ".jpeg")),
       scale=st.sampled_from(["none", "divisor", "percentile"]))
@example(file=TRUNCATED_PNG, scale="none")  # see test_a_truncated_png_is_refused_not_read_as_garbage
@example(file=TRUNCATED_TIFF, scale="none")  # "Read failed. See previous exception for details."
@example(file=case(HUGE, ".tif"), scale="divisor")  # numpy's overflow warning
@example(file=case(INFINITE, ".tif"), scale="percentile")  # numpy's invalid-value warning
@example(file=COMPLEX_TIFF, scale="percentile")  # TypeError
def test_scene_reader_reads_any_file_or_names_it(file, scale):
    data, suffix, _ = file
    processor = TransLandSegImageProcessor(scale=scale, divisor=1000.0)
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / f"scene{suffix}", data)
        try:
            with strict(), SceneReader(path, processor) as reader:
                tile = reader.read_padded_pixels(-2, -3, 16, 16)  # a tile over the corner, as predict reads it
                valid = reader.read_valid(rasterio.windows.Window(0, 0, min(16, reader.width), min(16, reader.height)))
        except (ValueError, FileNotFoundError) as error:
            assert str(error).startswith(f"{path}: ") and not GENERIC.search(str(error)), str(error)
            return
    assert tile.shape == (3, 16, 16) and tile.dtype == np.float32 and valid.dtype == bool
    assert np.isfinite(tile).all() and tile.min() >= 0 and tile.max() <= 255


def test_a_truncated_png_is_refused_not_read_as_garbage(tmp_path):
    """GDAL's whole-image PNG read ignored libpng's error and returned uninitialised memory, different every time."""
    path = write(tmp_path / "cut.png", TRUNCATED_PNG[0])
    with SceneReader(path) as reader, pytest.raises(ValueError, match=r"cut\.png: cannot decode the pixels \(.*libpng"
                                                                       r".*\); the file is truncated or corrupt\."):
        reader.read_pixels()


# --------------------------------------------------------------------------------------------------- predict
def bad_scenes(folder: Path) -> list[Path]:
    """40 files no scene can be read from, each broken in its own way."""
    rng = np.random.default_rng(0)
    small, large = rng.integers(0, 256, (3, 20, 24), np.uint8), rng.integers(0, 256, (3, 130, 150), np.uint8)
    files = {}
    for index, suffix in enumerate((".png", ".tif", ".tiff", ".jpg", ".jpeg")):
        files[f"random{index}{suffix}"] = rng.integers(0, 256, 64 + 97 * index, np.uint8).tobytes()
        files[f"empty{index}{suffix}"] = b""
    for name, data in (("small", encode(small, ".png")), ("large", encode(large, ".png"))):
        for cut in (8, 33, 60, 200, len(data) // 2, len(data) - 20):  # signature, header, pixels, end marker
            files[f"{name}_cut{cut}.png"] = data[:cut]
    with warnings.catch_warnings(), rasterio.MemoryFile() as memory:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with memory.open(driver="GTiff", count=3, height=130, width=150, dtype="uint8", compress="deflate") as out:
            out.write(large)
        deflated = memory.read()
    for name, data in (("plain", encode(large, ".tif")), ("deflate", deflated)):
        for cut in (4, 8, 300, len(data) // 2):
            files[f"{name}_cut{cut}.tif"] = data[:cut]
    photo = encode(large, ".jpg")
    for cut in (30, 600, len(photo) // 2, len(photo) - 10):
        files[f"photo_cut{cut}.jpg"] = photo[:cut]
    png = bytearray(encode(large, ".png"))
    header, pixels = bytearray(png), bytearray(png)
    header[20] ^= 0xFF  # inside IHDR: its checksum fails
    pixels[len(pixels) // 2] ^= 0xFF  # inside IDAT: the compressed pixels fail
    files.update({"header_flip.png": bytes(header), "pixel_flip.png": bytes(pixels)})
    tiff = bytearray(encode(large, ".tif"))
    tiff[2] = 0x2B  # BigTIFF's magic number on a classic TIFF
    files["wrong_magic.tiff"] = bytes(tiff)
    files["complex.tif"] = encode(large.astype(np.complex64), ".tif")
    files["notes.png"] = b"field notes, not an image\n"
    files["page.tif"] = b"<html><body>404 Not Found</body></html>"
    assert len(files) == 40
    return [write(folder / name, data) for name, data in files.items()]


def test_predict_on_error_skip_lists_every_bad_file_with_what_is_wrong(tmp_path, capsys):
    torch.manual_seed(0)
    TransLandSegModel.from_sam(SamModel(tiny_sam_config())).save_pretrained(tmp_path / "model")
    bad = bad_scenes(tmp_path / "scenes")
    write(tmp_path / "scenes" / "good.png", rgb_png(40, 50))
    code = main(["predict", "--model", str(tmp_path / "model"), str(tmp_path / "scenes"), "--output",
                 str(tmp_path / "out"), "--on-error", "skip"])
    out = capsys.readouterr().out
    assert code == 1 and "1 done, 0 skipped, 40 failed" in out
    summary = out[out.index("1 done, 0 skipped, 40 failed"):]
    for path in bad:
        line = next(line for line in summary.splitlines() if line.startswith(f"  failed: {path}: "))
        assert not GENERIC.search(line), line
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("good")) == []
