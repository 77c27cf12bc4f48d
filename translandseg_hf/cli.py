"""The `translandseg` command.

`translandseg params` prints Table III for any preset and SAM architecture; `translandseg predict` maps landslides on
images, GeoTIFFs and Sentinel-2 products of any size (`accelerate launch -m translandseg_hf.cli predict ...` splits
the files between processes); `translandseg stack` writes the raster a model reads from a Sentinel-2 product;
`translandseg imagery` searches a STAC API for an area and dates and writes a cloud-free composite of its scenes
(`predict --aoi/--bbox` maps that composite in one command); `translandseg event` maps an area before and after an
event and writes the inventory of its new landslides (inventory.gpkg, statistics.json, report.html), and
`translandseg inventory` writes it from maps `predict` already made of each date;
`translandseg app` serves a web page for trying a model, and `translandseg space` writes it as a Hub Space;
`translandseg export` writes a model as ONNX, which `predict --backend onnxruntime` maps with on CPUs.

Exit statuses (every command; an `error: ...` line on standard error says why):
  0  done (predict: every input mapped, in this run or before)
  1  the run failed: predict could not map an input (with --on_error raise: stopped at the first failure) or
     could not collect its inputs
  2  refused before any work: an invalid option or value (argparse's usage errors too), or a model, product,
     output or folder that cannot be used (stack, export, space, qgis-plugin, app, predict's options)
  3  predict: inputs left unmapped because another run still holds them; run it again later
  130  interrupted (Ctrl-C), with one `interrupted: ...` line: what was finished is kept, nothing partial is left
     (predict: the input being mapped gets no outputs; run it again to map the rest)
Any other exception is a bug and ends with its traceback (Python's status 1).
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence

from .app import DEFAULT_MAX_PIXELS as APP_MAX_PIXELS  # the app package's __init__ loads neither gradio nor torch
from .atl.presets import PRESETS
from .console import DefaultsHelpFormatter
from .errors import ON_ERROR, failures_of_the_run, run_command
from .inference.options import BACKENDS, DEFAULT_MIN_PIXELS, DEFAULT_OVERLAP_DIVISOR, DEFAULT_THRESHOLD
from .inference.options import DEFAULT_MAX_PIXELS as PREDICT_MAX_PIXELS
from .inference.progress import CHOICES as PROGRESS_CHOICES
from .inventory.event import DEFAULT_POST_DAYS, DEFAULT_PRE_DAYS, DEFAULT_STAC  # no heavy import: dates and names
from .inventory.mapped import TRIGGERS as EVENT_TRIGGERS  # no heavy import either: the standard library only
from .onnx_backend import DEFAULT_OPSET, MAX_CALIBRATION_SECONDS, MAX_CALIBRATION_TILES, ONNX_CONFIG, QUANTIZATIONS
from .package_info import NOT_INSTALLED, package_version
from .sam_configs import SAM_ARCHITECTURES

IMAGERY_ORDERS = ("least-cloudy", "latest", "earliest")  # geo.stac_search.ORDERS, without importing pystac
CLOUD_MASKS = ("scl", "s2cloudless", "none")  # geo.sentinel2.clouds.CLOUD_MASKS
CHANGE_CHOICES = ("auto", "probability", "ndvi", "both", "none")  # "auto" and inventory.change.CHANGE_METHODS (numpy)


def _params(args: argparse.Namespace) -> int:
    from .parameter_table import parameter_table

    presets = list(PRESETS) if args.preset == ["all"] else args.preset
    print(parameter_table(args.architecture, presets, args.extra_bands))
    return 0


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(","))


def _predict(args: argparse.Namespace) -> int:
    import torch
    from accelerate import PartialState

    from .console import quiet_progress_bars_when_logged
    from .inference import PredictionOptions, collect_inputs, parse_bands, predict_files
    from .inference.runner import check_distinct_stems

    quiet_progress_bars_when_logged()
    options = PredictionOptions(  # a ValueError here is an invalid option: refused (2)
        bands=parse_bands(args.bands), scale=args.scale,
        percentiles=None if args.percentiles is None else _floats(args.percentiles), divisor=args.divisor,
        tile_size=args.tile_size, resolution=args.resolution, overlap=args.overlap, batch_size=args.batch_size,
        threshold=args.threshold, min_area=args.min_area, precision=args.precision, overwrite=args.overwrite,
        tta=args.tta, simplify=args.simplify, dem=args.dem, offset=args.offset, fill_missing=args.fill_missing,
        max_pixels=args.max_pixels,
    )
    if args.aoi is not None or args.bbox is not None:  # the composite has them already: read as `predict` reads it
        options.dem, options.offset, options.fill_missing = None, None, False
    # cpu=True where there is no GPU: processes started by `accelerate launch` then share the files over gloo.
    state = PartialState(cpu=args.device == "cpu" or not torch.cuda.is_available())
    inputs, note = _predict_inputs(args, state)
    with failures_of_the_run(ValueError):  # inputs that cannot be collected fail the run (1)
        files = collect_inputs(inputs)
        check_distinct_stems(files)  # here too: each process checks only its own share of the files
    with _progress_output(args.progress, state) as progress:
        with state.split_between_processes(files) as own_files, failures_of_the_run():  # --on_error raise: named
            results = predict_files(
                args.model, own_files, args.output, options, device=args.device or state.device,
                on_error=args.on_error, show_progress=state.is_local_main_process, backend=args.backend,
                progress=progress,
            )
        state.wait_for_everyone()  # a process exiting non-zero makes the launcher stop the others: let them finish
        return _report_results(results, state, progress, note)


@contextmanager
def _progress_output(kind: str, state):
    """None (predict's tqdm bars) or, for `--progress json`, the JSON reporter on standard output, which then
    carries nothing else (`inference/progress.py`)."""
    from .inference.progress import JsonProgress, stdout_for_events

    if kind != "json":
        yield None
        return
    with stdout_for_events() as events:
        yield JsonProgress(events, process=state.process_index if state.num_processes > 1 else None)


def _report_results(results, state, progress, note: str = "") -> int:
    """The summary (text, or the JSON summary event) with `note` after it, and the exit status: 0 all mapped (now
    or before), 1 a failure, 3 left to another run still mapping."""
    from .inference import summary
    from .inference.runner import exit_status

    status = exit_status(results)
    if progress is not None:
        progress.summary(results, summary(results) + note, status)
        return status
    prefix = f"[process {state.process_index}] " if state.num_processes > 1 else ""
    print(prefix + (summary(results) + note).replace("\n", "\n" + prefix))
    return status


def _stack(args: argparse.Namespace) -> int:
    from .geo.sentinel2.stack import Sentinel2Stack, parse_bounds, recipe_of  # no torch: half the memory
    from .geo.sentinel2.write import write_stack
    from .saved_contract import model_contract

    recipe = recipe_of(model_contract(args.model), args.sentinel2)
    with Sentinel2Stack(args.sentinel2, recipe, dem=args.dem, bounds=parse_bounds(args.bounds),
                        offset=args.offset, fill_missing=args.fill_missing) as stack:
        for note in stack.notes:
            print(f"warning: {args.sentinel2}: {note}", file=sys.stderr)
        output = write_stack(stack, args.output, overwrite=args.overwrite)
        size = f"{stack.width} x {stack.height} px at {abs(stack.transform.a):g} m"
    print(f"wrote {output}: {len(recipe.channels)} bands ({', '.join(recipe.channels)}), {size}, on the model's "
          "scale (sensor value / divisor), NaN nodata")
    return 0


def _imagery(args: argparse.Namespace) -> int:
    made = _composite_of_area(args, args.output)
    used = sum(1 for pixels in made.supplied if pixels)
    print(f"wrote {made.path('composite.tif')}, source.tif, scenes.gpkg, imagery.json: {used} of "
          f"{len(made.supplied)} scenes used, {made.covered_share:.1%} of the grid ({made.grid.width} x "
          f"{made.grid.height} px at {made.grid.resolution:g} m, {made.grid.crs}) has a cloud-free value")
    return 0


def _composite_of_area(args: argparse.Namespace, output):
    """`imagery`'s work, which `predict --aoi` and `event` share (`inventory.event.area_composite`): search the
    catalogue for the area and dates, and composite the scenes found into `output`."""
    from .inventory.event import area_composite, area_of
    from .saved_contract import model_contract

    aoi = area_of(args.aoi, args.bbox)
    return area_composite(model_contract(args.model), aoi, args.start, args.end, output, stac=args.stac,
                          collection=args.collection, max_cloud=args.max_cloud, order=args.order,
                          cloud_mask=args.cloud_mask, dem=args.dem, offset=getattr(args, "offset", None),
                          fill_missing=getattr(args, "fill_missing", False))


def _event(args: argparse.Namespace) -> int:
    import warnings

    import torch

    from .inference import PredictionOptions
    from .inventory.event import area_of, map_event

    options = PredictionOptions(batch_size=args.batch_size, threshold=args.threshold, precision=args.precision,
                                tta=args.tta)  # a ValueError here is an invalid option: refused (2)
    aoi = area_of(args.aoi, args.bbox)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        inventory = map_event(args.model, aoi, args.date, args.output, name=args.name or "", trigger=args.trigger,
                              pre_days=args.pre_days, post_days=args.post_days, stac=args.stac,
                              collection=args.collection, dem=args.dem, change=args.change, max_cloud=args.max_cloud,
                              order=args.order, cloud_mask=args.cloud_mask, backend=args.backend, device=device,
                              options=options, min_area_m2=args.min_area, overwrite=args.overwrite)
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
    print(f"wrote {Path(args.output) / 'inventory.gpkg'} ({inventory.count} new landslides), statistics.json and "
          f"report.html; the composites and maps of each date in {Path(args.output) / 'pre'} and "
          f"{Path(args.output) / 'post'}")
    _print_unmapped(inventory)
    return 0


def _inventory(args: argparse.Namespace) -> int:
    from .inventory.build import build_inventory
    from .inventory.change import ChangeThresholds
    from .inventory.mapped import EventInfo, MappedDate

    post = MappedDate.from_folder(args.predictions, args.imagery, date=args.post_date, image=args.image)
    pre = None if args.pre_predictions is None else MappedDate.from_folder(
        args.pre_predictions, args.pre_imagery, date=args.pre_date, image=args.pre_image)
    given = {"probability_rise": args.probability_rise, "rdndvi": args.rdndvi}
    thresholds = ChangeThresholds(**{name: value for name, value in given.items() if value is not None})
    made = build_inventory(post, args.output, pre=pre, event=EventInfo(args.event_name, args.event_date, args.trigger),
                           change=args.change, dem=args.dem, model=args.model, thresholds=thresholds,
                           min_area_m2=args.min_area, overwrite=args.overwrite, aoi=args.aoi)
    print(f"wrote {made.paths['inventory.gpkg']} ({made.count} new landslides, change method {made.change_method}), "
          "statistics.json, report.html and inventory.json")
    _print_unmapped(made)
    return 0


def _print_unmapped(made) -> None:
    """Where the inventory is blind (cloud, no pre-event value), a line per reason with any area, after the summary."""
    from .inventory.report import unmapped_lines

    for line in unmapped_lines(made.statistics, made.record["arguments"]["pre"] is not None):
        print(line)


def _predict_inputs(args: argparse.Namespace, state) -> tuple[list, str]:
    """predict's INPUT files, or with --aoi/--bbox the composite `imagery` writes into OUTPUT/imagery/ (made by the
    main process; every process maps it), and the summary's note on the share without a cloud-free value."""
    if args.aoi is None and args.bbox is None:
        if not args.inputs:
            raise ValueError("predict: give INPUT files or folders, or an area: --aoi FILE or --bbox W,S,E,N with "
                             "--start and --end.")
        return args.inputs, ""
    if args.inputs:
        raise ValueError(f"predict: give INPUT files ({', '.join(args.inputs)}) or an area (--aoi/--bbox), not both: "
                         "with an area, predict maps the composite it makes of the scenes found.")
    if args.start is None or args.end is None:
        raise ValueError("predict --aoi/--bbox: give the days searched as --start YYYY-MM-DD and --end YYYY-MM-DD.")
    folder = Path(args.output) / "imagery"
    note = ""
    if state.is_main_process:
        made = _composite_of_area(args, folder)
        note = (f"\nnote: {1 - made.covered_share:.1%} of the area's grid has no cloud-free value (cloud, shadow or "
                "no scene there): nodata in the maps")
    state.wait_for_everyone()
    return [str(folder / "composite.tif")], note


