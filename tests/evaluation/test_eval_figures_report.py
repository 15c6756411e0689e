"""Figures (PNG files with the expected panels) and the JSON/Markdown report content."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landslip.errors import InputError
from landslip.evaluation.figures import (
    colour_composite,
    plot_area_frequency,
    plot_patch_panels,
    plot_pr_curve,
    plot_study,
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


def _width(path: Path) -> int:
    with Image.open(path) as im:
        return int(im.size[0])


def test_patch_panels_skip_bands_the_data_lacks(tmp_path: Path) -> None:
    raw4, truth, prob = _patch(("blue", "green", "red", "nir"))
    full = plot_patch_panels(raw4, ("blue", "green", "red", "nir"), truth, prob, 0.5,
                             tmp_path / "full.png", title="4 bands")
    raw3 = raw4[[2, 1, 0]]
    rgb = plot_patch_panels(raw3, ("red", "green", "blue"), truth, prob, 0.5,
                            tmp_path / "rgb.png")
    # 6 panels (3 colour + truth + prediction + errors) against 4 (no NIR: no false colour/NDVI).
    assert _width(full) > _width(rgb) * 1.3
    assert colour_composite(raw3, ("red", "green", "blue"), ("nir", "red", "green")) is None
    comp = colour_composite(raw4, ("blue", "green", "red", "nir"), ("ndvi", "green", "blue"))
    assert comp is not None and comp.shape == (32, 32, 3)
    assert comp.min() >= 0 and comp.max() <= 1
    with pytest.raises(InputError):
        plot_patch_panels(raw4, ("blue", "green", "red", "nir"), truth[:5], prob, 0.5,
                          tmp_path / "bad.png")


def test_pr_curve_and_area_frequency_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    truth = (rng.random(5000) < 0.2).astype(np.uint8)
    prob = np.clip(rng.normal(0.3 + 0.4 * truth, 0.2), 0, 1)
    sweep = ThresholdSweep()
    sweep.update(prob, truth)
    p = plot_pr_curve(sweep.curve(), tmp_path / "pr.png", {"0.5": 0.5, "tuned": 0.47})
    assert p.is_file() and _width(p) > 200
    af = area_frequency(np.array([10.0, 200.0, 5000.0]), np.array([300.0]))
    assert plot_area_frequency(af, tmp_path / "af.png").is_file()
    assert plot_area_frequency(area_frequency(np.zeros(0), np.zeros(0)),
                               tmp_path / "empty.png").is_file()
    assert not list(tmp_path.glob(".*partial*"))


def test_study_plot(tmp_path: Path) -> None:
    rows = [{"dataset": ds, "band_set": bs, "batch_size": b, "f1_mean": 0.5, "f1_std": None}
            for ds in ("random", "blocks") for bs in ("bgrn", "bgr") for b in (8, 16)]
    assert plot_study(rows, tmp_path / "study.png").is_file()


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
    assert "masks.npy" in text
    # A minimal report still renders.
    assert "# Evaluation" in render_markdown({})


def test_read_report_rejects_other_files(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text('{"format": "other"}')
    with pytest.raises(InputError):
        read_report(tmp_path)
    with pytest.raises(InputError):
        read_report(tmp_path / "missing.json")
