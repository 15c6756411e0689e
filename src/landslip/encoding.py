"""What every stored value means: label values, the probability encoding, the decision rule.

This module is the one place that defines them; rasterization, datasets, losses, metrics,
training, evaluation, prediction, polygonization, the study and the demo all import them from
here, so a map and a report made from the same probabilities always agree.

* **Labels and masks** are uint8: :data:`BACKGROUND` (0), :data:`LANDSLIDE` (1) and
  :data:`IGNORE` (255: outside the footprint, nodata, padding; skipped by loss and metrics and
  written as the file's nodata value).
* **Probabilities** stored as uint8 use ``q = round(p * 254)``: 0 is p = 0, 254 is p = 1, and
  255 (:data:`PROBABILITY_NODATA`) is nodata. One step is 1/254 (about 0.0039), so the largest
  rounding error is 1/508. The same encoding is used by ``probability.tif`` (predict) and
  ``probabilities.npy`` (evaluate). Float rasters hold p in [0, 1] with NaN as nodata.
* **The decision rule**: a pixel is a landslide when ``p >= threshold``, with p as the model's
  float32 sigmoid output and the comparison made in float64 (the threshold is the exact value
  the user gave, not its float32 rounding). :func:`apply_threshold` is the only implementation.
* **A landslide** (an object) is a connected region of landslide pixels under
  :data:`CONNECTIVITY` = 8 (edge and corner neighbours), the rule of ``scipy.ndimage.label``
  with :data:`STRUCTURE_8` and of ``rasterio.features.shapes(connectivity=8)``: evaluation's
  object count and prediction's polygon count agree on the same mask.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "BACKGROUND",
    "CONNECTIVITY",
    "IGNORE",
    "LABELS_TAG",
    "LANDSLIDE",
    "PROBABILITY_NODATA",
    "PROBABILITY_SCALE",
    "STRUCTURE_8",
    "apply_threshold",
    "decode_probability",
    "encode_probability",
    "mask_from_probability",
]

BACKGROUND: Final = 0
"""Label and mask value of a pixel without a landslide."""
LANDSLIDE: Final = 1
"""Label and mask value of a landslide pixel."""
IGNORE: Final = 255
"""Label and mask value of a pixel that is not scored (nodata, outside the image, padding)."""
LABELS_TAG: Final = "0=background,1=landslide,255=ignore"
"""GeoTIFF tag value (``LANDSLIP_LABELS``) that documents the label values in a file."""

PROBABILITY_SCALE: Final = 254
"""uint8 probability code of p = 1.0 (``q = round(p * 254)``)."""
PROBABILITY_NODATA: Final = 255
"""uint8 probability code of a pixel without a prediction."""

CONNECTIVITY: Final = 8
"""Pixel connectivity of a landslide region (8: edge and corner neighbours)."""
STRUCTURE_8: Final = np.ones((3, 3), dtype=bool)
"""``scipy.ndimage.label`` structuring element of :data:`CONNECTIVITY`."""


def apply_threshold(
    prob: npt.NDArray[np.floating[Any]], threshold: float
) -> npt.NDArray[np.bool_]:
    """The landslide decision ``prob >= threshold``, compared in float64.

    NumPy 2 compares a float32 array with a Python float in float32, where ``0.41`` rounds up
    to 0.4100000083; comparing in float64 keeps the threshold the user gave. Every caller
    (prediction, evaluation, training metrics, the threshold sweep) uses this rule.

    Args:
        prob: Probabilities, any shape, float32 or float64 (NaN compares False).
        threshold: Probability threshold, usually in (0, 1).

    Returns:
        Boolean array of the same shape, True where ``prob >= threshold``.
    """
    return np.asarray(prob, dtype=np.float64) >= float(threshold)


def encode_probability(
    prob: npt.NDArray[np.floating[Any]], valid: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.uint8]:
    """Encode probabilities as uint8 ``round(p * 254)``, 255 where invalid or NaN.

    Args:
        prob: Probabilities in [0, 1], any shape, float (values outside are clipped).
        valid: Optional boolean array of the same shape; False marks nodata.

    Returns:
        uint8 array of the same shape: 0-254 for p = 0-1, :data:`PROBABILITY_NODATA` (255)
        for nodata.
    """
    p = np.asarray(prob, dtype=np.float32)
    finite = np.isfinite(p)
    scaled = np.clip(np.where(finite, p, np.float32(0)), 0, 1) * np.float32(PROBABILITY_SCALE)
    q: npt.NDArray[np.uint8] = np.rint(scaled).astype(np.uint8)
    bad = ~finite if valid is None else ~(finite & valid)
    q[bad] = PROBABILITY_NODATA
    return q


def decode_probability(code: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.float32]:
    """Decode uint8 probability codes to float32 probabilities, NaN where 255 (nodata).

    Args:
        code: uint8 codes from :func:`encode_probability`, any shape.

    Returns:
        float32 array of the same shape, ``code / 254``, NaN for nodata.
    """
    c = np.asarray(code)
    p = c.astype(np.float32) / np.float32(PROBABILITY_SCALE)
    p[c == PROBABILITY_NODATA] = np.nan
    return p


def mask_from_probability(
    prob: npt.NDArray[np.floating[Any]],
    threshold: float,
    valid: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.uint8]:
    """The uint8 landslide mask of probabilities: 1 where ``p >= threshold``, else 0, 255 invalid.

    Args:
        prob: Probabilities, any shape, float (NaN counts as invalid).
        threshold: Probability threshold (see :func:`apply_threshold`).
        valid: Optional boolean array of the same shape; False marks pixels without a decision.

    Returns:
        uint8 array of the same shape with :data:`BACKGROUND`, :data:`LANDSLIDE` and
        :data:`IGNORE`.
    """
    p = np.asarray(prob)
    m = apply_threshold(p, threshold).astype(np.uint8)
    bad = np.isnan(p) if valid is None else (~valid | np.isnan(p))
    m[bad] = IGNORE
    return m
