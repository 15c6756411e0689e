"""``--min-area``: drop small landslides from the polygons *and* the mask, so the two agree.

:func:`drop_landslides` removes chosen polygons from a traced set (:func:`polygonize_mask`
with no filter) and rewrites ``landslides.tif`` with their pixels set to 0 (background): each
dropped polygon, traced along pixel edges, is burned back with GDAL's pixel-centre rule, which
gives back exactly its pixels. The mask is rewritten row band by row band, atomically; it is
untouched when nothing is dropped. :func:`drop_small_landslides` drops those under
``min_area`` square metres (the polygons' ``area_m2``, so the rule is exactly the one the
polygons were measured with); any other polygon filter (a slope filter) can use
:func:`drop_landslides` the same way, so the mask always matches the polygons.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.encoding import BACKGROUND, LANDSLIDE
from landslip.grid import Window
from landslip.inference.vectorize import Polygons
from landslip.io.raster import RasterWriter, open_raster, raster_info

__all__ = ["drop_landslides", "drop_small_landslides"]

log = logging.getLogger(__name__)

BAND_ROWS = 256
"""Mask rows read and written at a time."""


def drop_small_landslides(polygons: Polygons, mask_path: str | Path, min_area: float
                          ) -> Polygons:
    """Keep the landslides of at least ``min_area`` m2; remove the others from the mask too.

    Args:
        polygons: Every landslide of the mask (:func:`polygonize_mask` without ``min_area``).
        mask_path: The mask GeoTIFF the polygons were traced from (rewritten when a polygon is
            dropped).
        min_area: Least area in square metres (0 keeps everything).

    Returns:
        The kept polygons, numbered 1..n again, with ``dropped`` counting the dropped ones and
        ``dropped_pixels`` their pixels.
    """
    if min_area <= 0 or len(polygons.frame) == 0:
        return polygons
    return drop_landslides(polygons, mask_path, polygons.frame["area_m2"].to_numpy() < min_area,
                           f"--min-area {min_area:g} m2")


def drop_landslides(polygons: Polygons, mask_path: str | Path, drop: npt.NDArray[np.bool_],
                    reason: str = "filter") -> Polygons:
    """Remove the polygons flagged in ``drop`` and their pixels from the mask.

    Args:
        polygons: Landslides traced from the mask, with a ``pixels`` column.
        mask_path: The mask GeoTIFF they were traced from (rewritten when any is dropped).
        drop: (n,) bool, one per polygon in frame order: True to drop.
        reason: The filter, for the log.

    Returns:
        The kept polygons numbered 1..n again, ``dropped`` and ``dropped_pixels`` increased.
    """
    frame = polygons.frame
    drop = np.asarray(drop, dtype=bool)
    if not drop.any():
        return polygons
    kept = frame.loc[~drop].copy()
    kept["id"] = np.arange(1, len(kept) + 1, dtype=np.int64)
    kept = kept.reset_index(drop=True)
    removed = int(frame.loc[drop, "pixels"].sum())
    _erase(Path(mask_path), list(frame.geometry[drop]))
    log.info("%s: dropped %d landslide(s), %d pixel(s), from the polygons and the mask", reason,
             int(drop.sum()), removed)
    return replace(polygons, frame=kept, dropped=polygons.dropped + int(drop.sum()),
                   dropped_pixels=polygons.dropped_pixels + removed)


def _erase(mask_path: Path, geoms: list[Any]) -> None:
    """Rewrite the mask with the pixels under ``geoms`` (map coordinates) set to background."""
    import rasterio.features
    import shapely
    from affine import Affine

    info = raster_info(mask_path)
    grid = info.grid
    tree = shapely.STRtree(geoms)
    with open_raster(mask_path) as src:
        tags = src.tags()
        with RasterWriter(mask_path, grid, 1, info.dtype, info.nodata, info.descriptions,
                          tags) as out:
            for r0 in range(0, grid.height, BAND_ROWS):
                win = Window(r0, 0, min(BAND_ROWS, grid.height - r0), grid.width)
                mask = src.read(1, window=win.to_rasterio())
                box = shapely.box(*grid.window_grid(win).bounds)
                hits = [geoms[i] for i in tree.query(box)]
                if hits:
                    burn = rasterio.features.rasterize(
                        [(g, 1) for g in hits], out_shape=mask.shape, fill=0, dtype="uint8",
                        transform=grid.transform @ Affine.translation(0, r0))
                    mask[(burn == 1) & (mask == LANDSLIDE)] = BACKGROUND
                out.write(mask, win)
