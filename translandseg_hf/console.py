"""What commands show: progress bars on a terminal only, so logs of batch jobs hold lines, not escape codes."""

from __future__ import annotations

import argparse
import os
import re
import sys

FORCE_PROGRESS = "TRANSLANDSEG_PROGRESS"  # "1": bars on a pipe too, for a program that reads them (the QGIS plugin)


def interactive() -> bool:
    """Whether progress bars would be seen: standard error is a terminal, or a reader asked for them with
    TRANSLANDSEG_PROGRESS=1."""
    return sys.stderr.isatty() or os.environ.get(FORCE_PROGRESS) == "1"


def bar_size(stream=None) -> dict:
    """tqdm's `ncols`/`nrows` where a terminal reports no size (a pseudo-terminal opened without one, as `script -c`
    opens): tqdm reads it as -1 x -1 and draws nothing at all, so the bar falls back to 80 x 24. Empty where the
    terminal reports its size (tqdm reads it itself) or `stream` is no terminal."""
    stream = stream or sys.stderr
    try:
        columns, lines = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):  # not a terminal, or no file descriptor (a StringIO)
        return {}
    return {} if columns > 0 and lines > 0 else {"ncols": columns or 80, "nrows": lines or 24}


def quiet_progress_bars_when_logged() -> None:
    """Switch off the progress bars of transformers (loading weights), datasets (building splits) and
    huggingface_hub (downloads) when standard error goes to a file or a pipe."""
    if interactive():
        return
    from datasets.utils import disable_progress_bars as disable_datasets_bars
    from huggingface_hub.utils import disable_progress_bars as disable_hub_bars
    from transformers.utils.logging import disable_progress_bar as disable_transformers_bar

    disable_datasets_bars()
    disable_hub_bars()
    disable_transformers_bar()


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """`--help` with each option's default once: appended as `(default: value)` unless the help already states one
    (`(default: ...)` or `Default: ...`); none for an unset option (None) or a flag (`store_true`, off unless given)."""

    def _get_help_string(self, action):
        stated = re.search(r"\(default\b|\bdefault:", action.help or "", re.IGNORECASE)
        if stated or action.default is None or action.default is argparse.SUPPRESS or action.nargs == 0:
            return action.help
        return f"{action.help} (default: %(default)s)"
