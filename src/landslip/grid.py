"""The raster grid value object and window arithmetic.

A :class:`Grid` is what makes an array a map: CRS, affine transform and shape (rows, columns).
It is immutable; operations return new grids. Following odc-geo, row/column versus x/y order is
always explicit: ``shape`` is ``(height, width)`` = (rows, columns); ``res`` is ``(x_size, y_size)``
in CRS units (metres for UTM), both positive for north-up rasters.

A :class:`Window` is a rectangle of pixels ``(row_off, col_off, height, width)`` on a grid. It is
a pure value; :meth:`Window.to_rasterio` converts it for I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from affine import Affine

from landslip.errors import CRSMismatchError, GridError

if TYPE_CHECKING:
    from rasterio.crs import CRS

__all__ = ["Grid", "Window", "crs_name", "iter_clipped_tiles", "iter_tiles", "tile_starts"]


@dataclass(frozen=True)
class Window:
    """A rectangle of pixels on a grid.

    Attributes:
        row_off: First row (may be negative for a window that reaches past the top edge).
        col_off: First column (may be negative).
        height: Number of rows, > 0.
        width: Number of columns, > 0.
    """

    row_off: int
    col_off: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise GridError(
                f"window must have positive size, got height={self.height} width={self.width}"
            )

    @property
    def row_end(self) -> int:
        """One past the last row."""
        return self.row_off + self.height

    @property
    def col_end(self) -> int:
        """One past the last column."""
        return self.col_off + self.width

    def slices(self) -> tuple[slice, slice]:
        """Row and column slices, for indexing a (..., H, W) array."""
        return slice(self.row_off, self.row_end), slice(self.col_off, self.col_end)

    def intersection(self, other: Window) -> Window | None:
        """The overlap of two windows, or None when they do not overlap."""
        r0 = max(self.row_off, other.row_off)
        c0 = max(self.col_off, other.col_off)
        r1 = min(self.row_end, other.row_end)
        c1 = min(self.col_end, other.col_end)
        if r1 <= r0 or c1 <= c0:
            return None
        return Window(r0, c0, r1 - r0, c1 - c0)

    def touches_or_overlaps(self, other: Window) -> bool:
        """True when the windows overlap or share an edge or corner (8-neighbourhood)."""
        return (
            self.row_off <= other.row_end
            and other.row_off <= self.row_end
            and self.col_off <= other.col_end
            and other.col_off <= self.col_end
        )

    def expand(self, halo: int) -> Window:
        """The window grown by ``halo`` pixels on every side (not clipped)."""
        return Window(
            self.row_off - halo, self.col_off - halo, self.height + 2 * halo, self.width + 2 * halo
        )

    def clip(self, height: int, width: int) -> Window:
        """The part of the window inside a ``height`` x ``width`` grid.

        Raises:
            GridError: If the window lies entirely outside the grid.
        """
        inside = self.intersection(Window(0, 0, height, width))
        if inside is None:
            raise GridError(f"window {self} lies outside a grid of {height} x {width} pixels")
        return inside

    def relative_to(self, outer: Window) -> Window:
        """This window in the pixel coordinates of ``outer`` (whose origin becomes 0, 0)."""
        return Window(self.row_off - outer.row_off, self.col_off - outer.col_off, self.height,
                      self.width)

    def to_rasterio(self) -> Any:
        """The equivalent ``rasterio.windows.Window``."""
        from rasterio.windows import Window as RioWindow

        return RioWindow(self.col_off, self.row_off, self.width, self.height)


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, affine transform and shape.

    Attributes:
        crs: Coordinate reference system (``rasterio.crs.CRS``), or None when unknown.
        transform: Affine pixel-to-map transform (pixel corner convention, as in GDAL).
        height: Number of rows.
        width: Number of columns.
    """

    crs: CRS | None
    transform: Affine
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise GridError(f"grid must have positive size, got {self.height} x {self.width}")
        if self.transform.b != 0 or self.transform.d != 0:
            raise GridError(
                "rotated or sheared rasters are not supported; warp the image to a north-up grid "
                "first (for example with gdalwarp)"
            )

    @classmethod
    def from_bounds(
        cls, crs: CRS | None, left: float, top: float, res: float, height: int, width: int
    ) -> Grid:
        """A north-up grid with square pixels of ``res`` CRS units, origin at (left, top)."""
        return cls(crs, Affine(res, 0.0, left, 0.0, -res, top), height, width)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """(x pixel size, y pixel size) in CRS units, both positive."""
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        left, top = self.transform.c, self.transform.f
        right = left + self.transform.a * self.width
        bottom = top + self.transform.e * self.height
        return (min(left, right), min(top, bottom), max(left, right), max(top, bottom))

    def window_grid(self, window: Window) -> Grid:
        """The grid of a window of this grid (may extend past the edges)."""
        transform = self.transform @ Affine.translation(window.col_off, window.row_off)
        return Grid(self.crs, transform, window.height, window.width)

    def full_window(self) -> Window:
        """The window covering the whole grid."""
        return Window(0, 0, self.height, self.width)

    def pixel_center(self, row: float, col: float) -> tuple[float, float]:
        """Map (x, y) of the centre of pixel (row, col)."""
        x, y = self.transform @ (col + 0.5, row + 0.5)
        return (float(x), float(y))

    def same_crs(self, other: Grid) -> bool:
        """True when both grids have equal CRSs (or both have none)."""
        if self.crs is None or other.crs is None:
            return self.crs is None and other.crs is None
        return bool(self.crs == other.crs)

    def require_same_crs(self, other: Grid, what: str = "rasters") -> None:
        """Raise CRSMismatchError naming both CRSs unless they are equal."""
        if not self.same_crs(other):
            raise CRSMismatchError(
                f"the {what} are in different CRSs ({crs_name(self.crs)} and "
                f"{crs_name(other.crs)}); reproject one of them first, for example with gdalwarp"
            )

    def aligned_with(self, other: Grid, tol: float = 1e-6) -> bool:
        """True when both grids have the same CRS, transform (within tol pixels) and shape."""
        if not self.same_crs(other) or self.shape != other.shape:
            return False
        a, b = self.transform, other.transform
        px = max(self.res)
        return all(math.isclose(u, v, abs_tol=tol * px) for u, v in zip(a[:6], b[:6], strict=True))


