"""MkDocs hook: the reference pages' tables, generated from the code at build time, never retyped.

A page holds a marker line such as `<!-- generated: cli -->`; `on_page_markdown` replaces it with the Markdown that
the function of that name in GENERATORS returns. So a new command, option, config key or output file appears in the
docs on the next build, and a renamed one disappears (tests/docs/test_site.py checks the CLI's).
"""

from __future__ import annotations

import argparse
import dataclasses
import re

MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)


def _cell(text) -> str:
    """Text fit for one Markdown table cell (pipes escaped, one line)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(value) -> str:
    return f"`{_cell(value)}`" if value not in (None, "") else ""


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order `--help` lists them."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            found += [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return found


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    formatter = argparse.HelpFormatter(parser.prog)  # the help as written: the default has its own column
    rows = ["| option | default | choices | what it does |", "|---|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        name = ", ".join(action.option_strings) or (action.metavar or action.dest)
        if action.required and action.option_strings:
            name += " (required)"
        default = "" if action.default in (None, argparse.SUPPRESS) or action.nargs == 0 else action.default
        choices = ", ".join(map(str, action.choices)) if action.choices else ""
        help_text = formatter._expand_help(action) if action.help else ""
        rows.append(f"| {_code(name)} | {_code(default)} | {_cell(choices)} | {_cell(help_text)} |")
    return rows


def _command_markdown(path: str, help_line: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    lines = [f"{'#' * level} `{path}`", ""]
    if help_line:
        lines += [_cell(help_line), ""]
    usage = parser.format_usage().strip().removeprefix("usage: ")
    lines += ["```text", usage, "```", "", *_option_rows(parser), ""]
    for name, sub_help, sub in _subcommands(parser):
        lines += _command_markdown(f"{path} {name}", sub_help, sub, level + 1)
    return lines


def cli() -> str:
    """Every `translandseg` command and option, from `translandseg_hf.cli.build_parser()`."""
    from translandseg_hf.cli import build_parser

    parser = build_parser()
    lines = ["```text", parser.format_help().strip(), "```", ""]
    for name, help_line, sub in _subcommands(parser):
        lines += _command_markdown(f"translandseg {name}", help_line, sub, 2)
    return "\n".join(lines)


def config() -> str:
    """Every training config key, from the dataclasses `HfArgumentParser` reads (training/config.py SECTIONS)."""
    from translandseg_hf.training.config import SECTIONS

    lines = []
    for section in SECTIONS:
        lines += [f"## {section.__name__}", "", _cell(section.__doc__ or ""), "",
                  "| key | type | default | choices | what it sets |", "|---|---|---|---|---|"]
        for field in dataclasses.fields(section):
            if field.default is not dataclasses.MISSING:
                default = field.default
            elif field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            else:
                default = ""
            choices = ", ".join(map(str, field.metadata.get("choices", [])))
            lines.append(f"| {_code(field.name)} | {_code(field.type)} | {_code(default)} | {_cell(choices)} | "
                         f"{_cell(field.metadata.get('help', ''))} |")
        lines.append("")
    return "\n".join(lines)


def outputs() -> str:
    """The file names the commands write, from the constants the code names its files by."""
    from translandseg_hf.geo.sentinel2.composite import OUTPUTS as COMPOSITE_OUTPUTS
    from translandseg_hf.inference.scene import OUTPUT_SUFFIXES, PLAIN_IMAGE_OUTPUTS, TTA_OUTPUTS
    from translandseg_hf.inventory.build import OUTPUTS as INVENTORY_OUTPUTS
    from translandseg_hf.training.outputs import RUN_FILES

    lines = ["## `translandseg predict`: per input `STEM`", "", "| kind | file | written |", "|---|---|---|"]
    for table, when in ((OUTPUT_SUFFIXES, "every input"),
                        (PLAIN_IMAGE_OUTPUTS, "inputs without georeferencing"), (TTA_OUTPUTS, "with `--tta`")):
        lines += [f"| {kind} | `STEM{suffix}` | {when} |" for kind, suffix in table.items()]
    lines += ["", "The GeoJSON is left out for inputs without georeferencing or CRS, which GeoJSON cannot state "
              "([Real rasters](../how-to/real-rasters.md#georeferencing-of-the-outputs)).",
              "", "## `translandseg imagery` (and `predict --aoi`, under `OUTPUT/imagery/`)", "",
              *[f"- `{name}`" for name in COMPOSITE_OUTPUTS], "",
              "## `translandseg event` and `translandseg inventory`: in `OUTPUT`", "",
              *[f"- `{name}`" for name in INVENTORY_OUTPUTS], "",
              "What each holds, and every field of the two layers: [Event inventory](../how-to/event-inventory.md).",
              "", "## `recipes/train.py`: in `output_dir`", "", *[f"- `{name}`" for name in RUN_FILES], ""]
    return "\n".join(lines)


GPKG_TYPES = {"int": "Integer64", "float": "Real", "bool": "Integer (Boolean)", "str": "String"}  # ogrinfo's names
# Each field's nearest counterpart in NASA's Global Landslide Catalog / COOLR export and in the USGS national landslide
# inventory compilation (Mirus et al. 2020); "" where there is none. Checked against FIELDS at every build.
CATALOGUE_COUNTERPARTS = {
    "id": ("none (`event_id` is the catalogue's own)", "none (the compilation's own feature id)"),
    "area_m2": ("`landslide_size` is a size class, not an area", "none as a field (polygons have an area)"),
    "perimeter_m": ("", ""),
    "centroid_lon": ("`longitude` (take the `landslide_points` layer)", "the feature's location (points or polygons)"),
    "centroid_lat": ("`latitude`", "the feature's location"),
    "probability_mean": ("", ""),
    "probability_max": ("", ""),
    "uncertainty_mean": ("", ""),
    "confidence": ("none (`location_accuracy` rates the position, not the identification)",
                   "its confidence class: an ordinal rating too, on its own scale and criteria; map by hand"),
    "change_method": ("", ""),
    "ndvi_pre": ("", ""),
    "ndvi_post": ("", ""),
    "pre_event_valid": ("", ""),
    "slope_mean_deg": ("", ""),
    "slope_max_deg": ("", ""),
    "elev_min_m": ("", ""),
    "elev_max_m": ("", ""),
    "post_image_date": ("none (`event_date` is the landslide's date, not the imagery's)", ""),
    "pre_image_date": ("", ""),
    "post_scene_id": ("", ""),
    "pre_scene_id": ("", ""),
    "sensor": ("", ""),
    "event_name": ("`event_title` (or `storm_name` for a named storm)", ""),
    "event_date": ("`event_date`", "its date field, where the contributing inventory recorded a date"),
    "trigger": ("`landslide_trigger` (its vocabulary is finer: map by hand)", ""),
    "model": ("`source_name` (the record's source): name the tool, the model and its revision there",
              "the link to the contributing inventory"),
    "model_revision": ("with `model`, in `source_name`", ""),
    "package_version": ("with `model`, in `source_name`", ""),
    "mapped_at": ("none (`created_date` and `submitted_date` are the catalogue's own)", ""),
}


def inventory_fields() -> str:
    """Every field of inventory.gpkg's two layers, in their order, from `inventory.attributes` FIELDS (types) and
    FIELD_DOCS (units, meanings), with their catalogue counterparts (CATALOGUE_COUNTERPARTS, checked against FIELDS)."""
    from translandseg_hf.inventory.attributes import FIELD_DOCS, FIELDS

    if list(CATALOGUE_COUNTERPARTS) != list(FIELDS) or list(FIELD_DOCS) != list(FIELDS):
        raise ValueError(f"docs/hooks/reference.py CATALOGUE_COUNTERPARTS and inventory.attributes FIELD_DOCS must "
                         f"name FIELDS in order: {', '.join(FIELDS)}")
    lines = ["| field | type | unit | meaning | NASA GLC / COOLR | USGS national compilation |",
             "|---|---|---|---|---|---|"]
    for name, kind in FIELDS.items():
        unit, meaning = FIELD_DOCS[name]
        coolr, usgs = (text or "none" for text in CATALOGUE_COUNTERPARTS[name])
        lines.append(f"| `{name}` | {GPKG_TYPES[kind]} | {_cell(unit)} | {_cell(meaning)} | {coolr} | {usgs} |")
    return "\n".join(lines)


def inventory_rules() -> str:
    """The inventory's cut-offs and limits as the code sets them: the change rules' thresholds (`ChangeThresholds`),
    the confidence rule (`inventory.attributes`), the smallest landslide kept and the largest grid read."""
    from translandseg_hf.geo.inventory.grid import BYTES_PER_PIXEL, MAX_GRID_PIXELS
    from translandseg_hf.geo.map_files import DEFAULT_MIN_PIXELS
    from translandseg_hf.inference.options import DEFAULT_THRESHOLD
    from translandseg_hf.inventory import attributes
    from translandseg_hf.inventory.change import ChangeThresholds

    thresholds = ChangeThresholds()
    return "\n".join([
        "| rule | default | set with |", "|---|---|---|",
        f"| `probability`: new where post - pre probability >= | {thresholds.probability_rise:g} | "
        "`translandseg inventory --probability_rise` |",
        f"| `ndvi`: new where rdNDVI (percent) <= | {thresholds.rdndvi:g} | `translandseg inventory --rdndvi` |",
        f"| post-event landslide pixels | `STEM_mask.tif`, else probability >= {DEFAULT_THRESHOLD:g} | "
        "`--threshold` of `predict` or `event` (the mask they write) |",
        f"| smallest landslide kept | {DEFAULT_MIN_PIXELS} pixels (counted) | `--min_area` (m²) |",
        f"| largest post-event grid | {MAX_GRID_PIXELS:,} pixels (about {BYTES_PER_PIXEL} bytes each held in "
        f"memory: {MAX_GRID_PIXELS * BYTES_PER_PIXEL / 1e9:.2g} GB) | `geo.inventory.grid.MAX_GRID_PIXELS` |",
        "", "| confidence | probability_mean at least | and uncertainty_mean (with `--tta`) at most |", "|---|---|---|",
        f"| high | {attributes.HIGH_PROBABILITY:g} | {attributes.HIGH_UNCERTAINTY:g} |",
        f"| medium | {attributes.MEDIUM_PROBABILITY:g} | {attributes.MEDIUM_UNCERTAINTY:g} |",
        "| low | any other landslide | |", "",
        "Without `--tta` there is no uncertainty, and the probability alone decides."])


GENERATORS = {"cli": cli, "config": config, "outputs": outputs, "inventory-fields": inventory_fields,
              "inventory-rules": inventory_rules}


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (MkDocs' hook signature)
    def generated(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_path}: no generator {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(generated, markdown)
