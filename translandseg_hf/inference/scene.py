"""One scene in, its maps out: read in tiles, predict, blend, and write the probability, mask (and uncertainty) COGs,
the polygons and the quicklook, all staged so that they appear complete or not at all."""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from ..geo import RASTER_ERRORS, Window, gdal_settings, names, open_raster
from ..geo.map_files.polygons import POLYGON_ERRORS, PolygonCollector, save_polygons
from ..geo.map_files.quicklook import QuicklookCanvas, write_mask_png
from ..geo.map_files.writing import PredictionRasters
from ..cards import describe_contract
from ..errors import interrupts_deferred
from ..io_utils import StagedFiles
from .claims import claim, disk_full_message, held_message
from .inputs import SceneInput, classify
from .contract import plan_tiles
from .options import PredictionOptions, contract_for
from .predictor import TileRunner, scene_blocks, tile_count
from .reading import GEOREFERENCING, SceneReader, check_pixel_count, georeferencing_of
from .stages import StageClock

PathLike = Union[str, os.PathLike]
OUTPUT_SUFFIXES = {
    "probability": "_probability.tif",
    "mask": "_mask.tif",
    "geojson": "_landslides.geojson",
    "gpkg": "_landslides.gpkg",
    "quicklook": "_quicklook.png",
}
PLAIN_IMAGE_OUTPUTS = {"mask_png": "_mask.png"}  # only for inputs without georeferencing
TTA_OUTPUTS = {"uncertainty": "_uncertainty.tif"}  # only with --tta
# Every name a map file may end in: what `output_paths` names, what a folder listing skips as the package's own
# outputs, and what a killed run's work files are matched by.
EVERY_OUTPUT_SUFFIX = (*OUTPUT_SUFFIXES.values(), *PLAIN_IMAGE_OUTPUTS.values(), *TTA_OUTPUTS.values())
NO_VALID_PIXELS = "no valid pixels: every pixel is nodata"
GDAL_CACHE_BYTES = 32 * 2**20  # GDAL block cache while mapping (rasterio takes bytes): a few strips' blocks


@dataclass
class FileResult:
    """What happened to one input: `done`, `skipped` (outputs exist) or `failed` (with the reason)."""

    path: Path
    status: str
    message: str = ""
    outputs: dict[str, Path] = field(default_factory=dict)
    tiles: int = 0
    tile_size: int = 0  # tile side in scene pixels
    tile_reason: str = ""
    contract: str = ""  # how the scene was read: the contract's own words (`describe`), overrides applied
    seconds: float = 0.0
    seconds_in_model: float = 0.0
    seconds_after_model: float = 0.0  # from the model's last batch to the end: the COGs, polygons' merge, quicklook
    stage_seconds: dict[str, float] = field(default_factory=dict)  # `stages.STAGES`, summed over threads
    notes: list[str] = field(default_factory=list)  # what the user should know about how it was read or mapped



def output_paths(path: Path, output_dir: Path, georeferencing: Union[str, bool] = "transform",
                 tta: bool = False) -> dict[str, Path]:
    """The outputs of one input, named after its file stem. `georeferencing` is `SceneReader.georeferencing`: a scene
    in pixel coordinates ("pixels") gets no GeoJSON (whose coordinates are always WGS 84) and a PNG mask; True and
    False, the older spelling, mean "transform" and "pixels"."""
    if isinstance(georeferencing, bool):
        georeferencing = "transform" if georeferencing else "pixels"
    if georeferencing not in GEOREFERENCING:
        raise ValueError(f"georeferencing must be one of {', '.join(GEOREFERENCING)}, got {georeferencing!r}.")
    suffixes = dict(OUTPUT_SUFFIXES, **(PLAIN_IMAGE_OUTPUTS if georeferencing == "pixels" else {}),
                    **(TTA_OUTPUTS if tta else {}))
    if georeferencing == "pixels":
        del suffixes["geojson"]
    return {name: output_dir / f"{path.stem}{suffix}" for name, suffix in suffixes.items()}


def existing_georeferencing(scene: SceneInput) -> str:
    """The scene's georeferencing, for the outputs a skipped run would have written; an unreadable file is left to
    `SceneReader`, which says why."""
    if scene.is_product:
        return "transform"  # a Sentinel-2 product is on its bands' grid (and its JSON or folder is no raster)
    try:
        with open_raster(scene.path) as dataset:
            return georeferencing_of(dataset)
    except (OSError, *RASTER_ERRORS):
        return "transform"


