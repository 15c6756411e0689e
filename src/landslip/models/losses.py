"""Segmentation losses on logits that skip pixels labelled 255 (:data:`landslip.encoding.IGNORE`).

Every loss takes ``logits`` of shape (N, 1, H, W) (or (N, H, W)) float and ``target`` of shape
(N, H, W) (or (N, 1, H, W)) with values 0 (no landslide), 1 (landslide) and 255 (ignore), and
returns a scalar tensor. Probabilities are ``sigmoid(logits)``: the sigmoid of the paper's
network output layer lives here, not in the model (see :mod:`landslip.models.unet`).

Losses (names for :func:`create_loss`):

* ``dice`` (the paper): ``1 - (2 sum(y p) + s) / (sum(y) + sum(p) + s)`` with the sums over the
  whole batch and smoothing ``s = 1`` (``docs/reference.md``, "Dice coefficient loss").
* ``bce``: binary cross-entropy, mean over the valid pixels.
* ``bce-dice``: ``bce_weight * bce + dice_weight * dice``.
* ``focal``: Lin et al. (2017) ``-alpha_t (1 - p_t)^gamma log p_t``, mean over valid pixels.
* ``tversky``: ``1 - (TP + s) / (TP + alpha FP + beta FN + s)`` with soft counts over the batch;
  ``alpha = beta = 0.5`` is the dice loss.
* ``lovasz``: the Lovasz hinge (Berman et al. 2018), the Lovasz extension of the Jaccard loss
  of the landslide class applied to the hinge errors ``max(0, 1 - z s)`` (``s = +1`` landslide,
  ``-1`` background), over the valid pixels of the whole batch (``per_image=1``: mean over the
  images, those without valid pixels skipped).
* ``bce-lovasz``: ``bce_weight * bce + lovasz_weight * lovasz``.

A batch with no valid pixel gives a loss of 0 that still has a gradient graph (zero gradients).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from landslip.encoding import IGNORE, LANDSLIDE
from landslip.errors import ConfigError, ModelError

__all__ = [
    "BCEDiceLoss",
    "BCELoss",
    "BCELovaszLoss",
    "DiceLoss",
    "FocalLoss",
    "LovaszHingeLoss",
    "TverskyLoss",
    "create_loss",
    "list_losses",
    "prepare_targets",
]

def prepare_targets(
    logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flatten logits and labels and build the valid-pixel mask.

    Args:
        logits: (N, 1, H, W) or (N, H, W), float.
        target: (N, H, W) or (N, 1, H, W), integer 0/1/255 (or float 0/1).

    Returns:
        (logits, y, valid): 1-D tensors of equal length; ``y`` float 0/1 (0 where ignored),
        ``valid`` float 1 where the label is not 255.

    Raises:
        ModelError: If the shapes do not match.
    """
    if logits.ndim == 4 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if target.ndim == 4 and target.shape[1] == 1:
        target = target[:, 0]
    if logits.shape != target.shape:
        raise ModelError(
            f"logits of shape {tuple(logits.shape)} do not match labels of shape "
            f"{tuple(target.shape)}"
        )
    valid = target != IGNORE
    y = (target == LANDSLIDE) & valid
    return logits.reshape(-1), y.reshape(-1).to(logits.dtype), valid.reshape(-1).to(logits.dtype)


class DiceLoss(nn.Module):
    """The paper's dice coefficient loss over the whole batch, ignoring label 255.

    Args:
        smooth: Smoothing ``s`` added to numerator and denominator (1 in the paper's code).
    """

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return ``1 - dice`` as a scalar."""
        z, y, valid = prepare_targets(logits, target)
        p = torch.sigmoid(z) * valid
        inter = (y * p).sum()
        dice = (2 * inter + self.smooth) / (y.sum() + p.sum() + self.smooth)
        return 1 - dice


class TverskyLoss(nn.Module):
    """Tversky loss (Salehi et al. 2017) with soft counts over the batch, ignoring label 255.

    Args:
        alpha: Weight of false positives.
        beta: Weight of false negatives (``beta > alpha`` favours recall).
        smooth: Smoothing added to numerator and denominator.
    """

    def __init__(self, alpha: float = 0.3, beta: float = 0.7, smooth: float = 1.0) -> None:
        super().__init__()
        self.alpha, self.beta, self.smooth = alpha, beta, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return ``1 - tversky index`` as a scalar."""
        z, y, valid = prepare_targets(logits, target)
        p = torch.sigmoid(z) * valid
        tp = (p * y).sum()
        fp = (p * (1 - y)).sum()
        fn = ((1 - p) * y).sum()
        index = (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)
        return 1 - index


