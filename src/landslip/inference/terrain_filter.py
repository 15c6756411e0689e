"""Terrain post-filter of landslide polygons: ``mean_slope`` per polygon, ``--min-slope``.

Landslides need slope; a polygon on flat ground (a bare field, a gravel bar) is most likely a
look-alike. :func:`add_mean_slope` gives every polygon ``mean_slope``, the mean terrain slope in
degrees over its pixels (the pixels whose centres it covers, which are exactly the mask pixels
it was traced from), and with ``min_slope`` drops the polygons whose mean slope is lower. Slope
comes from the extra inputs (:class:`~landslip.spectral.extras.ExtraInputs`: a ``dem`` band,
slope computed with a halo, or a raw ``slope`` band), read in row bands over the scene, so
memory does not grow with it. A polygon without any valid slope pixel keeps ``mean_slope``
NaN and is never dropped (nothing says it is flat). Like ``--min-area``, given the mask the
dropped landslides are removed from ``landslides.tif`` too, so the mask and the polygons agree.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from landslip.grid import Window
from landslip.inference.min_area import drop_landslides
from landslip.inference.vectorize import Polygons
from landslip.spectral.extras import ExtraInputs

__all__ = ["add_mean_slope"]

log = logging.getLogger(__name__)


def _pixel_rows(polys: Polygons) -> tuple[Any, Any]:
    """(first row, last row + 1) of each polygon's bounding box on the grid, int arrays."""
    t = polys.grid.transform
    bounds = np.asarray(polys.frame.geometry.bounds, dtype=np.float64).reshape(-1, 4)
    ys = np.stack([(bounds[:, 3] - t.f) / t.e, (bounds[:, 1] - t.f) / t.e])
    return np.floor(ys.min(axis=0)).astype(np.int64), np.ceil(ys.max(axis=0)).astype(np.int64)


def add_mean_slope(polys: Polygons, extras: ExtraInputs, mask_path: str | Path,
                   min_slope: float | None = None, band_rows: int = 256) -> Polygons:
    """Add ``mean_slope`` (degrees) to every polygon and drop those below ``min_slope``.

    Args:
        polys: Polygons on the image grid (:func:`~landslip.inference.vectorize.
            polygonize_mask`).
        extras: Open extra inputs giving ``slope`` (raw, or from ``dem``).
        mask_path: The mask the polygons were traced from: the pixels of dropped polygons are
            removed from it too (:func:`~landslip.inference.min_area.drop_landslides`), so
            the mask and the polygons agree.
        min_slope: Drop polygons whose mean slope is below this many degrees; None keeps all.
        band_rows: Rows of slope read at a time.

    Returns:
        New :class:`~landslip.inference.vectorize.Polygons`: ids renumbered 1..n in order,
        ``dropped`` increased by the polygons removed.
    """
    from rasterio.features import rasterize

    frame, grid = polys.frame, polys.grid
    n = len(frame)
    sums = np.zeros(n + 1, dtype=np.float64)
    counts = np.zeros(n + 1, dtype=np.int64)
    if n:
        first, last = _pixel_rows(polys)
        geoms = list(frame.geometry)
        for r0 in range(max(0, int(first.min())), min(grid.height, int(last.max())), band_rows):
            h = min(band_rows, grid.height - r0)
            hits = np.flatnonzero((first < r0 + h) & (last > r0))
            if not hits.size:
                continue
            win = Window(r0, 0, h, grid.width)
            labels = rasterize(((geoms[i], int(i) + 1) for i in hits), out_shape=(h, grid.width),
                               transform=grid.window_grid(win).transform, fill=0, dtype="int32")
            slope = extras.band(win, "slope")
            ok = (labels > 0) & np.isfinite(slope)
            sums += np.bincount(labels[ok], weights=slope[ok], minlength=n + 1)
            counts += np.bincount(labels[ok], minlength=n + 1)
    mean = np.full(n, np.nan)
    np.divide(sums[1:], counts[1:], out=mean, where=counts[1:] > 0)
    out = frame.copy()
    out["mean_slope"] = mean
    with_slope = replace(polys, frame=out)
    if min_slope is None:
        return with_slope
    flat = mean < min_slope  # NaN (no slope known) is kept
    return drop_landslides(with_slope, mask_path, flat, f"--min-slope {min_slope:g}")
