"""Post-filters of predicted patch masks: ``--min-slope`` and ``--min-area`` in evaluation.

``landslip evaluate`` scores the map as ``landslip predict`` delivers it after its filters:
every predicted landslide (an 8-connected region, :data:`landslip.encoding.CONNECTIVITY`,
found with :func:`landslip.evaluation.objects.label_regions`) that a filter rejects is set to
background before pixels and objects are counted. As everywhere in evaluation, regions are
found per patch, so a landslide cut by a patch border is judged per piece.

* :func:`drop_flat_regions` (``--min-slope DEGREES``): regions whose mean slope over their
  pixels is below the limit. Slope is the dataset's raw ``slope`` band (degrees; ``prepare
  --extra dem=DEM.tif`` stores it). A region without a valid slope pixel is kept, as in
  prediction.
* :func:`drop_small_regions` (``--min-area A``): regions whose area (pixel count x pixel
  area) is below ``A``; a region of exactly ``A`` is kept, as ``predict --min-area`` keeps a
  polygon of exactly ``A`` m2.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from landslip.encoding import BACKGROUND, LANDSLIDE
from landslip.errors import InputError
from landslip.evaluation.objects import label_regions

__all__ = ["drop_flat_regions", "drop_small_regions"]


def _patch_regions(
    masks: npt.NDArray[np.uint8],
) -> Iterator[tuple[int, npt.NDArray[np.uint8], npt.NDArray[np.int32], int]]:
    """Each patch with predicted regions: (its index, view (P, P), region labels (P, P), count).

    The views belong to ``masks`` (a (N, P, P) or (P, P) array), so writing to them filters it.
    """
    flat = masks.reshape(-1, *masks.shape[-2:])
    for k in range(flat.shape[0]):
        labels, n = label_regions(flat[k] == LANDSLIDE)
        if n:
            yield k, flat[k], labels, n


def drop_flat_regions(masks: npt.NDArray[np.uint8], slope: npt.NDArray[np.floating],
                      min_slope: float) -> tuple[npt.NDArray[np.uint8], int]:
    """Set predicted regions whose mean slope is below ``min_slope`` to background.

    Args:
        masks: Predicted masks (N, P, P) or (P, P), uint8: 1 landslide, 0 background, 255 not
            scored (kept as is).
        slope: Slope in degrees of the same pixels, float; NaN where unknown.
        min_slope: The limit in degrees.

    Returns:
        (filtered copy of ``masks``, number of regions removed).
    """
    out = np.array(masks, dtype=np.uint8, copy=True)
    slopes = np.asarray(slope, dtype=np.float64).reshape(-1, *out.shape[-2:])
    removed = 0
    for k, patch, labels, n in _patch_regions(out):
        ok = (labels > 0) & np.isfinite(slopes[k])
        sums = np.bincount(labels[ok], weights=slopes[k][ok], minlength=n + 1)
        counts = np.bincount(labels[ok], minlength=n + 1)
        mean = np.full(n + 1, np.nan)
        np.divide(sums, counts, out=mean, where=counts > 0)
        drop = mean < min_slope  # NaN: no slope known, kept
        drop[0] = False
        patch[drop[labels]] = BACKGROUND
        removed += int(drop.sum())
    return out, removed


def drop_small_regions(masks: npt.NDArray[np.uint8], min_area: float,
                       pixel_area: float | None = None) -> tuple[npt.NDArray[np.uint8], int]:
    """Set predicted regions smaller than ``min_area`` to background.

    Args:
        masks: Predicted masks (N, P, P) or (P, P), uint8: 1 landslide, 0 background, 255 not
            scored (kept as is, and no part of any region).
        min_area: Least area kept, in m2 with ``pixel_area``, else in pixels; a region of
            exactly ``min_area`` is kept, 0 keeps everything.
        pixel_area: Area of one pixel in m2 (region area = pixel count x ``pixel_area``), or
            None: areas in pixels.

    Returns:
        (filtered copy of ``masks``, number of regions removed).

    Raises:
        InputError: A negative or non-finite ``min_area``.
    """
    if not np.isfinite(min_area) or min_area < 0:
        raise InputError(f"the minimum area must be a number >= 0, got {min_area}")
    out = np.array(masks, dtype=np.uint8, copy=True)
    if min_area == 0:
        return out, 0
    scale = 1.0 if pixel_area is None else float(pixel_area)
    removed = 0
    for _, patch, labels, n in _patch_regions(out):
        area = np.bincount(labels.ravel(), minlength=n + 1).astype(np.float64) * scale
        drop = area < min_area
        drop[0] = False
        patch[drop[labels]] = BACKGROUND
        removed += int(drop.sum())
    return out, removed
