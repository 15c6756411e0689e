"""The terrain post-filter of ``predict --min-slope``, applied to predicted patch masks.

``landslip evaluate --min-slope DEGREES`` scores the map as ``landslip predict --min-slope``
delivers it: every predicted landslide (an 8-connected region, :data:`landslip.encoding.
CONNECTIVITY`) whose mean slope over its pixels is below the limit is removed before pixels
and objects are counted. Slope is the dataset's raw ``slope`` band (degrees; ``prepare
--extra dem=DEM.tif`` stores it). As everywhere in evaluation, regions are found per patch, so
a landslide cut by a patch border is judged per piece. A region without a valid slope pixel is
kept, as in prediction.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from landslip.encoding import BACKGROUND, LANDSLIDE, STRUCTURE_8

__all__ = ["drop_flat_regions"]


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
    from scipy import ndimage

    out = np.array(masks, dtype=np.uint8, copy=True)
    flat = out.reshape(-1, *out.shape[-2:])
    slopes = np.asarray(slope, dtype=np.float64).reshape(flat.shape)
    removed = 0
    for k in range(flat.shape[0]):
        labels, n = ndimage.label(flat[k] == LANDSLIDE, structure=STRUCTURE_8)
        if n == 0:
            continue
        ok = (labels > 0) & np.isfinite(slopes[k])
        sums = np.bincount(labels[ok], weights=slopes[k][ok], minlength=n + 1)
        counts = np.bincount(labels[ok], minlength=n + 1)
        mean = np.full(n + 1, np.nan)
        np.divide(sums, counts, out=mean, where=counts > 0)
        drop = mean < min_slope  # NaN: no slope known, kept
        drop[0] = False
        flat[k][drop[labels]] = BACKGROUND
        removed += int(drop.sum())
    return out, removed
