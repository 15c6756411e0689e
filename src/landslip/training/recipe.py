"""Training-recipe parts of the LightningModule: learning-rate schedules and the weight EMA.

Schedules (``schedule`` option), stepped after every optimizer step, not per epoch:

* ``none`` (the paper): the learning rate stays ``lr``.
* ``cosine``: linear warm-up from ``lr / W`` to ``lr`` over the first ``W`` steps
  (``W = round(warmup_epochs * steps per epoch)``, none when 0), then half a cosine from ``lr``
  down to 0 at the end of the run (:func:`cosine_factor`).
* ``onecycle``: torch's ``OneCycleLR`` with ``max_lr = lr`` (starts at ``lr / 25``, ends near
  0); its rising phase lasts ``warmup_epochs`` when given, else 30 % of the run.

The run's length is Lightning's ``estimated_stepping_batches`` (epochs x batches per epoch,
``max_train_batches`` and the number of devices included). A resumed run restores the
scheduler's step count from the checkpoint; ``onecycle`` also keeps its total length, so its
``epochs`` cannot change on resume (:func:`check_resume`).

:class:`WeightEMA` keeps an exponential moving average of the weights (``ema`` option, the
decay): after every optimizer step ``w_ema <- d w_ema + (1 - d) w`` with
``d = min(decay, (1 + n) / (10 + n))`` after ``n`` earlier updates (the usual warm-up, so that
the average of a short run is not dominated by its random start). Floating-point buffers
(BatchNorm running statistics) are averaged the same way, other buffers copied. The EMA copy is
a submodule (``ema.module.*`` in the state dict), so checkpoints hold it and ``--resume``
restores it; its parameters need no gradient (DDP ignores them).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

import torch
from torch import nn

from landslip.errors import ConfigError
from landslip.training.config import TrainConfig

__all__ = [
    "Schedule",
    "WeightEMA",
    "build_scheduler",
    "bundle_state_dict",
    "check_resume",
    "cosine_factor",
]

Schedule = Literal["none", "cosine", "onecycle"]


def cosine_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor of optimizer step ``step`` (0-based) under ``cosine``.

    Args:
        step: Index of the optimizer step the factor applies to.
        total: Number of optimizer steps of the whole run.
        warmup: Number of warm-up steps (0: none).

    Returns:
        ``(step + 1) / warmup`` during the warm-up, then
        ``0.5 (1 + cos(pi (step - warmup) / (total - warmup)))`` (0 from ``total`` on).
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule, lr: float,
                    total_steps: int, warmup_steps: int) -> Any:
    """The per-step learning-rate scheduler of ``schedule`` (None for ``none``).

    Args:
        optimizer: The optimizer, its learning rate set to ``lr``.
        schedule: ``none``, ``cosine`` or ``onecycle``.
        lr: The peak learning rate.
        total_steps: Optimizer steps of the whole run (>= 1).
        warmup_steps: Warm-up steps (``onecycle``: its rising phase; 0 = 30 % of the run).

    Returns:
        A torch ``LRScheduler`` or None.
    """
    total_steps = max(1, total_steps)
    if schedule == "cosine":
        warm = min(warmup_steps, total_steps)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine_factor(step, total_steps, warm))
    if schedule == "onecycle":
        # One step more than the run: the scheduler is stepped after each of the total_steps
        # optimizer steps, and its state after the last one is then the cycle's end (lr ~ 0).
        n = total_steps + 1
        pct = 0.3 if warmup_steps <= 0 else warmup_steps / n
        pct = min(max(pct, 1.5 / n), 1 - 1.5 / n)  # each phase lasts at least one step
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=n,
                                                   pct_start=pct)
    return None


class WeightEMA(nn.Module):
    """Exponential moving average of a model's weights (and floating-point buffers).

    Args:
        model: The trained model; a deep copy (same memory format) starts the average.
        decay: The decay ``d`` (e.g. 0.999), reached after the warm-up of the decay.

    Attributes:
        module: The averaged copy, evaluated in place of the model (validation, bundle).
        updates: 0-d int64 buffer: number of updates so far.
    """

    updates: torch.Tensor

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.decay = decay
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))

    def current_decay(self) -> float:
        """The decay of the next update: ``min(decay, (1 + n) / (10 + n))``."""
        n = int(self.updates)
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights (one optimizer step)."""
        weight = 1.0 - self.current_decay()
        for avg, new in zip(self.module.parameters(), model.parameters(), strict=True):
            avg.lerp_(new.detach().to(avg.dtype), weight)
        for buf, live in zip(self.module.buffers(), model.buffers(), strict=True):
            if buf.is_floating_point():
                buf.lerp_(live.to(buf.dtype), weight)
            else:
                buf.copy_(live)
        self.updates += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the averaged model."""
        out: torch.Tensor = self.module(x)
        return out


def bundle_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network weights of a module checkpoint: the EMA's when it has one, else the model's.

    Args:
        state_dict: A :class:`~landslip.training.module.SegmentationModule` state dict
            (``model.*`` and, with EMA, ``ema.module.*`` keys).

    Returns:
        The state dict of the bare network (prefix removed).
    """
    prefix = "ema.module." if any(k.startswith("ema.module.") for k in state_dict) else "model."
    return {k.removeprefix(prefix): v for k, v in state_dict.items() if k.startswith(prefix)}


def check_resume(saved: TrainConfig, config: TrainConfig) -> None:
    """Refuse recipe changes a resumed run cannot follow.

    Args:
        saved: The run's saved configuration.
        config: The new configuration.

    Raises:
        ConfigError: EMA switched on or off, or ``onecycle`` with a changed schedule or epochs.
    """
    if (saved.ema is None) != (config.ema is None):
        raise ConfigError(f"--resume cannot switch the weight EMA {'off' if saved.ema else 'on'} "
                          "(the checkpoint must match); start a new run folder")
    if "onecycle" in (saved.schedule, config.schedule) and (
            saved.schedule != config.schedule or saved.epochs != config.epochs):
        raise ConfigError("--resume cannot change the schedule or the epochs of a onecycle run "
                          "(its length is fixed); start a new run folder")
