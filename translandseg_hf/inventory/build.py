"""An event's inventory from mapped dates: the new landslides as polygons with their attributes (inventory.gpkg),
the event's statistics (statistics.json), a self-contained report (report.html) and the run's record
(inventory.json: arguments, thresholds, model, package version, times).

Everything is read onto the post-event probability's grid (`geo.inventory.grid`); the post-event landslide pixels
(STEM_mask.tif, else probability >= the mapping threshold) that the pre-event state does not explain (`change`)
are grouped into 4-connected polygons, those under `min_area_m2` (default: under DEFAULT_MIN_PIXELS pixels, as
`predict` counts them) dropped, and each polygon's attributes taken over
its pixels (`attributes`). Areas and perimeters are geodesic, on the ellipsoid of the grid's CRS (any CRS, UTM or
Web Mercator or geographic: `geo.inventory.areas`); polygons stay in the grid's CRS."""

from __future__ import annotations

import datetime as dt
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..geo.inventory.areas import geodesic_area_perimeter, pixel_areas_m2
from ..geo.inventory.grid import Grid, band_names, grid_of, read_on_grid
from ..geo.inventory.ndvi import NIR, RED, is_stack, ndvi_on_grid
from ..geo.inventory.terrain import terrain_on
from ..geo.map_files import DEFAULT_MIN_PIXELS
from ..inference.options import DEFAULT_THRESHOLD
from ..io_utils import StagedFiles, atomic_write_json
from .attributes import FIELDS, all_true, confidence, date_fields, float_or_none, zonal
from .change import ChangeThresholds, new_landslide_pixels, resolve_method
from .mapped import EventInfo, MappedDate
from .provenance import mapped_at, model_folder, model_name, model_revision, package_version
from .unmapped import NO_POST, unmapped_features, unmapped_pixels

PathLike = Union[str, os.PathLike]
OUTPUTS = ("inventory.gpkg", "statistics.json", "report.html", "inventory.json")
PROBABILITY_RANGE = (0.0, 1.0)
NO_SCENE = 65535  # source.tif's value where no scene covers a pixel (its nodata)
UNCERTAINTY_RANGE = (0.0, 0.5)  # TTA's population std of 8 probabilities in 0-1 (inference.tta): at most 0.5
AREAS = ("on the ellipsoid of the map's CRS: polygons by PROJ's geodesics, pixels (the AOI, the masked shares) "
         "by the geodesic area of pixels a lattice apart (geo.inventory.areas)")


@dataclass
class Inventory:
    """What `build_inventory` wrote: `paths` (OUTPUTS by name), the landslides' count and attribute rows (one dict
    per landslide, FIELDS in order), the statistics, the change method used and the run's record."""

    paths: dict[str, Path]
    count: int
    rows: list[dict]
    statistics: dict
    change_method: str
    record: dict = field(default_factory=dict)


@dataclass
class Layers:
    """Everything on the post-event grid, (H, W) float32 with NaN where there is no value (None: not available)."""

    post_prob: np.ndarray
    post_mask: np.ndarray
    uncertainty: Optional[np.ndarray] = None
    pre_prob: Optional[np.ndarray] = None
    ndvi_pre: Optional[np.ndarray] = None
    ndvi_post: Optional[np.ndarray] = None
    slope: Optional[np.ndarray] = None
    elevation: Optional[np.ndarray] = None
    post_source: Optional[np.ndarray] = None
    pre_source: Optional[np.ndarray] = None


