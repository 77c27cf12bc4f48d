"""What every loader shares: errors, checked file reading and Arrow-backed building.

Loaders validate every file when they are called (decoding it once), so a corrupt or mismatched
file fails at load time with its name, not hours into training. They then stream the examples to
the Arrow cache with `Dataset.from_generator`, so memory does not grow with the dataset.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from datasets import Dataset, DatasetDict, Features
from PIL import Image

from ..choices import SPLIT_SCHEMES  # noqa: F401 (re-exported: the loaders check split names against it)
from ..errors import ON_ERROR, check_on_error
from ..hub import is_local, resolve_dataset_folder
from ..geo import GDAL_ONLY_SUFFIXES, RASTER_SUFFIXES
from ..geo.failures import RasterError

# The suffixes of `translandseg predict` too; TIFF and GeoTIFF go through rasterio: PIL cannot read many band layouts
# GDAL writes.
IMAGE_EXTENSIONS, RASTERIO_EXTENSIONS = RASTER_SUFFIXES, GDAL_ONLY_SUFFIXES
ON_ERROR_CHOICES = ON_ERROR  # the older name, kept for callers
SPLIT_NAMES = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)
DEFAULT_SEED = 42
# Bump when a loader writes different examples for the same files, so stale Arrow caches are not reused.
FORMAT_VERSION = 1


# --- errors -------------------------------------------------------------------------------------


class DatasetError(RasterError):
    """A file or folder that does not hold what a loader expects; `path` names it. geo's `RasterError`, whose
    `reason` is here called `problem`."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(str(path), problem)
        self.problem = problem


@dataclass(frozen=True)
class SkippedItem:
    """A sample left out under `on_error="skip"`: the file that failed and why."""

    path: str
    reason: str


class SkippedItemsWarning(UserWarning):
    """Emitted once per load under `on_error="skip"`, listing every item left out and why."""


class ErrorPolicy:
    """Raises per-item errors (`on_error="raise"`) or records them for one warning (`"skip"`).

    With `skipped` (a list), the recorded `SkippedItem`s are also appended to it, so callers can
    act on them without parsing the warning.
    """

    def __init__(self, on_error: str, skipped: list | None = None):
        self.on_error = check_on_error(on_error)
        self.items: list[SkippedItem] = []
        self._sink = skipped

    def attempt(self, check: Callable[..., Any], *args: Any) -> Any:
        """Return `check(*args)`; under "skip", record a `DatasetError` and return None instead."""
        try:
            return check(*args)
        except DatasetError as error:
            if self.on_error == "raise":
                raise
            self.items.append(SkippedItem(error.path, error.problem))
            return None

    def report(self, dataset_name: str) -> None:
        """Warn once, listing every skipped item, and hand them to the caller's list."""
        if not self.items:
            return
        if self._sink is not None:
            self._sink.extend(self.items)
        lines = "\n".join(f"  {item.path}: {item.reason}" for item in self.items)
        message = f"{dataset_name}: skipped {len(self.items)} item(s) (on_error='skip'):\n{lines}"
        # report <- load_validated <- the loader <- the user's call, which the warning points at
        warnings.warn(message, SkippedItemsWarning, stacklevel=4)


# --- files --------------------------------------------------------------------------------------


def dataset_root(root: str | Path, what: str, hub_patterns: Sequence[str] = ()) -> Path:
    """The folder a loader reads: `root` itself, or, for a Hub dataset id, its files (`hub_patterns` of them)
    downloaded or found in the local Hub cache, through the package's one path-or-Hub-id decision (`hub.is_local`:
    a name that can only be a path but is missing stays a missing folder)."""
    if is_local(root):
        return require_dir(root, what)
    return resolve_dataset_folder(root, what=what, allow_patterns=hub_patterns)


