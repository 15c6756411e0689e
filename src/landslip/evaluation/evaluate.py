"""Evaluate a trained model bundle on one split of a dataset folder.

:func:`evaluate` predicts every patch of the split with the bundle (its band set and its
normalisation statistics, through :meth:`Bundle.inputs`, exactly as in training), then reports:

* pixel metrics of the landslide class at the applied threshold (confusion counts, precision,
  recall, F1, IoU), and at 0.5 and at the tuned threshold;
* the precision-recall curve over 1001 thresholds (:class:`ThresholdSweep`, streamed);
* per-landslide metrics (:mod:`landslip.evaluation.objects`);
* figures: PR curve, area-frequency plot, paper-style panels of chosen patches;
* optionally the predictions themselves, so that the numbers can be checked independently.

Threshold protocol: ``threshold=0.5`` (the paper) applies 0.5. ``threshold="tuned"`` predicts
the validation split first, takes the F1-optimal grid threshold there
(:meth:`PRCurve.best_threshold`) and applies it, frozen, to the evaluated split; the test split
never influences its own threshold, and tuning on the split that is scored is refused (its
figures would be optimistic). Whenever a validation split exists the tuned threshold is
computed anyway, so that the report and the PR curve show both.

Minimum area (``min_area``, ``--min-area``): predicted regions (8-connected) smaller than the
area are set to background before pixels and objects are counted
(:func:`~landslip.evaluation.region_filter.drop_small_regions`); the area is in m2 when the
dataset's pixel area is known (:func:`pixel_area_m2`, the meaning of ``predict --min-area``),
else in pixels. ``min_area="tuned"`` keeps the tuning split's probabilities from the threshold
tuning pass (no second prediction), applies the threshold evaluate applies, and takes the area
of :data:`MIN_AREA_GRID_PX` with the best object F1 there (ties: the smaller area), frozen for
the evaluated split; refused, like the threshold, when the tuning split is the one scored.

A pixel counts when its label is 0 or 1 and none of the raw bands the band set needs is nodata
(such pixels are treated as label 255). A pixel is a landslide when
:func:`landslip.encoding.mask_from_probability` says so (``p >= threshold`` on the float32
probability, compared in float64), the rule ``landslip predict`` applies to its maps, and the
saved probabilities use the same uint8 codes as its ``probability.tif``
(:func:`landslip.encoding.encode_probability`).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from landslip import __version__
from landslip.dataset.folder import DatasetFolder, open_dataset
from landslip.devices import select_device
from landslip.encoding import (
    IGNORE,
    LANDSLIDE,
    apply_threshold,
    encode_probability,
    mask_from_probability,
)
from landslip.errors import BandError, DatasetError, InputError
from landslip.evaluation.drift import check_dataset_input
from landslip.evaluation.figures import plot_area_frequency, plot_patch_panels, plot_pr_curve
from landslip.evaluation.metrics import DEFAULT_BINS, Confusion, PRCurve, ThresholdSweep, confusion
from landslip.evaluation.objects import (
    DEFAULT_SIZE_EDGES_M2,
    MatchRule,
    ObjectCounter,
    ObjectMetrics,
)
from landslip.evaluation.region_filter import drop_flat_regions, drop_small_regions
from landslip.evaluation.report import CLASS_NOTE, REPORT_FORMAT, REPORT_VERSION, write_report
from landslip.io.atomic import atomic_path, write_text_atomic
from landslip.io.checks import check_writable
from landslip.models.bundle import Bundle, load_bundle
from landslip.models.engine import Engine, check_engine_options, create_engine
from landslip.progress import track

__all__ = [
    "MIN_AREA_GRID_PX",
    "PAPER_THRESHOLD",
    "EvaluateOptions",
    "EvaluationResult",
    "default_output",
    "encode_predictions",
    "evaluate",
    "parse_min_area",
    "parse_threshold",
    "pixel_area_m2",
    "predict_split",
]

log = logging.getLogger(__name__)

PAPER_THRESHOLD = 0.5
"""The paper's decision threshold on the sigmoid output."""

MIN_AREA_GRID_PX: tuple[int, ...] = (0, 2, 4, 8, 16, 32, 64, 128, 256)
"""Candidate minimum areas of ``min_area="tuned"``, in pixels (times the pixel area in m2 when
the dataset has one)."""

_SPLIT_ALIASES = {"validation": "val", "valid": "val"}