def _export(args: argparse.Namespace) -> int:
    from .onnx_backend.export import export_onnx
    from .onnx_backend.runtime import read_onnx_config

    calibration = None
    if args.calibration is not None:
        from functools import partial

        from .inference.calibration_tiles import calibration_tiles

        calibration = partial(calibration_tiles, args.calibration, data_dir=args.calibration_data_dir,
                              max_tiles=args.calibration_tiles)
    folder = export_onnx(args.model, args.output, quantize=args.quantize, opset=args.opset, overwrite=args.overwrite,
                         allow_quantization_error=args.allow_quantization_error, calibration=calibration)
    config = read_onnx_config(folder / ONNX_CONFIG)
    verdict = "within its tolerance" if config["within_tolerance"] else "OVER its tolerance, accepted"
    megabytes = sum(path.stat().st_size for path in folder.iterdir()) / 2**20
    calibrated = config.get("calibration")
    how = (f" (static, calibrated on {calibrated['calibration_tiles']} tiles in {calibrated['calibration_seconds']:g} "
           f"s: {calibrated['source']})" if calibrated else "")
    print(f"wrote {folder}: model.onnx ({config['input_channels']} x {config['image_size']} x {config['image_size']} "
          f"pixel_values in, logits out, opset {config['opset']}, {config['quantization'] or 'fp32'}{how}; "
          f"{megabytes:.1f} MB in all), preprocessor_config.json, onnx_config.json; max |probability difference| "
          f"from torch {config['max_probability_difference']:.3g}, {1 - config['flipped_pixel_share']:.2%} of mask "
          f"pixels unchanged, {config['flipped_pixel_share']:.2%} of pixels of another class at "
          f"{config['flip_threshold']:g} ({verdict}) on {config['difference_measured_on']}. Map with "
          f"`translandseg predict --model {folder}`")
    return 0


