"""Evaluation figures: precision-recall curve, area-frequency plot, patch panels, study plot.

All figures are drawn with matplotlib's object API (``matplotlib.figure.Figure``, no pyplot
state, no GUI backend). Each ``*_figure`` function builds and returns the Figure (so that its
panels, titles and legends can be inspected); the matching ``plot_*`` function builds it and
writes it atomically as PNG.

Patch panels follow the paper's Figures 5 and 6: true colour (R: red, G: green, B: blue), false
colour (R: NIR, G: red, B: green), (R: NDVI, G: green, B: blue), the ground truth and the
prediction, plus an error map (true positives, false positives, false negatives). A colour
panel is skipped when the data lacks one of its bands (RGB-only data has no NIR, so no false
colour and no NDVI panel). Each colour channel is stretched linearly between its 2nd and 98th
percentile over the patch's valid pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.encoding import IGNORE, LANDSLIDE, apply_threshold
from landslip.errors import BandError, InputError
from landslip.evaluation.metrics import PRCurve
from landslip.io.atomic import atomic_path
from landslip.spectral.bands import resolve_band_set

__all__ = [
    "COLOUR_PANELS",
    "ERROR_LEGEND",
    "area_frequency_figure",
    "colour_composite",
    "patch_panels_figure",
    "plot_area_frequency",
    "plot_patch_panels",
    "plot_pr_curve",
    "plot_study",
    "pr_curve_figure",
    "save_figure",
    "study_figure",
]

COLOUR_PANELS: tuple[tuple[str, tuple[str, str, str]], ...] = (
    ("true colour (R,G,B)", ("red", "green", "blue")),
    ("false colour (NIR,R,G)", ("nir", "red", "green")),
    ("NDVI,G,B", ("ndvi", "green", "blue")),
)
"""(title, (red, green, blue channel band names)) of the colour panels, in order."""

ERROR_LEGEND: tuple[tuple[str, str], ...] = (
    ("gold", "true pos."), ("red", "false pos."), ("deepskyblue", "false neg."),
    ("0.5", "ignore"),
)
"""(colour, legend label) of the error-map classes after true negatives (drawn black)."""


def save_figure(fig: Any, out: str | Path, dpi: int = 110) -> Path:
    """Write a matplotlib Figure as PNG atomically and return the path."""
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return Path(out)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_pr_curve(
    curve: PRCurve,
    out: str | Path,
    marks: Mapping[str, float] | None = None,
    title: str = "Precision-recall curve (landslide class)",
    label: str = "landslide class",
    reference: tuple[str, PRCurve] | None = None,
) -> Path:
    """Write :func:`pr_curve_figure` as PNG to ``out`` and return the path."""
    return save_figure(pr_curve_figure(curve, marks, title, label, reference), out)


def pr_curve_figure(
    curve: PRCurve,
    marks: Mapping[str, float] | None = None,
    title: str = "Precision-recall curve (landslide class)",
    label: str = "landslide class",
    reference: tuple[str, PRCurve] | None = None,
) -> Any:
    """A precision-recall curve with chosen thresholds marked.

    Args:
        curve: The sweep's curve.
        marks: {label: threshold}; each is marked at the nearest grid threshold with its
            precision, recall and F1 in the legend (e.g. ``{"0.5": 0.5, "tuned": 0.43}``).
        title: Figure title.
        label: Legend label of ``curve``.
        reference: Optional (label, curve) drawn thin and dashed for comparison, e.g. the
            validation curve on which the threshold was tuned.

    Returns:
        The ``matplotlib.figure.Figure`` (one axes, legend entries: reference, curve, marks).
    """
    p, r, f1 = curve.precision, curve.recall, curve.f1
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot()
    if reference is not None:
        ref = reference[1]
        keep = (ref.tp + ref.fp) > 0
        ax.plot(ref.recall[keep], ref.precision[keep], "--", color="0.5", lw=1.0,
                label=reference[0])
    # Points where nothing is predicted have precision 0 by convention; leave them out.
    has_pred = (curve.tp + curve.fp) > 0
    ax.plot(r[has_pred], p[has_pred], color="tab:blue", lw=1.5, label=label)
    colours = ("tab:red", "tab:green", "tab:orange", "tab:purple")
    for i, (name, t) in enumerate((marks or {}).items()):
        k = int(np.argmin(np.abs(curve.thresholds - t)))
        ax.plot(r[k], p[k], "o", ms=8, color=colours[i % len(colours)],
                label=f"{name}: t={t:.3f}, P {p[k]:.3f} R {r[k]:.3f} F1 {f1[k]:.3f}")
    for level in (0.2, 0.4, 0.6, 0.8):  # iso-F1 lines
        rr = np.linspace(level / (2 - level) + 1e-6, 1, 100)
        ax.plot(rr, level * rr / (2 * rr - level), color="0.85", lw=0.8, zorder=0)
        ax.annotate(f"F1={level}", (1.0, level / (2 - level)), fontsize=7, color="0.6",
                    ha="right", va="bottom")
    ax.set(xlim=(0, 1.01), ylim=(0, 1.01), xlabel="recall", ylabel="precision", title=title)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_area_frequency(
    area_freq: Mapping[str, Sequence[float]],
    out: str | Path,
    unit: str = "m2",
    title: str = "Landslide area-frequency",
) -> Path:
    """Write :func:`area_frequency_figure` as PNG to ``out`` and return the path."""
    return save_figure(area_frequency_figure(area_freq, unit, title), out)


def area_frequency_figure(
    area_freq: Mapping[str, Sequence[float]],
    unit: str = "m2",
    title: str = "Landslide area-frequency",
) -> Any:
    """Frequency density against area, true and predicted landslides, log-log.

    Args:
        area_freq: The output of :func:`landslip.evaluation.objects.area_frequency`.
        unit: Area unit shown on the axis (``m2`` or ``px``).
        title: Figure title.

    Returns:
        The ``matplotlib.figure.Figure`` (one axes; legend ``true``, ``predicted``, or the text
        ``no landslide`` when there is none).
    """
    edges = np.asarray(area_freq.get("edges", []), dtype=np.float64)
    fig = _figure(5.5, 4.5)
    ax = fig.add_subplot()
    if edges.size >= 2:
        centres = np.sqrt(edges[:-1] * edges[1:])
        for key, label, style in (("true_density", "true", "o-"),
                                  ("pred_density", "predicted", "s--")):
            d = np.asarray(area_freq[key], dtype=np.float64)
            keep = d > 0
            ax.plot(centres[keep], d[keep], style, label=label, ms=5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no landslide", ha="center", va="center", transform=ax.transAxes)
    shown = "m²" if unit == "m2" else "pixels"
    ax.set(xlabel=f"landslide area ({shown})", ylabel=f"frequency density (1/{shown})",
           title=title)
    ax.grid(alpha=0.3, which="both")
    return fig


def _stretch(band: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]) -> npt.NDArray[Any]:
    vals = band[valid]
    if vals.size == 0:
        return np.zeros(band.shape, dtype=np.float32)
    lo, hi = np.percentile(vals, [2, 98])
    if hi <= lo:
        hi = lo + 1e-6
    out: npt.NDArray[np.float32] = np.clip((band - lo) / (hi - lo), 0, 1).astype(np.float32)
    return out


def colour_composite(
    raw: npt.NDArray[Any],
    band_names: Sequence[str],
    channels: tuple[str, str, str],
    nodata: float | None = None,
) -> npt.NDArray[np.float32] | None:
    """An (H, W, 3) float image in [0, 1] of three (raw or derived) bands, or None.

    Args:
        raw: (C, H, W) raw bands of one patch.
        band_names: Names of the C raw bands.
        channels: Band names for red, green and blue (derived names such as ``ndvi`` work).
        nodata: Nodata value of the raw bands; nodata pixels are drawn black.

    Returns:
        The percentile-stretched composite, or None when the data lacks a needed band.
    """
    try:
        bs = resolve_band_set(",".join(channels))
        bands, valid = bs.compute(raw, band_names, nodata)
    except BandError:
        return None
    rgb = np.stack([_stretch(b, valid) for b in bands], axis=-1)
    rgb[~valid] = 0
    return rgb


def plot_patch_panels(
    raw: npt.NDArray[Any],
    band_names: Sequence[str],
    truth: npt.NDArray[np.uint8],
    prob: npt.NDArray[np.floating[Any]],
    threshold: float,
    out: str | Path,
    nodata: float | None = None,
    title: str = "",
) -> Path:
    """Write :func:`patch_panels_figure` as PNG to ``out`` and return the path."""
    return save_figure(
        patch_panels_figure(raw, band_names, truth, prob, threshold, nodata, title), out)


def _category_panels(
    truth: npt.NDArray[np.uint8], prob: npt.NDArray[np.floating[Any]], threshold: float
) -> list[tuple[str, npt.NDArray[Any], dict[str, Any]]]:
    """The ground-truth, prediction and error panels: (title, uint8 image, imshow keywords)."""
    from matplotlib.colors import ListedColormap

    ignore = truth == IGNORE
    t = truth == LANDSLIDE
    pred = apply_threshold(prob, threshold)
    cat = {"cmap": ListedColormap(["black", "white", "0.5"]), "vmin": 0, "vmax": 2,
           "interpolation": "nearest"}
    err = np.zeros(truth.shape, dtype=np.uint8)  # 0 TN, 1 TP, 2 FP, 3 FN, 4 ignore
    err[pred & t] = 1
    err[pred & ~t] = 2
    err[~pred & t] = 3
    err[ignore] = 4
    err_cmap = ListedColormap(["black", *(c for c, _ in ERROR_LEGEND)])
    return [
        ("ground truth", np.where(ignore, 2, t).astype(np.uint8), cat),
        (f"prediction (p ≥ {threshold:.3g})", np.where(ignore, 2, pred).astype(np.uint8), cat),
        ("errors", err, {"cmap": err_cmap, "vmin": 0, "vmax": 4, "interpolation": "nearest"}),
    ]


def patch_panels_figure(
    raw: npt.NDArray[Any],
    band_names: Sequence[str],
    truth: npt.NDArray[np.uint8],
    prob: npt.NDArray[np.floating[Any]],
    threshold: float,
    nodata: float | None = None,
    title: str = "",
) -> Any:
    """One patch as in the paper's Figures 5 and 6 (plus an error map).

    Args:
        raw: (C, H, W) raw bands of the patch.
        band_names: Names of the C raw bands.
        truth: (H, W) uint8 labels 0/1/255.
        prob: (H, W) landslide probability in [0, 1].
        threshold: Decision threshold (:func:`~landslip.encoding.apply_threshold`).
        nodata: Nodata value of the raw bands.
        title: Figure title (e.g. the patch id and its F1).

    Returns:
        The ``matplotlib.figure.Figure``: one axes per panel (the colour panels the data
        allows, then ground truth, prediction and errors), titled, and a figure legend of the
        error classes (:data:`ERROR_LEGEND`).
    """
    if truth.shape != prob.shape or raw.shape[-2:] != truth.shape:
        raise InputError(f"patch shapes differ: bands {raw.shape}, labels {truth.shape}, "
                         f"probabilities {prob.shape}")
    from matplotlib.patches import Patch

    panels: list[tuple[str, npt.NDArray[Any], dict[str, Any]]] = []
    for name, channels in COLOUR_PANELS:
        img = colour_composite(raw, band_names, channels, nodata)
        if img is not None:
            panels.append((name, img, {}))
    panels += _category_panels(truth, prob, threshold)
    fig = _figure(2.6 * len(panels), 3.1)
    axes = fig.subplots(1, len(panels))
    for ax, (name, img, kw) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(img, **kw)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(color=c, label=n) for c, n in ERROR_LEGEND]
    fig.legend(handles=handles, loc="outside lower right", ncol=4, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_study(
    rows: Sequence[Mapping[str, Any]],
    out: str | Path,
    metric: str = "f1",
    title: str = "Landslide-class F1 by band set and batch size (test split)",
) -> Path:
    """Write :func:`study_figure` as PNG to ``out`` and return the path."""
    return save_figure(study_figure(rows, metric, title), out)


def study_figure(
    rows: Sequence[Mapping[str, Any]],
    metric: str = "f1",
    title: str = "Landslide-class F1 by band set and batch size (test split)",
) -> Any:
    """Grouped bars of a metric by band set (groups) and batch size (bars), one panel per dataset.

    Args:
        rows: Study table rows with keys ``dataset``, ``band_set``, ``batch_size``,
            ``{metric}_mean`` and ``{metric}_std`` (std may be None with one seed).
        metric: ``f1``, ``precision`` or ``recall``.
        title: Figure title.

    Returns:
        The ``matplotlib.figure.Figure``: one axes per dataset (titled ``dataset: NAME``), the
        legend (``batch N``) on the last.
    """
    datasets = list(dict.fromkeys(str(r["dataset"]) for r in rows))
    band_sets = list(dict.fromkeys(str(r["band_set"]) for r in rows))
    batches = sorted({int(r["batch_size"]) for r in rows})
    fig = _figure(max(4.5, 1.6 * len(band_sets) * max(1, len(datasets)) + 1.5), 4.2)
    axes = np.atleast_1d(fig.subplots(1, max(1, len(datasets)), sharey=True, squeeze=False)[0])
    width = 0.8 / max(1, len(batches))
    x = np.arange(len(band_sets))
    for ax, ds in zip(axes, datasets, strict=False):
        for j, bsz in enumerate(batches):
            vals, errs = [], []
            for bs in band_sets:
                match = [r for r in rows if str(r["dataset"]) == ds
                         and str(r["band_set"]) == bs and int(r["batch_size"]) == bsz]
                vals.append(float(match[0][f"{metric}_mean"]) if match else np.nan)
                std = match[0].get(f"{metric}_std") if match else None
                errs.append(float(std) if std is not None else 0.0)
            ax.bar(x + (j - (len(batches) - 1) / 2) * width, vals, width,
                   yerr=errs if any(errs) else None, capsize=2, label=f"batch {bsz}")
        ax.set_xticks(x, band_sets)
        ax.set_ylim(0, 1)
        ax.set_title(f"dataset: {ds}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"{metric} (landslide class)")
    axes[-1].legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    return fig