class BCELoss(nn.Module):
    """Binary cross-entropy on logits, mean over pixels whose label is not 255.

    Args:
        pos_weight: Weight of landslide pixels relative to background (1 = unweighted).
    """

    def __init__(self, pos_weight: float = 1.0) -> None:
        super().__init__()
        self.pos_weight = pos_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean cross-entropy over valid pixels."""
        z, y, valid = prepare_targets(logits, target)
        pw = None if self.pos_weight == 1.0 else torch.tensor(self.pos_weight, dtype=z.dtype,
                                                              device=z.device)
        per_pixel = functional.binary_cross_entropy_with_logits(z, y, reduction="none",
                                                                pos_weight=pw)
        return (per_pixel * valid).sum() / valid.sum().clamp_min(1.0)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017) on logits, mean over pixels whose label is not 255.

    Args:
        alpha: Weight of the landslide class (background gets ``1 - alpha``); a negative value
            disables class weighting.
        gamma: Focusing exponent (0 gives plain cross-entropy).
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0) -> None:
        super().__init__()
        self.alpha, self.gamma = alpha, gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean focal loss over valid pixels."""
        z, y, valid = prepare_targets(logits, target)
        ce = functional.binary_cross_entropy_with_logits(z, y, reduction="none")
        p = torch.sigmoid(z)
        p_t = p * y + (1 - p) * (1 - y)
        loss = ce * (1 - p_t) ** self.gamma
        if self.alpha >= 0:
            loss = loss * (self.alpha * y + (1 - self.alpha) * (1 - y))
        return (loss * valid).sum() / valid.sum().clamp_min(1.0)


class BCEDiceLoss(nn.Module):
    """``bce_weight * BCE + dice_weight * dice``, both ignoring label 255."""

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0,
                 smooth: float = 1.0) -> None:
        super().__init__()
        self.bce_weight, self.dice_weight = bce_weight, dice_weight
        self.bce = BCELoss()
        self.dice = DiceLoss(smooth)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the weighted sum as a scalar."""
        bce: torch.Tensor = self.bce(logits, target)
        dice: torch.Tensor = self.dice(logits, target)
        return self.bce_weight * bce + self.dice_weight * dice


def lovasz_hinge_flat(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The Lovasz hinge of one set of pixels (Berman et al. 2018, binary case).

    Args:
        logits: (P,) float logits of the valid pixels.
        labels: (P,) float 0/1 labels.

    Returns:
        Scalar: ``sum_i relu(e_(i)) g_i`` over the hinge errors ``e = 1 - z (2y - 1)`` sorted
        in decreasing order, with ``g`` the Jaccard-loss increments of the growing error sets
        (the Lovasz extension of the Jaccard loss); 0 (with a graph) for no pixels.
    """
    if logits.numel() == 0:
        return logits.sum() * 0
    errors = 1 - logits * (2 * labels - 1)
    errors_sorted, perm = torch.sort(errors, descending=True)
    gt = labels[perm]
    positives = gt.sum()
    intersection = positives - gt.cumsum(0)
    union = positives + (1 - gt).cumsum(0)
    jaccard = 1 - intersection / union
    grad = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return torch.dot(functional.relu(errors_sorted), grad.detach())


class LovaszHingeLoss(nn.Module):
    """Lovasz hinge loss (Berman et al. 2018) of the landslide class, ignoring label 255.

    Args:
        per_image: Non-zero: the mean of the loss of each image (images without valid pixels
            skipped); 0: one loss over the valid pixels of the whole batch (the default: the
            many patches without landslides would otherwise each add a loss driven by their
            single worst pixel).
    """

    def __init__(self, per_image: float = 0.0) -> None:
        super().__init__()
        self.per_image = bool(per_image)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the Lovasz hinge as a scalar."""
        z, y, valid = prepare_targets(logits, target)
        keep = valid > 0
        if not self.per_image:
            return lovasz_hinge_flat(z[keep], y[keep])
        n = int(target.shape[0])
        zs, ys, ks = z.view(n, -1), y.view(n, -1), keep.view(n, -1)
        losses = [lovasz_hinge_flat(zs[i][ks[i]], ys[i][ks[i]]) for i in range(n)
                  if bool(ks[i].any())]
        return torch.stack(losses).mean() if losses else z.sum() * 0


class BCELovaszLoss(nn.Module):
    """``bce_weight * BCE + lovasz_weight * Lovasz hinge``, both ignoring label 255."""

    def __init__(self, bce_weight: float = 1.0, lovasz_weight: float = 1.0,
                 per_image: float = 0.0) -> None:
        super().__init__()
        self.bce_weight, self.lovasz_weight = bce_weight, lovasz_weight
        self.bce = BCELoss()
        self.lovasz = LovaszHingeLoss(per_image)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the weighted sum as a scalar."""
        bce: torch.Tensor = self.bce(logits, target)
        lovasz: torch.Tensor = self.lovasz(logits, target)
        return self.bce_weight * bce + self.lovasz_weight * lovasz


_LOSSES: dict[str, Callable[..., nn.Module]] = {
    "dice": DiceLoss,
    "bce": BCELoss,
    "bce-dice": BCEDiceLoss,
    "focal": FocalLoss,
    "tversky": TverskyLoss,
    "lovasz": LovaszHingeLoss,
    "bce-lovasz": BCELovaszLoss,
}


def list_losses() -> list[str]:
    """Names of the available losses."""
    return list(_LOSSES)


def create_loss(name: str, **params: Any) -> nn.Module:
    """Build a loss by name.

    Args:
        name: One of :func:`list_losses` (``dice`` is the paper's).
        **params: Keyword parameters of the loss class (e.g. ``alpha`` and ``beta`` for
            ``tversky``).

    Raises:
        ConfigError: For an unknown name or parameter; the message lists the valid ones.
    """
    try:
        cls = _LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown loss {name!r}; valid losses: {', '.join(_LOSSES)}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"bad parameters {params} for loss {name!r}: {exc}") from exc