def _app(args: argparse.Namespace) -> int:
    from .app.ui import launch_app  # gradio and torch load only here: `--help` stays fast

    launch_app(args.model, port=args.port, host=args.host, max_pixels=args.max_pixels, device=args.device,
               share=args.share, backend=args.backend, allow_private_urls=args.allow_private_urls,
               no_urls=args.no_urls, max_upload_mb=args.max_upload_mb)
    return 0


def _space(args: argparse.Namespace) -> int:
    from .app.space import write_space

    folder = write_space(args.model, args.output, title=args.title, max_pixels=args.max_pixels,
                         requirement=args.requirement, sdk_version=args.sdk_version, overwrite=args.overwrite,
                         no_urls=args.no_urls)
    written = ", ".join(sorted(entry.name + "/" * entry.is_dir() for entry in folder.iterdir()))
    print(f"wrote the Space to {folder}: {written}; publish it with "
          f"`hf upload USER/SPACE {folder} . --repo-type space`")
    return 0


def _qgis_plugin(args: argparse.Namespace) -> int:
    from .qgis_plugin.package import write_plugin

    folder, archive = write_plugin(args.output)
    print(f"wrote the QGIS plugin to {folder} and {archive}: in QGIS, Plugins > Manage and Install Plugins > Install "
          "from ZIP; then set the translandseg command under Processing > Toolbox > TransLandSeg > Check environment")
    return 0


