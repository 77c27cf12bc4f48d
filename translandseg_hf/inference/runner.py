"""Many inputs in, one report out: collect the files, load the model once, map each scene (`scene.predict_file`) and
report every failure by name, going on or stopping as `on_error` says."""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import torch
from tqdm.auto import tqdm

from ..console import interactive
from ..errors import EXIT_DONE, EXIT_FAILED, EXIT_HELD, check_on_error
from ..geo import RASTER_SUFFIXES, RemotePath, is_remote
from .claims import HELD, check_writable
from .inputs import SceneInput, classify, path_of
from .options import BACKENDS, PredictionOptions, contract_for
from .progress import Progress, TqdmProgress
from .scene import EVERY_OUTPUT_SUFFIX, OUTPUT_SUFFIXES, FileResult, output_paths, predict_file, warn

PathLike = Union[str, os.PathLike]
# How long a run that has mapped everything else waits for other runs holding its inputs (`predict_files`).
WAIT_FOR_OTHER_RUNS_SECONDS = 3600.0
POLL_SECONDS = 1.0


def collect_inputs(inputs: Iterable[Union[PathLike, SceneInput]]) -> list[SceneInput]:
    """Each input classified once (`inputs.SceneInput`, handed down from here): files as given (a missing one fails
    later, by name), remote files (URLs, s3://, ...) with `RemotePath`s, Sentinel-2 products (SAFE or band folders,
    STAC items) as one input each, the supported images inside other folders, sorted, and the lines of `@list.txt`
    files (one input per line, local or remote; blank lines and lines starting with # skipped). Object stores have
    no folders to list: name their files, or list them in a file. An input already classified is kept as it is."""
    files = []
    for given in inputs:
        if isinstance(given, SceneInput):
            files.append(given)
            continue
        text = os.fspath(given) if isinstance(given, os.PathLike) and not isinstance(given, RemotePath) else given
        if isinstance(text, str) and text.startswith("@"):
            files.extend(collect_inputs(read_input_list(Path(text[1:]))))
            continue
        scene = classify(given)
        if scene.path.is_dir() and not scene.is_product:
            files.extend(map(classify, sorted(p for p in scene.path.iterdir() if p.is_file() and p.suffix.lower()
                                              in RASTER_SUFFIXES and not is_own_output(p))))
        else:
            files.append(scene)
    return files


def is_own_output(path: Path) -> bool:
    """Whether a file in a listed folder is a map this package wrote (`STEM_probability.tif`, `STEM_mask.tif`, ...
    beside `STEM_landslides.gpkg`, which every run writes), so mapping a folder into itself does not map yesterday's
    maps. A user's own `x_mask.tif` without an `x_landslides.gpkg` beside it is an input."""
    for suffix in EVERY_OUTPUT_SUFFIX:
        if suffix.endswith(tuple(RASTER_SUFFIXES)) and path.name.endswith(suffix) and len(path.name) > len(suffix):
            stem = path.name[: -len(suffix)]
            if (path.parent / f"{stem}{OUTPUT_SUFFIXES['gpkg']}").is_file():
                return True
    return False


def check_outputs_not_inputs(files: Sequence[Union[Path, SceneInput]], output_dir: Path) -> None:
    """Refuse, before any work, a run in which one input's output is another input (`a.tif` and `a_mask.tif` mapped
    into their own folder): the output would replace the input, with --overwrite maybe before it is read."""
    local = [path for path in map(path_of, files) if not isinstance(path, RemotePath)]
    inputs = {Path(os.path.realpath(path)): path for path in local}
    for path in local:
        for georeferencing in ("transform", "pixels"):
            for output in output_paths(path, Path(output_dir), georeferencing, tta=True).values():
                other = inputs.get(Path(os.path.realpath(output)))
                if other is not None:
                    raise ValueError(f"{other} is an input and also an output of {path} ({output.name} in "
                                     f"{output_dir}): mapping would replace it; map into another --output folder, "
                                     "or rename it.")


