"""Running a check in a real QGIS: Debian's PyQGIS (/usr/bin/python3), headless (Qt's offscreen platform).

QGIS's Python cannot import this environment's packages, nor this one QGIS's: a check is a function (importing only
the standard library and qgis) whose source is run as a script by QGIS's Python, with its arguments and its result
passed as JSON."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import textwrap
import zipfile
from functools import lru_cache
from pathlib import Path

import pytest

from translandseg_hf.qgis_plugin.package import write_plugin

QGIS_PYTHON = "/usr/bin/python3"
QGIS_SECONDS = 300


@lru_cache(maxsize=1)
def qgis_missing() -> str:
    """Why the QGIS tests cannot run here, or ''."""
    try:
        found = subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{QGIS_PYTHON} cannot be run: {error}"
    return "" if found.returncode == 0 else f"{QGIS_PYTHON} cannot import qgis.core (apt install qgis python3-qgis)"


requires_qgis = pytest.mark.skipif(bool(qgis_missing()), reason=qgis_missing() or "QGIS found")


def run_in_qgis(function, *arguments, home: Path, helpers=()):
    """`function(*arguments)` in Debian's PyQGIS, offscreen, with QGIS's settings under `home`; its JSON result.
    `helpers`: more functions whose source the script needs (e.g. one that starts QGIS with a plugin)."""
    source = "\n\n".join(textwrap.dedent(inspect.getsource(part)) for part in (*helpers, function))
    script = (f"{source}\n\nimport json, sys\nresult = {function.__name__}(*json.loads(sys.argv[1]))\n"
              "print('RESULT ' + json.dumps(result))\n")
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    environment.update(QT_QPA_PLATFORM="offscreen", HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
                       XDG_RUNTIME_DIR=str(runtime), HF_HUB_OFFLINE="1")
    ran = subprocess.run([QGIS_PYTHON, "-c", script, json.dumps([str(a) for a in arguments])], capture_output=True,
                         text=True, env=environment, timeout=QGIS_SECONDS)
    results = [line for line in ran.stdout.splitlines() if line.startswith("RESULT ")]
    assert ran.returncode == 0 and results, f"QGIS: {ran.returncode}\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    return json.loads(results[-1].removeprefix("RESULT "))


def install_plugin(written: Path, plugins: Path) -> Path:
    """The plugin as "Install from ZIP" installs it: its zip (written into `written`) unpacked into the QGIS plugins
    folder `plugins`, which is returned."""
    _, archive = write_plugin(written)
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(plugins)
    return plugins


def start_qgis(plugins: str, gui: bool = False, start: bool = True):
    """A headless QGIS with Processing and the plugin installed in `plugins`, loaded and (with `start`) started as
    qgis_process starts it."""
    import sys

    sys.path.insert(0, plugins)
    from qgis.core import QgsApplication

    global QGIS_APP  # kept: QGIS ends when its application object goes
    QGIS_APP = QgsApplication([], gui)
    QGIS_APP.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing
    import qgis.utils

    Processing.initialize()
    assert qgis.utils.loadPlugin("translandseg_qgis")
    assert not start or qgis.utils.startProcessingPlugin("translandseg_qgis")