def add_qgis_plugin_command(commands) -> None:
    plugin = commands.add_parser("qgis-plugin", help="Write the QGIS Processing plugin (a folder and a zip to install "
                                 "from); it runs this environment's translandseg command, never importing torch "
                                 "into QGIS.")
    plugin.add_argument("--output", required=True, help="Folder for translandseg_qgis/ and translandseg_qgis.zip.")
    plugin.set_defaults(run=_qgis_plugin)


APP_MAX_UPLOAD_MB = 1024  # translandseg_hf.app.ui.DEFAULT_MAX_UPLOAD_MB, written out: app.ui imports gradio


def build_parser() -> argparse.ArgumentParser:
    description, epilog = __doc__.split("\nExit statuses", 1)
    parser = argparse.ArgumentParser(prog="translandseg", description=description, epilog="Exit statuses" + epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version() or NOT_INSTALLED}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=functools.partial(
        argparse.ArgumentParser, formatter_class=DefaultsHelpFormatter))  # each command's help shows its defaults
    for add_command in (add_params_command, add_predict_command, add_stack_command, add_imagery_command,
                        add_event_command, add_inventory_command, add_app_command, add_space_command,
                        add_export_command, add_qgis_plugin_command):
        add_command(commands)
    return parser


def add_params_command(commands) -> None:
    params = commands.add_parser("params", help="Parameter counts (Table III), built on the meta device.")
    params.add_argument("--architecture", choices=list(SAM_ARCHITECTURES), default="vit_l", help="SAM's image encoder.")
    params.add_argument("--preset", nargs="+", default=["all"], choices=["all", *PRESETS], help="ATL presets to count.")
    params.add_argument("--extra_bands", type=int, default=0, help="Input bands beyond RGB (11: all of L4S's 14).")
    params.set_defaults(run=_params)