def pixels_note(path: Path, reader: SceneReader) -> str:
    """Why a scene in pixel coordinates has no GeoJSON, in the summary's words."""
    why = ("the image has no georeferencing, so its polygons are in pixel coordinates" if reader.transform.is_identity
           else "the image's grid has no CRS, so its polygons' coordinates are in no CRS")
    return (f"no GeoJSON: {why}, which GeoJSON cannot state; they are in {path.stem}{OUTPUT_SUFFIXES['gpkg']} with "
            "an undefined CRS")


def warn(path: Path, note: str) -> None:
    """A note on one scene, on stderr as it happens (the summary repeats it under the scene's line)."""
    tqdm.write(f"warning: {path}: {note}", file=sys.stderr)


def check_replaceable(existing: Iterable[Path]) -> None:
    """An output someone made read-only (or a folder in its place) is not replaced by --overwrite: the rename
    that commits the outputs would replace a read-only file without a word (always, for root), or fail on a folder
    after all the mapping. Refused before any work, by name."""
    for output in existing:
        if output.is_dir():
            raise IsADirectoryError(f"{output}: a folder where an output goes; move it away to map this input.")
        if not output.stat().st_mode & 0o222:
            raise PermissionError(f"{output}: the output is read-only, and --overwrite does not replace read-only "
                                  "files; make it writable (chmod u+w) or remove it to map this input again.")


def existing_outputs(scene: SceneInput, output_dir: Path, tta: bool) -> list[Path]:
    """The outputs of `scene` already in `output_dir`. Which outputs a scene has depends on its georeferencing, which
    is read from the file only where some output of either kind is there (a fresh folder costs no open)."""
    either = {**output_paths(scene.path, output_dir, "pixels", tta), **output_paths(scene.path, output_dir, "transform",
                                                                                   tta)}
    if not any(p.exists() for p in either.values()):
        return []
    expected = output_paths(scene.path, output_dir, existing_georeferencing(scene), tta)
    return [p for p in expected.values() if p.exists()]


def predict_file(
    model: torch.nn.Module,
    path: Union[PathLike, SceneInput],
    output_dir: PathLike,
    options: Optional[PredictionOptions] = None,
    device: Union[str, torch.device] = "cpu",
    on_tiles: Optional[Callable[[int], None]] = None,
    on_plan: Optional[Callable[[int], None]] = None,
    reader: Optional[SceneReader] = None,
    on_note: Optional[Callable[[Path, str], None]] = None,
) -> FileResult:
    """Predict one scene and write its outputs; raises ValueError/FileNotFoundError naming the file on bad input.
    `path`: a file, URL or product, or a `SceneInput` as `collect_inputs` classified it. `reader`: the scene already
    open, with the model's contract and its stretch fitted (the app's, from checking the upload): read, not opened
    again, and left open for the caller to close. `on_note(path, note)` is told each note as it arises (default:
    `warn`; `predict_files` says each kind once)."""
    options = options or PredictionOptions()
    scene, output_dir = classify(path), Path(output_dir)
    path = scene.path
    start = time.perf_counter()
    output_dir.mkdir(parents=True, exist_ok=True)
    with claim(output_dir, path.stem) as claimed:
        if claimed is None:
            return FileResult(path, "skipped", held_message(output_dir, path.stem))
        existing = existing_outputs(scene, output_dir, options.tta)
        if existing and not options.overwrite:
            return FileResult(path, "skipped",
                              f"outputs exist ({existing[0].name}, ...); pass --overwrite to replace them")
        check_replaceable(existing)
        with gdal_settings(GDAL_CACHEMAX=GDAL_CACHE_BYTES):  # GDAL's default block cache is 5% of RAM, per process
            return map_scene(model, scene, output_dir, options, device, on_tiles, start, on_plan, reader, on_note)