def require_dir(path: str | Path, what: str, note: str = "") -> Path:
    """`path` (with `~` expanded), which must be a folder; `note` follows the error (how the path was read)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {path} is not a folder{note}")
    return path


def natural_key(name: str) -> list:
    """Sort key that puts image_10 after image_9."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    """Files of `folder` (not recursive) with one of `extensions`, sorted by file name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in extensions)


def index_by_stem(files: Iterable[Path]) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for path in files:
        index.setdefault(path.stem, []).append(path)
    return index


def lookup_stem(index: dict[str, list[Path]], stem: str, folder: Path) -> Path | None:
    """The one file named `stem` (any extension), None if absent; two candidates are an error."""
    matches = index.get(stem, [])
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise DatasetError(folder, f"several files are named {stem!r} ({names}); keep one")
    return matches[0] if matches else None


def file_signature(paths: Iterable[Path | None]) -> list:
    """Path, size and modification time: enough to tell when a cached build is stale."""
    signature = []
    for path in paths:
        if path is not None:
            stat = path.stat()
            signature.append((str(path), stat.st_size, stat.st_mtime_ns))
    return signature


# --- reading ------------------------------------------------------------------------------------


def open_image(path: Path) -> Image.Image:
    """Decode a whole image file now, so corruption shows at load time; TIFF goes through rasterio."""
    if not path.is_file():
        raise DatasetError(path, "file not found")
    if path.suffix.lower() in RASTERIO_EXTENSIONS:
        return _open_geotiff(path)
    try:
        with warnings.catch_warnings():
            # PIL warns about damaged metadata (EXIF) it skips: damage that matters fails the decoding below.
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
            # Above MAX_IMAGE_PIXELS PIL warns, above twice that it refuses: both are a file to name, not a warning.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return image
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for broken files
        raise DatasetError(path, f"cannot decode the image ({exc})") from exc


