"""Terrain bands: exact slope of planes at every pixel (edges, holes), geographic CRSs, halos."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rasterio.crs import CRS

from landslip.errors import InputError
from landslip.grid import Grid, Window, iter_clipped_tiles
from landslip.spectral.terrain import HALO, pixel_size_m, terrain_window

UTM = CRS.from_epsg(32654)


def _plane(grid: Grid, window: Window, degrees: float, azimuth: float) -> np.ndarray:
    """Heights (with halo) of a plane rising ``degrees`` towards ``azimuth``, NaN off-grid."""
    ext = window.expand(HALO)
    rows, cols = np.mgrid[ext.row_off:ext.row_end, ext.col_off:ext.col_end]
    x = (cols + 0.5) * grid.res[0]
    y = -(rows + 0.5) * grid.res[1]
    a = math.radians(azimuth)
    z = math.tan(math.radians(degrees)) * (math.sin(a) * x + math.cos(a) * y)
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    return np.where(inside, z, np.nan).astype(np.float32)


@pytest.mark.parametrize("azimuth", [0.0, 90.0, 37.0, 225.0])
def test_tilted_plane_gives_30_degrees_everywhere_including_edges(azimuth: float) -> None:
    grid = Grid.from_bounds(UTM, 500000.0, 4700000.0, 10.0, 17, 23)
    win = grid.full_window()
    slope = terrain_window(_plane(grid, win, 30.0, azimuth), grid, win)[0]
    assert slope.shape == (17, 23)
    np.testing.assert_allclose(slope, 30.0, atol=2e-3)  # corners and edges included


def test_nodata_holes_keep_their_neighbours_exact_and_are_nodata_themselves() -> None:
    grid = Grid.from_bounds(UTM, 500000.0, 4700000.0, 2.0, 12, 12)
    win = grid.full_window()
    dem = _plane(grid, win, 30.0, 120.0)
    dem[4, 4] = np.nan  # pixel (3, 3)
    dem[7:9, 1:12] = np.nan  # rows 6-7 (two full rows of the interior)
    slope = terrain_window(dem, grid, win)[0]
    assert np.isnan(slope[3, 3]) and np.isnan(slope[6:8, :11]).all()
    ok = ~np.isnan(slope)
    np.testing.assert_allclose(slope[ok], 30.0, atol=2e-3)
    assert ok.sum() == 12 * 12 - 1 - 2 * 11


def test_hillshade_flat_and_facing_the_light() -> None:
    grid = Grid.from_bounds(UTM, 0.0, 100.0, 1.0, 5, 5)
    win = grid.full_window()
    flat = np.zeros((7, 7), np.float32)
    hs = terrain_window(flat, grid, win, ("hillshade",))[0]
    np.testing.assert_allclose(hs, math.sin(math.radians(45)), atol=1e-6)
    # a 45-degree slope facing north-west (rising to the south-east) faces the light fully
    facing = terrain_window(_plane(grid, win, 45.0, 135.0), grid, win, ("hillshade",))[0]
    np.testing.assert_allclose(facing, 1.0, atol=1e-5)


def test_projected_feet_are_converted_to_metres() -> None:
    feet = CRS.from_epsg(2227)  # California zone 3, US survey feet
    grid = Grid.from_bounds(feet, 6000000.0, 2000000.0, 10.0, 3, 3)
    dx, dy = pixel_size_m(grid, np.arange(3))
    np.testing.assert_allclose(dx, 10 * 1200 / 3937, rtol=1e-9)
    np.testing.assert_allclose(dy, dx)


def test_geographic_crs_uses_metres_per_degree_at_each_latitude() -> None:
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    lat0, lon0, res = 60.0, 10.0, 0.0005  # about 28 x 56 m pixels at 60 N
    grid = Grid.from_bounds(CRS.from_epsg(4326), lon0, lat0, res, 40, 30)
    win = grid.full_window()
    ext = win.expand(HALO)
    rows, cols = np.mgrid[ext.row_off:ext.row_end, ext.col_off:ext.col_end]
    lon = lon0 + (cols + 0.5) * res
    lat = lat0 - (rows + 0.5) * res
    # a 30-degree plane rising to the north: height = tan 30 x metres along the meridian
    _, _, dist = geod.inv(np.full(lat.shape, lon0), np.full(lat.shape, lat0 - 0.1),
                          np.full(lat.shape, lon0), lat)
    north = terrain_window((math.tan(math.radians(30)) * dist).astype(np.float32), grid, win)[0]
    np.testing.assert_allclose(north, 30.0, atol=0.02)
    # rising to the east: metres along each parallel
    _, _, east_m = geod.inv(np.full(lat.shape, lon0 - 0.1), lat, lon, lat)
    east = terrain_window((math.tan(math.radians(30)) * east_m).astype(np.float32), grid, win)[0]
    np.testing.assert_allclose(east, 30.0, atol=0.02)


def test_windows_with_halo_equal_the_whole_dem_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    grid = Grid.from_bounds(CRS.from_epsg(4326), 141.9, 42.7, 0.0001, 45, 61)
    dem = np.cumsum(np.cumsum(rng.normal(size=(45, 61)), 0), 1).astype(np.float32)
    dem[rng.random(dem.shape) < 0.03] = np.nan
    padded = np.pad(dem, HALO, constant_values=np.nan)
    whole = terrain_window(padded, grid, grid.full_window(), ("slope", "hillshade"))
    tiled = np.full_like(whole, -1.0)
    for win in iter_clipped_tiles(45, 61, 16):
        ext = win.expand(HALO)
        block = padded[ext.row_off + HALO:ext.row_end + HALO, ext.col_off + HALO:ext.col_end + HALO]
        tiled[:, win.row_off:win.row_end, win.col_off:win.col_end] = terrain_window(
            block, grid, win, ("slope", "hillshade"))
    np.testing.assert_array_equal(tiled, whole)
    # computed on isolated patches instead (no halo), the patch borders would differ
    assert np.isfinite(whole).mean() > 0.9


def test_bad_requests_are_refused() -> None:
    grid = Grid.from_bounds(UTM, 0.0, 10.0, 1.0, 4, 4)
    with pytest.raises(InputError, match="unknown terrain band"):
        terrain_window(np.zeros((6, 6), np.float32), grid, grid.full_window(), ("aspect",))
    with pytest.raises(InputError, match="halo"):
        terrain_window(np.zeros((4, 4), np.float32), grid, grid.full_window())
