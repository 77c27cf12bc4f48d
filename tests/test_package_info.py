"""The package's version, one implementation (`translandseg_hf.package_info`) for every place that states it: the
installed metadata's version (that of pyproject.toml, for this editable install), and None where the package is not
installed, each caller wording that absence its own way."""

from __future__ import annotations

import tomllib

import pytest
from conftest import ROOT

from translandseg_hf import package_info
from translandseg_hf.cli import main
from translandseg_hf.inventory import provenance
from translandseg_hf.package_info import NOT_INSTALLED, package_version
from translandseg_hf.qgis_plugin import package as plugin_package
from translandseg_hf.qgis_plugin.package import plugin_source, write_plugin

SOURCE_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture
def not_installed(monkeypatch):
    """The metadata lookup of a distribution that is not installed: what a source tree never installed meets."""
    monkeypatch.setattr(package_info, "DISTRIBUTION", "translandseg-hf-never-installed")


def test_the_installed_version_is_the_source_trees():
    assert package_version() == SOURCE_VERSION


@pytest.mark.parametrize("module", [plugin_package, provenance], ids=["qgis_plugin.package", "inventory.provenance"])
def test_every_place_states_the_one_version(module):
    assert module.package_version is package_info.package_version


def test_version_option_prints_it(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out == f"translandseg {SOURCE_VERSION}\n"


def test_not_installed_is_none_and_the_cli_says_how_to_install(not_installed, capsys):
    assert package_version() is None
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == f"translandseg {NOT_INSTALLED}\n"
    assert "pip install -e ." in NOT_INSTALLED


def test_not_installed_leaves_the_plugins_own_version_line(not_installed, tmp_path):
    folder, _ = write_plugin(tmp_path)
    written = (folder / "metadata.txt").read_text()
    assert written == (plugin_source() / "metadata.txt").read_text() and "version=None" not in written
