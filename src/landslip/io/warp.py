"""Read another raster window by window on an image's grid, warping it on the fly.

:class:`WarpedReader` opens a raster (a pre-event image, a DEM) and hands out windows of it on
a target grid: float32, NaN where the source is nodata (its nodata value, alpha band or
internal mask) or does not reach. When the source lies on the target's pixel lattice (same CRS
and pixel size, corners offset by whole pixels) windows are read directly, without
resampling; otherwise through a :class:`rasterio.vrt.WarpedVRT` on the target grid, which
GDAL warps only for the window asked for, so memory does not grow with the scene. Two GDAL
defaults are overridden so that a window read alone equals the same pixels read in a larger
window: the coordinate transformer is near-exact (``tolerance`` 1e-6 pixel instead of 1/8,
whose approximation is fitted per chunk), and the resampling scale (``XSCALE``, ``YSCALE``) is
fixed for the whole raster instead of being estimated per chunk. Nodata
source pixels are left out of the resampling kernel (GDAL's warper), never averaged in.

The target grid can be widened by ``margin`` pixels on each side, so that a window read with
a halo at the image edge gets real source pixels where the source reaches past the image
(terrain bands then have true neighbours at the image edge).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.errors import InputError, RasterIOError
from landslip.grid import Grid, Window, crs_name
from landslip.io.raster import open_raster

__all__ = ["RESAMPLING", "WarpedReader", "check_resampling"]

log = logging.getLogger(__name__)

RESAMPLING: tuple[str, ...] = (
    "nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "min",
    "max", "med", "q1", "q3", "sum", "rms",
)
"""Resampling methods GDAL's warper offers (``bilinear`` for continuous data, ``nearest`` or
``mode`` for classes)."""


def check_resampling(name: str) -> str:
    """Return the resampling name lower-cased, or raise InputError listing the valid ones."""
    low = name.strip().lower()
    if low not in RESAMPLING:
        raise InputError(f"unknown resampling {name!r}; use one of {', '.join(RESAMPLING)}")
    return low


def _lattice_offset(src: Grid, dst: Grid) -> tuple[int, int] | None:
    """(row, col) of dst's origin on src's lattice when both share it, else None."""
    if not src.same_crs(dst):
        return None
    a, b = src.transform, dst.transform
    if not (math.isclose(a.a, b.a, rel_tol=1e-9) and math.isclose(a.e, b.e, rel_tol=1e-9)):
        return None
    col = (b.c - a.c) / a.a
    row = (b.f - a.f) / a.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(row), round(col)


def _scales(src: Grid, dst: Grid) -> dict[str, str]:
    """GDAL's XSCALE / YSCALE warp options: destination pixels per source pixel, fixed for the
    whole raster (GDAL otherwise estimates them per chunk, so a pixel would depend on the
    window it is read in when the resampling kernel is widened for down-sampling)."""
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(dst.crs, src.crs, *dst.bounds, densify_pts=21)
    sx = (right - left) / src.res[0] / dst.width
    sy = (top - bottom) / src.res[1] / dst.height
    return {"XSCALE": repr(1.0 / max(sx, 1e-12)), "YSCALE": repr(1.0 / max(sy, 1e-12))}


class WarpedReader:
    """Windows of a raster on another grid (a context manager holding the open files).

    Args:
        path: The source raster (any GDAL raster, any CRS that can be transformed to the
            target's).
        grid: The target grid (the image's).
        resampling: One of :data:`RESAMPLING` (default ``bilinear``).
        margin: Pixels the target grid is widened by on every side, so windows reaching that
            far past the grid's edge still get source pixels.

    Raises:
        RasterIOError: When the file cannot be opened.
        GridError: When one raster has a CRS and the other has none.
        InputError: For an unknown resampling.
    """

    def __init__(self, path: str | Path, grid: Grid, resampling: str = "bilinear",
                 margin: int = 0) -> None:
        self.path = Path(path)
        self.grid = grid
        self.resampling = check_resampling(resampling)
        self.margin = int(margin)
        self._src: Any = None
        self._vrt: Any = None
        self._offset: tuple[int, int] | None = None
        self._ctx: Any = None
        self.count = 0

    def __enter__(self) -> WarpedReader:
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT

        from landslip.errors import GridError

        self._ctx = open_raster(self.path)
        src = self._ctx.__enter__()
        self._src = src
        self.count = int(src.count)
        src_grid = Grid(src.crs if src.crs else None, src.transform, src.height, src.width)
        if (src_grid.crs is None) != (self.grid.crs is None):
            self.close()
            raise GridError(f"{self.path} is in {crs_name(src_grid.crs)} and the image in "
                            f"{crs_name(self.grid.crs)}; give both a CRS (gdal_edit.py -a_srs)")
        self._offset = _lattice_offset(src_grid, self.grid)
        if self._offset is None:
            m = self.margin
            wide = self.grid.window_grid(Window(-m, -m, self.grid.height + 2 * m,
                                                self.grid.width + 2 * m))
            try:
                self._vrt = WarpedVRT(
                    src.dataset, crs=wide.crs, transform=wide.transform, width=wide.width,
                    height=wide.height, resampling=Resampling[self.resampling],
                    nodata=float("nan"), dtype="float32", tolerance=1e-6,
                    **_scales(src_grid, wide))
            except Exception as exc:
                self.close()
                raise RasterIOError(f"cannot warp {self.path} onto the image grid ({exc}); "
                                    "check its CRS") from exc
            log.info("warping %s (%s) onto the image grid with %s resampling", self.path.name,
                     crs_name(src_grid.crs), self.resampling)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the warped view and the source file."""
        if self._vrt is not None:
            self._vrt.close()
            self._vrt = None
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            ctx.__exit__(None, None, None)
        self._src = None

    def read(self, window: Window) -> npt.NDArray[np.float32]:
        """All bands of a window of the target grid, float32 (C, h, w); NaN where nodata.

        The window may extend past the grid; pixels the source (or the margin) does not reach
        are NaN.
        """
        if self._src is None:
            raise RasterIOError(f"{self.path} is not open; use the reader in a `with` block")
        if self._offset is not None:
            ds, (r0, c0) = self._src, self._offset
            target = Window(window.row_off + r0, window.col_off + c0, window.height,
                            window.width)
        else:
            ds, m = self._vrt, self.margin
            target = Window(window.row_off + m, window.col_off + m, window.height, window.width)
        out = np.full((self.count, window.height, window.width), np.nan, dtype=np.float32)
        inside = target.intersection(Window(0, 0, ds.height, ds.width))
        if inside is None:
            return out
        data = ds.read(window=inside.to_rasterio(), masked=True)
        rs, cs = inside.relative_to(target).slices()
        out[:, rs, cs] = np.ma.filled(data.astype(np.float32), np.nan)
        return out
