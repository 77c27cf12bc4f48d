"""The TransLandSeg environment the plugin runs: from the path a user sets (the environment's `translandseg` command,
its python, or its folder) to the command line, and the check that it runs and which package version it has.

Pure Python (no qgis import)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .runner import child_environment

PACKAGE = "translandseg-hf"
VERSION_SCRIPT = f"import importlib.metadata as m; print(m.version({PACKAGE!r}))"
COMMAND_NAMES = ("bin/translandseg", "Scripts/translandseg.exe", "translandseg", "translandseg.exe")
PYTHON_NAMES = ("python", "python3", "python.exe")
CHECK_SECONDS = 120
WHAT_TO_SET = ("set the TransLandSeg environment to its translandseg command (ENV/bin/translandseg, on Windows "
               "ENV\\Scripts\\translandseg.exe) or its python, with Processing > TransLandSeg > Check environment")


class EnvironmentProblem(Exception):
    """The environment is not set, not there, or does not run translandseg; the message says what to set."""


@dataclass(frozen=True)
class Environment:
    """How to run `translandseg` (`command`) and the python that has the package, for its version."""

    path: Path
    command: tuple[str, ...]
    python: Optional[Path]


def find_environment(setting: str) -> Environment:
    """The environment a setting names: a `translandseg` executable, a python (run as `python -m
    translandseg_hf.cli`) or an environment folder holding bin/translandseg."""
    if not setting.strip():
        raise EnvironmentProblem(f"No TransLandSeg environment is set: {WHAT_TO_SET}.")
    path = Path(setting.strip()).expanduser()
    if not path.exists():
        raise EnvironmentProblem(f"{path} does not exist: {WHAT_TO_SET}.")
    if path.is_dir():
        found = [path / name for name in COMMAND_NAMES if (path / name).is_file()]
        if not found:
            raise EnvironmentProblem(f"{path} is a folder without bin/translandseg (is translandseg-hf installed in "
                                     f"it?): {WHAT_TO_SET}.")
        path = found[0]
    if os.name != "nt" and not os.access(path, os.X_OK):
        raise EnvironmentProblem(f"{path} is not executable: {WHAT_TO_SET}.")
    if path.name.lower().startswith("python"):
        return Environment(path, (str(path), "-m", "translandseg_hf.cli"), path)
    return Environment(path, (str(path),), python_of(path))


def python_of(command: Path) -> Optional[Path]:
    """The python beside an environment's console script (bin/python), else the one its `#!` line names."""
    for name in PYTHON_NAMES:
        if (command.parent / name).is_file():
            return command.parent / name
    try:
        with open(command, "rb") as script:
            first_line = script.readline(4096).decode("utf-8", "replace")
    except OSError:
        return None
    interpreter = first_line[2:].strip().split(" ")[0] if first_line.startswith("#!") else ""
    return Path(interpreter) if interpreter and Path(interpreter).is_file() else None


def check_environment(environment: Environment) -> str:
    """The translandseg-hf version the environment has, after checking that its command runs."""
    version = "unknown version"
    if environment.python is not None:
        result = run_quietly([str(environment.python), "-c", VERSION_SCRIPT])
        if result.returncode != 0:
            raise EnvironmentProblem(f"{environment.python}: translandseg-hf is not installed in this environment "
                                     f"({last_line(result.stderr)}): install it there, or {WHAT_TO_SET}.")
        version = result.stdout.strip()
    result = run_quietly([*environment.command, "--help"])
    if result.returncode != 0 or "predict" not in result.stdout:
        raise EnvironmentProblem(f"{environment.path} does not run translandseg ({last_line(result.stderr)}): "
                                 f"{WHAT_TO_SET}.")
    return version


def run_quietly(command: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, env=child_environment(), timeout=CHECK_SECONDS,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise EnvironmentProblem(f"{command[0]} cannot be run ({error}): {WHAT_TO_SET}.") from error


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"