@dataclass(frozen=True)
class EvaluateOptions:
    """How :func:`evaluate` scores a split (the options of ``landslip evaluate``).

    Attributes:
        split: ``test`` (default), ``val`` or ``train``.
        threshold: A number in (0, 1) (default 0.5, the paper's), ``"tuned"`` (F1-optimal on
            ``tune_split``, then frozen; refused when ``tune_split`` is the evaluated split) or
            ``"bundle"`` (the threshold stored in the bundle).
        out_dir: Output folder; default ``RUN/evaluation/<dataset name>/<split>``.
        save_predictions: Write ``probabilities.npy`` (uint8 codes ``round(p * 254)``,
            :func:`~landslip.encoding.encode_probability`), ``masks.npy`` (uint8 0/1 at the
            applied threshold), both 255 where the pixel is not evaluated, and
            ``patch_ids.npy`` (int64 dataset indices of the rows).
        figure_patches: Number of patches drawn as paper-style panels (those with the most
            landslide pixels) when ``figure_ids`` is None.
        figure_ids: Dataset patch ids to draw instead.
        batch_size: Patches per forward pass.
        device: Torch device (:func:`landslip.devices.select_device`): None or ``"auto"`` for
            CUDA when available, else the CPU.
        engine: ``auto`` (ONNX Runtime on the CPU, PyTorch on CUDA), ``torch`` or ``onnx``
            (:func:`landslip.models.engine.create_engine`).
        threads: Intra-op threads of the engine; None: all cores.
        bins: Thresholds of the sweep grid.
        tune_split: Split on which the threshold is tuned.
        object_rule: Object matching rule (``overlap`` or ``iou``).
        min_overlap: Fraction needed for an object match.
        size_edges_m2: Size-class boundaries of the object metrics in m2.
        min_slope: Remove predicted landslides whose mean slope (the dataset's ``slope``
            band, degrees) is below this before counting, as ``predict --min-slope`` does;
            the PR curve and threshold tuning stay unfiltered. None: off.
        min_area: Remove predicted regions (8-connected) smaller than this before counting
            pixels and objects, in m2 when the dataset's pixel area is known, else in pixels
            (regions of exactly this area are kept); ``"tuned"``: the area of
            :data:`MIN_AREA_GRID_PX` with the best object F1 on ``tune_split`` at the applied
            threshold, then frozen (refused when ``tune_split`` is the evaluated split). The PR
            curve and threshold tuning stay unfiltered. None: off.
        strict: Refuse a split far outside the model's training data instead of warning
            (:mod:`landslip.evaluation.drift`).
        tta: Test-time augmentation: each probability is the mean over the 8 flips/90-degree
            rotations of the patch (8x the compute); used for the tuning split too, so the
            tuned threshold fits the probabilities it is applied to.
    """

    split: str = "test"
    threshold: float | str = PAPER_THRESHOLD
    out_dir: str | Path | None = None
    save_predictions: bool = True
    figure_patches: int = 4
    figure_ids: Sequence[int] | None = None
    batch_size: int = 16
    device: str | torch.device | None = None
    engine: str = "auto"
    threads: int | None = None
    bins: int = DEFAULT_BINS
    tune_split: str = "val"
    object_rule: MatchRule = "overlap"
    min_overlap: float = 0.5
    size_edges_m2: Sequence[float] = DEFAULT_SIZE_EDGES_M2
    min_slope: float | None = None
    min_area: float | str | None = None
    strict: bool = False
    tta: bool = False


@dataclass
class EvaluationResult:
    """What :func:`evaluate` produced.

    Attributes:
        report: The report dictionary (also in ``report.json``).
        out_dir: Output folder.
        report_json: Path of report.json.
        report_md: Path of report.md.
        confusion: Landslide-class confusion at the applied threshold.
        threshold: The applied threshold.
        curve: The precision-recall curve of the evaluated split.
        files: Other files written, by role.
    """

    report: dict[str, Any]
    out_dir: Path
    report_json: Path
    report_md: Path
    confusion: Confusion
    threshold: float
    curve: PRCurve
    files: dict[str, Any] = field(default_factory=dict)


def parse_threshold(value: str | float) -> float | str:
    """Parse a threshold option: a number in (0, 1), ``"tuned"`` or ``"bundle"``.

    Raises:
        InputError: For anything else.
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("tuned", "bundle"):
            return text
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"threshold must be a number in (0, 1), 'tuned' or 'bundle'; got "
                             f"{value!r}") from None
    t = float(value)
    if not 0.0 < t < 1.0 or math.isnan(t):
        raise InputError(f"threshold must lie strictly between 0 and 1, got {t}")
    return t


def parse_min_area(value: str | float | None) -> float | str | None:
    """Parse a minimum-area option: None (off), a number >= 0 or ``"tuned"``.

    Raises:
        InputError: For anything else (a negative, infinite or non-numeric value).
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "tuned":
            return text
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"--min-area must be an area >= 0 or 'tuned'; got {value!r}"
                             ) from None
    a = float(value)
    if not math.isfinite(a) or a < 0:
        raise InputError(f"--min-area must be an area >= 0 (m2, or pixels without a CRS) or "
                         f"'tuned'; got {a:g}")
    return a


