"""An event mapped from the catalogue in one call (`translandseg event`): a pre-event composite of the days
[date - pre_days, date) and a post-event one of [date, date + post_days] (`area_composite`, the work `translandseg
imagery` does), both mapped by one loaded model (`inference.predict_files`), then the inventory of what is new
(`build.build_inventory`).

OUTPUT/pre/imagery/ and OUTPUT/post/imagery/ hold each composite (composite.tif, source.tif, scenes.gpkg,
imagery.json), OUTPUT/pre/predictions/ and OUTPUT/post/predictions/ their maps (composite_probability.tif, ...),
and OUTPUT/ the inventory (inventory.gpkg, statistics.json, report.html). The inventory covers the AOI's own
pixels (the polygon, not its bounding box): densities are per km2 of the AOI, and what lies outside it is neither
landslide nor masked area. A scene of the event's day is post-event (the post window starts on that day): the event
may have come at any hour of it.

Where the catalogue has no usable pre-event scene (none in the window, or all dropped by --max_cloud), the event is
still mapped, post-event only: change method "none", every landslide with pre_event_valid false, and a warning
that says so. After an event the post-event map is what is needed first; a pre-event window can be widened later
(--pre_days) and the event mapped again. No post-event scene is a refusal: there is nothing to map.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import warnings
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, os.PathLike]
DEFAULT_STAC = "https://earth-search.aws.element84.com/v1"  # Earth Search v1: sentinel-2-l2a, sentinel-2-l1c
DEFAULT_PRE_DAYS = 120  # a season before: long enough to find a clear scene in a cloudy climate
DEFAULT_POST_DAYS = 60  # soon after: before scars revegetate or are cleared
DATES = ("pre", "post")
MAX_DAYS = 3650  # ten years: a longer window is a typo (days given as hours, a year as days), not a search


def area_of(aoi: Optional[PathLike] = None, bbox=None):
    """The area from a GeoJSON/GPKG file or W,S,E,N in WGS 84: exactly one of them."""
    from ..geo.aoi import Aoi

    if (aoi is None) == (bbox is None):
        raise ValueError("give the area as --aoi FILE (GeoJSON or GPKG) or --bbox W,S,E,N (WGS 84), one of them.")
    return Aoi.from_file(aoi) if aoi is not None else Aoi.from_bbox(bbox)


def area_composite(contract, aoi, start, end, output_dir: PathLike, *, stac: str = DEFAULT_STAC,
                   collection: str = "sentinel-2-l2a", max_cloud: Optional[float] = None,
                   order: str = "least-cloudy", cloud_mask: str = "scl", dem: Optional[PathLike] = None,
                   offset: Optional[float] = None, fill_missing: bool = False):
    """`imagery`'s work (`predict --aoi` and `event` share it): search `stac` for the area and days (both included),
    and composite the scenes found into `output_dir` for the model whose `contract` (a dict or image processor)
    names its channels (`geo.sentinel2.composite.Composite`). An AOI over the composite's limit is refused before
    the search (`composite.MAX_COMPOSITE_PIXELS`)."""
    from ..geo.sentinel2.composite import composite, grid_for
    from ..geo.stac_search import search_scenes

    grid_for(aoi, contract)
    found = search_scenes(stac, collection, aoi, start, end, max_cloud, order)
    return composite(found.scenes, aoi, contract, output_dir, cloud_mask_kind=cloud_mask, search=found, dem=dem,
                     offset=offset, fill_missing=fill_missing)


def event_windows(event_date, pre_days: int, post_days: int) -> dict:
    """{"pre": (first, last), "post": (first, last)}: the days searched, both ends included."""
    from .mapped import EventInfo

    date = dt.date.fromisoformat(EventInfo(date=str(event_date)).date)
    for name, days in (("--pre_days", pre_days), ("--post_days", post_days)):
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise ValueError(f"{name} {days!r}: give a whole number of days, 1 to {MAX_DAYS}.")
    try:
        return {"pre": (date - dt.timedelta(days=pre_days), date - dt.timedelta(days=1)),
                "post": (date, date + dt.timedelta(days=post_days))}
    except OverflowError:  # a window that runs before year 1 or after 9999
        raise ValueError(f"event date {date}: its windows ({pre_days} days before, {post_days} after) run outside "
                         "the calendar's years 1 to 9999; give the event's real date.") from None


def map_event(model, aoi, event_date, output_dir: PathLike, *, name: str = "", trigger: str = "unknown",
              pre_days: int = DEFAULT_PRE_DAYS, post_days: int = DEFAULT_POST_DAYS, stac: str = DEFAULT_STAC,
              collection: str = "sentinel-2-l2a", dem: Optional[PathLike] = None, change: str = "auto",
              max_cloud: Optional[float] = None, order: str = "least-cloudy", cloud_mask: str = "scl",
              tta: bool = False, backend: str = "torch", device: str = "cpu", options=None,
              min_area_m2: Optional[float] = None, overwrite: bool = False, show_progress: bool = False):
    """Map the event at `aoi` (an `Aoi`, a GeoJSON/GPKG path or W,S,E,N) on `event_date` (YYYY-MM-DD) with `model`
    (a folder or Hub id, loaded once; or a live model) into `output_dir`; the `build.Inventory`. `options`: the
    `inference.PredictionOptions` of both maps (`tta` sets its tta). Refused before any work: a bad date, trigger
    or number of days, an area given wrongly, a minimum area that is not one; before any search, an AOI over the
    inventory's limit (`check_event_area`)."""
    from ..geo.aoi import as_aoi
    from ..inference import PredictionOptions, load_model
    from .build import build_inventory, check_min_area
    from .mapped import EventInfo

    event = EventInfo(name=name, date=str(event_date), trigger=trigger)
    windows = event_windows(event.date, pre_days, post_days)
    check_min_area(min_area_m2)
    aoi, output = as_aoi(aoi), Path(output_dir)
    check_output(output, overwrite)
    options = options or PredictionOptions()  # a copy: the caller's options stay as they were
    options = dataclasses.replace(options, tta=options.tta or tta, overwrite=overwrite)  # this run's maps, no older
    loaded = load_model(model, backend).to(device).eval()
    check_event_area(aoi, loaded)
    search = dict(stac=stac, collection=collection, max_cloud=max_cloud, order=order, cloud_mask=cloud_mask, dem=dem)
    post = map_date(loaded, aoi, windows["post"], output / "post", search, options, device, show_progress)
    pre = map_pre_event(loaded, aoi, windows["pre"], output / "pre", search, options, device, show_progress)
    if pre is None:
        change = "none"
    named = model if isinstance(model, (str, os.PathLike)) else getattr(model, "folder", None)  # provenance
    return build_inventory(post, output, pre=pre, event=event, change=change, dem=dem, model=named,
                           min_area_m2=min_area_m2, overwrite=overwrite, aoi=aoi)


