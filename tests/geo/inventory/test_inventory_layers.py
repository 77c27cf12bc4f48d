"""GDAL's part of the inventory (`translandseg_hf.geo.inventory`): rasters on the post-event grid, labelled polygons,
NDVI on sensor values and the two layers of inventory.gpkg."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from helpers.rasters import UTM_48N, write_raster
from pyogrio import list_layers
from pyogrio.raw import read
from rasterio.crs import CRS
from rasterio.transform import from_origin

from translandseg_hf.geo.inventory import layers as layers_module
from translandseg_hf.geo.inventory.grid import Grid, grid_of, read_on_grid
from translandseg_hf.geo.inventory.layers import write_inventory_layers
from translandseg_hf.geo.inventory.ndvi import ndvi_on_grid
from translandseg_hf.geo.inventory.polygons import dissolved, labelled_polygons

SCHEMA = {"id": "int", "area_m2": "float", "confidence": "str", "pre_event_valid": "bool", "ndvi_pre": "float"}
ROWS = [{"id": 1, "area_m2": 400.0, "confidence": "high", "pre_event_valid": True, "ndvi_pre": 0.7},
        {"id": 2, "area_m2": 100.0, "confidence": None, "pre_event_valid": False, "ndvi_pre": None}]


def squares():
    polygons = np.array([shapely.box(0, 0, 20, 20), shapely.box(50, 50, 60, 60)])
    return polygons, shapely.centroid(polygons)


def test_both_layers_hold_the_rows_in_schema_order_with_nulls(tmp_path):
    polygons, points = squares()
    path = write_inventory_layers(tmp_path / "inventory.gpkg", polygons, points, ROWS, UTM_48N, SCHEMA)
    assert [tuple(layer) for layer in list_layers(path)] == [("landslides", "MultiPolygon"),
                                                           ("landslide_points", "Point"),
                                                           ("unmapped", "MultiPolygon")]
    for layer in ("landslides", "landslide_points"):
        meta, _, geometry, columns = read(path, layer=layer)
        assert list(meta["fields"]) == list(SCHEMA) and meta["crs"] == UTM_48N
        assert list(meta["dtypes"]) == ["int64", "float64", "object", "bool", "float64"]
        values = dict(zip(meta["fields"], columns))
        assert values["confidence"].tolist() == ["high", None]
        assert values["pre_event_valid"].tolist() == [True, False]
        assert values["ndvi_pre"][0] == 0.7 and np.isnan(values["ndvi_pre"][1])
    polygons_read = shapely.from_wkb(read(path, layer="landslides")[2])
    assert shapely.get_type_id(polygons_read).tolist() == [6, 6]  # MultiPolygon
    assert shapely.area(polygons_read).tolist() == [400.0, 100.0]


def test_an_empty_inventory_still_has_both_layers_and_their_fields(tmp_path):
    empty = np.zeros(0, dtype=object)
    path = write_inventory_layers(tmp_path / "inventory.gpkg", empty, empty, [], UTM_48N, SCHEMA)
    for layer in ("landslides", "landslide_points"):
        meta, _, geometry, _ = read(path, layer=layer)
        assert list(meta["fields"]) == list(SCHEMA) and len(geometry) == 0
    meta, _, geometry, _ = read(path, layer="unmapped")  # no unmapped area given: the layer, without features
    assert list(meta["fields"]) == ["reason", "area_m2", "share_of_aoi"] and len(geometry) == 0


def test_the_unmapped_layer_holds_one_multipolygon_per_reason(tmp_path):
    polygons, points = squares()
    cloud = shapely.MultiPolygon([shapely.box(100, 0, 130, 10), shapely.box(130, 10, 140, 20)])
    unmapped = [{"geometry": cloud, "reason": "no post-event value", "area_m2": 400.4, "share_of_aoi": 0.25},
                {"geometry": shapely.box(0, 100, 10, 120), "reason": "no pre-event value", "area_m2": 200.2,
                 "share_of_aoi": 0.125}]
    path = write_inventory_layers(tmp_path / "inventory.gpkg", polygons, points, ROWS, UTM_48N, SCHEMA, unmapped)
    meta, _, geometry, columns = read(path, layer="unmapped")
    assert meta["crs"] == UTM_48N and list(meta["dtypes"]) == ["object", "float64", "float64"]
    assert [column.tolist() for column in columns] == [["no post-event value", "no pre-event value"],
                                                       [400.4, 200.2], [0.25, 0.125]]
    read_back = shapely.from_wkb(geometry)
    assert shapely.get_type_id(read_back).tolist() == [6, 6]  # a Polygon is written as a MultiPolygon
    assert shapely.equals(read_back[0], cloud) and shapely.area(read_back).tolist() == [400.0, 200.0]


def test_unmapped_pixels_are_dissolved_into_one_valid_multipolygon_in_map_coordinates():
    pixels = np.zeros((6, 6), bool)
    pixels[0:2, 0:2] = pixels[2:4, 2:4] = True  # touching by a corner only
    pixels[5, 5] = True
    transform = from_origin(500_000.0, 3_000_000.0, 10.0, 10.0)
    merged = dissolved(pixels, transform)
    assert merged.geom_type == "MultiPolygon" and merged.is_valid and len(merged.geoms) == 3
    assert merged.area == 900.0
    assert merged.bounds == (500_000.0, 2_999_940.0, 500_060.0, 3_000_000.0)
    assert dissolved(np.zeros((6, 6), bool), transform) is None


def test_a_failed_write_leaves_the_earlier_inventory_and_no_temporary_file(tmp_path, monkeypatch):
    polygons, points = squares()
    path = write_inventory_layers(tmp_path / "inventory.gpkg", polygons, points, ROWS, UTM_48N, SCHEMA)
    before = path.read_bytes()
    calls = []

    def failing(*args, **kwargs):
        calls.append(kwargs["layer"])
        if kwargs["layer"] == "landslide_points":
            raise OSError("disk full")
        return real(*args, **kwargs)

    real = layers_module.write_layer
    monkeypatch.setattr(layers_module, "write_layer", failing)
    with pytest.raises(OSError, match="disk full"):
        write_inventory_layers(path, polygons[:1], points[:1], ROWS[:1], UTM_48N, SCHEMA)
    assert calls == ["landslides", "landslide_points"]  # unmapped is not reached
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inventory.gpkg"]


def test_rows_that_do_not_match_the_geometries_are_refused(tmp_path):
    polygons, points = squares()
    with pytest.raises(ValueError, match=r"2 polygons, 2 points and 1 rows; one of each per landslide"):
        write_inventory_layers(tmp_path / "inventory.gpkg", polygons, points, ROWS[:1], UTM_48N, SCHEMA)


def test_labels_follow_the_polygons_pixel_for_pixel():
    pixels = np.zeros((12, 12), bool)
    pixels[1:6, 1:6] = True
    pixels[3, 3] = False  # a hole
    pixels[6:8, 6:8] = True  # touches the first by a corner only: another landslide
    pixels[9:11, 0:3] = True
    polygons, labels = labelled_polygons(pixels)
    assert len(polygons) == 3
    assert shapely.area(polygons).tolist() == [24.0, 4.0, 6.0]  # ordered by top row, then left column
    assert np.array_equal(labels > 0, pixels)
    for label, polygon in enumerate(polygons, start=1):
        assert (labels == label).sum() == polygon.area
    assert labels[3, 3] == 0 and len(polygons[0].interiors) == 1


def grid_at(origin, width, height, pixel=10.0) -> Grid:
    return Grid(CRS.from_string(UTM_48N), from_origin(*origin, pixel, pixel), width, height, "post.tif")


def test_a_raster_on_another_grid_is_warped_onto_the_grid(tmp_path):
    values = np.arange(100, dtype=np.float32).reshape(10, 10)
    path = write_raster(tmp_path / "pre.tif", values, nodata=float("nan"), crs=UTM_48N,
                        transform=from_origin(500_000.0, 3_000_000.0, 10.0, 10.0))
    grid = grid_at((500_020.0, 2_999_970.0), 10, 10)  # 2 columns east, 3 rows south of the raster
    warped = read_on_grid(path, grid, kind="classes")[0]
    assert np.array_equal(warped[:7, :8], values[3:, 2:])
    assert np.isnan(warped[7:]).all() and np.isnan(warped[:, 8:]).all()
    on_own_grid = read_on_grid(path, grid_of(path))[0]
    assert np.array_equal(on_own_grid, values)


def test_scene_indices_keep_their_nodata_as_nan(tmp_path):
    source = np.array([[0, 1], [65535, 1]], np.uint16)
    path = write_raster(tmp_path / "source.tif", source, nodata=65535)
    read_back = read_on_grid(path, grid_of(path), kind="classes")[0]
    assert read_back[0].tolist() == [0.0, 1.0] and np.isnan(read_back[1, 0])


def test_a_raster_off_the_grid_is_refused_naming_both(tmp_path):
    path = write_raster(tmp_path / "far.tif", np.ones((4, 4), np.float32), crs=UTM_48N,
                        transform=from_origin(700_000.0, 3_000_000.0, 10.0, 10.0))
    with pytest.raises(ValueError, match=r"far\.tif: the pre-event probability does not overlap the post-event grid "
                                         r"of post\.tif"):
        read_on_grid(path, grid_at((500_000.0, 3_000_000.0), 4, 4), what="pre-event probability")


def test_ndvi_multiplies_each_band_back_by_its_divisor(tmp_path):
    red, nir = 500.0, 3000.0
    bands = np.stack([np.full((2, 2), red / 445.0), np.full((2, 2), nir / 1941.0)]).astype(np.float32)
    path = write_raster(tmp_path / "composite.tif", bands)
    grid = grid_of(path)
    assert ndvi_on_grid(path, grid, 1, 2, (445.0, 1941.0)) == pytest.approx(
        np.full((2, 2), (nir - red) / (nir + red)), rel=1e-6)
    on_the_stack_scale = ndvi_on_grid(path, grid, 1, 2)
    assert not np.allclose(on_the_stack_scale, (nir - red) / (nir + red), atol=0.1)  # the scale does not cancel