def map_scene(model, scene: SceneInput, output_dir: Path, options: PredictionOptions, device, on_tiles,
              start: float, on_plan: Optional[Callable[[int], None]] = None, opened: Optional[SceneReader] = None,
              on_note: Optional[Callable[[Path, str], None]] = None) -> FileResult:
    """Read, predict and write one claimed scene; a failure while writing names the output, not a temporary file.
    `opened`: the scene's reader where the caller holds one (`predict_file`), checked against --max_pixels too."""
    processor, _ = contract_for(model, options)
    run = TileRunner(model, device, options.precision, processor, tta=options.tta)
    staged = StagedFiles()
    path = scene.path
    try:
        if opened is not None:
            check_pixel_count(opened.dataset, path, options.max_pixels)
        scene_reader = nullcontext(opened) if opened is not None else SceneReader(
            scene, processor, options.product_options(), options.max_pixels)
        with scene_reader as reader:
            plan = plan_tiles(processor, reader.resolution, options.tile_size, options.resolution)
            overlap = options.overlap_for(plan.size)
            if on_plan is not None:  # the scene's tile count, for a progress bar with a total
                on_plan(tile_count(reader.height, reader.width, plan.size, overlap))
            outputs = output_paths(path, output_dir, reader.georeferencing, options.tta)
            notes = reader.notes + ([pixels_note(path, reader)] if reader.georeferencing == "pixels" else [])
            for note in notes:
                (on_note or warn)(path, note)
            timings = write_maps(reader, run, plan.size, overlap, outputs, staged, options, on_tiles)
            check_finite_maps(model, path, timings)
            if not timings.valid_pixels:
                notes.append(NO_VALID_PIXELS)
                (on_note or warn)(path, NO_VALID_PIXELS)
        with interrupts_deferred():  # Ctrl-C waits for the renames: an input's maps appear together or not at all
            staged.commit()
    except (OSError, *RASTER_ERRORS, *POLYGON_ERRORS) as error:
        full_disk = disk_full_message(path, output_dir, staged, error)  # before discarding frees the space
        staged.discard()
        if isinstance(error, (FileNotFoundError, NotADirectoryError)) or names(error, path):
            raise  # about the input, and already named
        if full_disk:
            raise OSError(full_disk) from error
        raise OSError(f"{path}: writing its outputs in {output_dir} failed: {staged.explain(error)}") from error
    except BaseException:
        staged.discard()
        raise
    return FileResult(
        path, "done", outputs=outputs, tiles=tile_count(reader.height, reader.width, plan.size, overlap),
        tile_size=plan.size, tile_reason=plan.reason, contract=describe_contract(processor),
        seconds=time.perf_counter() - start,
        seconds_in_model=run.seconds_in_model, seconds_after_model=timings.seconds_after_model,
        stage_seconds=dict(run.clock.seconds), notes=notes,
    )


def model_name(model) -> str:
    """How an error names the model: the folder or Hub id it was loaded from, else its class."""
    for name in ("name_or_path", "folder"):
        if getattr(model, name, None):
            return str(getattr(model, name))
    return type(model).__name__


def check_finite_maps(model, path: Path, sinks: "BlockSinks") -> None:
    """A model whose probabilities are all NaN (NaN weights, a zero image_std, an ONNX graph that gives NaN) would
    write an all-nodata map that reads as "no landslide"; where the scene had valid pixels, that is the model's
    failure, said by its name."""
    if sinks.valid_pixels and not sinks.finite_pixels:
        raise ValueError(f"{model_name(model)}: the model gave no finite probability on {path}; its weights or "
                         "contract (preprocessor_config.json) hold NaN or infinite values, or it was exported or "
                         "saved wrongly: check it on an image it mapped before.")


