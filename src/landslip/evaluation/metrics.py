"""Pixel metrics of the landslide class from confusion counts.

All figures here are for the landslide class (label 1) only, not micro averages over both
classes. Pixels labelled 255 (ignore) are excluded before counting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from landslip.errors import InputError

__all__ = ["IGNORE", "Confusion", "confusion"]

IGNORE = 255
"""Label value of pixels that loss and metrics skip."""


@dataclass(frozen=True)
class Confusion:
    """Confusion counts of the landslide class, and the scores derived from them.

    Attributes:
        tp: Landslide pixels predicted as landslide.
        fp: Background pixels predicted as landslide.
        fn: Landslide pixels predicted as background.
        tn: Background pixels predicted as background.
    """

    tp: int
    fp: int
    fn: int
    tn: int

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                         self.tn + other.tn)

    @property
    def precision(self) -> float:
        """tp / (tp + fp); 0 when nothing was predicted as landslide."""
        d = self.tp + self.fp
        return self.tp / d if d else 0.0

    @property
    def recall(self) -> float:
        """tp / (tp + fn); 0 when there is no landslide pixel."""
        d = self.tp + self.fn
        return self.tp / d if d else 0.0

    @property
    def f1(self) -> float:
        """2 tp / (2 tp + fp + fn): the harmonic mean of precision and recall; 0 when undefined."""
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 0.0

    @property
    def iou(self) -> float:
        """tp / (tp + fp + fn): intersection over union of the landslide class; 0 when undefined."""
        d = self.tp + self.fp + self.fn
        return self.tp / d if d else 0.0

    def as_dict(self) -> dict[str, float]:
        """Counts and scores as a flat dictionary (for JSON and CSV)."""
        out: dict[str, float] = {k: float(v) for k, v in asdict(self).items()}
        out.update(precision=self.precision, recall=self.recall, f1=self.f1, iou=self.iou)
        return out


def confusion(pred: npt.NDArray[np.generic], truth: npt.NDArray[np.generic]) -> Confusion:
    """Count the landslide-class confusion of a predicted mask against a label mask.

    Args:
        pred: Predicted mask, any shape, bool or 0/1 integers.
        truth: Labels of the same shape, uint8 0/1 with 255 = ignore.

    Returns:
        The counts over pixels whose label is not 255.
    """
    if pred.shape != truth.shape:
        raise InputError(f"prediction shape {pred.shape} differs from label shape {truth.shape}")
    keep = truth != IGNORE
    p = pred.astype(bool) & keep
    t = (truth == 1) & keep
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    tn = int(np.count_nonzero(keep)) - tp - fp - fn
    return Confusion(tp, fp, fn, tn)