def add_predict_command(commands) -> None:
    predict = commands.add_parser(
        "predict", help="Landslide maps of images and GeoTIFFs of any size: rasters, polygons and quicklooks."
    )
    predict.add_argument("inputs", nargs="*", metavar="INPUT", help="Files or folders (PNG, JPEG, TIFF, GeoTIFF), "
                         "or Sentinel-2 products (SAFE folders, folders of band files, STAC item JSONs).")
    predict.add_argument("--model", required=True, help="A saved TransLandSeg folder or a Hub repository id.")
    predict.add_argument("--output", required=True, help="Folder for STEM_probability.tif, STEM_mask.tif, ...")
    add_contract_arguments(predict)
    predict.add_argument("--overlap", type=int, help="Scene pixels shared by neighbouring tiles (default: tile / "
                         f"{DEFAULT_OVERLAP_DIVISOR}).")
    predict.add_argument("--batch_size", type=int, default=4, help="Tiles per model call.")
    predict.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                         help="Probability above which a pixel is landslide, between 0 and 1.")
    predict.add_argument("--min_area", type=float, help="Drop smaller polygons, in m2 if projected, else px (default: "
                         f"{DEFAULT_MIN_PIXELS} pixels' area).")
    predict.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: Accelerate's device for this process).")
    predict.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="Autocast dtype.")
    predict.add_argument("--backend", choices=BACKENDS, default="torch", help="What runs the model: "
                         "onnxruntime exports a torch model to a temporary folder first (`translandseg export` keeps "
                         "it); a folder written by `translandseg export` always runs on onnxruntime. Both run on "
                         "the same intra-op threads: the physical cores, or TRANSLANDSEG_NUM_THREADS.")
    predict.add_argument("--on_error", choices=[*ON_ERROR, "stop"], default="skip",
                         help="A failing file: report it and go on (skip), or stop the run (raise; stop is its old "
                         "spelling).")
    predict.add_argument("--overwrite", action="store_true", help="Replace existing outputs (default: skip input).")
    predict.add_argument("--tta", action="store_true", help="Test-time augmentation: average the 8 flips and "
                         "90-degree rotations of each tile, and write STEM_uncertainty.tif (their std).")
    predict.add_argument("--simplify", type=float, help="Simplify polygons to this tolerance, in map units.")
    predict.add_argument("--max_pixels", type=int, default=PREDICT_MAX_PIXELS, help="Refuse a larger scene, checked "
                         "from its header before anything is read (0: no limit).")
    predict.add_argument("--progress", choices=PROGRESS_CHOICES, default="bars", help="bars: tqdm bars on a "
                         "terminal; json: one JSON object per line on standard output (start, file, tiles, result, "
                         "summary events; the protocol is in translandseg_hf/inference/progress.py), for a program "
                         "that runs the command, such as the QGIS plugin.")
    add_product_arguments(predict)
    add_area_arguments(predict.add_argument_group(
        "An area and dates (instead of INPUT)", "Map the composite `translandseg imagery` makes of them: it is "
        "written into OUTPUT/imagery/, and cloud-masked pixels are nodata in every output."), dates_required=False)
    predict.set_defaults(run=_predict)


def add_product_arguments(command) -> None:
    product = command.add_argument_group(
        "Sentinel-2 products", "A product is stacked as the model's contract names: its bands, on its dataset's value "
        "scale, on the 10 m grid.")
    product.add_argument("--dem", help="Elevation in metres (any CRS, covering the product), for models that read "
                         "slope and elevation.")
    product.add_argument("--offset", type=float, help="Digital numbers added before dividing (default: from the "
                         "product's metadata; -1000 removes the offset of processing baseline 04.00 and later).")
    product.add_argument("--fill_missing", action="store_true", help="Fill a band the product lacks (B10 of an "
                         "L2A product) with the training mean, with a warning, instead of refusing.")


def add_stack_command(commands) -> None:
    stack = commands.add_parser("stack", help="Write the raster a model reads from a Sentinel-2 product (and a DEM): "
                                "its bands, in its order, on its dataset's value scale, as a COG.")
    stack.add_argument("--model", required=True, help="A saved model folder or a Hub repository id (only its "
                       "contract is read).")
    stack.add_argument("--sentinel2", required=True, metavar="PRODUCT", help="A SAFE folder (L1C or L2A), a folder "
                       "of band files (B04.tif, ..._B04.tif) or a STAC item JSON.")
    stack.add_argument("--output", required=True, help="The stack's GeoTIFF (COG).")
    stack.add_argument("--bounds", help="minx,miny,maxx,maxy in the product's CRS: an area of interest.")
    stack.add_argument("--overwrite", action="store_true", help="Replace an existing output.")
    add_product_arguments(stack)
    stack.set_defaults(run=_stack)


def add_imagery_command(commands) -> None:
    imagery = commands.add_parser("imagery", help="Search a STAC API for Sentinel-2 scenes of an area and dates, mask "
                                  "their clouds and write one cloud-free composite the model reads (a COG), with "
                                  "source.tif, scenes.gpkg and imagery.json.")
    imagery.add_argument("--model", required=True, help="A saved model folder or a Hub repository id (only its "
                         "contract is read: bands, scale, ground resolution).")
    imagery.add_argument("--output", required=True, help="Folder for composite.tif, source.tif, scenes.gpkg and "
                         "imagery.json.")
    add_area_arguments(imagery, dates_required=True)
    imagery.add_argument("--dem", help="Elevation in metres (any CRS, covering the area), for models that read "
                         "slope and elevation.")
    imagery.set_defaults(run=_imagery)


