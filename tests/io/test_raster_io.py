"""Raster I/O: grids survive a round trip, padded window reads, atomic writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.crs import CRS

from landslip.errors import LandslipError, RasterIOError
from landslip.grid import Grid, Window
from landslip.io.atomic import atomic_path, write_json_atomic
from landslip.io.raster import (
    RasterWriter,
    geotiff_profile,
    open_raster,
    raster_info,
    read_raster,
    read_window,
    write_raster,
)

UTM54 = CRS.from_epsg(32654)


def _grid(h: int = 300, w: int = 280) -> Grid:
    return Grid.from_bounds(UTM54, 547000.0, 4727000.0, 1.5, h, w)


def test_roundtrip_keeps_grid_descriptions_nodata(tmp_path: Path) -> None:
    g = _grid()
    data = np.arange(2 * g.height * g.width, dtype=np.uint16).reshape(2, g.height, g.width)
    out = write_raster(tmp_path / "a.tif", data, g, nodata=0, descriptions=["red", "nir"])
    info = raster_info(out)
    assert info.grid.aligned_with(g)
    assert info.grid.crs == UTM54
    assert info.descriptions == ("red", "nir")
    assert info.nodata == 0
    back, g2 = read_raster(out)
    np.testing.assert_array_equal(back, data)
    assert g2.transform == g.transform


def test_profile_tiles_and_bigtiff() -> None:
    p = geotiff_profile(_grid(512, 512), 4, "uint16")
    assert p["tiled"] and p["blockxsize"] == 256 and p["compress"] == "deflate"
    assert p["BIGTIFF"] == "IF_SAFER"
    big = geotiff_profile(_grid(40000, 40000), 4, "uint16")
    assert big["BIGTIFF"] == "YES"
    assert "tiled" not in geotiff_profile(_grid(100, 100), 1, "uint8")
    assert "zlevel" not in p and geotiff_profile(_grid(512, 512), 4, "uint16", zlevel=1)[
        "zlevel"] == 1


def test_read_window_pads_outside(tmp_path: Path) -> None:
    g = _grid(10, 12)
    data = np.ones((1, 10, 12), dtype=np.uint8) * 7
    path = write_raster(tmp_path / "b.tif", data, g)
    with open_raster(path) as ds:
        arr = read_window(ds, Window(-2, 8, 6, 6), fill=255)
        assert arr.shape == (1, 6, 6)
        assert (arr[0, :2] == 255).all()
        assert (arr[0, 2:, :4] == 7).all()
        assert (arr[0, 2:, 4:] == 255).all()
        assert (read_window(ds, Window(50, 50, 3, 3), fill=9) == 9).all()


def test_writer_window_by_window_equals_whole(tmp_path: Path) -> None:
    g = _grid(300, 280)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4096, (1, 300, 280), dtype=np.uint16)
    with RasterWriter(tmp_path / "c.tif", g, 1, "uint16") as w:
        for r in range(0, 300, 256):
            win = Window(r, 0, min(256, 300 - r), 280)
            w.write(data[(slice(None), *win.slices())], win)
    np.testing.assert_array_equal(read_raster(tmp_path / "c.tif")[0], data)


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    g = _grid(20, 20)
    target = tmp_path / "d.tif"
    with pytest.raises(RuntimeError), RasterWriter(target, g, 1, "uint8") as w:
        w.write(np.zeros((1, 20, 20), np.uint8))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_json_and_failure(tmp_path: Path) -> None:
    p = write_json_atomic(tmp_path / "sub" / "r.json", {"a": 1})
    assert p.read_text().strip().startswith("{")
    with pytest.raises(ValueError), atomic_path(tmp_path / "x.txt") as tmp:
        tmp.write_text("half")
        raise ValueError("boom")
    assert not (tmp_path / "x.txt").exists()
    assert not any(f.name.startswith(".x") for f in tmp_path.iterdir())


def test_missing_and_bad_raster(tmp_path: Path) -> None:
    with pytest.raises(RasterIOError, match="not found"):
        raster_info(tmp_path / "nope.tif")
    bad = tmp_path / "bad.tif"
    bad.write_text("not a tiff")
    with pytest.raises(LandslipError, match="cannot read"):
        raster_info(bad)
    with pytest.raises(OSError):  # RasterIOError is also an OSError
        raster_info(bad)


def test_write_shape_mismatch(tmp_path: Path) -> None:
    with pytest.raises(RasterIOError, match="does not match"):
        write_raster(tmp_path / "e.tif", np.zeros((5, 5), np.uint8), _grid(6, 6))
