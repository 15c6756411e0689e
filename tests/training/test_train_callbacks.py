"""The training curve figure shows what metrics.csv holds, and the PNG is not blank."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from landslip.training.callbacks import (
    METRIC_COLUMNS,
    plot_training_curve,
    read_metrics,
    training_curve_figure,
)

ROWS = [
    {"epoch": 0.0, "step": 10.0, "train_loss": 0.9, "val_loss": 0.8, "val_precision": 0.2,
     "val_recall": 0.6, "val_f1": 0.3, "val_iou": 0.18, "lr": 1e-3, "epoch_seconds": 1.0},
    {"epoch": 1.0, "step": 20.0, "train_loss": 0.6, "val_loss": 0.7, "val_precision": 0.5,
     "val_recall": 0.7, "val_f1": 0.58, "val_iou": 0.41, "lr": 1e-3, "epoch_seconds": 1.0},
    {"epoch": 2.0, "step": 30.0, "train_loss": 0.4, "val_loss": 0.65, "val_precision": 0.6,
     "val_recall": 0.75, "val_f1": 0.67, "val_iou": 0.5, "lr": 1e-3, "epoch_seconds": 1.0},
]


def test_figure_has_loss_and_score_panels_with_legends() -> None:
    fig = training_curve_figure(ROWS, title="unet, bands bgrn")
    ax_loss, ax_score = fig.axes
    assert fig.get_suptitle() == "unet, bands bgrn"
    assert (ax_loss.get_xlabel(), ax_loss.get_ylabel()) == ("epoch", "loss")
    assert ax_score.get_xlabel() == "epoch"
    assert ax_score.get_ylabel() == "validation score (landslide class)"
    assert ax_score.get_ylim() == (0.0, 1.0)
    for ax, expected in ((ax_loss, ["train", "validation"]),
                         (ax_score, ["F1", "precision", "recall"])):
        legend = ax.get_legend()
        assert legend is not None
        assert [t.get_text() for t in legend.get_texts()] == expected
    # Lines plot the rows, epochs 1-based.
    lines = {ln.get_label(): ln for ax in fig.axes for ln in ax.get_lines()}
    for label, key in (("train", "train_loss"), ("validation", "val_loss"), ("F1", "val_f1"),
                       ("precision", "val_precision"), ("recall", "val_recall")):
        assert list(lines[label].get_xdata()) == [1.0, 2.0, 3.0], label
        assert list(lines[label].get_ydata()) == [r[key] for r in ROWS], label


def test_png_is_not_blank_and_shows_both_panels(tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    out = plot_training_curve(ROWS, tmp_path / "curve.png")
    assert out == tmp_path / "curve.png"
    img = mpimg.imread(out)[..., :3]
    assert img.shape[:2] == (340, 800)  # 8 x 3.4 inches at 100 dpi
    ink = (img < 0.9).any(axis=-1)
    assert 0.01 < ink.mean() < 0.5
    # Both halves carry drawing, and the default line colours (C0 blue, C1 orange) appear.
    half = img.shape[1] // 2
    assert ink[:, :half].mean() > 0.005 and ink[:, half:].mean() > 0.005
    for rgb in ((0.12, 0.47, 0.71), (1.0, 0.5, 0.05)):
        close = np.abs(img - np.array(rgb)).max(axis=-1) < 0.06
        assert close.sum() > 20, rgb


def test_read_metrics_of_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_metrics(tmp_path / "absent.csv") == []
    (tmp_path / "m.csv").write_text(",".join(METRIC_COLUMNS) + "\n0,5,0.5,,,,,,0.001,1\n")
    (row,) = read_metrics(tmp_path / "m.csv")
    assert row["train_loss"] == 0.5 and np.isnan(row["val_f1"])
