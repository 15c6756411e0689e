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
never influences its own threshold. Whenever a validation split exists the tuned threshold is
computed anyway, so that the report and the PR curve show both.

A pixel counts when its label is 0 or 1 and none of the raw bands the band set needs is nodata
(such pixels are treated as label 255).
"""

from __future__ import annotations

import csv
import io
import logging
import math
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
from landslip.errors import DatasetError, InputError, ModelError
from landslip.evaluation.figures import plot_area_frequency, plot_patch_panels, plot_pr_curve
from landslip.evaluation.metrics import (
    DEFAULT_BINS,
    IGNORE,
    Confusion,
    PRCurve,
    ThresholdSweep,
    apply_threshold,
    confusion,
)
from landslip.evaluation.objects import DEFAULT_SIZE_EDGES_M2, MatchRule, ObjectCounter
from landslip.evaluation.report import CLASS_NOTE, REPORT_FORMAT, REPORT_VERSION, write_report
from landslip.io.atomic import atomic_path, write_text_atomic
from landslip.models.bundle import Bundle, load_bundle
from landslip.progress import track

__all__ = [
    "PAPER_THRESHOLD",
    "EvaluationResult",
    "default_output",
    "evaluate",
    "parse_threshold",
    "pixel_area_m2",
    "predict_split",
]

log = logging.getLogger(__name__)

PAPER_THRESHOLD = 0.5
"""The paper's decision threshold on the sigmoid output."""


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


def predict_split(
    bundle: Bundle,
    ds: DatasetFolder,
    indices: npt.NDArray[np.int64],
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    description: str = "predicting",
) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.uint8]]]:
    """Predict patches of a dataset, batch by batch.

    Args:
        bundle: The loaded bundle (its band set and normalisation are used).
        ds: The dataset.
        indices: Patch indices to predict, in this order.
        batch_size: Patches per forward pass.
        device: Torch device.
        description: Progress-bar label.

    Yields:
        (patch indices (B,), probabilities (B, P, P) float32 in [0, 1], labels for metrics
        (B, P, P) uint8: the dataset labels with 255 also where a needed raw band is nodata).
    """
    bundle.check_bands(list(ds.band_names))
    p = ds.patch_size
    m = bundle.required_multiple
    pad = (-p) % m
    model = bundle.model.to(device)
    n_batches = math.ceil(indices.size / batch_size)
    with torch.inference_mode():
        for batch in track(_batches(indices, batch_size), total=n_batches,
                           description=description):
            order = np.argsort(batch)  # memmaps read faster in increasing order
            raw = np.asarray(ds.images[batch[order]])
            labels = np.asarray(ds.labels[batch[order]])
            inv = np.argsort(order)
            raw, labels = raw[inv], labels[inv]
            x, valid = bundle.inputs(raw, list(ds.band_names), ds.nodata)
            if pad:
                x = np.pad(x, ((0, 0), (0, 0), (0, pad), (0, pad)))
            logits = model(torch.from_numpy(np.ascontiguousarray(x)).to(device))
            if logits.ndim != 4 or logits.shape[1] != 1:
                raise ModelError(f"the model returned shape {tuple(logits.shape)}; expected "
                                 "logits (N, 1, H, W)")
            prob = torch.sigmoid(logits[:, 0, :p, :p].float()).cpu().numpy()
            truth = np.where(valid, labels, np.uint8(IGNORE)).astype(np.uint8)
            yield batch, prob.astype(np.float32, copy=False), truth


def _tune(bundle: Bundle, ds: DatasetFolder, split: str, batch_size: int,
          device: str | torch.device, bins: int) -> tuple[float, Confusion, PRCurve] | None:
    idx = ds.split_indices(split)
    if idx.size == 0:
        return None
    sweep = ThresholdSweep(bins)
    for _, prob, truth in predict_split(bundle, ds, idx, batch_size, device,
                                        f"tuning on {split}"):
        sweep.update(prob, truth)
    curve = sweep.curve()
    t, conf = curve.best_threshold()
    return t, conf, curve


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