def pixel_area_m2(ds: DatasetFolder) -> float | None:
    """Area of one pixel in square metres, or None without a projected CRS and resolution."""
    res = ds.res
    if res is None or ds.crs is None:
        return None
    try:
        from pyproj import CRS

        crs = CRS.from_user_input(ds.crs)
    except Exception as exc:  # pyproj raises its own CRSError; the CRS is only informative here
        log.warning("cannot interpret the dataset CRS (%s); object areas in pixels", exc)
        return None
    if not crs.is_projected:
        return None
    factor = 1.0
    if crs.axis_info and crs.axis_info[0].unit_conversion_factor:
        factor = float(crs.axis_info[0].unit_conversion_factor)
    return abs(res[0] * res[1]) * factor * factor


def default_output(bundle: Bundle, ds: DatasetFolder, split: str) -> Path:
    """``RUN/evaluation/<dataset folder name>/<split>``: beside the bundle, in its run folder."""
    run = bundle.path.parent if bundle.path.name == "bundle" else bundle.path
    return run / "evaluation" / ds.path.name / split


def _batches(idx: npt.NDArray[np.int64], size: int) -> Iterator[npt.NDArray[np.int64]]:
    for start in range(0, idx.size, size):
        yield idx[start:start + size]


def predict_images(
    bundle: Bundle,
    ds: DatasetFolder,
    indices: npt.NDArray[np.int64],
    engine: Engine,
    batch_size: int = 16,
    description: str = "predicting",
    tta: bool = False,
) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.bool_]]]:
    """Predict patches of a dataset batch by batch, reading their images only (never labels).

    Args:
        bundle: The loaded bundle (its band set and normalisation are used).
        ds: The dataset.
        indices: Patch indices to predict, in this order.
        engine: The prediction engine for the bundle's model
            (:func:`landslip.models.engine.create_engine`).
        batch_size: Patches per forward pass.
        description: Progress-bar label.
        tta: Average over the 8 flips/90-degree rotations (:meth:`Engine.probabilities`).

    Yields:
        (patch indices (B,), probabilities (B, P, P) float32 in [0, 1], valid (B, P, P) bool:
        False where a needed raw band is nodata).
    """
    bundle.check_bands(list(ds.band_names))
    p = ds.patch_size
    pad = (-p) % engine.required_multiple
    n_batches = math.ceil(indices.size / batch_size)
    for batch in track(_batches(indices, batch_size), total=n_batches, description=description):
        raw = _read_rows(ds.images, batch)
        x, valid = bundle.inputs(raw, list(ds.band_names), ds.nodata)
        if pad:
            x = np.pad(x, ((0, 0), (0, 0), (0, pad), (0, pad)))
        prob = engine.probabilities(x, tta)[:, :p, :p]
        yield batch, np.ascontiguousarray(prob, dtype=np.float32), valid


def _read_rows(arr: npt.NDArray[Any], batch: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    """Rows ``batch`` of a memmap, read in increasing order (faster) and returned in order."""
    order = np.argsort(batch)
    return np.asarray(arr[batch[order]])[np.argsort(order)]


def predict_split(
    bundle: Bundle,
    ds: DatasetFolder,
    indices: npt.NDArray[np.int64],
    engine: Engine,
    batch_size: int = 16,
    description: str = "predicting",
    tta: bool = False,
) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.uint8]]]:
    """Predict patches of a dataset, batch by batch, with their labels for scoring.

    Args: as :func:`predict_images`.

    Yields:
        (patch indices (B,), probabilities (B, P, P) float32 in [0, 1], labels for metrics
        (B, P, P) uint8: the dataset labels with 255 also where a needed raw band is nodata).
    """
    for batch, prob, valid in predict_images(bundle, ds, indices, engine, batch_size,
                                             description, tta):
        labels = _read_rows(ds.labels, batch)
        yield batch, prob, np.where(valid, labels, np.uint8(IGNORE)).astype(np.uint8)


