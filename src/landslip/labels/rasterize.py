"""Landslide polygons to a label raster on an image grid.

The output is a uint8 GeoTIFF on exactly the image's grid (CRS, transform, shape) with the
label values of :mod:`landslip.encoding`: 0 for background, 1 for landslide, 255 (ignore, also
the file's nodata value) where the image is nodata; its ``LANDSLIP_LABELS`` tag says so. A
pixel counts as nodata when *any* image band is nodata there (GDAL's per-band masks: the nodata
value, an alpha band or an internal mask), because the model needs every band of a pixel, and a
pixel a band set cannot be computed for must not be scored.

The image is read window by window (``block`` x ``block`` pixels), so scenes of any size work;
only polygons intersecting a window are burnt into it (spatial index).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.encoding import BACKGROUND, IGNORE, LABELS_TAG, LANDSLIDE
from landslip.errors import GridError, LabelError
from landslip.grid import Grid, Window, crs_name, iter_clipped_tiles
from landslip.io.cog import LABELS
from landslip.io.gdal import gdal_env
from landslip.io.raster import RasterWriter, open_raster, raster_info
from landslip.io.vector import read_polygons
from landslip.progress import track

__all__ = ["RasterizeResult", "burn_polygons", "rasterize_labels"]

log = logging.getLogger(__name__)

GDAL_CACHE_MB = 256
"""GDAL block cache while rasterizing, MiB."""


@dataclass(frozen=True)
class RasterizeResult:
    """Summary of a rasterization.

    Attributes:
        path: The label GeoTIFF written.
        grid: Its grid (the image's).
        n_features: Polygon features used.
        n_repaired: Invalid polygons repaired.
        overlap_fraction: Share of the label polygons' area inside the image footprint (0..1).
        landslide_pixels: Pixels labelled 1.
        background_pixels: Pixels labelled 0.
        ignore_pixels: Pixels labelled 255 (image nodata).
    """

    path: Path
    grid: Grid
    n_features: int
    n_repaired: int
    overlap_fraction: float
    landslide_pixels: int
    background_pixels: int
    ignore_pixels: int


def burn_polygons(geoms: Any, grid: Grid, all_touched: bool = False) -> npt.NDArray[np.uint8]:
    """Burn polygons (in the grid's CRS) into a (H, W) uint8 array of BACKGROUND and LANDSLIDE.

    Args:
        geoms: Sequence of shapely polygons in ``grid``'s CRS.
        grid: The target grid (often a window of a larger grid).
        all_touched: Burn every pixel a polygon touches (else only pixels whose centre is
            inside, GDAL's default).
    """
    from rasterio.features import rasterize

    shapes = [(g, LANDSLIDE) for g in geoms if g is not None and not g.is_empty]
    if not shapes:
        return np.full(grid.shape, BACKGROUND, dtype=np.uint8)
    out: npt.NDArray[np.uint8] = rasterize(shapes, out_shape=grid.shape,
                                           transform=grid.transform, fill=BACKGROUND,
                                           all_touched=all_touched, dtype="uint8")
    return out


def _extent(b: tuple[float, float, float, float] | Any) -> str:
    left, bottom, right, top = (float(v) for v in b)
    return f"x {left:.6g} to {right:.6g}, y {bottom:.6g} to {top:.6g}"


def rasterize_labels(
    labels: str | Path,
    like: str | Path,
    out: str | Path,
    all_touched: bool = False,
    where: str | None = None,
    labels_crs: str | None = None,
    layer: str | int | None = None,
    block: int = 2048,
) -> RasterizeResult:
    """Rasterize landslide polygons onto the grid of an image.

    Args:
        labels: Vector file of landslide polygons (any OGR format, any CRS).
        like: The image whose grid the labels are written on (its CRS, transform and shape;
            its nodata becomes 255).
        out: Output GeoTIFF (uint8, nodata 255, written atomically).
        all_touched: Burn every pixel a polygon touches.
        where: Optional SQL WHERE clause selecting features, e.g. ``"type = 'slide'"``.
        labels_crs: CRS of the vector file when it declares none (e.g. ``"EPSG:4326"``).
        layer: Layer of a multi-layer vector file.
        block: Window size in pixels for reading the image and writing labels.

    Returns:
        A :class:`RasterizeResult`.

    Raises:
        LabelError: Vector file empty, without CRS, with non-polygon geometries, or with no
            polygon overlapping the image (both extents are given in the image CRS).
        GridError: The image has no CRS.
    """
    grid = raster_info(like).grid
    if grid.crs is None:
        raise GridError(f"image {like} has no CRS; the labels cannot be placed on it. Assign "
                        "one first (for example gdal_edit.py -a_srs EPSG:32654)")
    layer_ = read_polygons(labels, target_crs=grid.crs, layer=layer, where=where,
                           assume_crs=labels_crs)
    geoms = np.asarray(layer_.frame.geometry.values, dtype=object)
    overlap = _overlap_fraction(geoms, grid, labels, like, layer_.frame.total_bounds)
    counts = _burn_windows(geoms, grid, like, out, all_touched, block, Path(labels).name)
    result = RasterizeResult(
        path=Path(out), grid=grid, n_features=len(layer_.frame), n_repaired=layer_.n_repaired,
        overlap_fraction=overlap, landslide_pixels=counts[LANDSLIDE],
        background_pixels=counts[BACKGROUND], ignore_pixels=counts[IGNORE],
    )
    log.info("rasterized %d polygon(s): %d landslide, %d background, %d ignore pixels",
             result.n_features, result.landslide_pixels, result.background_pixels,
             result.ignore_pixels)
    return result


def _overlap_fraction(geoms: npt.NDArray[Any], grid: Grid, labels: str | Path,
                      like: str | Path, label_bounds: Any) -> float:
    """Share of the polygons' area inside the image footprint; refuses labels off the image.

    Raises:
        LabelError: When no polygon overlaps the image (both extents are named).
    """
    import shapely

    footprint = shapely.box(*grid.bounds)
    total_area = float(shapely.area(geoms).sum())
    inside_area = float(shapely.area(shapely.intersection(geoms, footprint)).sum())
    overlap = inside_area / total_area if total_area > 0 else 0.0
    if inside_area <= 0:
        raise LabelError(
            f"no label polygon of {labels} overlaps the image {like}. In the image CRS "
            f"({crs_name(grid.crs)}) the labels span {_extent(label_bounds)} and the "
            f"image spans {_extent(grid.bounds)}; check that both cover the same area and that "
            "the labels' CRS is right (--labels-crs)"
        )
    if overlap < 0.999:
        log.warning("only %.1f%% of the label area of %s lies on the image %s; the rest is "
                    "ignored", 100 * overlap, labels, like)
    return overlap


def _burn_windows(geoms: npt.NDArray[Any], grid: Grid, like: str | Path, out: str | Path,
                  all_touched: bool, block: int, source: str) -> dict[int, int]:
    """Write the label raster window by window; return the pixel count per label value."""
    import shapely

    tree = shapely.STRtree(geoms)
    counts = dict.fromkeys((BACKGROUND, LANDSLIDE, IGNORE), 0)
    windows = list(iter_clipped_tiles(grid.height, grid.width, block))
    with gdal_env(GDAL_CACHE_MB), open_raster(like) as ds, RasterWriter(
        out, grid, 1, "uint8", nodata=IGNORE, descriptions=["landslide"],
        tags={"LANDSLIP_LABELS": LABELS_TAG, "LANDSLIP_SOURCE": source}, style=LABELS,
    ) as writer:
        for win in track(windows, description="rasterize"):
            wgrid = grid.window_grid(win)
            hits = tree.query(shapely.box(*wgrid.bounds))
            lab = burn_polygons(geoms[np.sort(hits)], wgrid, all_touched)
            lab[_nodata_mask(ds, win)] = IGNORE
            writer.write(lab, win)
            for value in counts:
                counts[value] += int((lab == value).sum())
    return counts


def _nodata_mask(ds: Any, win: Window) -> npt.NDArray[np.bool_]:
    """(h, w) True where any band of the open image is nodata inside ``win``."""
    masks = ds.read_masks(window=win.to_rasterio())
    invalid: npt.NDArray[np.bool_] = (masks == 0).any(axis=0)
    return invalid

