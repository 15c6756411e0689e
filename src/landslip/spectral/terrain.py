"""Terrain bands from a DEM: slope (degrees) and hillshade, with correct edges and any CRS.

Both are neighbourhood operations: a pixel's value needs its 3 x 3 neighbours, so they are
computed on the scene with a halo (:data:`HALO` = 1 pixel) around each window, never on an
isolated patch. :func:`terrain_window` takes the DEM of a window expanded by the halo and
returns the window's bands; because every output pixel depends only on its own neighbourhood,
slope computed window by window equals slope computed on the whole DEM, bit for bit.

Gradient (Horn 1981, the rule of ``gdaldem``): per row, the central difference
``(z[c+1] - z[c-1]) / 2 dx``; the rows above, at and below are averaged with weights 1, 2, 1
(and likewise for dz/dy over columns). Edges and nodata: where a neighbour is missing (past the
DEM's edge, or nodata), the one-sided difference is used instead of the central one, and a row
without any difference is left out of the weighted mean. So a plane gives its exact slope at
every pixel, edges included; only a pixel that is nodata itself, or has no valid neighbour in a
row and a column, is nodata (NaN).

Pixel size in metres: projected CRSs use their linear unit (feet are converted); geographic
CRSs (degrees) use the metres per degree of longitude and latitude on the CRS's ellipsoid at
the latitude of each row. Elevations are metres. A grid without a CRS is taken as metres.

Outputs:
    * ``slope``: degrees, 0 (flat) to 90, float32.
    * ``hillshade``: cosine of the angle between the surface normal and a light from azimuth
      315 degrees (north-west) at 45 degrees elevation, clipped at 0: 0 (facing away) to 1
      (facing the light), float32; flat ground gives sin 45 = 0.707.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from landslip.errors import InputError
from landslip.grid import Grid, Window

__all__ = [
    "HALO",
    "HILLSHADE_AZIMUTH",
    "HILLSHADE_ELEVATION",
    "TERRAIN_BANDS",
    "gradients",
    "pixel_size_m",
    "terrain_window",
]

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

HALO = 1
"""Pixels of DEM needed around a window to compute its terrain bands."""

HILLSHADE_AZIMUTH = 315.0
"""Light azimuth of ``hillshade``, degrees clockwise from north (gdaldem's default)."""

HILLSHADE_ELEVATION = 45.0
"""Light elevation of ``hillshade``, degrees above the horizon (gdaldem's default)."""

TERRAIN_BANDS: dict[str, str] = {
    "slope": "terrain slope in degrees (0 flat .. 90), Horn's gradient of the DEM",
    "hillshade": "cos of the light incidence (0 .. 1), light from azimuth 315, elevation 45",
}
"""Bands computed from the band named ``dem`` (elevation, metres), and what they mean."""


def _ellipsoid(crs: object) -> tuple[float, float]:
    """(semi-major axis in metres, squared eccentricity) of a geographic CRS's ellipsoid."""
    from pyproj import CRS

    ell = CRS.from_user_input(crs).ellipsoid
    if ell is None:
        return 6378137.0, 0.00669437999014  # WGS 84
    a = float(ell.semi_major_metre)
    inv_f = float(ell.inverse_flattening)
    f = 1.0 / inv_f if inv_f else 0.0
    return a, f * (2.0 - f)


def pixel_size_m(grid: Grid, rows: npt.NDArray[np.int64]) -> tuple[F64, F64]:
    """Pixel width and height in metres at the given rows of a grid.

    Args:
        grid: The grid (projected, geographic, or without CRS: taken as metres).
        rows: Row indexes of the grid (may lie outside it, for halos), shape (R,).

    Returns:
        (dx, dy): float64 arrays (R,) in metres, both positive.
    """
    res_x, res_y = grid.res
    n = rows.shape[0]
    crs = grid.crs
    if crs is None or not crs.is_geographic:
        factor = 1.0
        if crs is not None:
            factor = float(crs.linear_units_factor[1])
        return np.full(n, res_x * factor), np.full(n, res_y * factor)
    a, e2 = _ellipsoid(crs)
    t = grid.transform
    lat = np.radians(t.f + t.e * (rows.astype(np.float64) + 0.5))
    w = 1.0 - e2 * np.sin(lat) ** 2
    per_deg_lon = math.pi / 180.0 * a * np.cos(lat) / np.sqrt(w)
    per_deg_lat = math.pi / 180.0 * a * (1.0 - e2) / w**1.5
    return res_x * per_deg_lon, res_y * per_deg_lat


def _difference(before: F32, centre: F32, after: F32) -> F32:
    """Change per pixel step: central where both neighbours exist, else one-sided; NaN if none."""
    has_b = ~np.isnan(before)
    has_a = ~np.isnan(after)
    out = np.full(centre.shape, np.nan, dtype=np.float32)
    both = has_a & has_b
    out[both] = (after[both] - before[both]) / np.float32(2)
    only_a = has_a & ~has_b
    out[only_a] = after[only_a] - centre[only_a]
    only_b = has_b & ~has_a
    out[only_b] = centre[only_b] - before[only_b]
    out[np.isnan(centre)] = np.nan
    return out


def _horn_mean(first: F32, middle: F32, last: F32) -> F32:
    """Weighted mean 1, 2, 1 of three arrays, leaving out NaN entries; NaN when all are."""
    total = np.zeros(middle.shape, dtype=np.float32)
    weight = np.zeros(middle.shape, dtype=np.float32)
    for arr, w in ((first, 1.0), (middle, 2.0), (last, 1.0)):
        ok = ~np.isnan(arr)
        total[ok] += np.float32(w) * arr[ok]
        weight[ok] += np.float32(w)
    out = np.full(middle.shape, np.nan, dtype=np.float32)
    np.divide(total, weight, out=out, where=weight > 0)
    return out


def gradients(dem: F32, dx: F64, dy: F64) -> tuple[F32, F32]:
    """Horn's surface gradient of the inner pixels of a DEM block with a 1-pixel halo.

    Args:
        dem: Elevations (H + 2, W + 2), metres, float32; NaN where missing (nodata or past
            the DEM's edge). Rows run south.
        dx: Pixel width in metres of each of the H + 2 rows, float64 (H + 2,).
        dy: Pixel height in metres of each of the H + 2 rows, float64 (H + 2,).

    Returns:
        (dz/dx east, dz/dy north), float32 (H, W), metres per metre; NaN where the pixel is
        nodata or no difference can be formed.
    """
    z = np.asarray(dem, dtype=np.float32)
    # dz/dx per row (H + 2, W), then Horn's 1-2-1 mean over the rows above, at and below
    gx_rows = _difference(z[:, :-2], z[:, 1:-1], z[:, 2:]) / dx.astype(np.float32)[:, None]
    gx = _horn_mean(gx_rows[:-2], gx_rows[1:-1], gx_rows[2:])
    # dz/dy (north = row - 1) per column (H, W + 2), then the mean over the columns
    gy_cols = _difference(z[2:, :], z[1:-1, :], z[:-2, :]) / dy.astype(np.float32)[1:-1, None]
    gy = _horn_mean(gy_cols[:, :-2], gy_cols[:, 1:-1], gy_cols[:, 2:])
    centre_missing = np.isnan(z[1:-1, 1:-1])
    gx[centre_missing] = np.nan
    gy[centre_missing] = np.nan
    return gx, gy


def _slope(gx: F32, gy: F32) -> F32:
    return np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)


