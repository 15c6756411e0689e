"""The LightningModule's validation counts agree with landslip.evaluation.metrics."""

from __future__ import annotations

import numpy as np
import torch

from landslip.evaluation.metrics import confusion
from landslip.models.losses import create_loss
from landslip.models.registry import create_model
from landslip.training.module import SegmentationModule, confusion_counts


def test_confusion_counts_match_evaluation_metrics() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 8, 8, generator=g)
    y = (torch.rand(3, 8, 8, generator=g) > 0.6).to(torch.uint8)
    y[0, :2] = 255
    for threshold in (0.3, 0.5, 0.8):
        got = confusion_counts(logits, y, threshold).tolist()
        prob = torch.sigmoid(logits[:, 0]).numpy()
        ref = confusion(prob >= threshold, y.numpy())
        assert got == [ref.tp, ref.fp, ref.fn, ref.tn]
        assert sum(got) == int(np.count_nonzero(y.numpy() != 255))


def test_module_step_and_optimizer() -> None:
    m = SegmentationModule(create_model("unet", 3, width=4, depth=2), create_loss("dice"),
                           lr=0.01)
    opt = m.configure_optimizers()
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 0.01
    x = torch.randn(2, 3, 16, 16)
    assert m(x).shape == (2, 1, 16, 16)