def check_8bit(image: Image.Image, path: Path) -> None:
    """Images are 8-bit, as the model's input contract says; a 16-bit or float image would be clipped to 255."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        depth = "32-bit float" if image.mode == "F" else "16-bit" if image.mode.startswith("I;16") else "32-bit"
        raise DatasetError(path, f"expected 8-bit bands, found {depth} (PIL mode {image.mode}); rescale to 0-255 first")


# EXIF Orientation values that ask a viewer to rotate or mirror the pixels (1 is "as stored").
_EXIF_ORIENTATION, _TURNED = 0x0112, range(2, 9)


def check_not_turned(image: Image.Image, path: Path) -> None:
    """Refuse an image whose EXIF Orientation asks viewers to rotate or mirror it. `datasets` applies the flag when it
    decodes an image stored by path, but masks (stored as PNG bytes) and `translandseg predict` (rasterio) see the
    pixels as stored, so its labels would be turned against it in training and scoring. Refusing costs nothing on
    large datasets (storing every image's decoded pixels would), and only the user knows which way the mask was
    drawn."""
    orientation = image.getexif().get(_EXIF_ORIENTATION)
    if orientation in _TURNED:
        raise DatasetError(path, f"the image carries EXIF Orientation {orientation} (viewers rotate or mirror it), "
                                 "but masks and predict read the pixels as stored; if its mask matches the pixels as "
                                 f"stored, clear the flag (exiftool -Orientation=1 -n {path}), if it matches the "
                                 "turned view, save the image turned (e.g. mogrify -auto-orient)")


def _open_geotiff(path: Path) -> Image.Image:
    from ..geo import OPEN_ERRORS, READ_OPTIONS, gdal_settings, open_raster, plain_images  # no GDAL on importing data

    try:  # GDAL reads READ_OPTIONS when opening (open_raster) and when reading (these settings)
        with plain_images(), gdal_settings(**READ_OPTIONS):
            with open_raster(path) as source:
                if source.width * source.height > 2 * Image.MAX_IMAGE_PIXELS:  # the limit PIL applies to the others
                    raise DatasetError(path, f"the raster is {source.width}x{source.height} px, more than the "
                                             f"{2 * Image.MAX_IMAGE_PIXELS:,} px a whole image may have here")
                if source.dtypes[0] != "uint8":
                    raise DatasetError(path, f"expected 8-bit bands, found {source.dtypes[0]}; rescale to 0-255 first")
                bands = source.read()  # (C, H, W)
    except DatasetError:
        raise
    except OPEN_ERRORS as exc:
        raise DatasetError(path, raster_failure(exc, path)) from exc
    except Exception as exc:
        raise DatasetError(path, f"cannot read the raster with rasterio ({exc})") from exc
    if bands.shape[0] == 1:
        return Image.fromarray(bands[0], mode="L")
    if bands.shape[0] >= 3:  # extra bands (alpha, NIR) are dropped: the model sees RGB
        return Image.fromarray(np.ascontiguousarray(np.moveaxis(bands[:3], 0, -1)), mode="RGB")
    raise DatasetError(path, f"expected 1 band or at least 3 (RGB), found {bands.shape[0]}")


def raster_failure(error: Exception, path: Path) -> str:
    """What rasterio's errors mean, with the file named once (`geo.gdal_reason`, which unwraps a failed read's
    chained cause)."""
    from ..geo import failed_read, gdal_reason

    detail = gdal_reason(error, path)
    if failed_read(error):
        return f"cannot decode the pixels ({detail}): the file is truncated or corrupt"
    return f"not a readable raster ({detail})"


def read_h5_array(path: Path, key: str, check: Callable[[Any], None] | None = None) -> np.ndarray:
    """`key` of an HDF5 file; `check(dataset)` may refuse the h5py dataset by its shape or dtype before it is read,
    so a damaged header cannot make the loader read gigabytes."""
    import h5py

    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        with h5py.File(path, "r") as handle:
            if key not in handle:
                raise DatasetError(path, f"no dataset {key!r} in the HDF5 file (found {sorted(handle.keys())})")
            dataset = handle[key]
            if not isinstance(dataset, h5py.Dataset):
                raise DatasetError(path, f"{key!r} is an HDF5 {type(dataset).__name__.lower()}, not an array")
            if check is not None:
                check(dataset)
            return np.asarray(dataset[()])
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(path, f"cannot read as HDF5 ({exc})") from exc


def check_real(path: Path, key: str, dtype: np.dtype) -> None:
    """Booleans, integers or floats: complex numbers, strings and records have no pixel value."""
    if np.dtype(dtype).kind not in "biuf":
        raise DatasetError(path, f"{key!r} holds {dtype} values; expected real numbers (integer or float)")


def check_finite(path: Path, key: str, values: np.ndarray, names: Sequence[str] | None = None) -> None:
    """Finite values once converted to float32, as training computes (1e300 becomes inf); `names`: per last axis."""
    if values.dtype.kind in "bui":
        return
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~np.isfinite(values.astype(np.float32, copy=False))
    if bad.any():
        where = ""
        if names is not None:
            bands = [name for name, band_bad in zip(names, bad.reshape(-1, bad.shape[-1]).any(axis=0)) if band_bad]
            where = f" in band(s) {', '.join(bands)}"
        raise DatasetError(path, f"{key!r} holds {int(bad.sum())} NaN or infinite value(s){where}; training needs "
                                 "finite values")


def check_same_size(image: Image.Image, image_path: Path, mask: Image.Image, mask_path: Path) -> None:
    if image.size != mask.size:
        raise DatasetError(
            mask_path,
            f"mask is {mask.size[0]}x{mask.size[1]} but its image {image_path} is "
            f"{image.size[0]}x{image.size[1]}; expected the same width x height",
        )


def binarize_mask(mask: Image.Image, color: int | Sequence[int] | None = None) -> np.ndarray:
    """0/1 uint8 mask. Without `color`, any non-zero pixel is landslide: grey 0/1 or 0/255,
    palette index > 0, or any non-black RGB pixel. With `color`, only that grey value or RGB colour."""
    if color is None:
        if mask.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
            return np.asarray(mask.convert("RGB")).any(axis=-1).astype(np.uint8)
        if mask.mode == "LA":
            mask = mask.getchannel("L")
        return (np.asarray(mask) != 0).astype(np.uint8)
    if isinstance(color, (int, np.integer)):
        return (np.asarray(mask.convert("L")) == color).astype(np.uint8)
    return np.all(np.asarray(mask.convert("RGB")) == np.asarray(color, dtype=np.uint8), axis=-1).astype(np.uint8)


def encode_png(image: Image.Image | np.ndarray) -> dict:
    """An `Image` feature value holding PNG bytes (masks, converted rasters)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def image_reference(path: Path) -> dict:
    """An `Image` feature value: a path PIL can decode later, or PNG bytes for TIFF."""
    if path.suffix.lower() in RASTERIO_EXTENSIONS:
        return encode_png(open_image(path))
    return {"path": str(path), "bytes": None}


