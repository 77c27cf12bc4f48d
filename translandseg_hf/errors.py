"""How commands end on bad input: one `error:` line and exit status 1, never a traceback for the user's mistake."""

from __future__ import annotations

import sys
import warnings
from typing import Callable

# What a loader or `predict` does with an item it cannot read: stop with its error, or record it and go on.
ON_ERROR = ("raise", "skip")


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN or infinite loss; the checkpoints written before it are kept."""


class CheckpointSaveError(OSError):
    """A checkpoint could not be written (a full disk); the run stops and the checkpoints before it are kept."""


USER_ERRORS = (FileNotFoundError, NotADirectoryError, ValueError, NonFiniteLossError, CheckpointSaveError)


def run_reporting_errors(main: Callable[[], object]) -> None:
    """Run a recipe or command: bad input (a missing file, an invalid value, a diverging loss) ends with one
    `error:` line and exit status 1; anything else is a bug and keeps its traceback."""
    try:
        main()
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def check_on_error(value: str) -> str:
    """`value` if it is one of ON_ERROR; "stop", the old spelling of "raise" (`predict --on-error stop`), is accepted
    with a FutureWarning and returned as "raise"."""
    if value == "stop":
        warnings.warn('on_error="stop" is the old spelling of "raise"; pass "raise".', FutureWarning, stacklevel=2)
        return "raise"
    if value not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {value!r}")
    return value
