"""Window-by-window warping of another raster onto an image grid: CRS, lattice, nodata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer
from rasterio.crs import CRS

from landslip.errors import InputError
from landslip.grid import Grid, Window
from landslip.io.raster import write_raster
from landslip.io.warp import WarpedReader, check_resampling

UTM = CRS.from_epsg(32654)
TARGET = Grid.from_bounds(UTM, 500000.0, 4730000.0, 10.0, 40, 50)


def _linear(e: np.ndarray, n: np.ndarray) -> np.ndarray:
    return 0.01 * (e - 500000.0) + 0.02 * (4730000.0 - n) + 100.0


def _lonlat_source(tmp_path: Path, hole: bool = False) -> Path:
    """A lon/lat raster covering TARGET, holding the linear function of the UTM coordinates."""
    res = 0.00005
    src = Grid.from_bounds(CRS.from_epsg(4326), 140.9995, 42.7232, res, 100, 150)
    rows, cols = np.mgrid[0:src.height, 0:src.width]
    lon = src.transform.c + (cols + 0.5) * res
    lat = src.transform.f - (rows + 0.5) * res
    e, n = Transformer.from_crs(4326, UTM, always_xy=True).transform(lon, lat)
    data = _linear(e, n).astype(np.float32)
    if hole:
        data[40:70, 60:100] = -9999.0
    path = tmp_path / "src.tif"
    write_raster(path, data[None], src, nodata=-9999.0, descriptions=["dem"])
    return path


def test_another_crs_is_warped_onto_the_grid(tmp_path: Path) -> None:
    path = _lonlat_source(tmp_path)
    rows, cols = np.mgrid[0:40, 0:50]
    e = 500000.0 + (cols + 0.5) * 10.0
    n = 4730000.0 - (rows + 0.5) * 10.0
    expected = _linear(e, n)
    with WarpedReader(path, TARGET, "bilinear") as reader:
        whole = reader.read(TARGET.full_window())[0]
        part = reader.read(Window(10, 20, 8, 9))[0]
    assert np.isfinite(whole).all()
    np.testing.assert_allclose(whole, expected, atol=0.01)  # linear: bilinear is exact
    np.testing.assert_array_equal(part, whole[10:18, 20:29])


def test_nodata_is_honoured_and_not_averaged_in(tmp_path: Path) -> None:
    path = _lonlat_source(tmp_path, hole=True)
    rows, cols = np.mgrid[0:40, 0:50]
    expected = _linear(500000.0 + (cols + 0.5) * 10.0, 4730000.0 - (rows + 0.5) * 10.0)
    with WarpedReader(path, TARGET, "bilinear") as reader:
        out = reader.read(TARGET.full_window())[0]
    hole = np.isnan(out)
    assert 20 < hole.sum() < 40 * 50 // 2
    # every valid pixel holds the function: no -9999 was blended into it
    np.testing.assert_allclose(out[~hole], expected[~hole], atol=0.05)


def test_same_lattice_is_read_without_resampling_and_outside_is_nan(tmp_path: Path) -> None:
    big = Grid.from_bounds(UTM, 499980.0, 4730020.0, 10.0, 44, 54)  # 2 px more on each side
    data = np.arange(44 * 54, dtype=np.float32).reshape(1, 44, 54)
    path = tmp_path / "lattice.tif"
    write_raster(path, data, big, descriptions=["dem"])
    with WarpedReader(path, TARGET, "cubic") as reader:
        inner = reader.read(TARGET.full_window())
        edge = reader.read(Window(-3, -3, 5, 5))
    np.testing.assert_array_equal(inner, data[:, 2:42, 2:52])
    assert np.isnan(edge[0, 0]).all() and np.isnan(edge[0, :, 0]).all()
    np.testing.assert_array_equal(edge[0, 1:, 1:], data[0, :4, :4])


def test_margin_reaches_past_the_grid_edge_of_a_warped_source(tmp_path: Path) -> None:
    path = _lonlat_source(tmp_path)
    with WarpedReader(path, TARGET, margin=1) as reader:
        ring = reader.read(Window(-1, -1, 42, 52))[0]
    assert np.isfinite(ring).all()
    with WarpedReader(path, TARGET, margin=0) as reader:
        no_margin = reader.read(Window(-1, -1, 42, 52))[0]
    assert np.isnan(no_margin[0]).all() and np.isfinite(no_margin[1:-1, 1:-1]).all()


def test_unknown_resampling_is_refused() -> None:
    assert check_resampling(" Cubic ") == "cubic"
    with pytest.raises(InputError, match="bilinear"):
        check_resampling("bicubic")