def add_area_arguments(command, dates_required: bool, dates: bool = True) -> None:
    """The area, dates and catalogue of `imagery`, which `predict` takes too (`event`, without the dates: it
    derives them from the event's)."""
    command.add_argument("--aoi", help="The area: a GeoJSON or GPKG file (any CRS; all its polygons).")
    command.add_argument("--bbox", help="The area as W,S,E,N in WGS 84 degrees (instead of --aoi).")
    if dates:
        command.add_argument("--start", required=dates_required, help="First day searched, YYYY-MM-DD (UTC).")
        command.add_argument("--end", required=dates_required, help="Last day searched, YYYY-MM-DD (UTC), included.")
    command.add_argument("--stac", default=DEFAULT_STAC, help="A STAC API (default: Earth Search v1, Element 84's "
                         "public catalogue; its collections: sentinel-2-l2a and sentinel-2-l1c).")
    command.add_argument("--collection", default="sentinel-2-l2a", help="The collection searched.")
    command.add_argument("--max_cloud", type=float, help="Drop items whose eo:cloud_cover exceeds this percentage "
                         "(items that state none are kept).")
    command.add_argument("--order", choices=IMAGERY_ORDERS, default="least-cloudy", help="Which scene a pixel "
                         "comes from first: each pixel takes the first scene in this order that is clear there.")
    command.add_argument("--cloud_mask", choices=CLOUD_MASKS, default="scl", help="Pixel masks: scl (L2A's Scene "
                         "Classification), s2cloudless (L1C; the imagery extra), none.")


def add_event_command(commands) -> None:
    event = commands.add_parser("event", help="An event's landslide inventory from a STAC catalogue: composites of "
                                "the area before and after the event, both mapped, and the new landslides (mapped "
                                "after, not explained before) as polygons and points with their attributes "
                                "(inventory.gpkg), statistics.json and a self-contained report.html.")
    event.add_argument("--model", required=True, help="A saved model folder, an exported ONNX folder or a Hub "
                       "repository id, whose contract names Sentinel-2 bands (loaded once, maps both dates).")
    event.add_argument("--date", required=True, metavar="EVENT_DATE", help="The event's day, YYYY-MM-DD (UTC).")
    event.add_argument("--output", required=True, help="Folder for pre/ and post/ (each date's imagery/ and "
                       "predictions/), inventory.gpkg, statistics.json and report.html.")
    event.add_argument("--name", help="The event's name, in every landslide's event_name (default: none).")
    event.add_argument("--trigger", choices=EVENT_TRIGGERS, default="unknown", help="What set the landslides off.")
    event.add_argument("--pre_days", type=int, default=DEFAULT_PRE_DAYS, help="The pre-event composite's days: "
                       "[EVENT_DATE - pre_days, EVENT_DATE). Where none is found the event is mapped post-event "
                       "only (change none, pre_event_valid false), with a warning.")
    event.add_argument("--post_days", type=int, default=DEFAULT_POST_DAYS, help="The post-event composite's days: "
                       "[EVENT_DATE, EVENT_DATE + post_days], both included.")
    event.add_argument("--change", choices=CHANGE_CHOICES, default="auto", help="What makes a post-event landslide "
                       "new: probability (its rise over the pre-event map), ndvi (vegetation loss: HazMapper's "
                       "relative difference NDVI), both, or none (every post-event landslide); auto: both where the "
                       "model reads red (B4) and NIR (B8), else probability.")
    event.add_argument("--dem", help="Elevation in metres (any CRS, covering the area): slope and elevation of each "
                       "landslide, and the terrain channels of models that read them.")
    event.add_argument("--tta", action="store_true", help="Test-time augmentation (as `predict --tta`): each "
                       "landslide's uncertainty_mean, and confidence from it.")
    event.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                       help="Probability above which a pixel is landslide, between 0 and 1.")
    event.add_argument("--min_area", type=float, help="Drop smaller landslides, in m2 (default: those of fewer "
                       f"than {DEFAULT_MIN_PIXELS} pixels).")
    event.add_argument("--batch_size", type=int, default=4, help="Tiles per model call.")
    event.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available).")
    event.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="Autocast dtype.")
    event.add_argument("--backend", choices=BACKENDS, default="torch", help="What runs the model, as for "
                       "`translandseg predict`.")
    event.add_argument("--overwrite", action="store_true", help="Replace an earlier event's outputs in --output.")
    add_area_arguments(event.add_argument_group("The area and the catalogue", "Searched for each date's scenes, "
                                                "as `translandseg imagery` searches."), dates_required=False,
                       dates=False)
    event.set_defaults(run=_event)