def build_inventory(post: MappedDate, output_dir: PathLike, *, pre: Optional[MappedDate] = None,
                    event: EventInfo = EventInfo(), change: str = "auto", dem: Optional[PathLike] = None,
                    model=None, thresholds: ChangeThresholds = ChangeThresholds(), min_area_m2: Optional[float] = None,
                    overwrite: bool = False, aoi=None) -> Inventory:
    """The inventory of the new landslides of `post` (against `pre`), written into `output_dir` (OUTPUTS). `change`:
    'auto' or one of CHANGE_METHODS; `model`: the folder or Hub id that mapped both dates (its name, revision and
    channels); `dem`: elevation in metres, any CRS; `min_area_m2` (default None: DEFAULT_MIN_PIXELS pixels, counted,
    since a pixel's area varies across a grid and a mean pixel's would drop the smaller half of 4-pixel ones); `aoi`:
    the area mapped (`geo.aoi.Aoi`, a GeoJSON/GPKG path or W,S,E,N; None: the post-event map's valid pixels).
    Everything is computed before anything is written, and the four files are put in place together."""
    started = mapped_at()
    check_min_area(min_area_m2)
    output_dir = checked_output(Path(output_dir), overwrite)
    grid = grid_of(post.probability)
    check_date_order(post, pre, event)
    contract, provenance = model_provenance(model)
    channels = model_channels(contract, post)
    sources = {name: ndvi_source(date, contract, name) for name, date in (("post", post), ("pre", pre))}
    why_no_ndvi = next((why for _, why in sources.values() if why), None)
    method = resolve_method(change, channels, pre is not None, why_no_ndvi)
    layers = read_layers(post, pre, grid, sources, dem)
    area, inside = area_of_interest(aoi, grid, layers)
    new, pre_valid = new_landslide_pixels(layers.post_mask, layers.post_prob, layers.pre_prob, layers.ndvi_pre,
                                          layers.ndvi_post, method, thresholds)
    pixel_m2 = pixel_areas_m2(grid.crs, grid.transform, grid.shape)
    shapes = landslide_shapes(new, grid, min_area_m2)
    context = {"change_method": method, "sensor": (contract or {}).get("sensor"), **event_fields(event),
               **provenance, "package_version": package_version(), "mapped_at": started}
    rows = landslide_rows(shapes, layers, pre_valid, post, pre, context)
    arguments = {"post": date_record(post), "pre": date_record(pre), "event": event.record(), "change": change,
                 "dem": None if dem is None else str(dem), "model": None if model is None else str(model),
                 **minimum_record(min_area_m2), "overwrite": overwrite}
    record = {"arguments": arguments, "change_method": method, "thresholds": thresholds.record(),
              "post_event_mask": post.mask.name if post.mask.is_file() else f"probability >= {DEFAULT_THRESHOLD}",
              "aoi": area, "areas": AREAS, "model": provenance, "package_version": package_version(),
              "crs": grid.crs.to_string(), "count": len(rows), "started": started}
    blind = unmapped_pixels(layers.post_prob, pre_valid, pre is not None, inside)
    unmapped = unmapped_features(blind, int(inside.sum()) if inside is not None else blind[NO_POST].size, grid)
    statistics = event_statistics(shapes["areas"], layers.post_prob, pre_valid, pixel_m2, inside)
    paths = {name: output_dir / name for name in OUTPUTS}
    write_outputs(paths, shapes, rows, grid, statistics, record,
                  lambda path: write_report_page(path, statistics, rows, shapes, post, pre, event, record,
                                                 quicklook_rgb(post, grid, layers), blind), unmapped)
    return Inventory(paths, len(rows), rows, statistics, method, record)


def check_min_area(min_area_m2: Optional[float]) -> None:
    """ValueError naming --min_area and its value where it is not a finite area >= 0 (None: the default)."""
    if min_area_m2 is None:
        return
    if isinstance(min_area_m2, bool) or not isinstance(min_area_m2, numbers.Real) or not (
            math.isfinite(min_area_m2) and min_area_m2 >= 0):
        raise ValueError(f"--min_area {min_area_m2!r}: give the smallest landslide's area in m2, a finite number >= 0 "
                         f"(leave it out for {DEFAULT_MIN_PIXELS} pixels).")


def minimum_record(min_area_m2: Optional[float]) -> dict:
    """inventory.json's record of the minimum applied: an area given (m2), or the default's pixel count."""
    if min_area_m2 is None:
        return {"min_area_m2": None, "min_pixels": DEFAULT_MIN_PIXELS}
    return {"min_area_m2": float(min_area_m2), "min_pixels": None}


