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
    assert list_losses() == ["dice", "bce", "bce-dice", "focal", "tversky", "lovasz",
                             "bce-lovasz"]


def _jaccard_loss(errors: set[int], truth: set[int]) -> float:
    """Jaccard loss of the landslide class when the pixels ``errors`` are mispredicted."""
    union = truth | errors
    return 1 - len(truth - errors) / len(union) if union else 0.0


def _lovasz_brute(z: torch.Tensor, y: list[int]) -> torch.Tensor:
    """Lovasz extension as the integral over t of Jaccard loss({i: m_i >= t}), m = hinge."""
    m = torch.relu(1 - z * (2 * torch.tensor(y, dtype=z.dtype) - 1))
    order = sorted(range(len(y)), key=lambda i: -float(m[i].detach()))
    truth = {i for i, v in enumerate(y) if v == 1}
    total = z.sum() * 0
    for k, i in enumerate(order):
        below = m[order[k + 1]] if k + 1 < len(order) else torch.zeros((), dtype=z.dtype)
        total = total + (m[i] - below) * _jaccard_loss(set(order[: k + 1]), truth)
    return total


@pytest.mark.parametrize("seed", range(6))
def test_lovasz_value_and_gradient_equal_the_lovasz_extension(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    y = [int(v) for v in (torch.rand(7, generator=g) > 0.5)]
    z0 = torch.randn(7, generator=g, dtype=torch.float64) * 1.5
    labels = torch.tensor(y, dtype=torch.uint8).view(1, 1, 7)
    z = z0.clone().requires_grad_(True)
    got = create_loss("lovasz")(z.view(1, 1, 1, 7), labels)
    got.backward()
    zb = z0.clone().requires_grad_(True)
    ref = _lovasz_brute(zb, y)
    ref.backward()
    assert got.item() == pytest.approx(ref.item(), rel=1e-12, abs=1e-12)
    assert z.grad is not None and zb.grad is not None
    assert torch.allclose(z.grad, zb.grad, atol=1e-12)


def test_lovasz_known_values_ignore_and_per_image() -> None:
    # Logits 0: every hinge error is 1, the extension is Jaccard loss(all pixels) = 1 when a
    # landslide pixel exists; perfect margins (|z| >= 1, right sign) give 0.
    y = torch.tensor([[[1, 0, 255, 0]]], dtype=torch.uint8)
    assert create_loss("lovasz")(torch.zeros(1, 1, 1, 4), y).item() == pytest.approx(1.0)
    z = torch.tensor([[[[2.0, -1.0, 9.0, -3.0]]]])
    assert create_loss("lovasz")(z, y).item() == pytest.approx(0.0)
    # One wrong background pixel with hinge error 1.5: Jaccard loss {it} = 1/2 -> 0.75.
    z = torch.tensor([[[[2.0, 0.5, -9.0, -3.0]]]])
    assert create_loss("lovasz")(z, y).item() == pytest.approx(0.75)
    # per_image: the mean of the images' losses (the all-ignored image skipped); batch: one set.
    g = torch.Generator().manual_seed(3)
    labels = _labels()
    labels[2] = 255
    logits = torch.randn(3, 1, 16, 16, generator=g)
    per = create_loss("lovasz", per_image=1)(logits, labels)
    singles = [create_loss("lovasz")(logits[i : i + 1], labels[i : i + 1]) for i in range(2)]
    assert per.item() == pytest.approx(float(sum(singles)) / 2, rel=1e-6)
    whole = create_loss("lovasz")(logits, labels).item()
    assert whole != pytest.approx(per.item())
    both = create_loss("bce-lovasz", lovasz_weight=0.5)(logits, labels).item()
    assert both == pytest.approx(create_loss("bce")(logits, labels).item() + 0.5 * whole,
                                 rel=1e-6)


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
