"""Losses: label 255 ignored, the paper's dice on known values, perfect predictions near 0."""

from __future__ import annotations

import pytest
import torch

from landslip.errors import ConfigError, ModelError
from landslip.models.losses import create_loss, list_losses


def _labels(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(3, 16, 16, generator=g) > 0.7).to(torch.uint8)
    y[:, :, :4] = 255
    return y


def test_all_losses_listed() -> None:
    assert list_losses() == ["dice", "bce", "bce-dice", "focal", "tversky"]


def test_dice_known_value_whole_batch_smoothing_1() -> None:
    # logits 0 -> p = 0.5 everywhere; k landslide pixels among n valid ones.
    y = torch.zeros(2, 4, 4, dtype=torch.uint8)
    y[0, 0, :3] = 1  # k = 3
    y[1, 3, :] = 255  # 4 ignored -> n = 28
    logits = torch.zeros(2, 1, 4, 4)
    k, n = 3.0, 28.0
    expected = 1 - (2 * 0.5 * k + 1) / (k + 0.5 * n + 1)
    got = create_loss("dice")(logits, y)
    assert got.item() == pytest.approx(expected, abs=1e-6)
    # Over the whole batch, not averaged per image: an image without landslides changes it.
    assert create_loss("dice")(logits[:1], y[:1]).item() != pytest.approx(expected)


@pytest.mark.parametrize("name", list_losses())
def test_ignored_pixels_have_no_effect(name: str) -> None:
    loss_fn = create_loss(name)
    y = _labels()
    g = torch.Generator().manual_seed(1)
    base = torch.randn(3, 1, 16, 16, generator=g)
    other = base.clone()
    other[:, 0, :, :4] = torch.randn(3, 16, 4, generator=g) * 50  # change only ignored pixels
    a = base.clone().requires_grad_(True)
    la = loss_fn(a, y)
    lb = loss_fn(other, y)
    assert la.item() == pytest.approx(lb.item(), rel=1e-6, abs=1e-7)
    la.backward()
    assert a.grad is not None
    assert torch.all(a.grad[:, 0, :, :4] == 0)
    assert a.grad[:, 0, :, 4:].abs().sum() > 0


@pytest.mark.parametrize("name", list_losses())
def test_perfect_prediction_is_near_zero_and_wrong_is_large(name: str) -> None:
    loss_fn = create_loss(name)
    y = _labels()
    truth = (y == 1).float().unsqueeze(1)
    perfect = (truth * 2 - 1) * 30
    assert loss_fn(perfect, y).item() == pytest.approx(0.0, abs=2e-3)
    assert loss_fn(-perfect, y).item() > 0.2


@pytest.mark.parametrize("name", list_losses())
def test_no_valid_pixel_gives_zero_with_gradient(name: str) -> None:
    logits = torch.randn(2, 1, 8, 8, requires_grad=True)
    y = torch.full((2, 8, 8), 255, dtype=torch.uint8)
    loss = create_loss(name)(logits, y)
    assert torch.isfinite(loss)
    loss.backward()
    assert logits.grad is not None and torch.all(logits.grad == 0)


def test_label_layouts_and_shape_errors() -> None:
    y = _labels()
    logits = torch.randn(3, 1, 16, 16)
    dice = create_loss("dice")
    assert dice(logits, y).item() == pytest.approx(dice(logits[:, 0], y.unsqueeze(1)).item())
    with pytest.raises(ModelError, match="do not match"):
        dice(logits, y[:, :8])


def test_tversky_half_half_is_dice_and_bce_matches_torch() -> None:
    y = _labels()
    logits = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    tv = create_loss("tversky", alpha=0.5, beta=0.5, smooth=0.0)(logits, y)
    dice0 = create_loss("dice", smooth=0.0)(logits, y)
    assert tv.item() == pytest.approx(dice0.item(), rel=1e-5)
    keep = y != 255
    ref = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[:, 0][keep], (y[keep] == 1).float())
    assert create_loss("bce")(logits, y).item() == pytest.approx(ref.item(), rel=1e-6)
    both = create_loss("bce-dice")(logits, y).item()
    assert both == pytest.approx(ref.item() + create_loss("dice")(logits, y).item(), rel=1e-6)
    focal0 = create_loss("focal", alpha=-1, gamma=0)(logits, y)
    assert focal0.item() == pytest.approx(ref.item(), rel=1e-6)


def test_unknown_loss_and_parameter() -> None:
    with pytest.raises(ConfigError, match="valid losses: dice, bce"):
        create_loss("iou")
    with pytest.raises(ConfigError, match="bad parameters"):
        create_loss("dice", gamma=2)
