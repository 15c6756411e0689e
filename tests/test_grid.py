"""Window and grid arithmetic, with property tests."""

from __future__ import annotations

import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from landslip.errors import CRSMismatchError, GridError, LandslipError
from landslip.grid import Grid, Window, iter_clipped_tiles, iter_tiles, tile_starts


@given(
    length=st.integers(1, 2000),
    size=st.integers(1, 300),
    data=st.data(),
)
def test_tile_starts_cover_exactly(length: int, size: int, data: st.DataObject) -> None:
    stride = data.draw(st.integers(1, size))
    starts = tile_starts(length, size, stride)
    covered = set()
    for s in starts:
        covered.update(range(s, min(s + size, length)))
    assert covered == set(range(length))
    assert starts == sorted(set(starts))
    assert starts[0] == 0
    # no tile starts at or beyond the end, and only the last one may overhang
    assert all(s < length for s in starts)
    assert all(s + size <= length for s in starts[:-1]) or length < size


def test_iter_tiles_counts() -> None:
    tiles = list(iter_tiles(600, 257, 256))
    assert len(tiles) == 3 * 2
    assert tiles[-1] == Window(512, 256, 256, 256)


@settings(deadline=None)  # the machine is shared: timing is not what is tested
@given(height=st.integers(1, 300), width=st.integers(1, 300), tile=st.integers(3, 120))
def test_iter_clipped_tiles_cover_every_pixel_once(height: int, width: int, tile: int) -> None:
    import numpy as np

    windows = list(iter_clipped_tiles(height, width, tile))
    hits = np.zeros((height, width), dtype=np.int64)
    for w in windows:
        assert w.row_off >= 0 and w.col_off >= 0
        assert w.row_end <= height and w.col_end <= width
        assert w.height <= tile and w.width <= tile
        hits[w.slices()] += 1
    assert (hits == 1).all()
    # row by row, left to right: the (row_off, col_off) keys are strictly increasing
    keys = [(w.row_off, w.col_off) for w in windows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert len(windows) == -(-height // tile) * -(-width // tile)


def test_iter_clipped_tiles_clips_the_edges() -> None:
    assert list(iter_clipped_tiles(5, 7, 4)) == [
        Window(0, 0, 4, 4), Window(0, 4, 4, 3), Window(4, 0, 1, 4), Window(4, 4, 1, 3)]
    assert list(iter_clipped_tiles(3, 3, 10)) == [Window(0, 0, 3, 3)]
    assert list(iter_clipped_tiles(1, 2, 1)) == [Window(0, 0, 1, 1), Window(0, 1, 1, 1)]
    # the same starts as iter_tiles, clipped to the grid
    assert list(iter_clipped_tiles(600, 257, 256)) == [
        w.clip(600, 257) for w in iter_tiles(600, 257, 256)]
    with pytest.raises(GridError, match="positive"):
        iter_clipped_tiles(10, 10, 0)


def test_window_ops() -> None:
    a = Window(0, 0, 10, 10)
    assert a.intersection(Window(5, 5, 10, 10)) == Window(5, 5, 5, 5)
    assert a.intersection(Window(10, 0, 5, 5)) is None
    assert a.touches_or_overlaps(Window(10, 10, 5, 5))
    assert not a.touches_or_overlaps(Window(11, 0, 5, 5))
    assert a.expand(2) == Window(-2, -2, 14, 14)
    assert Window(-3, 5, 10, 10).clip(8, 12) == Window(0, 5, 7, 7)
    with pytest.raises(GridError):
        Window(20, 20, 2, 2).clip(8, 8)
    with pytest.raises(LandslipError):
        Window(0, 0, 0, 3)


def test_grid_geometry() -> None:
    from rasterio.crs import CRS

    g = Grid.from_bounds(CRS.from_epsg(32654), 500000.0, 4730000.0, 1.5, 100, 200)
    assert g.res == (1.5, 1.5)
    assert g.bounds == (500000.0, 4730000.0 - 150.0, 500000.0 + 300.0, 4730000.0)
    sub = g.window_grid(Window(10, 20, 5, 5))
    assert sub.transform == Affine(1.5, 0, 500030.0, 0, -1.5, 4729985.0)
    assert g.aligned_with(Grid(g.crs, g.transform, 100, 200))
    other = Grid(CRS.from_epsg(4326), g.transform, 100, 200)
    with pytest.raises(CRSMismatchError, match=r"EPSG:32654.*EPSG:4326"):
        g.require_same_crs(other)
    with pytest.raises(GridError, match="rotated"):
        Grid(None, Affine(1, 0.5, 0, 0, -1, 0), 3, 3)
