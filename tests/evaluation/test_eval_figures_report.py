"""Figures (PNG files with the expected panels) and the JSON/Markdown report content."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landslip.errors import InputError
from landslip.evaluation.figures import (
    area_frequency_figure,
    colour_composite,
    patch_panels_figure,
    plot_area_frequency,
    plot_patch_panels,
    plot_pr_curve,
    plot_study,
    pr_curve_figure,
    study_figure,
)
from landslip.evaluation.metrics import ThresholdSweep
from landslip.evaluation.objects import area_frequency
from landslip.evaluation.report import (
    CLASS_NOTE,
    read_report,
    render_markdown,
    write_report,
)


def _patch(bands: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    raw = rng.integers(100, 3000, size=(len(bands), 32, 32)).astype(np.uint16)
    truth = np.zeros((32, 32), dtype=np.uint8)
    truth[8:20, 8:20] = 1
    truth[:, -4:] = 255
    prob = rng.random((32, 32)).astype(np.float32)
    return raw, truth, prob


def _png(path: Path) -> np.ndarray:
    """The PNG's RGB pixels as (H, W, 3) uint8."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _assert_not_blank(path: Path, min_drawn: float = 0.02) -> np.ndarray:
    """The PNG varies and a share of at least ``min_drawn`` of its pixels is not white."""
    px = _png(path)
    assert px.std() > 10
    assert (px < 250).any(axis=-1).mean() > min_drawn
    return px


def _legend_texts(legend: object) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]  # type: ignore[attr-defined]


def _panel_images(fig: object) -> dict[str, np.ndarray]:
    return {ax.get_title(): np.asarray(ax.get_images()[0].get_array())
            for ax in fig.axes}  # type: ignore[attr-defined]


def test_patch_panels_show_every_panel_the_data_allows(tmp_path: Path) -> None:
    raw4, truth, prob = _patch(("blue", "green", "red", "nir"))
    fig = patch_panels_figure(raw4, ("blue", "green", "red", "nir"), truth, prob, 0.5,
                              title="4 bands")
    panels = _panel_images(fig)
    assert list(panels) == ["true colour (R,G,B)", "false colour (NIR,R,G)", "NDVI,G,B",
                            "ground truth", "prediction (p ≥ 0.5)", "errors"]
    assert fig.get_suptitle() == "4 bands"
    assert _legend_texts(fig.legends[0]) == ["true pos.", "false pos.", "false neg.", "ignore"]
    for name, img in panels.items():
        assert np.asarray(img, dtype=np.float64).std() > 0, f"panel {name} is blank"
    # The category panels show what they claim: truth, prediction and errors, grey = ignore.
    np.testing.assert_array_equal(panels["ground truth"], np.where(truth == 255, 2, truth))
    pred = prob >= 0.5
    np.testing.assert_array_equal(panels["prediction (p ≥ 0.5)"],
                                  np.where(truth == 255, 2, pred))
    err = panels["errors"]
    assert (err[truth == 255] == 4).all()
    assert ((err == 1) == (pred & (truth == 1))).all()
    assert ((err == 3) == (~pred & (truth == 1))).all()

    full = plot_patch_panels(raw4, ("blue", "green", "red", "nir"), truth, prob, 0.5,
                             tmp_path / "full.png", title="4 bands")
    raw3 = raw4[[2, 1, 0]]
    rgb_fig = patch_panels_figure(raw3, ("red", "green", "blue"), truth, prob, 0.5)
    assert [ax.get_title() for ax in rgb_fig.axes] == [
        "true colour (R,G,B)", "ground truth", "prediction (p ≥ 0.5)", "errors"]
    rgb = plot_patch_panels(raw3, ("red", "green", "blue"), truth, prob, 0.5,
                            tmp_path / "rgb.png")
    # 6 panels against 4 (no NIR: no false colour/NDVI); both PNGs are drawn on.
    assert _assert_not_blank(full, 0.3).shape[1] > _assert_not_blank(rgb, 0.3).shape[1] * 1.3
    assert colour_composite(raw3, ("red", "green", "blue"), ("nir", "red", "green")) is None
    comp = colour_composite(raw4, ("blue", "green", "red", "nir"), ("ndvi", "green", "blue"))
    assert comp is not None and comp.shape == (32, 32, 3)
    assert comp.min() >= 0 and comp.max() <= 1
    with pytest.raises(InputError):
        plot_patch_panels(raw4, ("blue", "green", "red", "nir"), truth[:5], prob, 0.5,
                          tmp_path / "bad.png")