def checked_output(output_dir: Path, overwrite: bool) -> Path:
    """The output folder, refused where it is a file, or holds an inventory and `overwrite` is not given."""
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"{output_dir}: a file, not a folder; give --output a folder for the inventory.")
    existing = [name for name in OUTPUTS if (output_dir / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{output_dir}: {', '.join(existing)} exist; pass --overwrite to replace them.")
    return output_dir


def write_outputs(paths: dict, shapes: dict, rows: list, grid: Grid, statistics: dict, record: dict,
                  write_report, unmapped: list = ()) -> None:
    """All four files into temporary files beside their targets, then put in place together (`io_utils.StagedFiles`):
    a failure part way (the report, a full disk) leaves an earlier inventory's four files as they were. `unmapped`:
    the `unmapped` layer's features (`unmapped.unmapped_features`)."""
    from ..geo.inventory.layers import write_inventory_layers

    next(iter(paths.values())).parent.mkdir(parents=True, exist_ok=True)
    staged = StagedFiles()
    try:
        temporary = {name: staged.path_for(path) for name, path in paths.items()}
        write_inventory_layers(temporary["inventory.gpkg"], shapes["polygons"], shapes["points"], rows, grid.crs,
                               FIELDS, unmapped)
        atomic_write_json(temporary["statistics.json"], statistics)
        write_report(temporary["report.html"])
        record["finished"] = mapped_at()
        atomic_write_json(temporary["inventory.json"], record)
        staged.commit()
    except BaseException:
        staged.discard()
        raise


def check_date_order(post: MappedDate, pre: Optional[MappedDate], event: EventInfo) -> None:
    """ValueError naming the dates and where they come from where the known ones break pre-event < event date <=
    post-event (a scene of the event's day counts as post-event: the event may have come at any hour of it)."""
    post_days, pre_days = post.known_dates("post"), pre.known_dates("pre") if pre is not None else []
    wrong = []
    if event.date is not None:
        day = dt.date.fromisoformat(event.date)
        wrong += [f"{source} is {when}, before the event date {day}" for when, source in post_days if when < day]
        wrong += [f"{source} is {when}, not before the event date {day}" for when, source in pre_days if when >= day]
    if not wrong and post_days and pre_days and max(pre_days)[0] >= min(post_days)[0]:
        (late, late_source), (early, early_source) = max(pre_days), min(post_days)
        wrong.append(f"{late_source} is {late}, not before {early_source} ({early})")
    if wrong:
        raise ValueError(f"the dates are out of order (pre-event < event date <= post-event): {'; '.join(wrong[:4])}"
                         f"{f' (and {len(wrong) - 4} more)' if len(wrong) > 4 else ''}; give each date's own maps.")


def area_of_interest(aoi, grid: Grid, layers: "Layers") -> tuple[str, Optional[np.ndarray]]:
    """The AOI as inventory.json records it, and its pixels ((H, W) bool; None: no AOI given). Pixels outside it are
    dropped from the post-event map (no landslide, no share of the area): the densities are per km2 of the AOI."""
    if aoi is None:
        return ("none given: the area is the post-event map's valid pixels (its grid less its NaN); densities are "
                "per km2 of that area"), None
    from ..geo.aoi import as_aoi
    from ..geo.inventory.polygons import area_pixels

    aoi = as_aoi(aoi)
    inside = area_pixels(aoi.geometry, grid.crs, grid.transform, grid.shape)
    if not inside.any():
        raise ValueError(f"the AOI {aoi.described} covers no pixel centre of the post-event map {grid.path}.")
    layers.post_prob[~inside] = np.nan
    layers.post_mask &= inside
    return aoi.described, inside


def model_provenance(model) -> tuple[Optional[dict], dict]:
    """The model's contract (None without a model) and its provenance fields (model, model_revision)."""
    if model is None:
        return None, {"model": None, "model_revision": None}
    from ..saved_contract import load_contract

    folder = model_folder(model)
    return load_contract(folder), {"model": model_name(model), "model_revision": model_revision(folder)}


def model_channels(contract: Optional[dict], post: MappedDate) -> tuple[str, ...]:
    """The model's channel names (its contract's sensor bands, else its band names), else the post-event imagery's
    band descriptions; () where nothing names them (an 8-bit RGB model)."""
    if contract is not None:
        return tuple(contract.get("sensor_bands") or contract.get("band_names") or ())
    image = post.imagery_file("composite.tif") or post.image
    return tuple(name for name in band_names(image)[0] if name) if image is not None else ()


def ndvi_source(date: Optional[MappedDate], contract: Optional[dict], which: str):
    """((path, red band, NIR band, multipliers), None) for the date's NDVI, or (None, why it cannot be computed).
    Bands by description (a composite, a stack), else where the contract reads B4 and B8 from a plain raster; a
    stack's values are multiplied back by the contract's divisors (see `geo.inventory.ndvi`)."""
    if date is None:
        return None, None
    path = date.imagery_file("composite.tif") or date.image
    if path is None:
        return None, (f"NDVI needs the {which}-event imagery (--{'pre_' if which == 'pre' else ''}imagery: the "
                      "folder of composite.tif), which was not given")
    names, tags = band_names(path)
    contract = contract or {}
    sensor, bands = list(contract.get("sensor_bands") or ()), list(contract.get("bands") or ())
    if RED in names and NIR in names:
        indexes = (names.index(RED) + 1, names.index(NIR) + 1)
    elif not is_stack(tags) and RED in sensor and NIR in sensor and len(bands) == len(sensor):
        indexes = (bands[sensor.index(RED)], bands[sensor.index(NIR)])
    else:
        return None, f"{path} has no bands named {RED} and {NIR} (its bands: {', '.join(names)})"
    if not is_stack(tags):
        return (path, *indexes, (1.0, 1.0)), None
    divisors = dict(zip(sensor, contract.get("sensor_divisors") or ()))
    if RED not in divisors or NIR not in divisors:
        return None, (f"{path} holds sensor value / divisor, with each band's own divisor; give the model "
                      "(--model) whose contract states them, so NDVI is computed on sensor values")
    return (path, *indexes, (divisors[RED], divisors[NIR])), None


def read_layers(post: MappedDate, pre: Optional[MappedDate], grid: Grid, sources: dict,
                dem: Optional[PathLike]) -> Layers:
    """Every raster the inventory reads, on the post-event grid."""
    prob = checked_range(read_on_grid(post.probability, grid, what="post-event probability")[0], post.probability,
                         "probability", PROBABILITY_RANGE)
    if post.mask.is_file():
        check_same_grid(post.mask, grid)
        mask = read_on_grid(post.mask, grid, kind="classes", what="post-event mask")[0] == 1
    else:
        mask = prob >= DEFAULT_THRESHOLD
    layers = Layers(prob, mask)
    if post.uncertainty is not None:
        layers.uncertainty = checked_range(read_on_grid(post.uncertainty, grid, what="uncertainty")[0],
                                           post.uncertainty, "uncertainty", UNCERTAINTY_RANGE)
    if pre is not None:
        layers.pre_prob = checked_range(read_on_grid(pre.probability, grid, what="pre-event probability")[0],
                                        pre.probability, "probability", PROBABILITY_RANGE)
    for name, attribute in (("post", "ndvi_post"), ("pre", "ndvi_pre")):
        if sources[name][0] is not None:
            setattr(layers, attribute, ndvi_on_grid(sources[name][0][0], grid, *sources[name][0][1:]))
    for date, attribute in ((post, "post_source"), (pre, "pre_source")):
        source = None if date is None else date.imagery_file("source.tif")
        if source is not None:
            setattr(layers, attribute, checked_source(read_on_grid(source, grid, kind="classes",
                                                                   what="source.tif")[0], source, date.scenes()))
    if dem is not None:
        layers.slope, layers.elevation = terrain_on(dem, grid)
    return layers


def checked_range(values: np.ndarray, path: Path, what: str, allowed: tuple[float, float]) -> np.ndarray:
    """`values` as they are, or a ValueError naming the file and the range found where a finite one is outside
    `allowed` (a raster that is not `predict`'s map: logits, percent, a class map)."""
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < allowed[0] or finite.max() > allowed[1]):
        raise ValueError(f"{path}: its values run from {float(finite.min()):g} to {float(finite.max()):g}, and a "
                         f"{what} map holds {allowed[0]:g} to {allowed[1]:g} (NaN where there is none); give the map "
                         "`translandseg predict` wrote.")
    return values


def check_same_grid(mask_path: Path, grid: Grid) -> None:
    """The post-event mask must be on the probability's grid (`predict` writes both on it): a mask on another one
    would be cut or warped, and landslides dropped without a word."""
    own = grid_of(mask_path)
    if not own.same_as(grid):
        raise ValueError(f"{mask_path}: the post-event mask is not on the grid of {grid.path} ({own.width} x "
                         f"{own.height} px, {own.crs.to_string()}, origin {own.transform.c:g}, {own.transform.f:g} "
                         f"against {grid.width} x {grid.height} px, {grid.crs.to_string()}, origin "
                         f"{grid.transform.c:g}, {grid.transform.f:g}); give the mask `predict` wrote with that map.")


def checked_source(values: np.ndarray, path: Path, scenes: list[dict]) -> np.ndarray:
    """source.tif's scene indices, refused (naming it) where one is not a scene of imagery.json (nor 65535: none,
    read as NaN)."""
    known = {scene["index"] for scene in scenes}
    found = np.unique(values[np.isfinite(values)])
    unknown = [value for value in found.tolist() if value not in known | {NO_SCENE}]
    if unknown:
        raise ValueError(f"{path}: scene indices {', '.join(f'{v:g}' for v in unknown[:5])} are not in "
                         f"imagery.json's scenes ({', '.join(str(i) for i in sorted(known)) or 'none'}).")
    return values


def landslide_shapes(new: np.ndarray, grid: Grid, min_area_m2: Optional[float] = None) -> dict:
    """The polygons of the new pixels of at least `min_area_m2` (None: of at least DEFAULT_MIN_PIXELS pixels, counted
    as `predict` counts them, whatever each pixel's area): pixel and map coordinates, centroids, areas and
    perimeters on the ellipsoid (`geo.inventory.areas`), and the label array (1..N in the polygons' order, 0
    elsewhere)."""
    import shapely

    from ..geo.inventory.polygons import labelled_polygons, lon_lat, map_coordinates

    pixel_polygons, labels = labelled_polygons(new)
    polygons = map_coordinates(pixel_polygons, grid.transform)
    areas, perimeters = geodesic_area_perimeter(polygons, grid.crs)
    if min_area_m2 is None:
        keep = np.bincount(labels.ravel(), minlength=len(polygons) + 1)[1:] >= DEFAULT_MIN_PIXELS
    else:
        keep = areas >= min_area_m2
    renumber = np.zeros(len(keep) + 1, np.int32)
    renumber[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    polygons, pixel_polygons = polygons[keep], pixel_polygons[keep]
    points = shapely.centroid(polygons) if len(polygons) else polygons
    lon, lat = lon_lat(points, grid.crs)
    return {"pixel_polygons": pixel_polygons, "polygons": polygons, "points": points, "labels": renumber[labels],
            "areas": areas[keep], "perimeters": perimeters[keep], "lon": lon, "lat": lat, "count": int(keep.sum())}


def event_fields(event: EventInfo) -> dict:
    return {"event_name": event.name or None, "event_date": event.date, "trigger": event.trigger}


def landslide_rows(shapes: dict, layers: Layers, pre_valid: np.ndarray, post: MappedDate,
                   pre: Optional[MappedDate], context: dict) -> list[dict]:
    """One row per landslide, FIELDS in order."""
    labels, count = shapes["labels"], shapes["count"]
    prob, unc = zonal(labels, count, layers.post_prob), zonal(labels, count, layers.uncertainty)
    ndvi_pre, ndvi_post = zonal(labels, count, layers.ndvi_pre), zonal(labels, count, layers.ndvi_post)
    slope, elevation = zonal(labels, count, layers.slope), zonal(labels, count, layers.elevation)
    valid = all_true(labels, count, pre_valid)
    post_dates, post_ids, platforms = date_fields(labels, count, layers.post_source, post.scenes(), post.date)
    pre_dates, pre_ids, _ = (date_fields(labels, count, layers.pre_source, pre.scenes(), pre.date)
                             if pre is not None else ([None] * count,) * 3)
    rows = []
    for i in range(count):
        uncertainty = float_or_none(unc["mean"][i])
        values = {
            "id": i + 1, "area_m2": float(shapes["areas"][i]), "perimeter_m": float(shapes["perimeters"][i]),
            "centroid_lon": float(shapes["lon"][i]), "centroid_lat": float(shapes["lat"][i]),
            "probability_mean": float(prob["mean"][i]), "probability_max": float(prob["max"][i]),
            "uncertainty_mean": uncertainty, "confidence": confidence(float(prob["mean"][i]), uncertainty),
            "ndvi_pre": float_or_none(ndvi_pre["mean"][i]), "ndvi_post": float_or_none(ndvi_post["mean"][i]),
            "pre_event_valid": bool(valid[i]), "slope_mean_deg": float_or_none(slope["mean"][i]),
            "slope_max_deg": float_or_none(slope["max"][i]), "elev_min_m": float_or_none(elevation["min"][i]),
            "elev_max_m": float_or_none(elevation["max"][i]), "post_image_date": post_dates[i],
            "pre_image_date": pre_dates[i], "post_scene_id": post_ids[i], "pre_scene_id": pre_ids[i],
            **context, "sensor": platforms[i] or context["sensor"],
        }
        rows.append({name: values[name] for name in FIELDS})
    return rows


def date_record(date: Optional[MappedDate]) -> Optional[dict]:
    if date is None:
        return None
    return {name: None if value is None else str(value) for name, value in vars(date).items()}


def event_statistics(areas_m2: np.ndarray, post_prob: np.ndarray, pre_valid: np.ndarray, pixel_m2: np.ndarray,
                     inside: Optional[np.ndarray] = None) -> dict:
    """statistics.json (`statistics.inventory_statistics`): the valid AOI is where the post-event map has a value
    (within `inside`, the AOI's pixels, where one was given), its area the sum of its pixels' areas on the ellipsoid;
    the masked share is the rest of the AOI (cloud, no scene; the whole grid without an AOI); the share without
    pre-event data is of the valid AOI. Each share's area (km2) is the sum of its pixels' areas. The power law is
    fitted on pixel counts (the mean pixel area's)."""
    from .statistics import inventory_statistics

    valid = np.isfinite(post_prob)
    area = inside if inside is not None else np.ones(valid.shape, bool)
    total = int(area.sum())
    count = int(valid.sum())
    no_pre = float((valid & ~pre_valid).sum() / count) if count else 0.0
    mean_pixel = float(pixel_m2[valid].mean()) if count else float(pixel_m2.mean())
    return inventory_statistics(np.asarray(areas_m2, np.float64), float(pixel_m2[valid].sum()) / 1e6,
                                float(1.0 - count / total), no_pre, pixel_area_m2=mean_pixel,
                                masked_area_km2=float(pixel_m2[area & ~valid].sum()) / 1e6,
                                no_pre_event_area_km2=float(pixel_m2[valid & ~pre_valid].sum()) / 1e6)


def write_report_page(path: Path, statistics: dict, rows: list[dict], shapes: dict, post: MappedDate,
                      pre: Optional[MappedDate], event: EventInfo, record: dict, rgb: np.ndarray,
                      blind: Optional[dict] = None) -> None:
    """report.html (`report.write_report`): the quicklook with each landslide outlined by its confidence over the
    pixels the inventory could not look at (`blind`: `unmapped.unmapped_pixels`), the frequency-area figure, the
    landslides, the scenes used (each with the date it is of: pre or post) and the record."""
    from .report import quicklook_with_polygons, write_report
    from .statistics import frequency_area_figure

    outlines = [np.asarray(polygon.exterior.coords, np.float64) for polygon in shapes["pixel_polygons"]]
    quicklook = quicklook_with_polygons(rgb, outlines, [row["confidence"] for row in rows], blind)
    drawn = [reason for reason, pixels in (blind or {}).items() if pixels.any()]
    scenes = [{"date": name, **scene} for name, date in (("post", post), ("pre", pre)) if date is not None
              for scene in date.scenes() if scene.get("used", True)]
    write_report(path, statistics=statistics, landslides=rows, scenes=scenes, event=event.record(),
                 quicklook_png=quicklook, frequency_area_png=frequency_area_figure(statistics), record=record,
                 pre_event_given=pre is not None, unmapped_drawn=drawn)


def quicklook_rgb(post: MappedDate, grid: Grid, layers: Layers) -> np.ndarray:
    """(H, W, 3) uint8: the post-event imagery's B4, B3, B2 stretched to their 2-98 percentiles where the imagery
    names them, else the probability in grey."""
    image = post.imagery_file("composite.tif") or post.image
    names = band_names(image)[0] if image is not None else ()
    if all(band in names for band in ("B4", "B3", "B2")):
        bands = read_on_grid(image, grid, [names.index(band) + 1 for band in ("B4", "B3", "B2")], what="imagery")
    else:
        bands = np.repeat(layers.post_prob[None], 3, axis=0)
    finite = bands[np.isfinite(bands)]
    low, high = (np.percentile(finite, (2, 98)) if finite.size else (0.0, 1.0))
    scaled = np.clip((bands - low) / max(high - low, 1e-12), 0, 1) * 255
    return np.nan_to_num(scaled, nan=0).astype(np.uint8).transpose(1, 2, 0)