def write_maps(reader: SceneReader, run: TileRunner, tile_size: int, overlap: int, outputs: dict, staged,
               options: PredictionOptions, on_tiles) -> "BlockSinks":
    """Rasters, polygons and the quicklook block by block, then the COGs, all staged; returns the sinks, with the
    seconds after the model (`run.clock` has each stage's seconds).

    With `options.pipelined`, reading the next batch of tiles (a thread in `predictor.predict_tile_batches`) and
    blending and writing the previous one (a thread here, with its own handle on the input for validity) overlap
    with the model; the writer also polygonises each block and samples it for the quicklook, so little is left once
    the model is done. Blending in column blocks keeps only the blocks under the current tiles and the shared
    overlap rows."""
    rasters = PredictionRasters(staged, outputs, reader.height, reader.width, reader.crs, reader.transform,
                                gcps=reader.gcps, rpcs=reader.rpcs)
    clock = run.clock
    sinks = BlockSinks(PolygonCollector(), QuicklookCanvas(reader.height, reader.width), clock)
    try:
        with reader.reopen() as validity, ThreadPoolExecutor(1) as writer:
            write = partial(write_blocks, rasters, reader, validity, options.threshold, sinks)
            pending = None
            for blend in scene_blocks(reader, run, tile_size, overlap, options.batch_size, on_tiles,
                                      options.pipelined, sinks.sample_pixels):
                if pending is not None:
                    pending.result()  # at most one batch waits to be blended: memory stays bounded
                job = partial(blend_and_write, blend, write)
                pending = writer.submit(job) if options.pipelined else job()
            if pending is not None and options.pipelined:
                pending.result()
    except BaseException:
        rasters.close(check=False)  # the error in flight says what went wrong, not the incomplete work files
        raise
    rasters.close()
    tail_start = time.perf_counter()
    with ThreadPoolExecutor(1) as cog_writer:  # GDAL compresses the COGs while the vector files are written
        cogs = cog_writer.submit(timed, clock, "cog", rasters.to_cogs) if options.pipelined else timed(
            clock, "cog", rasters.to_cogs)
        geojson = staged.path_for(outputs["geojson"]) if "geojson" in outputs else None
        with clock("polygons"):
            save_polygons(sinks.polygons.pixel_polygons(), reader.crs, reader.transform, geojson,
                          staged.path_for(outputs["gpkg"]), options.min_area, simplify=options.simplify,
                          gcps=reader.gcps, rpcs=reader.rpcs)
        with clock("quicklook"):
            sinks.quicklook.save(staged.path_for(outputs["quicklook"]))
        if "mask_png" in outputs:
            write_mask_png(rasters.mask_path, staged.path_for(outputs["mask_png"]))
        if options.pipelined:
            cogs.result()
    sinks.seconds_after_model = time.perf_counter() - tail_start
    return sinks


@dataclass
class BlockSinks:
    """What each written block also feeds: the polygons and the quicklook; and where the time went."""

    polygons: PolygonCollector
    quicklook: QuicklookCanvas
    clock: StageClock
    seconds_after_model: float = 0.0
    valid_pixels: int = 0  # none: the scene is all nodata, which the summary says
    finite_pixels: int = 0  # valid pixels with a finite probability: none, with valid pixels, is a broken model

    def sample_pixels(self, top: int, left: int, pixels: np.ndarray) -> None:
        """A tile's pixels, as read for the model, into the quicklook."""
        with self.clock("quicklook"):
            self.quicklook.add_pixels(top, left, pixels)


def timed(clock: StageClock, stage: str, work: Callable[[], None]) -> None:
    with clock(stage):
        work()


def blend_and_write(blend, write) -> None:
    """Blend one model call's maps (a `scene_blocks` step) and write the column blocks it made final."""
    write(blend())


def write_blocks(rasters: PredictionRasters, reader: SceneReader, validity, threshold: float, sinks: BlockSinks,
                 blocks: Iterable[tuple[int, int, np.ndarray]]) -> None:
    """Write (row, col, (K, h, w) maps) blocks: logits to probabilities, and the uncertainty with TTA. Each block's
    mask then goes to the polygons and the quicklook."""
    for row, col, block in blocks:
        with sinks.clock("read"):
            valid = reader.read_valid(Window(col, row, block.shape[2], block.shape[1]), dataset=validity)
        sinks.valid_pixels += int(np.count_nonzero(valid))
        with sinks.clock("write"):
            probability = 1.0 / (1.0 + np.exp(-np.clip(block[0], -80.0, 80.0)))  # (h, w); NaN stays NaN
            valid = valid & np.isfinite(probability)  # a NaN probability is nodata (255, NaN), never "no landslide"
            if len(block) > 1:
                valid &= np.isfinite(block[1])
            sinks.finite_pixels += int(np.count_nonzero(valid))
            mask = rasters.write_block(row, probability, valid, threshold,
                                       uncertainty=block[1] if len(block) > 1 else None, col=col)
        with sinks.clock("polygons"):
            sinks.polygons.add(row, col, mask)
        with sinks.clock("quicklook"):
            sinks.quicklook.add_mask(row, col, mask)