def check_event_area(aoi, model) -> None:
    """An AOI whose composite grid (at the model's ground resolution) is over the inventory's MAX_GRID_PIXELS is
    refused before any search: the inventory would refuse its maps only after both dates were composited and mapped."""
    from ..geo.inventory.grid import MAX_GRID_PIXELS, check_size
    from ..geo.sentinel2.composite import grid_for
    from ..inference.contract import contract_of

    grid = grid_for(aoi, contract_of(model))
    check_size(dataclasses.replace(grid, path=f"{grid.path} at {grid.resolution:g} m"), MAX_GRID_PIXELS)


def check_output(output: Path, overwrite: bool) -> None:
    """An earlier event in `output` is replaced only with `overwrite`: its composites would be remade and its maps
    kept, which would no longer match them. A file where the folder should be is refused."""
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"{output}: a file, not a folder; give --output a folder for the event.")
    earlier = [output / name for name in (*DATES, "inventory.gpkg") if (output / name).exists()]
    if earlier and not overwrite:
        raise FileExistsError(f"{output} already holds an event's outputs ({', '.join(p.name for p in earlier)}); "
                              "choose a new --output folder or pass --overwrite.")


def map_pre_event(model, aoi, window, folder: Path, search: dict, options, device, show_progress: bool):
    """The pre-event `MappedDate`, or None with a warning where the catalogue has no usable scene in the window."""
    from ..geo.stac_search import SceneSearchError

    try:
        return map_date(model, aoi, window, folder, search, options, device, show_progress)
    except SceneSearchError as error:
        warnings.warn(f"no pre-event scene: {error.reason} ({window[0]} to {window[1]}). The event is mapped from "
                      "the post-event scenes alone (change method none): every landslide has pre_event_valid false "
                      "and may be older than the event; widen --pre_days to find a pre-event scene.", UserWarning,
                      stacklevel=3)
        return None


def map_date(model, aoi, window, folder: Path, search: dict, options, device, show_progress: bool):
    """One date's `MappedDate`: its composite into FOLDER/imagery/, mapped into FOLDER/predictions/."""
    from ..inference import predict_files
    from ..inference.contract import contract_of
    from .mapped import MappedDate

    made = area_composite(contract_of(model), aoi, window[0], window[1], folder / "imagery", **search)
    predictions = folder / "predictions"
    results = predict_files(model, [made.path("composite.tif")], predictions, options, device=device,
                            on_error="raise", show_progress=show_progress)
    if [result.status for result in results] != ["done"]:  # on_error raise: a failure has raised already
        raise ValueError(f"{made.path('composite.tif')}: not mapped ({', '.join(r.status for r in results)}: "
                         f"{'; '.join(r.message for r in results)}).")
    return MappedDate.from_folder(predictions, folder / "imagery")