def _hillshade(gx: F32, gy: F32) -> F32:
    az = math.radians(HILLSHADE_AZIMUTH)
    el = math.radians(HILLSHADE_ELEVATION)
    se, sn, su = math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)
    norm = np.sqrt(gx * gx + gy * gy + np.float32(1))
    shade = (-gx * np.float32(se) - gy * np.float32(sn) + np.float32(su)) / norm
    return np.clip(shade, 0, 1).astype(np.float32)


def terrain_window(
    dem: F32, grid: Grid, window: Window, names: Sequence[str] = ("slope",)
) -> F32:
    """Terrain bands of one window of a scene from its DEM with a :data:`HALO`-pixel halo.

    Args:
        dem: Elevations in metres of ``window.expand(HALO)`` on ``grid``, float32
            (h + 2, w + 2), NaN where missing (nodata, or past the DEM's coverage).
        grid: The scene grid the window lies on (its CRS and pixel size give metres; rows are
            counted on it, so windows of one scene agree exactly with the whole scene).
        window: The window (may extend past the grid).
        names: Bands to compute, each a key of :data:`TERRAIN_BANDS`.

    Returns:
        float32 (len(names), h, w), NaN where undefined.

    Raises:
        InputError: For an unknown band name or a DEM block of the wrong shape.
    """
    unknown = [n for n in names if n not in TERRAIN_BANDS]
    if unknown:
        raise InputError(f"unknown terrain band(s) {', '.join(unknown)}; use "
                         f"{', '.join(TERRAIN_BANDS)}")
    expected = (window.height + 2 * HALO, window.width + 2 * HALO)
    if dem.shape != expected:
        raise InputError(f"the DEM block has shape {dem.shape}, expected {expected} (the window "
                         f"with a {HALO}-pixel halo)")
    rows = np.arange(window.row_off - HALO, window.row_end + HALO, dtype=np.int64)
    dx, dy = pixel_size_m(grid, rows)
    gx, gy = gradients(dem, dx, dy)
    out = np.empty((len(names), window.height, window.width), dtype=np.float32)
    for i, name in enumerate(names):
        out[i] = _slope(gx, gy) if name == "slope" else _hillshade(gx, gy)
    return out