def evaluate(
    bundle_or_run: str | Path | Bundle,
    dataset: str | Path | DatasetFolder,
    split: str = "test",
    threshold: float | str = PAPER_THRESHOLD,
    out_dir: str | Path | None = None,
    *,
    save_predictions: bool = True,
    figure_patches: int = 4,
    figure_ids: Sequence[int] | None = None,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    bins: int = DEFAULT_BINS,
    tune_split: str = "val",
    object_rule: MatchRule = "overlap",
    min_overlap: float = 0.5,
    size_edges_m2: Sequence[float] = DEFAULT_SIZE_EDGES_M2,
) -> EvaluationResult:
    """Evaluate a model bundle on one split of a dataset and write the report and figures.

    Args:
        bundle_or_run: A run folder, bundle folder, ``model.json`` path, or a loaded Bundle.
        dataset: A dataset folder (``landslip prepare``) or an opened DatasetFolder.
        split: ``test`` (default), ``val`` or ``train``.
        threshold: A number in (0, 1) (default 0.5, the paper's), ``"tuned"`` (F1-optimal on
            ``tune_split``, then frozen) or ``"bundle"`` (the threshold stored in the bundle).
        out_dir: Output folder; default ``RUN/evaluation/<dataset name>/<split>``.
        save_predictions: Write ``probabilities.npy`` (uint8 probability x 255),
            ``masks.npy`` (uint8 0/1 at the applied threshold, 255 where not evaluated) and
            ``patch_ids.npy`` (int64 dataset indices of the rows).
        figure_patches: Number of patches drawn as paper-style panels (those with the most
            landslide pixels) when ``figure_ids`` is None.
        figure_ids: Dataset patch ids to draw instead.
        batch_size: Patches per forward pass.
        device: Torch device for the model.
        bins: Thresholds of the sweep grid.
        tune_split: Split on which the threshold is tuned.
        object_rule: Object matching rule (``overlap`` or ``iou``).
        min_overlap: Fraction needed for an object match.
        size_edges_m2: Size-class boundaries of the object metrics in m2.

    Returns:
        The :class:`EvaluationResult`.

    Raises:
        DatasetError: Missing dataset, unknown or empty split, no validation split to tune on.
        BandError: The dataset lacks a band the bundle's band set needs.
        ModelError: Missing or broken bundle, or patch size incompatible with the model.
        InputError: A bad threshold.
    """
    thr_opt = parse_threshold(threshold)
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    bundle = bundle_or_run if isinstance(bundle_or_run, Bundle) else load_bundle(bundle_or_run,
                                                                                 device)
    ds = dataset if isinstance(dataset, DatasetFolder) else open_dataset(dataset)
    bundle.check_bands(list(ds.band_names))
    if bundle.meta.patch_size is not None and bundle.meta.patch_size != ds.patch_size:
        log.warning("the model was trained on %d px patches, the dataset has %d px patches",
                    bundle.meta.patch_size, ds.patch_size)
    idx = ds.split_indices(split)
    split_name = {"validation": "val", "valid": "val"}.get(split, split)
    if idx.size == 0:
        raise DatasetError(f"split {split!r} of dataset {ds.path} has no patches "
                           f"(counts: {ds.counts}); choose another split")
    out = Path(out_dir) if out_dir is not None else default_output(bundle, ds, split_name)

    tuned = _tune(bundle, ds, tune_split, batch_size, device, bins)
    if isinstance(thr_opt, float):
        applied, mode = thr_opt, "fixed"
    elif thr_opt == "bundle":
        applied, mode = bundle.threshold, "bundle"
    else:
        if tuned is None:
            raise DatasetError(f"cannot tune the threshold: split {tune_split!r} of {ds.path} "
                               "has no patches; give a fixed threshold such as 0.5")
        applied, mode = tuned[0], "tuned"
    log.info("evaluating %d %s patches at threshold %.3f (%s)", idx.size, split_name, applied,
             mode)

    sweep = ThresholdSweep(bins)
    total = Confusion(0, 0, 0, 0)
    pixel_area = pixel_area_m2(ds)
    objects = ObjectCounter(pixel_area=pixel_area,
                            size_edges=tuple(float(e) for e in size_edges_m2),
                            rule=object_rule, min_overlap=min_overlap)
    per_patch = np.zeros((idx.size, 4), dtype=np.int64)  # tp, fp, fn, tn
    files: dict[str, Any] = {}
    p = ds.patch_size
    out.mkdir(parents=True, exist_ok=True)
    with _prediction_writers(out, idx, p, save_predictions) as writers:
        row = 0
        for batch, prob, truth in predict_split(bundle, ds, idx, batch_size, device,
                                                f"evaluating {split_name}"):
            pred = apply_threshold(prob, applied)
            sweep.update(prob, truth)
            for j in range(batch.size):
                c = confusion(pred[j], truth[j])
                per_patch[row + j] = (c.tp, c.fp, c.fn, c.tn)
                total = total + c
            objects.update(pred, truth)
            if writers is not None:
                probs_mm, masks_mm = writers
                probs_mm[row:row + batch.size] = np.rint(prob * 255).astype(np.uint8)
                masks_mm[row:row + batch.size] = np.where(truth == IGNORE, np.uint8(IGNORE),
                                                          pred.astype(np.uint8))
            row += batch.size
    if save_predictions:
        files.update(probabilities="probabilities.npy", masks="masks.npy", ids="patch_ids.npy")

    curve = sweep.curve()
    # The sweep and the direct thresholding must agree at grid thresholds (a cheap self-check).
    grid_k = np.flatnonzero(curve.thresholds == applied)
    if grid_k.size and curve.confusion_at(applied) != total:
        raise RuntimeError("internal error: threshold sweep disagrees with direct thresholding")

    pixel_at: dict[str, dict[str, float]] = {}
    marks: dict[str, float] = {}
    if (curve.thresholds == PAPER_THRESHOLD).any():
        pixel_at["0.5 (paper)"] = _pixel_dict(curve.confusion_at(PAPER_THRESHOLD),
                                              PAPER_THRESHOLD)
        marks["0.5 (paper)"] = PAPER_THRESHOLD
    if tuned is not None:
        pixel_at[f"tuned on {tune_split}"] = _pixel_dict(curve.confusion_at(tuned[0]), tuned[0])
        marks[f"tuned on {tune_split}"] = tuned[0]
    if applied not in marks.values():
        marks["applied"] = applied

    # Figures.
    figs: dict[str, Any] = {}
    plot_pr_curve(curve, out / "pr_curve.png", marks,
                  title=f"Precision-recall, landslide class ({split_name} split)",
                  label=f"{split_name} split",
                  reference=(f"{tune_split} split (tuning)", tuned[2]) if tuned is not None
                  and tune_split != split_name else None)
    figs["precision-recall curve"] = "pr_curve.png"
    obj = objects.result()
    obj_dict = obj.as_dict()
    plot_area_frequency(obj_dict["area_frequency"], out / "area_frequency.png", obj.unit,
                        title=f"Landslide area-frequency ({split_name} split)")
    figs["area-frequency plot"] = "area_frequency.png"
    chosen = (list(figure_ids) if figure_ids is not None
              else _choose_figure_patches(per_patch, idx, figure_patches))
    bad = [i for i in chosen if not 0 <= i < len(ds)]
    if bad:
        raise InputError(f"figure patch ids {bad} are not in the dataset (0..{len(ds) - 1})")
    panel_paths: list[str] = []
    if chosen:
        ids_arr = np.asarray(chosen, dtype=np.int64)
        for batch, prob, truth in predict_split(bundle, ds, ids_arr, batch_size, device,
                                                "drawing patches"):
            for j, pid in enumerate(batch):
                c = confusion(apply_threshold(prob[j], applied), truth[j])
                name = f"patches/patch_{int(pid):06d}.png"
                plot_patch_panels(np.asarray(ds.images[int(pid)]), ds.band_names, truth[j],
                                  prob[j], applied, out / name, ds.nodata,
                                  title=f"patch {int(pid)} ({ds.index[int(pid)].split}): "
                                  f"P {c.precision:.3f} R {c.recall:.3f} F1 {c.f1:.3f}")
                panel_paths.append(name)
        figs["patch panels"] = panel_paths
    files["patches_csv"] = _write_patch_table(out / "patches.csv", idx, per_patch)

    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "landslip_version": __version__,
        "note": CLASS_NOTE,
        "model": {
            "bundle": str(bundle.path),
            "model": bundle.meta.model,
            "model_params": bundle.meta.model_params,
            "band_set": bundle.meta.band_set,
            "band_names": list(bundle.meta.band_names),
            "bundle_threshold": bundle.threshold,
            "dataset_fingerprint": bundle.meta.dataset_fingerprint,
        },
        "dataset": {
            "path": str(ds.path),
            "fingerprint": ds.fingerprint,
            "split": split_name,
            "patches": int(idx.size),
            "patch_size": p,
            "split_method": ds.meta.get("split", {}).get("method"),
            "res": list(ds.res) if ds.res is not None else None,
            "pixel_area_m2": pixel_area,
            "trained_on_this_dataset": (bundle.meta.dataset_fingerprint == ds.fingerprint
                                        if bundle.meta.dataset_fingerprint else None),
        },
        "threshold": {
            "mode": mode,
            "value": applied,
            "paper": PAPER_THRESHOLD,
            "tuned": tuned[0] if tuned is not None else None,
            "tuned_on": tune_split if tuned is not None else None,
            "tuned_f1": tuned[1].f1 if tuned is not None else None,
            "grid": bins,
            "rule": "landslide where probability >= threshold",
        },
        "pixel": _pixel_dict(total, applied),
        "pixel_at": pixel_at,
        "average_precision": curve.average_precision(),
        "objects": obj_dict,
        "figures": figs,
        "files": files,
        "predictions": ({"probabilities": "probabilities.npy", "masks": "masks.npy",
                         "ids": "patch_ids.npy"} if save_predictions else None),
        "pr_curve": curve.as_dict(step=max(1, (bins - 1) // 100)),
    }
    js, md = write_report(report, out)
    return EvaluationResult(report=report, out_dir=out, report_json=js, report_md=md,
                            confusion=total, threshold=applied, curve=curve, files=files)


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
