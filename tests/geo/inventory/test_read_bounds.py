"""The inventory's bound on what it holds in memory (`geo.inventory.grid.grid_of`): a post-event grid of more than
MAX_GRID_PIXELS pixels is refused from its header, before any array is read, naming the file, its size and the limit,
and saying how to go on. Small limits stand in for the real one: no test allocates a large array."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.rasters import UTM_48N, write_raster
from rasterio.transform import from_origin

from translandseg_hf.cli import main
from translandseg_hf.geo.inventory import grid as grid_module
from translandseg_hf.geo.inventory.grid import BYTES_PER_PIXEL, MAX_GRID_PIXELS, grid_of
from translandseg_hf.inventory import build

WIDTH, HEIGHT = 30, 20  # 600 pixels


@pytest.fixture
def probability(tmp_path):
    values = np.full((HEIGHT, WIDTH), 0.1, np.float32)
    values[5:10, 5:12] = 0.9
    folder = tmp_path / "predictions"
    folder.mkdir()
    return write_raster(folder / "scene_probability.tif", values, nodata=float("nan"), crs=UTM_48N,
                        transform=from_origin(500_000.0, 3_000_000.0, 10.0, 10.0))


def refusal(path, pixels: int, limit: int) -> str:
    return (rf"{path}: the map is 30 x 20 = {pixels:,} pixels, over the inventory's limit of {limit:,} pixels "
            rf"\(it holds about {BYTES_PER_PIXEL} bytes a pixel in memory, .* GB here\); map a smaller AOI")


@pytest.mark.parametrize("limit, refused", [(599, True), (600, False), (0, False)], ids=["one under", "exact",
                                                                                        "no limit"])
def test_a_grid_over_the_limit_is_refused_naming_file_size_and_limit(probability, limit, refused):
    if refused:
        with pytest.raises(ValueError, match=refusal(probability, WIDTH * HEIGHT, limit)):
            grid_of(probability, max_pixels=limit)
    else:
        assert grid_of(probability, max_pixels=limit).shape == (HEIGHT, WIDTH)


def test_the_default_limit_is_the_modules_at_call_time(probability, monkeypatch):
    assert grid_of(probability).shape == (HEIGHT, WIDTH)  # far under MAX_GRID_PIXELS
    monkeypatch.setattr(grid_module, "MAX_GRID_PIXELS", 100)
    with pytest.raises(ValueError, match=refusal(probability, WIDTH * HEIGHT, 100)):
        grid_of(probability)


def test_the_limit_keeps_the_held_arrays_to_a_few_gigabytes():
    assert 1e9 <= MAX_GRID_PIXELS * BYTES_PER_PIXEL <= 4e9


def test_translandseg_inventory_refuses_before_reading_and_writes_nothing(probability, tmp_path, monkeypatch,
                                                                          capsys):
    monkeypatch.setattr(grid_module, "MAX_GRID_PIXELS", 500)
    monkeypatch.setattr(build, "read_on_grid", lambda *a, **k: pytest.fail("an array was read"))
    output = tmp_path / "inventory"
    status = main(["inventory", "--predictions", str(probability.parent), "--change", "none", "--output",
                   str(output)])
    assert status != 0
    err = capsys.readouterr().err
    assert f"{probability}: the map is 30 x 20 = 600 pixels, over the inventory's limit of 500 pixels" in err
    assert "map a smaller AOI" in err
    assert not output.exists() or not any(output.iterdir())
