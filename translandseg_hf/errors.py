"""How commands end: the exit statuses of `translandseg` and of the recipes, and the one place that turns a known
error into one `error: ...` line on standard error and its status, never a traceback for the user's mistake (nor
for Ctrl-C: one `interrupted: ...` line). Any other exception is a bug and keeps its traceback."""

from __future__ import annotations

import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator

# What a loader or `predict` does with an item it cannot read: stop with its error, or record it and go on.
ON_ERROR = ("raise", "skip")

# Exit statuses of `translandseg` (the table is in cli.py's docstring and `translandseg --help`).
EXIT_DONE, EXIT_FAILED, EXIT_REFUSED, EXIT_HELD = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C
# Every command writes each file under a temporary name and renames it into place when complete, and removes its
# temporary files and claims when it stops (`predict` puts an input's maps in place together), so a run stopped by
# Ctrl-C leaves what it finished and no half-written file.
INTERRUPTED = "stopped by Ctrl-C; what was finished is kept, nothing partial was left"


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN or infinite loss; the checkpoints written before it are kept."""


class CheckpointSaveError(OSError):
    """A checkpoint could not be written (a full disk); the run stops and the checkpoints before it are kept."""


class RunFailed(Exception):
    """A command's run started and failed on its inputs (EXIT_FAILED), as opposed to a command line refused before
    any work (EXIT_REFUSED). The message is the failure's own."""


# A recipe's bad input (exit 1); a command's refusal (exit 2): a wrong value, a missing or unwritable file or folder.
USER_ERRORS = (FileNotFoundError, NotADirectoryError, ValueError, NonFiniteLossError, CheckpointSaveError)
COMMAND_ERRORS = (ValueError, OSError)


def report(error: BaseException, status: int) -> int:
    """Print `error: MESSAGE` on standard error; return `status`."""
    print(f"error: {error}", file=sys.stderr)
    return status


def interrupted() -> int:
    """Print the one `interrupted: ...` line a command stopped by Ctrl-C ends with; return EXIT_INTERRUPTED."""
    print(f"interrupted: {INTERRUPTED}", file=sys.stderr)
    return EXIT_INTERRUPTED


def run_command(command: Callable[[], int]) -> int:
    """Run one `translandseg` command to its exit status: RunFailed ends it with EXIT_FAILED, COMMAND_ERRORS with
    EXIT_REFUSED, each as one `error:` line; Ctrl-C with EXIT_INTERRUPTED and one `interrupted:` line, no
    traceback."""
    try:
        return command()
    except KeyboardInterrupt:
        return interrupted()
    except RunFailed as error:
        return report(error, EXIT_FAILED)
    except COMMAND_ERRORS as error:
        return report(error, EXIT_REFUSED)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, then raise KeyboardInterrupt: for steps that must not be cut in half (the
    renames that put one input's outputs in place). Only the main thread receives signals: elsewhere (the app's
    workers) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
    if caught:
        raise KeyboardInterrupt


@contextmanager
def failures_of_the_run(*errors: type[BaseException]) -> Iterator[None]:
    """Errors raised inside (default: any Exception) are failures of a started run: re-raised as RunFailed."""
    caught = errors or (Exception,)
    try:
        yield
    except caught as error:
        raise RunFailed(str(error)) from error


def run_reporting_errors(main: Callable[[], object]) -> None:
    """Run a recipe: bad input (a missing file, an invalid value, a diverging loss) ends with one `error:` line and
    exit status 1, Ctrl-C with one `interrupted:` line and EXIT_INTERRUPTED; anything else is a bug and keeps its
    traceback."""
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(interrupted())
    except USER_ERRORS as error:
        sys.exit(report(error, EXIT_FAILED))


def check_on_error(value: str) -> str:
    """`value` if it is one of ON_ERROR; "stop", the old spelling of "raise" (`predict --on-error stop`), is accepted
    with a FutureWarning and returned as "raise"."""
    if value == "stop":
        warnings.warn('on_error="stop" is the old spelling of "raise"; pass "raise".', FutureWarning, stacklevel=2)
        return "raise"
    if value not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {value!r}")
    return value
