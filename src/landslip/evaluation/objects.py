"""Per-landslide (object) metrics: connected regions of predicted and true masks, matched.

Definitions (also in DESIGN.md):

* **Regions.** A landslide is a connected region of landslide pixels under 8-connectivity
  (:data:`landslip.encoding.CONNECTIVITY`: :func:`scipy.ndimage.label` with
  :data:`~landslip.encoding.STRUCTURE_8`, pixels touching at an edge or a corner belong
  together; the polygons of ``landslip predict`` follow the same rule), found separately
  in the true mask (label 1) and in the predicted mask. Pixels labelled 255 (ignore)
  belong to neither: a predicted landslide pixel where the label is 255 is dropped before
  labelling. Regions are found per patch, so a landslide cut by
  a patch border counts once in each patch it reaches.
* **Matching** (``rule``):

  - ``"overlap"`` (default): a true landslide is *detected* when predicted landslide pixels
    cover at least ``min_overlap`` (default 0.5) of its area; a predicted region is a *false
    alarm* when true landslide pixels cover less than ``min_overlap`` of its area. One
    predicted region that merges several true landslides thus detects each of them it covers
    well and is no false alarm, which suits the smooth U-Net outputs of dense landslide fields.
  - ``"iou"``: one-to-one matching as in object detection: region pairs with intersection over
    union of at least ``min_overlap`` are matched greedily, largest IoU first; a true
    landslide is detected when matched, a predicted region is a false alarm when unmatched.
    (Above 0.5 at most one pair per region can qualify, so greedy matching is then optimal.)

* **Detection rate** = detected true landslides / true landslides (object recall).
  **False-alarm rate** = false-alarm predicted regions / predicted regions.
  **Object F1** = harmonic mean of the detection rate and 1 - the false-alarm rate.
* **Size classes** by area in square metres (pixel count x pixel area from the dataset
  resolution): ``< 100``, ``100 - 1000``, ``1000 - 10000``, ``>= 10000`` m2 by default; a true
  landslide is classed by its own area and so is a predicted region. Without a resolution the
  classes are in pixels.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from landslip.encoding import CONNECTIVITY, IGNORE, LANDSLIDE, STRUCTURE_8
from landslip.errors import InputError

__all__ = [
    "DEFAULT_SIZE_EDGES_M2",
    "MatchRule",
    "ObjectCounter",
    "ObjectMetrics",
    "PatchObjects",
    "area_frequency",
    "label_regions",
    "match_objects",
]

MatchRule = Literal["overlap", "iou"]

DEFAULT_SIZE_EDGES_M2: tuple[float, ...] = (100.0, 1000.0, 10000.0)
"""Size-class boundaries in square metres: <100, 100-1000, 1000-10000, >=10000."""


def label_regions(mask: npt.NDArray[np.generic]) -> tuple[npt.NDArray[np.int32], int]:
    """Label the connected regions (:data:`~landslip.encoding.CONNECTIVITY`) of a 2-D mask.

    Args:
        mask: (H, W) bool or 0/1 array.

    Returns:
        (int32 (H, W) array with 0 for background and 1..n for the regions, n).
    """
    if mask.ndim != 2:
        raise InputError(f"expected a 2-D mask (H, W), got shape {mask.shape}")
    labels, n = ndimage.label(mask.astype(bool), structure=STRUCTURE_8)
    return labels.astype(np.int32, copy=False), int(n)


@dataclass(frozen=True)
class PatchObjects:
    """Matching result of one patch.

    Attributes:
        true_areas: (T,) int64 pixel count of each true landslide.
        detected: (T,) bool, whether each true landslide was detected.
        pred_areas: (P,) int64 pixel count of each predicted region.
        false_alarm: (P,) bool, whether each predicted region matches no true landslide.
    """

    true_areas: npt.NDArray[np.int64]
    detected: npt.NDArray[np.bool_]
    pred_areas: npt.NDArray[np.int64]
    false_alarm: npt.NDArray[np.bool_]


def match_objects(
    pred: npt.NDArray[np.generic],
    truth: npt.NDArray[np.generic],
    rule: MatchRule = "overlap",
    min_overlap: float = 0.5,
) -> PatchObjects:
    """Find and match the landslides of one patch (see the module docstring for the rules).

    Args:
        pred: (H, W) predicted mask, bool or 0/1.
        truth: (H, W) labels, uint8 0/1 with 255 = ignore.
        rule: ``"overlap"`` (coverage fractions) or ``"iou"`` (one-to-one by IoU).
        min_overlap: The fraction (coverage or IoU) needed for a match, in (0, 1].

    Returns:
        Areas and flags of the true and predicted regions.
    """
    if pred.shape != truth.shape:
        raise InputError(f"prediction shape {pred.shape} differs from label shape {truth.shape}")
    if not 0.0 < min_overlap <= 1.0:
        raise InputError(f"min_overlap must be in (0, 1], got {min_overlap}")
    if rule not in ("overlap", "iou"):
        raise InputError(f"unknown matching rule {rule!r}; use 'overlap' or 'iou'")
    keep = truth != IGNORE
    t_lab, nt = label_regions((truth == LANDSLIDE) & keep)
    p_lab, np_ = label_regions(pred.astype(bool) & keep)
    t_area = np.bincount(t_lab.ravel(), minlength=nt + 1)[1:].astype(np.int64)
    p_area = np.bincount(p_lab.ravel(), minlength=np_ + 1)[1:].astype(np.int64)
    if rule == "overlap":
        covered_t = np.bincount(t_lab[p_lab > 0], minlength=nt + 1)[1:]
        covered_p = np.bincount(p_lab[t_lab > 0], minlength=np_ + 1)[1:]
        detected = covered_t >= min_overlap * t_area
        false_alarm = covered_p < min_overlap * p_area
    else:
        both = (t_lab > 0) & (p_lab > 0)
        pair = t_lab[both].astype(np.int64) * (np_ + 1) + p_lab[both]
        codes, inter = np.unique(pair, return_counts=True)
        ti, pi = codes // (np_ + 1), codes % (np_ + 1)
        iou = inter / (t_area[ti - 1] + p_area[pi - 1] - inter)
        detected = np.zeros(nt, dtype=bool)
        matched = np.zeros(np_, dtype=bool)
        for j in np.argsort(-iou, kind="stable"):
            if iou[j] < min_overlap:
                break
            if not detected[ti[j] - 1] and not matched[pi[j] - 1]:
                detected[ti[j] - 1] = True
                matched[pi[j] - 1] = True
        false_alarm = ~matched
    return PatchObjects(t_area, np.asarray(detected, dtype=bool), p_area,
                        np.asarray(false_alarm, dtype=bool))


def _class_names(edges: Sequence[float], unit: str) -> list[str]:
    def fmt(v: float) -> str:
        return f"{v:g}"

    names = [f"<{fmt(edges[0])} {unit}"]
    names += [f"{fmt(a)}-{fmt(b)} {unit}" for a, b in itertools.pairwise(edges)]
    names.append(f">={fmt(edges[-1])} {unit}")
    return names


@dataclass
class ObjectMetrics:
    """Object metrics over a whole split.

    Attributes:
        true_areas: Areas of all true landslides (square metres, or pixels without resolution).
        detected: Whether each was detected.
        pred_areas: Areas of all predicted regions (same unit).
        false_alarm: Whether each is a false alarm.
        unit: ``"m2"`` or ``"px"``.
        size_edges: Size-class boundaries in ``unit``.
        rule: Matching rule, ``min_overlap`` its fraction.
    """

    true_areas: npt.NDArray[np.float64]
    detected: npt.NDArray[np.bool_]
    pred_areas: npt.NDArray[np.float64]
    false_alarm: npt.NDArray[np.bool_]
    unit: str
    size_edges: tuple[float, ...]
    rule: str
    min_overlap: float

    @property
    def n_true(self) -> int:
        """Number of true landslides."""
        return int(self.true_areas.size)

    @property
    def n_pred(self) -> int:
        """Number of predicted regions."""
        return int(self.pred_areas.size)

    @property
    def detection_rate(self) -> float:
        """Detected true landslides / true landslides (0 when there is none)."""
        return float(self.detected.mean()) if self.detected.size else 0.0

    @property
    def false_alarm_rate(self) -> float:
        """False-alarm predicted regions / predicted regions (0 when none was predicted)."""
        return float(self.false_alarm.mean()) if self.false_alarm.size else 0.0

    @property
    def f1(self) -> float:
        """Object F1: harmonic mean of the detection rate and 1 - the false-alarm rate.

        0 when either is 0 (no true landslide detected, or every predicted region false).
        """
        d, a = self.detection_rate, 1.0 - self.false_alarm_rate
        return 2 * d * a / (d + a) if d > 0 and a > 0 else 0.0

    def by_size(self) -> list[dict[str, Any]]:
        """Counts and rates per size class, smallest class first."""
        edges = np.asarray(self.size_edges, dtype=np.float64)
        t_cls = np.searchsorted(edges, self.true_areas, side="right")
        p_cls = np.searchsorted(edges, self.pred_areas, side="right")
        rows: list[dict[str, Any]] = []
        bounds = [0.0, *self.size_edges, float("inf")]
        for c, name in enumerate(_class_names(self.size_edges, self.unit)):
            nt = int(np.count_nonzero(t_cls == c))
            npred = int(np.count_nonzero(p_cls == c))
            nd = int(np.count_nonzero(self.detected[t_cls == c]))
            nf = int(np.count_nonzero(self.false_alarm[p_cls == c]))
            rows.append({
                "size_class": name,
                "min_area": bounds[c],
                "max_area": bounds[c + 1] if np.isfinite(bounds[c + 1]) else None,
                "true": nt,
                "detected": nd,
                "detection_rate": nd / nt if nt else None,
                "predicted": npred,
                "false_alarms": nf,
                "false_alarm_rate": nf / npred if npred else None,
            })
        return rows

    def as_dict(self) -> dict[str, Any]:
        """Summary for the JSON report."""
        return {
            "connectivity": CONNECTIVITY,
            "rule": self.rule,
            "min_overlap": self.min_overlap,
            "unit": self.unit,
            "true_landslides": self.n_true,
            "detected": int(np.count_nonzero(self.detected)),
            "detection_rate": self.detection_rate,
            "predicted_regions": self.n_pred,
            "false_alarms": int(np.count_nonzero(self.false_alarm)),
            "false_alarm_rate": self.false_alarm_rate,
            "f1": self.f1,
            "by_size": self.by_size(),
            "area_frequency": area_frequency(self.true_areas, self.pred_areas),
        }


@dataclass
class ObjectCounter:
    """Streaming accumulator of per-landslide matching over the patches of a split.

    Args:
        pixel_area: Area of one pixel in square metres (|res_x * res_y| of the dataset), or
            None when unknown: areas and size classes are then in pixels.
        size_edges: Size-class boundaries; in m2 with a pixel area, in pixels without (the
            default m2 boundaries are then used as pixel counts, and the report says ``px``).
        rule: Matching rule (:func:`match_objects`).
        min_overlap: Fraction needed for a match.
    """

    pixel_area: float | None = None
    size_edges: tuple[float, ...] = DEFAULT_SIZE_EDGES_M2
    rule: MatchRule = "overlap"
    min_overlap: float = 0.5
    _true: list[npt.NDArray[np.int64]] = field(default_factory=list, repr=False)
    _det: list[npt.NDArray[np.bool_]] = field(default_factory=list, repr=False)
    _pred: list[npt.NDArray[np.int64]] = field(default_factory=list, repr=False)
    _fa: list[npt.NDArray[np.bool_]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.pixel_area is not None and not self.pixel_area > 0:
            raise InputError(f"pixel area must be positive, got {self.pixel_area}")
        if list(self.size_edges) != sorted(self.size_edges) or not self.size_edges:
            raise InputError(f"size-class edges must be increasing, got {self.size_edges}")

    def update(self, pred: npt.NDArray[np.generic], truth: npt.NDArray[np.generic]) -> None:
        """Match the regions of one patch ((H, W) prediction and labels) or a batch (N, H, W)."""
        if pred.ndim == 3:
            for p, t in zip(pred, truth, strict=True):
                self.update(p, t)
            return
        r = match_objects(pred, truth, self.rule, self.min_overlap)
        self._true.append(r.true_areas)
        self._det.append(r.detected)
        self._pred.append(r.pred_areas)
        self._fa.append(r.false_alarm)

    def result(self) -> ObjectMetrics:
        """The object metrics of everything seen so far."""
        scale = self.pixel_area if self.pixel_area is not None else 1.0

        def cat(parts: list[Any], dtype: Any) -> Any:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        return ObjectMetrics(
            true_areas=cat(self._true, np.float64) * scale,
            detected=cat(self._det, bool),
            pred_areas=cat(self._pred, np.float64) * scale,
            false_alarm=cat(self._fa, bool),
            unit="m2" if self.pixel_area is not None else "px",
            size_edges=tuple(float(e) for e in self.size_edges),
            rule=self.rule,
            min_overlap=self.min_overlap,
        )


def area_frequency(
    true_areas: npt.NDArray[np.float64],
    pred_areas: npt.NDArray[np.float64],
    bins_per_decade: int = 5,
) -> dict[str, list[float]]:
    """Area-frequency distributions of true and predicted landslides on logarithmic bins.

    The frequency density of a bin is its count divided by its width (in the area unit), the
    usual form of landslide area-frequency plots (log-log).

    Args:
        true_areas: Areas of the true landslides (> 0).
        pred_areas: Areas of the predicted regions (> 0).
        bins_per_decade: Logarithmic bins per factor of ten.

    Returns:
        ``{"edges": [...], "true_count": [...], "pred_count": [...], "true_density": [...],
        "pred_density": [...]}``; edges run over whole decades covering both sets (empty lists
        when there is no area at all).
    """
    areas = np.concatenate([true_areas, pred_areas])
    areas = areas[areas > 0]
    if areas.size == 0:
        return {"edges": [], "true_count": [], "pred_count": [], "true_density": [],
                "pred_density": []}
    lo = np.floor(np.log10(areas.min()))
    hi = np.ceil(np.log10(areas.max()))
    if hi <= lo:
        hi = lo + 1
    edges = np.logspace(lo, hi, round(float(hi - lo) * bins_per_decade) + 1)
    tc, _ = np.histogram(true_areas, edges)
    pc, _ = np.histogram(pred_areas, edges)
    width = np.diff(edges)
    return {
        "edges": [float(v) for v in edges],
        "true_count": [int(v) for v in tc],
        "pred_count": [int(v) for v in pc],
        "true_density": [float(v) for v in tc / width],
        "pred_density": [float(v) for v in pc / width],
    }
