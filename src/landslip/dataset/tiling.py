"""Patch windows covering a scene, and which patches touch which.

Patches are ``P`` x ``P`` windows every ``stride`` pixels, row by row, from
:func:`landslip.grid.iter_tiles`: the last row and column of patches reach past the bottom and
right edges when the scene size is not a multiple of the stride, so every scene pixel lies in
at least one patch (exactly one when ``stride == P``); the overhang is padded by the reader.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from landslip.grid import Window, tile_starts

__all__ = ["PatchLayout", "patch_layout", "touches_any", "touching_neighbours"]


@dataclass(frozen=True)
class PatchLayout:
    """The patch windows of a scene and their positions in the patch lattice.

    Attributes:
        windows: Patch windows, row by row (may overhang the bottom and right edges).
        rows: Lattice row of each window (0 .. n_rows - 1).
        cols: Lattice column of each window.
        n_rows: Number of patch rows.
        n_cols: Number of patch columns.
        patch_size: P.
        stride: Step between patch starts.
    """

    windows: tuple[Window, ...]
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    n_rows: int
    n_cols: int
    patch_size: int
    stride: int

    def __len__(self) -> int:
        return len(self.windows)


def patch_layout(height: int, width: int, patch_size: int, stride: int | None = None
                 ) -> PatchLayout:
    """Patch windows covering a ``height`` x ``width`` scene.

    Args:
        height: Scene rows.
        width: Scene columns.
        patch_size: Patch size P in pixels.
        stride: Step between patches (P when None; smaller values make patches overlap).

    Returns:
        The :class:`PatchLayout`.
    """
    step = patch_size if stride is None else stride
    rs = tile_starts(height, patch_size, step)
    cs = tile_starts(width, patch_size, step)
    windows, rows, cols = [], [], []
    for i, r in enumerate(rs):
        for j, c in enumerate(cs):
            windows.append(Window(r, c, patch_size, patch_size))
            rows.append(i)
            cols.append(j)
    return PatchLayout(tuple(windows), tuple(rows), tuple(cols), len(rs), len(cs), patch_size,
                       step)


def touching_neighbours(windows: Sequence[Window]) -> list[list[int]]:
    """For each window, the other windows it touches or overlaps (8-neighbourhood).

    Uses a spatial hash with cells as large as the largest window, so the cost is linear in
    the number of windows for patch layouts.

    Returns:
        One sorted list of indices per window (never including the window itself).
    """
    if not windows:
        return []
    cell = max(max(w.height, w.width) for w in windows)
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for k, w in enumerate(windows):
        buckets[(w.row_off // cell, w.col_off // cell)].append(k)
    out: list[list[int]] = []
    for k, w in enumerate(windows):
        ci, cj = w.row_off // cell, w.col_off // cell
        near = [m for di in (-1, 0, 1) for dj in (-1, 0, 1)
                for m in buckets.get((ci + di, cj + dj), ())
                if m != k and w.touches_or_overlaps(windows[m])]
        out.append(sorted(near))
    return out


def touches_any(
    windows: Sequence[Window], targets: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """For each window, whether it touches or overlaps any *other* window flagged in ``targets``.

    Args:
        windows: N windows.
        targets: (N,) bool flags (for example: is a training patch).

    Returns:
        (N,) bool.
    """
    neigh = touching_neighbours(windows)
    return np.array([any(targets[m] for m in ns) for ns in neigh], dtype=bool)
