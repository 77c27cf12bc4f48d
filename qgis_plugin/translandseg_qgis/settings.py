"""The one setting: where the TransLandSeg environment is (its `translandseg` command, its python or its folder), kept
in QGIS's settings so it is set once per profile."""

from __future__ import annotations

import os
import shutil

from qgis.core import QgsSettings

from .environment import Environment, find_environment

SETTING_KEY = "translandseg/environment"
ENVIRONMENT_VARIABLE = "TRANSLANDSEG_EXECUTABLE"  # for headless runs (qgis_process, CI) without a QGIS profile


def configured_path() -> str:
    """The saved setting, else $TRANSLANDSEG_EXECUTABLE, else a `translandseg` on the PATH, else ''."""
    saved = QgsSettings().value(SETTING_KEY, "", type=str)
    return saved or os.environ.get(ENVIRONMENT_VARIABLE, "") or shutil.which("translandseg") or ""


def save_path(path: str) -> None:
    QgsSettings().setValue(SETTING_KEY, path)


def configured_environment() -> Environment:
    """The environment the algorithms run; EnvironmentProblem says what to set when there is none."""
    return find_environment(configured_path())