def encode_predictions(
    prob: npt.NDArray[np.float32], truth: npt.NDArray[np.uint8], threshold: float
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The saved forms of predictions: probability codes and the mask, both 255 where unscored.

    The same :mod:`landslip.encoding` functions make ``probability.tif`` and
    ``landslides.tif`` in ``landslip predict``, so equal probabilities give equal files.

    Args:
        prob: (...) float32 probabilities.
        truth: Labels of the same shape, 0/1 with 255 = not evaluated.
        threshold: Decision threshold.

    Returns:
        (uint8 codes ``round(p * 254)``, uint8 mask 0/1), 255 where ``truth`` is 255.
    """
    scored = truth != IGNORE
    return encode_probability(prob, scored), mask_from_probability(prob, threshold, scored)


@dataclass(frozen=True)
class _Setup:
    """What every stage of :func:`evaluate` needs: the inputs, opened and checked."""

    bundle: Bundle
    ds: DatasetFolder
    split: str
    idx: npt.NDArray[np.int64]
    out: Path
    engine: Engine
    opts: EvaluateOptions
    min_area: float | str | None  # parsed: None, an area or "tuned"


@dataclass(frozen=True)
class _Kept:
    """The tuning split's predictions, kept from the threshold tuning pass (memory-mapped).

    Attributes:
        ids: (N,) int64 dataset indices, in the order predicted.
        prob: (N, P, P) float32 probabilities.
        truth: (N, P, P) uint8 labels for metrics (255 also where a needed band is nodata).
    """

    ids: npt.NDArray[np.int64]
    prob: npt.NDArray[np.float32]
    truth: npt.NDArray[np.uint8]


@dataclass(frozen=True)
class _MinArea:
    """The applied minimum area, its unit, how it was chosen and the tuning table (if any)."""

    value: float | None
    mode: str  # "off", "fixed" or "tuned"
    unit: str  # "m2" or "px"
    candidates: list[dict[str, float]] | None = None


@dataclass(frozen=True)
class _Threshold:
    """The applied threshold, how it was chosen, and the tuning result (if any)."""

    applied: float
    mode: str
    tuned: tuple[float, Confusion, PRCurve] | None


@dataclass(frozen=True)
class _Scores:
    """Everything counted over the evaluated split."""

    curve: PRCurve
    total: Confusion
    per_patch: npt.NDArray[np.int64]  # (N, 4) tp, fp, fn, tn
    objects: ObjectMetrics
    pixel_area: float | None


def _canonical_split(name: str) -> str:
    return _SPLIT_ALIASES.get(name, name)


def _choose_figure_patches(per_patch: npt.NDArray[np.int64], ids: npt.NDArray[np.int64],
                           n: int) -> list[int]:
    """Patches with the most landslide pixels (ties: lower id), as dataset indices."""
    if n <= 0 or ids.size == 0:
        return []
    landslide = per_patch[:, 0] + per_patch[:, 2]  # tp + fn
    order = np.lexsort((ids, -landslide))
    return [int(ids[i]) for i in order[:n]]


def _pixel_dict(conf: Confusion, threshold: float) -> dict[str, float]:
    d = conf.as_dict()
    d["threshold"] = threshold
    d["pixels"] = float(conf.tp + conf.fp + conf.fn + conf.tn)
    return d


def _open(bundle_or_run: str | Path | Bundle, dataset: str | Path | DatasetFolder,
          opts: EvaluateOptions, thr: float | str) -> _Setup:
    """Check the options, load the bundle and the dataset, find the split and the output."""
    split = _canonical_split(opts.split)
    area = parse_min_area(opts.min_area)
    for name, mode, fixed in (("--threshold", thr, "a fixed threshold such as 0.5"),
                              ("--min-area", area, "a fixed area such as 100")):
        if mode == "tuned" and split == _canonical_split(opts.tune_split):
            raise InputError(f"{name} tuned would tune on the {split} split it scores, an "
                             f"optimistic figure; evaluate --split test, or give {fixed}")
    if opts.batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {opts.batch_size}")
    check_engine_options(opts.engine, opts.threads)
    device = select_device(opts.device)
    bundle = (bundle_or_run if isinstance(bundle_or_run, Bundle)
              else load_bundle(bundle_or_run, str(device)))
    ds = dataset if isinstance(dataset, DatasetFolder) else open_dataset(dataset)
    bundle.check_bands(list(ds.band_names))
    if opts.min_slope is not None and "slope" not in ds.band_names:
        raise BandError(f"--min-slope needs a slope band, which dataset {ds.path} lacks; "
                        "prepare it with --extra dem=DEM.tif")
    if bundle.meta.patch_size is not None and bundle.meta.patch_size != ds.patch_size:
        log.warning("the model was trained on %d px patches, the dataset has %d px patches",
                    bundle.meta.patch_size, ds.patch_size)
    idx = ds.split_indices(opts.split)
    if idx.size == 0:
        raise DatasetError(f"split {opts.split!r} of dataset {ds.path} has no patches "
                           f"(counts: {ds.counts}); choose another split")
    out = (Path(opts.out_dir) if opts.out_dir is not None
           else default_output(bundle, ds, split))
    check_writable(out, folder=True)
    check_dataset_input(bundle.meta.input_profile, ds, idx, opts.strict)
    engine = create_engine(bundle, opts.engine, device, opts.threads)
    return _Setup(bundle, ds, split, idx, out, engine, opts, area)


@contextmanager
def _kept_predictions(s: _Setup) -> Iterator[_Kept | None]:
    """Room for the tuning split's predictions when ``min_area`` is tuned, else None."""
    if s.min_area != "tuned":
        yield None
        return
    idx = s.ds.split_indices(s.opts.tune_split)
    if idx.size == 0:
        raise DatasetError(f"cannot tune the minimum area: split {s.opts.tune_split!r} of "
                           f"{s.ds.path} has no patches; give a fixed --min-area such as 100")
    shape = (int(idx.size), s.ds.patch_size, s.ds.patch_size)
    with tempfile.TemporaryDirectory(prefix="landslip-tuning-") as tmp:
        prob = np.lib.format.open_memmap(Path(tmp) / "prob.npy", mode="w+", dtype=np.float32,
                                         shape=shape)
        truth = np.lib.format.open_memmap(Path(tmp) / "truth.npy", mode="w+", dtype=np.uint8,
                                          shape=shape)
        yield _Kept(idx, prob, truth)


def _tune(s: _Setup, kept: _Kept | None = None) -> tuple[float, Confusion, PRCurve] | None:
    """The F1-optimal grid threshold on the tuning split, its confusion and curve.

    With ``kept``, the split's probabilities and labels are also stored there.
    """
    idx = s.ds.split_indices(s.opts.tune_split)
    if idx.size == 0:
        return None
    sweep = ThresholdSweep(s.opts.bins)
    row = 0
    for batch, prob, truth in predict_split(s.bundle, s.ds, idx, s.engine, s.opts.batch_size,
                                            f"tuning on {s.opts.tune_split}", s.opts.tta):
        sweep.update(prob, truth)
        if kept is not None:
            kept.prob[row:row + batch.size] = prob
            kept.truth[row:row + batch.size] = truth
        row += batch.size
    curve = sweep.curve()
    t, conf = curve.best_threshold()
    return t, conf, curve


def _object_counter(opts: EvaluateOptions, pixel_area: float | None) -> ObjectCounter:
    return ObjectCounter(pixel_area=pixel_area,
                         size_edges=tuple(float(e) for e in opts.size_edges_m2),
                         rule=opts.object_rule, min_overlap=opts.min_overlap)


def _choose_min_area(s: _Setup, applied: float, kept: _Kept | None) -> _MinArea:
    """The minimum area: off, as given, or tuned on the kept tuning-split predictions.

    Tuning scores every area of :data:`MIN_AREA_GRID_PX` on the same thresholded (and
    slope-filtered) masks and takes the best object F1, the smallest area on ties.
    """
    pixel_area = pixel_area_m2(s.ds)
    unit = "m2" if pixel_area is not None else "px"
    if s.min_area is None or isinstance(s.min_area, float):
        return _MinArea(s.min_area, "off" if s.min_area is None else "fixed", unit)
    if kept is None:
        raise RuntimeError("internal error: min_area tuned without kept predictions")
    scale = pixel_area if pixel_area is not None else 1.0
    areas = [px * scale for px in MIN_AREA_GRID_PX]
    counters = [_object_counter(s.opts, pixel_area) for _ in areas]
    pixels = [Confusion(0, 0, 0, 0) for _ in areas]
    for start in range(0, kept.ids.size, s.opts.batch_size):
        rows = slice(start, start + s.opts.batch_size)
        prob, truth = np.asarray(kept.prob[rows]), np.asarray(kept.truth[rows])
        masks = mask_from_probability(prob, applied, truth != IGNORE)
        if s.opts.min_slope is not None:
            masks = _slope_filtered(s.ds, kept.ids[rows], masks, s.opts.min_slope)
        for c, area in enumerate(areas):
            pred = drop_small_regions(masks, area, pixel_area)[0] == LANDSLIDE
            counters[c].update(pred, truth)
            pixels[c] = pixels[c] + confusion(pred, truth)
    table: list[dict[str, float]] = []
    for area, px, counter, conf in zip(areas, MIN_AREA_GRID_PX, counters, pixels, strict=True):
        m = counter.result()
        table.append({"min_area": area, "min_area_px": float(px), "object_f1": m.f1,
                      "detection_rate": m.detection_rate,
                      "false_alarm_rate": m.false_alarm_rate,
                      "predicted_regions": float(m.n_pred), "pixel_f1": conf.f1})
    best = max(range(len(table)), key=lambda i: (table[i]["object_f1"], -i))
    log.info("minimum area tuned on %s: %g %s (object F1 %.3f)", s.opts.tune_split,
             areas[best], unit, table[best]["object_f1"])
    return _MinArea(areas[best], "tuned", unit, table)


def _choose_threshold(s: _Setup, thr: float | str, kept: _Kept | None = None) -> _Threshold:
    tuned = _tune(s, kept)
    if isinstance(thr, float):
        return _Threshold(thr, "fixed", tuned)
    if thr == "bundle":
        return _Threshold(s.bundle.threshold, "bundle", tuned)
    if tuned is None:
        raise DatasetError(f"cannot tune the threshold: split {s.opts.tune_split!r} of "
                           f"{s.ds.path} has no patches; give a fixed threshold such as 0.5")
    return _Threshold(tuned[0], "tuned", tuned)


def _score(s: _Setup, applied: float, min_area: float | None = None) -> _Scores:
    """Predict the split once: sweep, confusion, per-patch counts, objects, saved predictions."""
    opts = s.opts
    sweep = ThresholdSweep(opts.bins)
    total = Confusion(0, 0, 0, 0)
    pixel_area = pixel_area_m2(s.ds)
    objects = _object_counter(opts, pixel_area)
    per_patch = np.zeros((s.idx.size, 4), dtype=np.int64)
    s.out.mkdir(parents=True, exist_ok=True)
    with _prediction_writers(s.out, s.idx, s.ds.patch_size, opts.save_predictions) as writers:
        row = 0
        for batch, prob, truth in predict_split(s.bundle, s.ds, s.idx, s.engine,
                                                opts.batch_size, f"evaluating {s.split}",
                                                opts.tta):
            codes, masks = encode_predictions(prob, truth, applied)
            if opts.min_slope is not None:
                masks = _slope_filtered(s.ds, batch, masks, opts.min_slope)
            if min_area:
                masks = drop_small_regions(masks, min_area, pixel_area)[0]
            pred = masks == LANDSLIDE
            sweep.update(prob, truth)
            for j in range(batch.size):
                c = confusion(pred[j], truth[j])
                per_patch[row + j] = (c.tp, c.fp, c.fn, c.tn)
                total = total + c
            objects.update(pred, truth)
            if writers is not None:
                writers[0][row:row + batch.size] = codes
                writers[1][row:row + batch.size] = masks
            row += batch.size
    curve = sweep.curve()
    # The sweep and the direct thresholding must agree at grid thresholds (a cheap self-check).
    if (opts.min_slope is None and not min_area and (curve.thresholds == applied).any()
            and curve.confusion_at(applied) != total):
        raise RuntimeError("internal error: threshold sweep disagrees with direct thresholding")
    return _Scores(curve, total, per_patch, objects.result(), pixel_area)


def _slope_filtered(ds: DatasetFolder, batch: npt.NDArray[np.int64],
                    masks: npt.NDArray[np.uint8], min_slope: float) -> npt.NDArray[np.uint8]:
    """``masks`` without the predicted regions on flatter ground than ``min_slope``."""
    slope = np.asarray(ds.images[np.sort(batch), ds.band_names.index("slope")], np.float64)
    slope = slope[np.argsort(np.argsort(batch))]
    if ds.nodata is not None:
        slope[slope == np.float32(ds.nodata)] = np.nan
    return drop_flat_regions(masks, slope, min_slope)[0]


def _threshold_marks(
    s: _Setup, th: _Threshold, curve: PRCurve
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """(pixel metrics at the paper's and the tuned threshold, PR-curve marks by label)."""
    pixel_at: dict[str, dict[str, float]] = {}
    marks: dict[str, float] = {}
    if (curve.thresholds == PAPER_THRESHOLD).any():
        pixel_at["0.5 (paper)"] = _pixel_dict(curve.confusion_at(PAPER_THRESHOLD),
                                              PAPER_THRESHOLD)
        marks["0.5 (paper)"] = PAPER_THRESHOLD
    if th.tuned is not None:
        label = f"tuned on {s.opts.tune_split}"
        pixel_at[label] = _pixel_dict(curve.confusion_at(th.tuned[0]), th.tuned[0])
        marks[label] = th.tuned[0]
    if th.applied not in marks.values():
        marks["applied"] = th.applied
    return pixel_at, marks


def _draw_figures(s: _Setup, th: _Threshold, sc: _Scores,
                  marks: dict[str, float]) -> dict[str, Any]:
    """The PR curve, the area-frequency plot and the patch panels; {role: relative path}."""
    tune = s.opts.tune_split
    reference = ((f"{tune} split (tuning)", th.tuned[2])
                 if th.tuned is not None and _canonical_split(tune) != s.split else None)
    plot_pr_curve(sc.curve, s.out / "pr_curve.png", marks,
                  title=f"Precision-recall, landslide class ({s.split} split)",
                  label=f"{s.split} split", reference=reference)
    figs: dict[str, Any] = {"precision-recall curve": "pr_curve.png"}
    plot_area_frequency(sc.objects.as_dict()["area_frequency"], s.out / "area_frequency.png",
                        sc.objects.unit, title=f"Landslide area-frequency ({s.split} split)")
    figs["area-frequency plot"] = "area_frequency.png"
    chosen = (list(s.opts.figure_ids) if s.opts.figure_ids is not None
              else _choose_figure_patches(sc.per_patch, s.idx, s.opts.figure_patches))
    bad = [i for i in chosen if not 0 <= i < len(s.ds)]
    if bad:
        raise InputError(f"figure patch ids {bad} are not in the dataset (0..{len(s.ds) - 1})")
    if chosen:
        figs["patch panels"] = _draw_patches(s, np.asarray(chosen, dtype=np.int64), th.applied)
    return figs


def _draw_patches(s: _Setup, ids: npt.NDArray[np.int64], applied: float) -> list[str]:
    names: list[str] = []
    for batch, prob, truth in predict_split(s.bundle, s.ds, ids, s.engine, s.opts.batch_size,
                                            "drawing patches", s.opts.tta):
        for j, pid in enumerate(batch):
            c = confusion(apply_threshold(prob[j], applied), truth[j])
            name = f"patches/patch_{int(pid):06d}.png"
            plot_patch_panels(np.asarray(s.ds.images[int(pid)]), s.ds.band_names, truth[j],
                              prob[j], applied, s.out / name, s.ds.nodata,
                              title=f"patch {int(pid)} ({s.ds.index[int(pid)].split}): "
                              f"P {c.precision:.3f} R {c.recall:.3f} F1 {c.f1:.3f}")
            names.append(name)
    return names


def _build_report(s: _Setup, th: _Threshold, sc: _Scores, pixel_at: dict[str, Any],
                  figs: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
    """The report dictionary (layout: DESIGN.md, "evaluate")."""
    bundle, ds, bins = s.bundle, s.ds, s.opts.bins
    saved = {"probabilities": "probabilities.npy", "masks": "masks.npy", "ids": "patch_ids.npy"}
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "landslip_version": __version__,
        "note": CLASS_NOTE,
        "model": {
            "bundle": str(bundle.path), "model": bundle.meta.model,
            "model_params": bundle.meta.model_params, "band_set": bundle.meta.band_set,
            "band_names": list(bundle.meta.band_names), "bundle_threshold": bundle.threshold,
            "dataset_fingerprint": bundle.meta.dataset_fingerprint,
        },
        "dataset": {
            "path": str(ds.path), "fingerprint": ds.fingerprint, "split": s.split,
            "patches": int(s.idx.size), "patch_size": ds.patch_size,
            "split_method": ds.meta.get("split", {}).get("method"),
            "res": list(ds.res) if ds.res is not None else None,
            "pixel_area_m2": sc.pixel_area,
            "trained_on_this_dataset": (bundle.meta.dataset_fingerprint == ds.fingerprint
                                        if bundle.meta.dataset_fingerprint else None),
        },
        "threshold": {
            "mode": th.mode, "value": th.applied, "paper": PAPER_THRESHOLD,
            "tuned": th.tuned[0] if th.tuned is not None else None,
            "tuned_on": s.opts.tune_split if th.tuned is not None else None,
            "tuned_f1": th.tuned[1].f1 if th.tuned is not None else None,
            "grid": bins, "rule": "landslide where probability >= threshold",
        },
        "pixel": _pixel_dict(sc.total, th.applied),
        "pixel_at": pixel_at,
        "average_precision": sc.curve.average_precision(),
        "objects": sc.objects.as_dict(),
        "figures": figs,
        "files": files,
        "predictions": saved if s.opts.save_predictions else None,
        "prediction": _prediction_dict(s),
        "pr_curve": sc.curve.as_dict(step=max(1, (bins - 1) // 100)),
    }


def _min_area_dict(s: _Setup, area: _MinArea) -> dict[str, Any] | None:
    """The ``min_area`` block of the report (None when the filter is off)."""
    if area.mode == "off":
        return None
    tuned = area.mode == "tuned"
    return {"value": area.value, "unit": area.unit, "mode": area.mode,
            "tuned_on": s.opts.tune_split if tuned else None,
            "criterion": "object F1 (ties: the smaller area)" if tuned else None,
            "rule": "predicted 8-connected regions with area < value set to background before "
                    "pixels and objects are counted",
            "candidates": area.candidates}


def _prediction_dict(s: _Setup) -> dict[str, Any]:
    """How the patches were predicted: engine, threads, device, batch and window size, TTA."""
    side = s.ds.patch_size + (-s.ds.patch_size) % s.engine.required_multiple
    return {"engine": s.engine.name, "engine_description": s.engine.description,
            "threads": s.engine.threads, "device": str(s.engine.device),
            "batch_size": s.opts.batch_size, "window": [side, side], "tta": s.opts.tta}


def evaluate(
    bundle_or_run: str | Path | Bundle,
    dataset: str | Path | DatasetFolder,
    options: EvaluateOptions | None = None,
) -> EvaluationResult:
    """Evaluate a model bundle on one split of a dataset and write the report and figures.

    Args:
        bundle_or_run: A run folder, bundle folder, ``model.json`` path, or a loaded Bundle.
        dataset: A dataset folder (``landslip prepare``) or an opened DatasetFolder.
        options: The :class:`EvaluateOptions` (split, threshold, outputs, device); default
            the test split at the paper's threshold 0.5.

    Returns:
        The :class:`EvaluationResult`.

    Raises:
        DatasetError: Missing dataset, unknown or empty split, no validation split to tune on.
        BandError: The dataset lacks a band the bundle's band set needs.
        ModelError: Missing or broken bundle, or patch size incompatible with the model.
        InputError: A bad threshold, or a threshold tuned on the evaluated split.
    """
    opts = options if options is not None else EvaluateOptions()
    thr = parse_threshold(opts.threshold)
    s = _open(bundle_or_run, dataset, opts, thr)
    with s.engine:
        return _evaluate(s, thr)


def _evaluate(s: _Setup, thr: float | str) -> EvaluationResult:
    """The stages of :func:`evaluate` after :func:`_open`."""
    opts = s.opts
    with _kept_predictions(s) as kept:
        th = _choose_threshold(s, thr, kept)
        area = _choose_min_area(s, th.applied, kept)
    log.info("evaluating %d %s patches at threshold %.3f (%s)", s.idx.size, s.split,
             th.applied, th.mode)
    sc = _score(s, th.applied, area.value)
    files: dict[str, Any] = {}
    if opts.save_predictions:
        files.update(probabilities="probabilities.npy", masks="masks.npy", ids="patch_ids.npy")
    pixel_at, marks = _threshold_marks(s, th, sc.curve)
    figs = _draw_figures(s, th, sc, marks)
    files["patches_csv"] = _write_patch_table(s.out / "patches.csv", s.idx, sc.per_patch)
    report = _build_report(s, th, sc, pixel_at, figs, files)
    report["min_area"] = _min_area_dict(s, area)
    if opts.min_slope is not None:
        report["min_slope"] = opts.min_slope  # predicted regions on flatter ground removed
    js, md = write_report(report, s.out)
    return EvaluationResult(report=report, out_dir=s.out, report_json=js, report_md=md,
                            confusion=sc.total, threshold=th.applied, curve=sc.curve,
                            files=files)


@contextmanager
def _prediction_writers(
    out: Path, ids: npt.NDArray[np.int64], p: int, enabled: bool
) -> Iterator[tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]] | None]:
    """Memory-mapped .npy outputs for probabilities and masks, renamed into place on success."""
    if not enabled:
        yield None
        return
    shape = (int(ids.size), p, p)
    with atomic_path(out / "probabilities.npy") as tp, atomic_path(out / "masks.npy") as tm:
        probs = np.lib.format.open_memmap(tp, mode="w+", dtype=np.uint8, shape=shape)
        masks = np.lib.format.open_memmap(tm, mode="w+", dtype=np.uint8, shape=shape)
        yield probs, masks
        probs.flush()
        masks.flush()
        del probs, masks
    with atomic_path(out / "patch_ids.npy") as tmp:
        np.save(tmp, ids.astype(np.int64))


def _write_patch_table(path: Path, ids: npt.NDArray[np.int64],
                       per_patch: npt.NDArray[np.int64]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "tp", "fp", "fn", "tn", "precision", "recall", "f1"])
    for pid, (tp, fp, fn, tn) in zip(ids, per_patch, strict=True):
        c = Confusion(int(tp), int(fp), int(fn), int(tn))
        w.writerow([int(pid), c.tp, c.fp, c.fn, c.tn, f"{c.precision:.6f}", f"{c.recall:.6f}",
                    f"{c.f1:.6f}"])
    write_text_atomic(path, buf.getvalue())
    return path.name
