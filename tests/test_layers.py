"""The package's floors, as its imports make them: a module imports only lower floors (and its own package), so each
floor below is one a chain of imports really climbs. From the bottom: the foundations (the contract's fields among
them); what is built on one of them (ATL, geo, SAM loading, scores); the input contract, its loader and the cards that
word it; the segmentation interface and the datasets; the model kinds and their loader; training, ONNX and the
parameter table; scene mapping; an event's inventory (built from mapped scenes); the app and the QGIS plugin; the
command line. `len(LAYERS)` is the number of floors, and the failures of `test_no_module_imports_upward` and
`test_no_module_imports_its_own_floor` the number of imports that break them."""

from __future__ import annotations

import ast

import pytest
from conftest import ROOT

PACKAGE = ROOT / "translandseg_hf"
LAYERS = [
    {"io_utils", "metrics", "losses", "hub", "sam_configs", "errors", "console", "lazy", "url_policy",
     "model_kinds", "sam_resizing", "contract_fields", "configuration_translandseg", "package_info"},
    {"choices", "atl", "evaluation", "landslide_segmentation_metric", "sam_loading", "geo"},
    {"image_processing", "saved_contract", "cards"},
    {"segmentation", "data", "visualization"},
    {"modeling_translandseg", "baselines", "auto"},
    {"onnx_backend", "parameter_table", "training", "pipeline"},
    {"inference"},
    {"inventory"},
    {"app", "qgis_plugin"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def top_level_name(module_path: str) -> str:
    """`translandseg_hf.training.loop` -> `training`."""
    return module_path.split(".")[1] if module_path.count(".") else ""


def dotted_name(path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("translandseg_hf", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def imported_package_modules(source: str, own: str, is_package: bool = False) -> set[str]:
    """Every `translandseg_hf.X` a module imports, at module level or inside functions, relative imports resolved."""
    package_parts = own.split(".") if is_package else own.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = package_parts[: len(package_parts) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [module] if node.module else [f"{module}.{alias.name}" for alias in node.names]
            found.update(name for name in names if name.startswith("translandseg_hf."))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("translandseg_hf."))
    return found


def upward_imports(source: str, own: str, is_package: bool = False) -> set[str]:
    own_rank = RANK[top_level_name(own)]
    return {m for m in imported_package_modules(source, own, is_package) if RANK.get(top_level_name(m), -1) > own_rank}


def same_floor_imports(source: str, own: str, is_package: bool = False) -> set[str]:
    """Imports of another top-level module of the module's own floor: a floor the list does not show."""
    own_name = top_level_name(own)
    return {m for m in imported_package_modules(source, own, is_package)
            if top_level_name(m) != own_name and RANK.get(top_level_name(m), -1) == RANK[own_name]}


MODULE_FILES = sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def test_every_module_has_a_layer():
    names = {top_level_name(dotted_name(p)) for p in MODULE_FILES}
    assert names <= set(RANK), f"give these modules a layer: {sorted(names - set(RANK))}"


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_upward(path):
    upward = upward_imports(path.read_text(), dotted_name(path), path.name == "__init__.py")
    assert not upward, f"{path.relative_to(ROOT)} imports higher layers: {sorted(upward)}"


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_its_own_floor(path):
    beside = same_floor_imports(path.read_text(), dotted_name(path), path.name == "__init__.py")
    assert not beside, f"{path.relative_to(ROOT)} imports its own floor: {sorted(beside)}; put one of them higher"


def test_the_checker_reports_upward_imports_and_passes_downward_ones():
    source = "from ..io_utils import atomic_write_text\n\ndef f():\n    from ..training.loop import train\n"
    assert upward_imports(source, "translandseg_hf.data.splits") == {"translandseg_hf.training.loop"}
    assert upward_imports("from . import loop\nfrom ..data import collate_fn\n", "translandseg_hf.training",
                          is_package=True) == set()
    assert same_floor_imports("from ..segmentation import SegmentationModel\nfrom . import ccnet\n",
                              "translandseg_hf.data.splits") == {"translandseg_hf.segmentation"}


GDAL_LIBRARIES = {"rasterio", "pyogrio", "pystac", "pystac_client", "osgeo"}


def gdal_imports(source: str) -> set[str]:
    """The GDAL-side libraries (GDAL_LIBRARIES) a module imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found & GDAL_LIBRARIES


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_geo_imports_gdal(path):
    """rasterio, pyogrio, pystac, pystac-client and osgeo are imported in `geo/` alone; the rest of the package calls
    geo."""
    if top_level_name(dotted_name(path)) == "geo":
        return
    found = gdal_imports(path.read_text())
    assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}; call translandseg_hf.geo instead"


def test_the_gdal_checker_sees_every_form_of_import():
    source = ("import rasterio.shutil\nfrom pyogrio.raw import read\n\ndef f():\n    import pystac\n"
              "    from osgeo import gdal\n    from pystac_client import Client")
    assert gdal_imports(source) == GDAL_LIBRARIES
    assert gdal_imports("from .rasterio_notes import x\nimport numpy\n") == set()
