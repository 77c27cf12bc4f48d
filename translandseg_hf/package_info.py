"""The package's own version, from its installed metadata: one answer for the CLI's --version, the QGIS plugin's
metadata.txt and an inventory's `package_version` field, so a plugin, a run record and the environment that made them
can be matched."""

from __future__ import annotations

from importlib import metadata
from typing import Optional

DISTRIBUTION = "translandseg-hf"  # pyproject.toml's [project] name
NOT_INSTALLED = "(not installed: run `pip install -e .` in the source tree)"


def package_version() -> Optional[str]:
    """The installed translandseg-hf's version; None for a source tree that was never installed (it has no metadata
    to read, and a made-up version would pass for a real one in a record): each caller words the absence itself."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
