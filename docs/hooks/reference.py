"""MkDocs hook: the reference pages' tables, generated from the code at build time, never retyped.

A page holds a marker line such as `<!-- generated: cli -->`; `on_page_markdown` replaces it with the Markdown that
the function of that name in GENERATORS returns. So a new command, option, config key or output file appears in the
docs on the next build, and a renamed one disappears (tests/docs/test_site.py checks the CLI's).
"""

from __future__ import annotations

import argparse
import dataclasses
import re

MARKER = re.compile(r"^<!-- generated: (\w+) -->$", re.MULTILINE)


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
    from translandseg_hf.training.outputs import RUN_FILES

    lines = ["## `translandseg predict`: per input `STEM`", "", "| kind | file | written |", "|---|---|---|"]
    for table, when in ((OUTPUT_SUFFIXES, "every input"),
                        (PLAIN_IMAGE_OUTPUTS, "inputs without georeferencing"), (TTA_OUTPUTS, "with `--tta`")):
        lines += [f"| {kind} | `STEM{suffix}` | {when} |" for kind, suffix in table.items()]
    lines += ["", "The GeoJSON is left out for inputs without georeferencing or CRS, which GeoJSON cannot state "
              "([Real rasters](../how-to/real-rasters.md#georeferencing-of-the-outputs)).",
              "", "## `translandseg imagery` (and `predict --aoi`, under `OUTPUT/imagery/`)", "",
              *[f"- `{name}`" for name in COMPOSITE_OUTPUTS], "",
              "## `recipes/train.py`: in `output_dir`", "", *[f"- `{name}`" for name in RUN_FILES], ""]
    return "\n".join(lines)


GENERATORS = {"cli": cli, "config": config, "outputs": outputs}


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (MkDocs' hook signature)
    def generated(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_path}: no generator {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(generated, markdown)