def read_input_list(path: Path) -> list[str]:
    """The inputs an `@list.txt` names; a relative local path is relative to the list's folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read the list of inputs ({error}).") from error
    entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return [entry if is_remote(entry) or Path(entry).is_absolute() else str(path.parent / entry) for entry in entries]


def check_distinct_stems(files: Sequence[Union[Path, SceneInput]]) -> None:
    """Outputs are named by file stem, so two inputs with one stem (`a/scene.tif b/scene.png`) would write the same
    files: the second would find the first's outputs and be skipped. Refused before any work, naming both."""
    first_of: dict[str, Path] = {}
    for path in map(path_of, files):
        other = first_of.setdefault(path.stem, path)
        if other is path:
            continue
        if other.resolve() == path.resolve():
            raise ValueError(f"{path} is given twice: its second run would find the first's outputs; give it once.")
        raise ValueError(f"{other} and {path} would write the same outputs ({path.stem}_probability.tif, ...), which "
                         "are named by the input's file stem; predict them into separate --output folders, one run "
                         "each, or rename one.")


def load_model(model: Union[str, PathLike, torch.nn.Module], backend: str = "torch") -> torch.nn.Module:
    """A model as given, or any saved kind (TransLandSeg, a CNN baseline, an exported ONNX folder) from a folder or
    Hub repository. An exported folder always runs on onnxruntime; with backend 'onnxruntime' a torch model is first
    exported to a temporary folder (`translandseg export` saves that work for the next run). Either backend runs
    the same intra-op threads (`onnx_backend.threads`: the physical cores, or TRANSLANDSEG_NUM_THREADS)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}.")
    from ..onnx_backend.threads import use_intra_op_threads

    use_intra_op_threads()  # before any onnxruntime session starts: each takes torch's count (runtime.start_session)
    if not isinstance(model, torch.nn.Module):
        from ..auto import load_segmentation_model

        model = load_segmentation_model(model)
    from ..onnx_backend.runtime import OnnxSegmentationModel  # cheap: onnxruntime is imported when a session starts

    if backend == "torch" or isinstance(model, OnnxSegmentationModel):
        return model
    import tempfile

    from ..onnx_backend.export import export_onnx

    tqdm.write("exporting the model to ONNX for --backend onnxruntime (`translandseg export` saves an exported "
               "folder to map with next time)", file=sys.stderr)
    scratch = tempfile.TemporaryDirectory(prefix="translandseg-onnx-")
    exported = OnnxSegmentationModel(export_onnx(model, Path(scratch.name) / "model"))
    exported.scratch = scratch  # the folder lives as long as the model: `.to(device)` starts a new session from it
    return exported



def predict_files(
    model: Union[str, PathLike, torch.nn.Module],
    inputs: Iterable[PathLike],
    output_dir: PathLike,
    options: Optional[PredictionOptions] = None,
    device: Union[str, torch.device] = "cpu",
    on_error: str = "skip",
    show_progress: bool = True,
    backend: str = "torch",
    progress: Optional[Progress] = None,
) -> list[FileResult]:
    """Predict every input; with on_error='skip' a failing file is recorded and the others go on, with 'raise' (old
    spelling: 'stop') the first failure stops the run. `backend`: 'torch', or 'onnxruntime' (`load_model`).
    `progress` is told of each file and tile (`progress.py`; default: tqdm bars where `show_progress` and someone
    sees them)."""
    on_error = check_on_error(on_error)
    scenes = collect_inputs(inputs)
    files = [scene.path for scene in scenes]
    check_distinct_stems(files)
    check_outputs_not_inputs(files, Path(output_dir))
    check_writable(Path(output_dir))
    started = time.time()
    model = load_model(model, backend).to(device).eval()
    for note in contract_for(model, options or PredictionOptions())[1]:
        tqdm.write(f"warning: {note}", file=sys.stderr)
    results, notes = [], NoteTally()
    progress = progress or TqdmProgress(show_progress and interactive())
    with progress.over(files) as report:
        for index, path in enumerate(files):
            report.file(index, path)
            try:
                result = predict_file(model, scenes[index], output_dir, options, device, on_tiles=report.tiles,
                                      on_plan=report.plan, on_note=notes)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as error:  # noqa: BLE001 - any failure of one file is reported and the run goes on
                if on_error == "raise":
                    raise
                message = str(error) if isinstance(error, (ValueError, OSError)) else traceback.format_exc(limit=3)
                result = FileResult(path, "failed", message)
            if result.status != "done":
                tqdm.write(f"{result.status}: {path}: {reason(result)}")
            report.result(index, result)
            results.append(result)
    if any(map(is_held, results)):
        scene_of = dict(zip(files, scenes))  # held inputs are mapped as they were classified
        finish_held(results, lambda path, opts: predict_file(model, scene_of.get(path, path), output_dir, opts,
                                                             device, on_note=notes), Path(output_dir),
                    options or PredictionOptions(), started, on_error)
    notes.report()
    return results


def note_kind(note: str) -> str:
    """What a note is about, to count it across inputs: its text before the first colon ("no GeoJSON: the image
    has no georeferencing, ..." is of kind "no GeoJSON"), or all of it."""
    return note.split(":", 1)[0].strip()


class NoteTally:
    """The notes on a run's scenes (`scene.warn`'s), each kind said once on standard error: the first in full as it
    arises, and, where more inputs had it, one line with their count when the run ends (a folder of 37 PNGs gives
    2 lines, not 37). Every input's own notes stay under its line in the summary."""

    def __init__(self):
        self.inputs: dict[str, list[Path]] = {}  # kind -> the inputs that had it, in order

    def __call__(self, path: Path, note: str) -> None:
        seen = self.inputs.setdefault(note_kind(note), [])
        if not seen:
            warn(path, note)
        if path not in seen:
            seen.append(path)

    def report(self) -> None:
        for kind, paths in self.inputs.items():
            if len(paths) > 1:
                tqdm.write(f"warning: {kind} for {len(paths)} inputs (said above for {paths[0].name}; each input's "
                           "notes are in the summary)", file=sys.stderr)


def is_held(result: FileResult) -> bool:
    """Whether an input was left to another live run holding it (`claims.claim`)."""
    return result.status == "skipped" and result.message.startswith(HELD)


def finish_held(results: list, map_one, output_dir: Path, options: PredictionOptions, started: float,
                on_error: str = "skip") -> None:
    """Inputs other runs held when their turn came: wait for those runs (up to WAIT_FOR_OTHER_RUNS_SECONDS in all),
    then take the maps they wrote, or map what they left (a run that failed or was killed). Still held at the
    deadline: left as skipped, and the exit status says so (EXIT_HELD)."""
    deadline = time.monotonic() + WAIT_FOR_OTHER_RUNS_SECONDS
    for index, result in enumerate(results):
        if not is_held(result):
            continue
        tqdm.write(f"waiting for another run to finish {result.path} ({reason(result)})", file=sys.stderr)
        for _ in range(int(WAIT_FOR_OTHER_RUNS_SECONDS / POLL_SECONDS) + 2):  # bounded: the deadline ends it sooner
            probability = output_paths(result.path, output_dir)["probability"]
            if probability.exists() and probability.stat().st_mtime >= started:
                result = FileResult(result.path, "skipped", "mapped by another run meanwhile")
                break
            try:
                result = map_one(result.path, options)
            except Exception as error:  # noqa: BLE001 - as in the main loop: reported by name
                if on_error == "raise":
                    raise
                result = FileResult(result.path, "failed", str(error))
            if not is_held(result) or time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        if result.status != "done":
            tqdm.write(f"{result.status}: {result.path}: {reason(result)}")
        results[index] = result


def exit_status(results: Sequence[FileResult]) -> int:
    """EXIT_FAILED if an input failed; else EXIT_HELD if one was left unmapped because another run still held it;
    else EXIT_DONE (every input mapped, now or before)."""
    if any(result.status == "failed" for result in results):
        return EXIT_FAILED
    return EXIT_HELD if any(map(is_held, results)) else EXIT_DONE


def summary(results: Sequence[FileResult]) -> str:
    """One line of counts, how the scenes were read (each distinct contract once), then one line per input, with
    its notes under it."""
    counts = {status: f"{sum(r.status == status for r in results)} {status}"
              for status in ("done", "skipped", "failed")}
    held = sum(map(is_held, results))
    if held:
        counts["skipped"] += f" ({held} {HELD})"
    lines = [", ".join(counts.values())]
    contracts = dict.fromkeys(r.contract for r in results if r.status == "done" and r.contract)
    lines += [f"  contract: {contract}" for contract in contracts]  # once each: usually one for the whole run
    for r in results:
        if r.status == "done":
            lines.append(f"  done: {r.path}: {r.tiles} tile(s) of {r.tile_size} px ({r.tile_reason})")
            lines += [f"    note: {note}" for note in r.notes]
    lines += [f"  {r.status}: {r.path}: {reason(r)}" for r in results if r.status != "done"]
    return "\n".join(lines)


def reason(result: FileResult) -> str:
    """The message without the file name errors start with, so a report line names the file once."""
    return result.message.removeprefix(f"{result.path}: ")