def crs_name(crs: Any) -> str:
    """A short label for a CRS in messages: ``EPSG:32654``, else its name, or ``no CRS``.

    Args:
        crs: A rasterio or pyproj CRS, anything ``pyproj.CRS.from_user_input`` takes, or None.
    """
    if crs is None:
        return "no CRS"
    import pyproj

    c = pyproj.CRS.from_user_input(crs)
    epsg = c.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else str(c.name)


def tile_starts(length: int, size: int, stride: int) -> list[int]:
    """Start offsets of tiles of ``size`` every ``stride`` pixels covering ``[0, length)``.

    The last tile always reaches the end: when the regular starts leave a remainder, one more
    start is added (the tile then extends past the end and is padded by the caller). A length
    smaller than ``size`` gives one tile at 0.

    Args:
        length: Extent to cover, in pixels (> 0).
        size: Tile size in pixels (> 0).
        stride: Step between tile starts in pixels (0 < stride <= size).

    Returns:
        Sorted start offsets; the union of ``[s, s + size)`` covers ``[0, length)``.
    """
    if length <= 0 or size <= 0:
        raise GridError(f"length and tile size must be positive, got {length} and {size}")
    if not 0 < stride <= size:
        raise GridError(f"stride must be between 1 and the tile size {size}, got {stride}")
    starts = list(range(0, max(length - size, 0) + 1, stride))
    if starts[-1] + size < length:
        starts.append(starts[-1] + stride)
    return starts


def iter_tiles(height: int, width: int, size: int, stride: int | None = None) -> Iterator[Window]:
    """Windows of ``size`` x ``size`` covering a ``height`` x ``width`` grid, row by row.

    Windows at the right and bottom edges may extend past the grid (see :func:`tile_starts`).
    """
    step = size if stride is None else stride
    for r in tile_starts(height, size, step):
        for c in tile_starts(width, size, step):
            yield Window(r, c, size, size)


def iter_clipped_tiles(height: int, width: int, tile: int) -> Iterator[Window]:
    """Windows of at most ``tile`` x ``tile`` pixels partitioning a ``height`` x ``width`` grid.

    Tiles start every ``tile`` pixels from (0, 0) and are clipped at the right and bottom
    edges, so every pixel lies in exactly one window and no window reaches past the grid
    (unlike :func:`iter_tiles`, whose edge tiles overhang and are padded by the caller).
    Windows come row by row: left to right, then top to bottom.

    Args:
        height: Grid rows (> 0).
        width: Grid columns (> 0).
        tile: Tile size in pixels (> 0).

    Raises:
        GridError: If a size is not positive (raised at the call, not on first iteration).
    """
    if height <= 0 or width <= 0 or tile <= 0:
        raise GridError(f"grid and tile sizes must be positive, got {height} x {width} and {tile}")
    return (
        Window(r, c, min(tile, height - r), min(tile, width - c))
        for r in range(0, height, tile)
        for c in range(0, width, tile)
    )