def add_inventory_command(commands) -> None:
    inventory = commands.add_parser("inventory", help="An event's landslide inventory from maps `predict` already "
                                    "wrote (a folder per date): inventory.gpkg, statistics.json, report.html and "
                                    "inventory.json, as `translandseg event` writes them.")
    inventory.add_argument("--predictions", required=True, help="The post-event predict output folder (one "
                           "STEM_probability.tif, with STEM_mask.tif and, with --tta, STEM_uncertainty.tif).")
    inventory.add_argument("--pre_predictions", help="The pre-event predict output folder (default: none, change "
                           "none).")
    inventory.add_argument("--imagery", help="The post-event `imagery` folder (composite.tif, source.tif, "
                           "imagery.json): NDVI, dates and scene ids (default: OUTPUT/imagery/ of `predict --aoi`).")
    inventory.add_argument("--pre_imagery", help="The pre-event `imagery` folder, as --imagery.")
    inventory.add_argument("--image", help="The post-event raster mapped, for NDVI where there is no imagery folder.")
    inventory.add_argument("--pre_image", help="The pre-event raster mapped, as --image.")
    inventory.add_argument("--post_date", help="The post-event image's date, YYYY-MM-DD, where no imagery.json says.")
    inventory.add_argument("--pre_date", help="The pre-event image's date, YYYY-MM-DD, as --post_date.")
    inventory.add_argument("--model", help="The model that mapped both dates (folder or Hub id): its name, revision "
                           "and channel names (NDVI's bands and their divisors).")
    inventory.add_argument("--aoi", help="The area mapped, a GeoJSON/GPKG file or W,S,E,N in WGS 84: landslides and "
                           "densities within it (default: the post-event map's valid pixels).")
    inventory.add_argument("--dem", help="Elevation in metres (any CRS): each landslide's slope and elevation.")
    inventory.add_argument("--event_name", default="", help="The event's name, in every landslide's event_name.")
    inventory.add_argument("--event_date", help="The event's day, YYYY-MM-DD.")
    inventory.add_argument("--trigger", choices=EVENT_TRIGGERS, default="unknown", help="What set the landslides off.")
    inventory.add_argument("--change", choices=CHANGE_CHOICES, default="auto", help="What makes a post-event "
                           "landslide new, as for `translandseg event`.")
    inventory.add_argument("--probability_rise", type=float, help="--change probability: the rise over the "
                           "pre-event probability that makes a pixel new, in (0, 1] (default: 0.3, "
                           "inventory.change's).")
    inventory.add_argument("--rdndvi", type=float, help="--change ndvi: HazMapper's relative difference NDVI "
                           "(percent) at or below which vegetation was lost, below 0 (default: -20, "
                           "inventory.change's).")
    inventory.add_argument("--min_area", type=float, help="Drop smaller landslides, in m2 (default: those of fewer "
                           f"than {DEFAULT_MIN_PIXELS} pixels).")
    inventory.add_argument("--output", required=True, help="Folder for inventory.gpkg, statistics.json, report.html "
                           "and inventory.json.")
    inventory.add_argument("--overwrite", action="store_true", help="Replace an earlier inventory in --output.")
    inventory.set_defaults(run=_inventory)


def add_contract_arguments(predict) -> None:
    contract = predict.add_argument_group(
        "the model's input contract", "By default each comes from the model's saved image processor; a value given "
        "here overrides it, with a warning.")
    contract.add_argument("--bands", help="1-based bands to read as the model's channels, e.g. 4,3,2.")
    contract.add_argument("--scale", choices=["none", "divisor", "percentile"], help="Band values to 0-255.")
    contract.add_argument("--percentiles", help="Low,high percentiles for --scale percentile, e.g. 2,98.")
    contract.add_argument("--divisor", type=float, help="value / divisor * 255 for --scale divisor.")
    contract.add_argument("--tile_size", type=int, help="Tile side in scene pixels (default: the training tile, "
                          "scaled by training / scene resolution when both are known).")
    contract.add_argument("--resolution", type=float, help="The scene's metres per pixel (default: its transform).")


def add_app_command(commands) -> None:
    app = commands.add_parser("app", help="A web page (Gradio) for trying a model on an image or GeoTIFF.")
    app.add_argument("--model", required=True, help="A saved model folder or a Hub repository id.")
    app.add_argument("--port", type=int, default=7860, help="Port to serve on.")
    app.add_argument("--host", help="Address to serve on (default: 127.0.0.1; 0.0.0.0 for every interface).")
    app.add_argument("--max_pixels", type=int, default=APP_MAX_PIXELS,
                     help="Refuse larger uploads, checked from the header before any model work (0: no limit).")
    app.add_argument("--device", help="cpu, cuda, ... (default: cuda when available).")
    app.add_argument("--backend", choices=BACKENDS, default="torch", help="What runs the model, as "
                     "for `translandseg predict`.")
    app.add_argument("--share", action="store_true", help="Also serve on a temporary public gradio.live link "
                     "(anyone with the link can use the page and its API).")
    app.add_argument("--max_upload_mb", type=float, default=APP_MAX_UPLOAD_MB,
                     help="Refuse larger uploads (0: no limit).")
    urls = app.add_mutually_exclusive_group()
    urls.add_argument("--allow_private_urls", action="store_true", help="Let the URL box and the API's url fetch "
                      "from loopback and private addresses (this machine, its network): only for a page nobody else "
                      "can reach. Default: public hosts only, every redirect checked.")
    urls.add_argument("--no_urls", action="store_true", help="No URL box, and the API's url refused: uploads only.")
    app.set_defaults(run=_app)


