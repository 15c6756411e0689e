"""Lightning plug-ins of a landslip run: atomic checkpoints, last/best checkpoints, CSV and curve.

* :class:`AtomicCheckpointIO` writes every checkpoint to a temporary name and renames it, so a
  run killed while saving (kill -9) still has the previous, complete ``last.ckpt``.
* :func:`best_checkpoint` and :func:`last_checkpoints` are Lightning ``ModelCheckpoint`` callbacks:
  ``RUN/checkpoints/best.ckpt`` (best validation F1) and ``RUN/checkpoints/last.ckpt`` (every N
  training steps and at the end of every epoch, after validation), so ``--resume`` loses at
  most N steps.
* :class:`MetricsHistory` keeps ``RUN/metrics.csv`` (one row per finished epoch) and
  ``RUN/training_curve.png`` (losses and validation scores per epoch), rewritten atomically
  after each epoch on the global-zero process. On resume, rows of epochs at or after the
  checkpoint's epoch are dropped, so the file never holds an epoch twice. Lightning's
  ``CSVLogger`` cannot keep this file: it writes one sparse row per logging call, appends
  in place, and (Lightning 2.6) deletes an existing ``metrics.csv`` when a run resumes.
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from landslip.io.atomic import atomic_path, write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "METRIC_COLUMNS",
    "AtomicCheckpointIO",
    "MetricsHistory",
    "StepCheckpoint",
    "best_checkpoint",
    "last_checkpoints",
    "plot_training_curve",
    "read_metrics",
    "training_curve_figure",
]

METRIC_COLUMNS = ("epoch", "step", "train_loss", "val_loss", "val_precision", "val_recall",
                  "val_f1", "val_iou", "lr", "epoch_seconds")
"""Columns of ``metrics.csv``."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes through :func:`landslip.io.atomic.atomic_path`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        """Save to a temporary file beside ``path`` and rename it into place."""
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


def best_checkpoint(dirpath: str | Path) -> ModelCheckpoint:
    """Lightning's ``ModelCheckpoint`` keeping ``best.ckpt``: the best validation F1 so far.

    Args:
        dirpath: ``RUN/checkpoints``.
    """
    return ModelCheckpoint(dirpath=dirpath, filename="best", monitor="val_f1", mode="max",
                           save_top_k=1, save_on_train_epoch_end=True,
                           auto_insert_metric_name=False, enable_version_counter=False)


class StepCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` every N training steps that skips the step after an epoch's last batch.

    A checkpoint between an epoch's last batch and its validation would make a resumed run skip
    that validation; the end-of-epoch checkpoint follows the validation instead.
    """

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        """Save every N steps, except after the epoch's last batch."""
        if batch_idx + 1 >= trainer.num_training_batches:
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def last_checkpoints(dirpath: str | Path, every_n_steps: int) -> list[ModelCheckpoint]:
    """Two ``ModelCheckpoint`` callbacks keeping ``last.ckpt``, the latest training state.

    One saves every ``every_n_steps`` optimizer steps (:class:`StepCheckpoint`), the other at
    the end of every epoch, after its validation. Both keep one file without a monitor
    (``save_top_k=1``: the newest state). Lightning cannot do this with one callback: its step
    and epoch triggers are mutually exclusive, and with ``save_last=True`` and a monitor it
    writes ``last`` at an epoch end only when a better top-k file was written there, and
    defers step saves while the monitored metric is missing (epoch 0, the epoch after a resume).

    Args:
        dirpath: ``RUN/checkpoints``.
        every_n_steps: Step interval of mid-epoch saves.
    """
    common: dict[str, Any] = {"dirpath": dirpath, "filename": "last", "monitor": None,
                              "save_top_k": 1, "save_on_train_epoch_end": True,
                              "auto_insert_metric_name": False, "enable_version_counter": False}
    return [StepCheckpoint(every_n_train_steps=every_n_steps, **common),
            ModelCheckpoint(every_n_epochs=1, **common)]


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """Rows of a ``metrics.csv`` as dictionaries of floats (empty list when absent)."""
    p = Path(path)
    if not p.is_file():
        return []
    with p.open(newline="", encoding="utf-8") as fh:
        return [{k: _as_float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def training_curve_figure(rows: list[dict[str, float]], title: str = "") -> Figure:
    """The training curve: loss per epoch (left) and validation scores per epoch (right).

    Args:
        rows: ``metrics.csv`` rows (see :data:`METRIC_COLUMNS`); epochs are drawn 1-based.
        title: Figure title.

    Returns:
        A matplotlib Figure (not attached to pyplot) with two axes: "train" and "validation"
        loss; "F1", "precision" and "recall" of the landslide class on the validation split.
    """
    from matplotlib.figure import Figure

    epochs = [r["epoch"] + 1 for r in rows]
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax_loss, ax_f1 = fig.subplots(1, 2)
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], "o-", ms=3, label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], "o-", ms=3, label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    for key, label in (("val_f1", "F1"), ("val_precision", "precision"),
                       ("val_recall", "recall")):
        style = "o-" if key == "val_f1" else "--"
        ax_f1.plot(epochs, [r[key] for r in rows], style, ms=3, label=label,
                   lw=2 if key == "val_f1" else 1)
    ax_f1.set_xlabel("epoch")
    ax_f1.set_ylabel("validation score (landslide class)")
    ax_f1.set_ylim(0, 1)
    ax_f1.legend()
    ax_f1.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_training_curve(rows: list[dict[str, float]], out: str | Path, title: str = "") -> Path:
    """Write :func:`training_curve_figure` to a PNG (atomically) and return its path.

    Args:
        rows: ``metrics.csv`` rows (see :data:`METRIC_COLUMNS`).
        out: PNG path.
        title: Figure title.
    """
    fig = training_curve_figure(rows, title)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100)
    return Path(out)


class MetricsHistory(pl.Callback):
    """Write ``metrics.csv`` and ``training_curve.png`` after every epoch (global zero only).

    Args:
        csv_path: ``RUN/metrics.csv``.
        png_path: ``RUN/training_curve.png`` (None: no figure).
        title: Figure title.
    """

    def __init__(self, csv_path: str | Path, png_path: str | Path | None,
                 title: str = "") -> None:
        self.csv_path = Path(csv_path)
        self.png_path = None if png_path is None else Path(png_path)
        self.title = title
        self.rows: list[dict[str, float]] = []
        self._t0 = time.perf_counter()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Load earlier rows (resume) up to the epoch training restarts at."""
        start = trainer.current_epoch
        self.rows = [r for r in read_metrics(self.csv_path) if r.get("epoch", math.inf) < start]

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the epoch timer."""
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Append this epoch's row and rewrite the CSV and the figure."""
        # Every rank must read callback_metrics: it lazily all-reduces sync_dist metrics.
        m = trainer.callback_metrics
        if not trainer.is_global_zero:
            return
        lr = math.nan
        if trainer.optimizers:
            lr = float(trainer.optimizers[0].param_groups[0]["lr"])
        row: dict[str, float] = {
            "epoch": float(trainer.current_epoch),
            "step": float(trainer.global_step),
            **{k: _as_float(m[k]) if k in m else math.nan for k in METRIC_COLUMNS[2:8]},
            "lr": lr,
            "epoch_seconds": time.perf_counter() - self._t0,
        }
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(METRIC_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: (int(r[k]) if k in ("epoch", "step") else f"{r[k]:.6g}")
                             for k in METRIC_COLUMNS})
        write_text_atomic(self.csv_path, buf.getvalue())
        if self.png_path is not None:
            plot_training_curve(self.rows, self.png_path, self.title)
