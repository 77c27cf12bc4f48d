"""The inventory's documentation cannot drift from its code: `attributes.FIELD_DOCS` names the fields the layers are
written with, in their order; the docs' field table (`docs/hooks/reference.py`) is made from it and refuses a field
list that does not match; the keys docs/how-to/event-inventory.md lists for statistics.json are those written."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest
from conftest import ROOT
from helpers.rasters import UTM_48N, write_raster
from pyogrio.raw import read
from rasterio.transform import from_origin

from translandseg_hf.inventory import attributes
from translandseg_hf.inventory.attributes import FIELD_DOCS, FIELDS
from translandseg_hf.inventory.build import build_inventory
from translandseg_hf.inventory.mapped import MappedDate

HOW_TO = ROOT / "docs" / "how-to" / "event-inventory.md"


def load_hook():
    spec = importlib.util.spec_from_file_location("docs_reference_hook_h8", ROOT / "docs" / "hooks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    """A one-date inventory of a 20 x 20 map at 10 m holding two landslides."""
    root = tmp_path_factory.mktemp("fields")
    probability = np.full((20, 20), 0.1, np.float32)
    probability[2:6, 2:6], probability[10:15, 12:18] = 0.9, 0.7
    (root / "predictions").mkdir()
    write_raster(root / "predictions" / "scene_probability.tif", probability, nodata=float("nan"), crs=UTM_48N,
                 transform=from_origin(500_000.0, 3_000_000.0, 10.0, 10.0))
    return build_inventory(MappedDate.from_folder(root / "predictions", date="2024-08-20"), root / "out",
                           change="none")


def test_field_docs_name_every_field_of_both_layers_in_order(inventory):
    assert inventory.count == 2
    for layer in ("landslides", "landslide_points"):
        assert list(read(inventory.paths["inventory.gpkg"], layer=layer)[0]["fields"]) == list(FIELD_DOCS)
    assert [list(row) for row in inventory.rows] == [list(FIELD_DOCS)] * 2
    assert all(meaning.strip() for _, meaning in FIELD_DOCS.values())


def test_the_docs_table_has_one_row_per_field_in_order_with_its_type_and_meaning():
    hook = load_hook()
    table = hook.inventory_fields().splitlines()[2:]
    assert [row.split("|")[1].strip() for row in table] == [f"`{name}`" for name in FIELDS]
    for row, (name, kind) in zip(table, FIELDS.items()):
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        assert cells[1] == hook.GPKG_TYPES[kind] and cells[3] == " ".join(FIELD_DOCS[name][1].split())


def test_the_docs_table_refuses_fields_it_does_not_describe(monkeypatch):
    monkeypatch.setattr(attributes, "FIELDS", {**FIELDS, "runout_m": "float"})
    with pytest.raises(ValueError, match=r"CATALOGUE_COUNTERPARTS and inventory.attributes FIELD_DOCS must name "
                                         r"FIELDS in order: id, area_m2, .*, mapped_at, runout_m"):
        load_hook().inventory_fields()


def test_the_how_to_lists_the_statistics_json_keys_written(inventory):
    page = HOW_TO.read_text()
    section = page.split("### `statistics.json`", 1)[1].split("\n#", 1)[0]
    documented = re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)
    written = json.loads(inventory.paths["statistics.json"].read_text())
    assert documented == list(written)
    assert "<!-- generated: inventory-fields -->" in page and "<!-- generated: inventory-rules -->" in page