# --- building -----------------------------------------------------------------------------------


def build_dataset_dict(
    rows_by_split: dict[str, list],
    make_example: Callable[[Any], dict],
    features: Features | Callable[[str], Features],
    cache_dir: str | Path | None,
    fingerprint_parts: Any,
) -> DatasetDict:
    """Stream `make_example(row)` for each row into one Arrow-backed split per name.

    The fingerprint (the split's rows, loader options, file sizes and times) names the cache
    entry, so loading the same files twice reuses it and a changed file rebuilds it. Splits come
    out as train, validation, test, then any others; empty splits are left out. `features` may be
    a function of the split's name (a split without masks has no mask feature).
    """
    splits = {}
    ordered = sorted(rows_by_split, key=lambda name: (SPLIT_NAMES + (name,)).index(name))
    for name in ordered:
        rows = rows_by_split[name]
        if not rows:
            continue
        identity = [FORMAT_VERSION, name, fingerprint_parts, [repr(row) for row in rows]]
        digest = hashlib.sha256(json.dumps(identity, default=str).encode())
        splits[name] = Dataset.from_generator(
            _generate,
            features=features(name) if callable(features) else features,
            cache_dir=None if cache_dir is None else str(cache_dir),
            gen_kwargs={"rows": tuple(rows), "make_example": make_example},  # a tuple: one shard
            split=name,
            fingerprint=digest.hexdigest()[:32],
        )
    return DatasetDict(splits)


def load_validated(
    root: Path,
    items: Sequence[Any],
    validate: Callable[[Any], Any],
    split_of: Callable[[Any], str | None],
    row_of: Callable[[Any, Any], Any],
    make_example: Callable[[Any], dict],
    features: Features | Callable[[str], Features],
    cache_dir: str | Path | None,
    fingerprint: Callable[[list], Any],
    policy: ErrorPolicy,
    name: str,
    noun: str,
) -> DatasetDict:
    """What every validating loader does once it has found its items: validate each (under `policy`), report
    the skipped ones in one warning, refuse an empty result, group the rows by split (`split_of` None: in no
    split) and build the Arrow-backed splits. `row_of(item, validate's result)` is what `make_example` reads;
    `fingerprint(valid items)` names the cache entry with the loader's options and files."""
    results = [policy.attempt(validate, item) for item in items]
    valid = [(item, result) for item, result in zip(items, results) if result is not None]
    policy.report(name)
    if not valid:
        raise DatasetError(root, f"no valid {noun} left after skipping")
    rows_by_split: dict[str, list] = {}
    for item, result in valid:
        split = split_of(item)
        if split is not None:
            rows_by_split.setdefault(split, []).append(row_of(item, result))
    parts = fingerprint([item for item, _ in valid])
    return build_dataset_dict(rows_by_split, make_example, features, cache_dir, parts)


def _generate(rows: tuple, make_example: Callable[[Any], dict]) -> Iterator[dict]:
    for row in rows:
        yield make_example(row)