def test_pr_curve_marks_thresholds_in_the_legend(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    truth = (rng.random(5000) < 0.2).astype(np.uint8)
    prob = np.clip(rng.normal(0.3 + 0.4 * truth, 0.2), 0, 1)
    sweep = ThresholdSweep()
    sweep.update(prob, truth)
    curve = sweep.curve()
    fig = pr_curve_figure(curve, {"0.5": 0.5, "tuned": 0.47}, label="test split",
                          reference=("val split (tuning)", curve))
    (ax,) = fig.axes
    texts = _legend_texts(ax.get_legend())
    assert texts[:2] == ["val split (tuning)", "test split"]
    c = curve.confusion_at(0.5)
    assert texts[2] == (f"0.5: t=0.500, P {c.precision:.3f} R {c.recall:.3f} F1 {c.f1:.3f}")
    assert texts[3].startswith("tuned: t=0.470")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("recall", "precision")
    line = ax.get_lines()[1]  # the curve itself: its points are the sweep's
    has_pred = (curve.tp + curve.fp) > 0
    np.testing.assert_allclose(line.get_xdata(), curve.recall[has_pred])
    np.testing.assert_allclose(line.get_ydata(), curve.precision[has_pred])
    p = plot_pr_curve(curve, tmp_path / "pr.png", {"0.5": 0.5, "tuned": 0.47})
    _assert_not_blank(p)
    assert not list(tmp_path.glob(".*partial*"))


def test_area_frequency_plot(tmp_path: Path) -> None:
    af = area_frequency(np.array([10.0, 200.0, 5000.0]), np.array([300.0]))
    fig = area_frequency_figure(af, "m2")
    (ax,) = fig.axes
    assert _legend_texts(ax.get_legend()) == ["true", "predicted"]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert ax.get_xlabel() == "landslide area (m²)"
    true_line, pred_line = ax.get_lines()
    assert len(true_line.get_xdata()) == 3 and len(pred_line.get_xdata()) == 1
    _assert_not_blank(plot_area_frequency(af, tmp_path / "af.png"))
    empty = area_frequency_figure(area_frequency(np.zeros(0), np.zeros(0)))
    assert [t.get_text() for t in empty.axes[0].texts] == ["no landslide"]
    assert empty.axes[0].get_legend() is None
    _assert_not_blank(plot_area_frequency(area_frequency(np.zeros(0), np.zeros(0)),
                                          tmp_path / "empty.png"), 0.005)


def test_study_plot(tmp_path: Path) -> None:
    f1 = {("random", "bgrn", 8): 0.7, ("random", "bgrn", 16): 0.6, ("random", "bgr", 8): 0.5,
          ("random", "bgr", 16): 0.4, ("blocks", "bgrn", 8): 0.3, ("blocks", "bgrn", 16): 0.2,
          ("blocks", "bgr", 8): 0.1, ("blocks", "bgr", 16): 0.05}
    rows = [{"dataset": ds, "band_set": bs, "batch_size": b, "f1_mean": v, "f1_std": None}
            for (ds, bs, b), v in f1.items()]
    fig = study_figure(rows)
    assert [ax.get_title() for ax in fig.axes] == ["dataset: random", "dataset: blocks"]
    assert _legend_texts(fig.axes[-1].get_legend()) == ["batch 8", "batch 16"]
    for ax, ds in zip(fig.axes, ("random", "blocks"), strict=True):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["bgrn", "bgr"]
        heights = sorted(round(bar.get_height(), 6) for bar in ax.patches)
        assert heights == sorted(v for (d, _, _), v in f1.items() if d == ds)
    _assert_not_blank(plot_study(rows, tmp_path / "study.png"))


def _report() -> dict[str, object]:
    return {
        "format": "landslip-evaluation", "version": 1, "note": CLASS_NOTE,
        "model": {"model": "unet", "band_set": "bg-ndvi", "band_names": ["blue", "green", "ndvi"],
                  "bundle": "run/bundle"},
        "dataset": {"path": "ds", "split": "test", "patches": 3, "split_method": "random",
                    "trained_on_this_dataset": True},
        "threshold": {"mode": "tuned", "value": 0.42, "tuned": 0.42, "tuned_on": "val",
                      "tuned_f1": 0.8},
        "pixel": {"tp": 80.0, "fp": 20.0, "fn": 10.0, "tn": 890.0, "precision": 0.8,
                  "recall": 80 / 90, "f1": 160 / 190, "iou": 80 / 110, "pixels": 1000.0},
        "pixel_at": {"0.5 (paper)": {"threshold": 0.5, "tp": 70.0, "fp": 10.0, "fn": 20.0,
                                     "tn": 900.0, "precision": 0.875, "recall": 0.778,
                                     "f1": 0.82, "iou": 0.7}},
        "average_precision": 0.85,
        "objects": {"rule": "overlap", "min_overlap": 0.5, "unit": "m2", "true_landslides": 4,
                    "detected": 3, "detection_rate": 0.75, "predicted_regions": 5,
                    "false_alarms": 2, "false_alarm_rate": 0.4,
                    "by_size": [{"size_class": "<100 m2", "true": 4, "detected": 3,
                                 "detection_rate": 0.75, "predicted": 5, "false_alarms": 2,
                                 "false_alarm_rate": 0.4}]},
        "figures": {"precision-recall curve": "pr_curve.png", "patch panels": ["patches/a.png"]},
        "predictions": {"probabilities": "probabilities.npy", "masks": "masks.npy",
                        "ids": "patch_ids.npy"},
    }


def test_report_json_and_markdown(tmp_path: Path) -> None:
    js, md = write_report(_report(), tmp_path / "out")
    data = json.loads(js.read_text())
    assert data["pixel"]["tp"] == 80.0
    assert read_report(tmp_path / "out")["objects"]["detection_rate"] == 0.75
    text = md.read_text()
    # The class statement is prominent, and the numbers appear.
    assert "landslide class (label 1) only" in text
    assert "not micro or macro averages" in text
    assert "| applied | 0.420 | 0.800 | 0.889 | 0.842 | 0.727 | 80 | 20 | 10 | 890 |" in text
    assert "0.5 (paper)" in text and "tuned" in text
    assert "detection rate **0.750**" in text and "false-alarm rate **0.400**" in text
    assert "[pr_curve.png](pr_curve.png)" in text
    assert "masks.npy" in text and "round(p x 254)" in text
    # A minimal report still renders.
    assert "# Evaluation" in render_markdown({})


def test_read_report_rejects_other_files(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text('{"format": "other"}')
    with pytest.raises(InputError):
        read_report(tmp_path)
    with pytest.raises(InputError):
        read_report(tmp_path / "missing.json")


def test_read_report_checks_the_version(tmp_path: Path) -> None:
    rep = _report()
    write_report(rep, tmp_path / "ok")
    assert read_report(tmp_path / "ok" / "report.json")["version"] == 1
    (tmp_path / "report.json").write_text(json.dumps({**rep, "version": 2}))
    with pytest.raises(InputError, match="version 2, newer than landslip") as err:
        read_report(tmp_path)
    assert "upgrade landslip" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "report.json").write_text(json.dumps({**rep, "version": "1"}))
    with pytest.raises(InputError, match="no valid format version"):
        read_report(tmp_path)
