"""The LightningModule that trains a segmentation model on landslide patches.

Training minimises the configured loss (dice by default) on logits, skipping pixels labelled
255. Validation accumulates the landslide-class confusion counts (tp, fp, fn, tn) over the whole
validation split, summed across DDP processes, and reports precision, recall, F1 and IoU through
:class:`landslip.evaluation.metrics.Confusion`, so training and ``landslip evaluate`` compute
the same figures. A pixel is predicted as landslide when ``sigmoid(logit) >= threshold``.

Logged metrics (epoch level): ``train_loss``, ``val_loss``, ``val_precision``, ``val_recall``,
``val_f1``, ``val_iou``; ``loss`` per step for the progress bar.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from torch import nn

from landslip.encoding import IGNORE
from landslip.evaluation.metrics import Confusion

__all__ = ["SegmentationModule", "confusion_counts"]


def confusion_counts(
    logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5
) -> torch.Tensor:
    """Landslide-class confusion counts of a batch, on the logits' device.

    Args:
        logits: (N, 1, H, W) or (N, H, W) float logits.
        target: (N, H, W) uint8 labels 0/1/255 (255 skipped).
        threshold: Probability threshold; ``sigmoid(logit) >= threshold`` is landslide.

    Returns:
        int64 tensor [tp, fp, fn, tn].
    """
    if logits.ndim == 4:
        logits = logits[:, 0]
    # sigmoid(z) >= t  <=>  z >= log(t / (1 - t)); avoids a sigmoid over the whole batch.
    pred = logits >= math.log(threshold / (1.0 - threshold))
    keep = target != IGNORE
    truth = target == 1
    tp = (pred & truth & keep).sum()
    fp = (pred & ~truth & keep).sum()
    fn = (~pred & truth & keep).sum()
    tn = keep.sum() - tp - fp - fn
    return torch.stack([tp, fp, fn, tn]).to(torch.int64)


class SegmentationModule(pl.LightningModule):
    """Lightning wrapper: loss, validation metrics and optimizer around a registry model.

    Args:
        model: Network mapping (N, C, H, W) float32 to logits (N, 1, H, W).
        loss: Loss module taking (logits, labels) and ignoring label 255.
        lr: Learning rate.
        optimizer: ``adam`` (the paper) or ``adamw``.
        weight_decay: Weight decay of the optimizer.
        threshold: Probability threshold of the validation metrics.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        lr: float = 1e-3,
        optimizer: Literal["adam", "adamw"] = "adam",
        weight_decay: float = 0.0,
        threshold: float = 0.5,
    ) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss
        self.lr = lr
        self.optimizer_name = optimizer
        self.weight_decay = weight_decay
        self.threshold = threshold
        self._val_counts = torch.zeros(4, dtype=torch.int64)
        self.last_val: Confusion | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 1, H, W) of inputs (N, C, H, W)."""
        out: torch.Tensor = self.model(x)
        return out

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        """Loss of one batch; logs ``loss`` (step, progress bar) and ``train_loss`` (epoch)."""
        x, y = batch
        loss: torch.Tensor = self.loss_fn(self(x), y)
        n = int(x.shape[0])
        self.log("loss", loss, on_step=True, on_epoch=False, prog_bar=True, logger=False,
                 batch_size=n)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        """Reset the accumulated confusion counts."""
        self._val_counts = torch.zeros(4, dtype=torch.int64, device=self.device)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Accumulate confusion counts and log the validation loss."""
        x, y = batch
        logits = self(x)
        loss = self.loss_fn(logits, y)
        self._val_counts += confusion_counts(logits.detach(), y, self.threshold)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=int(x.shape[0]),
                 sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        """Sum counts over processes and log precision, recall, F1 and IoU."""
        counts = self._val_counts
        if self.trainer.world_size > 1:
            counts = self.trainer.strategy.reduce(counts.clone(), reduce_op="sum")
        tp, fp, fn, tn = (int(v) for v in counts.tolist())
        conf = Confusion(tp, fp, fn, tn)
        self.last_val = conf
        # Counts are already summed over processes: no further sync.
        self.log_dict({"val_precision": conf.precision, "val_recall": conf.recall,
                       "val_iou": conf.iou}, sync_dist=False)
        self.log("val_f1", conf.f1, prog_bar=True, sync_dist=False)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam (the paper) or AdamW with the configured learning rate."""
        cls = torch.optim.AdamW if self.optimizer_name == "adamw" else torch.optim.Adam
        return cls(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