def add_space_command(commands) -> None:
    space = commands.add_parser("space", help="Write a Hugging Face Space (app.py, requirements.txt, README.md, and "
                                "the translandseg_hf package's code, which is not on PyPI).")
    space.add_argument("--model", required=True, help="A Hub repository id, or a saved model folder to copy in.")
    space.add_argument("--output", required=True, help="A new or empty folder for the Space's files.")
    space.add_argument("--title", default="Landslide mapping", help="The Space's title.")
    space.add_argument("--max_pixels", type=int, default=APP_MAX_PIXELS, help="As for `translandseg app`.")
    space.add_argument("--requirement", help="Where the Space installs translandseg-hf from, as requirements.txt's "
                       "one line, e.g. 'translandseg-hf[app] @ git+https://...'; then no package code is carried "
                       "(default: carry it in translandseg_hf/ and list its dependencies).")
    space.add_argument("--sdk_version", help="The Space's Gradio version (default: the installed one).")
    space.add_argument("--overwrite", action="store_true", help="Write into a folder that is not empty.")
    space.add_argument("--no_urls", action="store_true", help="The Space maps uploads only: no URL box, and the "
                       "API's url refused (as `translandseg app --no_urls`).")
    space.set_defaults(run=_space)


def add_export_command(commands) -> None:
    export = commands.add_parser("export", help="Write a model as ONNX (pixel_values in, logits out, at its input "
                                 "side, any batch) with its contract: a folder `predict` maps with on onnxruntime.")
    export.add_argument("--model", required=True, help="A saved model folder or a Hub repository id (any kind).")
    export.add_argument("--output", required=True, help="A new or empty folder for model.onnx, "
                        "preprocessor_config.json and onnx_config.json.")
    export.add_argument("--quantize", choices=list(QUANTIZATIONS), help="int8 weights and activations: smaller and "
                        "faster on CPUs, outputs a little off. With --calibration, static quantisation of SAM's image "
                        "encoder, checked on calibration tiles held back; without, dynamic quantisation, checked on "
                        "synthetic scenes made by the model's contract. The error is written to onnx_config.json, and "
                        "an export over int8's documented tolerance is refused. Default: none, fp32.")
    export.add_argument("--calibration", metavar="DATA", help="What int8's activation ranges are fitted on: a scene "
                        "(PNG, JPEG, TIFF, GeoTIFF, Sentinel-2 product) or a folder of them, tiled as predict tiles "
                        "them, or a dataset by name (its training split: bijie, landslide4sense, folder, synthetic) "
                        "with --calibration_data_dir. Images like those the model will map.")
    export.add_argument("--calibration_data_dir", help="The folder (or Hub dataset id) of the dataset --calibration "
                        "names (not needed for synthetic).")
    export.add_argument("--calibration_tiles", type=int, default=MAX_CALIBRATION_TILES, help="At most this many "
                        "calibration tiles, spread over DATA, and one more held back per 4 to check the export; "
                        f"calibration also stops after {MAX_CALIBRATION_SECONDS:g} s.")
    export.add_argument("--allow_quantization_error", action="store_true", help="Write a --quantize export whose "
                        "error is over its tolerance anyway, with a warning (the error is in onnx_config.json).")
    export.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset version.")
    export.add_argument("--overwrite", action="store_true", help="Replace a folder that is not empty.")
    export.set_defaults(run=_export)


def underscored_options(argv: Sequence[str]) -> list[str]:
    """`--min-area` as `--min_area`: every flag is documented with underscores (as in the training config) and
    accepted with hyphens too."""
    argv = list(argv)
    end = argv.index("--") if "--" in argv else len(argv)  # after `--` come file names, not flags
    flags = [re.sub(r"^--([^=]+)", lambda m: "--" + m.group(1).replace("-", "_"), a) for a in argv[:end]]
    return flags + argv[end:]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a command to its exit status (the table in this module's docstring): a known error ends it with one
    `error:` line (`errors.run_command`)."""
    args = build_parser().parse_args(underscored_options(sys.argv[1:] if argv is None else argv))
    return run_command(lambda: args.run(args))


if __name__ == "__main__":
    sys.exit(main())

