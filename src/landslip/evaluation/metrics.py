"""Pixel metrics of the landslide class from confusion counts, and threshold sweeps.

All figures here are for the landslide class (label 1) only, not micro averages over both
classes. Pixels labelled :data:`~landslip.encoding.IGNORE` (255) are excluded before counting.

A pixel is predicted as landslide when its probability is at least the threshold
(:func:`landslip.encoding.apply_threshold`: ``prob >= threshold`` compared in float64).
:class:`ThresholdSweep` counts, in one pass over a whole split, the confusion at every
threshold of a regular grid (``k / (bins - 1)``, ``k = 0 .. bins - 1``, 1001
thresholds by default) from two histograms (landslide and background pixels per threshold bin);
the counts at a grid threshold are exactly those of thresholding directly, so the
precision-recall curve and the F1-optimal threshold need no second pass and no stored
probabilities.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.encoding import IGNORE, LANDSLIDE
from landslip.errors import InputError

__all__ = [
    "DEFAULT_BINS",
    "Confusion",
    "PRCurve",
    "ThresholdSweep",
    "confusion",
    "threshold_bins",
    "threshold_grid",
]

DEFAULT_BINS = 1001
"""Number of thresholds of the sweep grid: 0, 0.001, ..., 1."""


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
    t = (truth == LANDSLIDE) & keep
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    tn = int(np.count_nonzero(keep)) - tp - fp - fn
    return Confusion(tp, fp, fn, tn)


def threshold_grid(bins: int = DEFAULT_BINS) -> npt.NDArray[np.float64]:
    """The thresholds of a sweep: ``k / (bins - 1)`` for ``k = 0 .. bins - 1``, float64.

    Each value is the double nearest to the fraction, so ``0.5`` and ``0.37`` (for 1001 bins)
    are the same numbers as the literals.
    """
    if bins < 2:
        raise InputError(f"a threshold sweep needs at least 2 thresholds, got {bins}")
    return np.arange(bins, dtype=np.float64) / (bins - 1)


def threshold_bins(
    prob: npt.NDArray[np.floating[Any]], bins: int = DEFAULT_BINS
) -> npt.NDArray[np.int64]:
    """For each probability, the index of the highest grid threshold it reaches.

    ``threshold_bins(p)[i] >= k`` holds exactly when ``p[i] >= threshold_grid(bins)[k]`` (the
    float64 comparison of :func:`~landslip.encoding.apply_threshold`, so sweeps agree with
    direct thresholding bit for bit).

    Args:
        prob: Probabilities in [0, 1], any shape, float32 or float64.
        bins: Number of grid thresholds.

    Returns:
        int64 array of the same shape with values in 0 .. bins - 1.

    Raises:
        InputError: If a probability is NaN or outside [0, 1].
    """
    thr = threshold_grid(bins)
    p = np.asarray(prob, dtype=np.float64)
    if p.size and (not np.isfinite(p).all() or p.min() < 0.0 or p.max() > 1.0):
        raise InputError(
            "probabilities must lie in [0, 1] without NaN; apply a sigmoid to model logits first"
        )
    k = np.clip(np.floor(p * (bins - 1)).astype(np.int64), 0, bins - 1)
    # floor(p * (bins-1)) can be one off by rounding: correct against the thresholds themselves.
    k -= p < thr[k]
    up = np.minimum(k + 1, bins - 1)
    k += (k + 1 < bins) & (p >= thr[up])
    return k


@dataclass(frozen=True)
class PRCurve:
    """Confusion counts and scores of the landslide class at every threshold of a grid.

    Attributes:
        thresholds: (K,) float64, increasing from 0 to 1.
        tp, fp, fn, tn: (K,) int64 counts at each threshold (pixel predicted landslide when
            ``prob >= threshold``; label-255 pixels excluded).
    """

    thresholds: npt.NDArray[np.float64]
    tp: npt.NDArray[np.int64]
    fp: npt.NDArray[np.int64]
    fn: npt.NDArray[np.int64]
    tn: npt.NDArray[np.int64]

    @staticmethod
    def _ratio(num: npt.NDArray[np.int64], den: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        out = np.zeros(num.shape, dtype=np.float64)
        np.divide(num, den, out=out, where=den > 0)
        return out

    @property
    def precision(self) -> npt.NDArray[np.float64]:
        """(K,) tp / (tp + fp), 0 where nothing is predicted."""
        return self._ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> npt.NDArray[np.float64]:
        """(K,) tp / (tp + fn), 0 where there is no landslide pixel."""
        return self._ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> npt.NDArray[np.float64]:
        """(K,) 2 tp / (2 tp + fp + fn), 0 where undefined."""
        return self._ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def index_of(self, threshold: float) -> int:
        """Index of the grid threshold equal to ``threshold``.

        Raises:
            InputError: If ``threshold`` is not on the grid (use direct thresholding then).
        """
        k = int(np.searchsorted(self.thresholds, threshold))
        if k >= len(self.thresholds) or self.thresholds[k] != threshold:
            raise InputError(
                f"threshold {threshold} is not on the sweep grid of {len(self.thresholds)} "
                "thresholds"
            )
        return k

    def confusion_at(self, threshold: float) -> Confusion:
        """The confusion at a grid threshold (exactly that of ``prob >= threshold``)."""
        k = self.index_of(threshold)
        return Confusion(int(self.tp[k]), int(self.fp[k]), int(self.fn[k]), int(self.tn[k]))

    def best_threshold(self) -> tuple[float, Confusion]:
        """The F1-optimal threshold and its confusion.

        F1 is constant between neighbouring probability values, so the maximum is usually
        reached on a run of thresholds; the centre of the first (lowest) such run is returned,
        which keeps the threshold away from the probabilities it separates.

        Returns:
            (threshold, confusion at it). With no landslide pixel at all, (0.5, confusion at
            0.5 when on the grid, else at the middle threshold).
        """
        f1 = self.f1
        if not np.any(f1 > 0):
            mid = len(self.thresholds) // 2
            t = float(self.thresholds[mid])
            return t, Confusion(int(self.tp[mid]), int(self.fp[mid]), int(self.fn[mid]),
                                int(self.tn[mid]))
        top = f1 == f1.max()
        start = int(np.argmax(top))
        stop = start
        while stop + 1 < len(top) and top[stop + 1]:
            stop += 1
        k = (start + stop) // 2
        return float(self.thresholds[k]), Confusion(
            int(self.tp[k]), int(self.fp[k]), int(self.fn[k]), int(self.tn[k])
        )

    def average_precision(self) -> float:
        """Area under the precision-recall step curve: sum over thresholds of dR * P.

        Computed from the highest threshold down, with recall differences between neighbouring
        grid thresholds (as sklearn's ``average_precision_score`` does over distinct scores,
        but on the grid). 0 when there is no landslide pixel.
        """
        r = self.recall
        p = self.precision
        # Recall falls as the threshold rises; add a final point of recall 0.
        dr = r - np.append(r[1:], 0.0)
        return float(np.sum(dr * p))

    def as_dict(self, step: int = 1) -> dict[str, list[float]]:
        """Curve arrays as JSON-ready lists, every ``step``-th threshold."""
        sl = slice(None, None, step)
        return {
            "threshold": [float(v) for v in self.thresholds[sl]],
            "precision": [float(v) for v in self.precision[sl]],
            "recall": [float(v) for v in self.recall[sl]],
            "f1": [float(v) for v in self.f1[sl]],
        }


class ThresholdSweep:
    """Streaming accumulator of landslide-class confusion counts at every grid threshold.

    Feed it probabilities and labels patch by patch (:meth:`update`), then read the
    precision-recall curve (:meth:`curve`). Memory is two int64 histograms of ``bins``
    entries, whatever the number of pixels.

    Args:
        bins: Number of grid thresholds (:func:`threshold_grid`).
    """

    def __init__(self, bins: int = DEFAULT_BINS) -> None:
        self.bins = bins
        self.thresholds = threshold_grid(bins)
        self.positive = np.zeros(bins, dtype=np.int64)
        self.negative = np.zeros(bins, dtype=np.int64)

    def update(
        self,
        prob: npt.NDArray[np.floating[Any]],
        truth: npt.NDArray[np.generic],
        valid: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        """Add a batch of pixels.

        Args:
            prob: Landslide probabilities in [0, 1], any shape.
            truth: Labels of the same shape, 0/1 with 255 = ignore.
            valid: Optional extra mask of the same shape; False pixels are skipped as well.
        """
        if prob.shape != truth.shape:
            raise InputError(f"probability shape {prob.shape} differs from label shape "
                             f"{truth.shape}")
        keep = truth != IGNORE
        if valid is not None:
            keep &= valid
        k = threshold_bins(prob[keep], self.bins)
        pos = truth[keep] == LANDSLIDE
        self.positive += np.bincount(k[pos], minlength=self.bins)
        self.negative += np.bincount(k[~pos], minlength=self.bins)

    def __iadd__(self, other: ThresholdSweep) -> ThresholdSweep:
        if other.bins != self.bins:
            raise InputError(f"cannot merge sweeps of {self.bins} and {other.bins} thresholds")
        self.positive += other.positive
        self.negative += other.negative
        return self

    @property
    def pixels(self) -> int:
        """Number of pixels counted (label 0 or 1)."""
        return int(self.positive.sum() + self.negative.sum())

    def curve(self) -> PRCurve:
        """The confusion counts at every threshold.

        A pixel in bin ``j`` is predicted landslide at every threshold ``k <= j``, so the true
        positives at threshold ``k`` are the landslide pixels in bins ``k`` and above.
        """
        tp = np.cumsum(self.positive[::-1])[::-1].astype(np.int64)
        fp = np.cumsum(self.negative[::-1])[::-1].astype(np.int64)
        fn = int(self.positive.sum()) - tp
        tn = int(self.negative.sum()) - fp
        return PRCurve(self.thresholds.copy(), tp, fp, fn, tn)
