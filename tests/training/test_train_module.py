"""The LightningModule's validation counts agree with landslip.evaluation.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from landslip.encoding import IGNORE, apply_threshold
from landslip.errors import ModelError
from landslip.evaluation.metrics import Confusion, confusion
from landslip.models.losses import create_loss
from landslip.models.registry import create_model
from landslip.training.module import SegmentationModule, float32_threshold, landslide_pixels

THRESHOLDS = (0.5, 0.41, 0.45, 0.8, 0.3, 1 / 3)


def _around(value: float, n: int) -> np.ndarray:
    """The float32 nearest ``value`` and its ``n`` float32 neighbours on each side."""
    centre = np.float32(value)
    lo = [centre]
    hi = [centre]
    for _ in range(n):
        lo.append(np.nextafter(lo[-1], np.float32(-np.inf)))
        hi.append(np.nextafter(hi[-1], np.float32(np.inf)))
    return np.array(sorted(set(lo + hi)), dtype=np.float32)


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_float32_threshold_is_the_float64_rule(threshold: float) -> None:
    p = _around(threshold, 8)
    got = torch.from_numpy(p) >= float32_threshold(threshold)
    assert np.array_equal(got.numpy(), apply_threshold(p, threshold))


def _batches(threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (4, 1, 16, 16) crowded around logit(threshold), and labels with 255s."""
    g = torch.Generator().manual_seed(int(threshold * 1000))
    near = torch.from_numpy(_around(math.log(threshold / (1 - threshold)), 300))
    logits = torch.randn(4 * 16 * 16, generator=g)
    logits[: near.numel()] = near
    logits = logits[torch.randperm(logits.numel(), generator=g)].reshape(4, 1, 16, 16)
    y = (torch.rand(4, 16, 16, generator=g) > 0.5).to(torch.uint8)
    y[0, :3] = IGNORE
    y[2, :, :2] = IGNORE
    return logits, y


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_validation_counts_equal_evaluation_confusion(threshold: float) -> None:
    logits, y = _batches(threshold)
    # Evaluation's probabilities: float32 sigmoid of the logits, then encoding's rule.
    prob = torch.sigmoid(logits[:, 0].float()).numpy()
    ref = confusion(apply_threshold(prob, threshold), y.numpy())
    # The data reach the threshold exactly (p == the smallest float32 >= t).
    assert (prob == np.float32(float32_threshold(threshold))).any()

    module = SegmentationModule(nn.Identity(), create_loss("dice"), threshold=threshold)
    module.on_validation_epoch_start()
    with pytest.warns(UserWarning, match="self.log"):  # no Trainer attached in this test
        module.validation_step((logits[:2], y[:2]), 0)
        module.validation_step((logits[2:], y[2:]), 1)
        module.on_validation_epoch_end()
    assert module.last_val == ref
    assert ref.tp + ref.fp + ref.fn + ref.tn == int(np.count_nonzero(y.numpy() != IGNORE))
    assert np.array_equal(landslide_pixels(logits, threshold).numpy(),
                          apply_threshold(prob[:, None], threshold))


def test_the_data_would_catch_the_log_odds_rule() -> None:
    """Training used ``logit >= log(t / (1 - t))`` before; on these data it disagrees."""
    differs = []
    for threshold in THRESHOLDS:
        logits, y = _batches(threshold)
        prob = torch.sigmoid(logits[:, 0]).numpy()
        ref = confusion(apply_threshold(prob, threshold), y.numpy())
        old = logits[:, 0] >= math.log(threshold / (1.0 - threshold))
        differs.append(confusion(old.numpy(), y.numpy()) != ref)
    # At 0.5, sigmoid(z) rounds to exactly 0.5 for tiny negative z: landslide by the rule.
    assert differs[0] and sum(differs) >= 3


def test_counts_are_zero_after_reset_and_stay_int64() -> None:
    module = SegmentationModule(nn.Identity(), create_loss("dice"))
    logits, y = _batches(0.5)
    with pytest.warns(UserWarning, match="self.log"):
        module.validation_step((logits, y), 0)
    assert module.val_counts.compute().dtype == torch.int64
    module.on_validation_epoch_start()
    with pytest.warns(UserWarning, match="self.log"):
        module.validation_step((logits[:1], y[:1]), 0)
        module.on_validation_epoch_end()
    prob = torch.sigmoid(logits[:1, 0]).numpy()
    assert module.last_val == confusion(apply_threshold(prob, 0.5), y[:1].numpy())
    assert isinstance(module.last_val, Confusion)


def test_module_step_and_optimizer() -> None:
    m = SegmentationModule(create_model("unet", 3, width=4, depth=2), create_loss("dice"),
                           lr=0.01)
    opt = m.configure_optimizers()
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 0.01
    x = torch.randn(2, 3, 16, 16)
    assert m(x).shape == (2, 1, 16, 16)


def _first_conv(m: SegmentationModule) -> torch.Tensor:
    weight: torch.Tensor = m.model.down[0][0].weight
    return weight


@pytest.mark.parametrize("fmt", ["channels_last", "contiguous"])
def test_memory_format_of_weights_and_batches(fmt: str) -> None:
    layout = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    m = SegmentationModule(create_model("unet", 3, width=4, depth=2), create_loss("dice"),
                           memory_format=fmt)  # type: ignore[arg-type]
    seen: list[bool] = []
    m.model.register_forward_pre_hook(
        lambda _mod, args: seen.append(args[0].is_contiguous(memory_format=layout)))
    assert _first_conv(m).is_contiguous(memory_format=layout)
    x = torch.randn(2, 3, 16, 16)  # NCHW, as the loader gives it
    out = m(x)
    assert seen == [True] and out.shape == (2, 1, 16, 16)
    # Same logits in both layouts, within float32 rounding.
    ref = create_model("unet", 3, width=4, depth=2)
    ref.load_state_dict(m.model.state_dict())
    torch.testing.assert_close(out, ref(x), rtol=1e-5, atol=1e-6)


def test_compile_failure_falls_back_to_eager_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def broken_compile(fn: object, **kwargs: object) -> object:
        def compiled(x: torch.Tensor) -> torch.Tensor:
            calls.append(1)
            raise RuntimeError("backend 'inductor' failed\nC++ compile error: no gcc\n...")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    m = SegmentationModule(create_model("unet", 3, width=4, depth=2), create_loss("dice"),
                           compile=True)
    m.on_fit_start()
    x = torch.randn(2, 3, 16, 16)
    with caplog.at_level("WARNING", logger="landslip.training.module"):
        out = m(x)
        out2 = m(x)
    assert calls == [1]  # tried once, then eager for good
    torch.testing.assert_close(out, out2)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["torch.compile failed (RuntimeError: backend 'inductor' failed); "
                        "training continues without compiling"]
    assert not m.compile_model


def test_model_errors_pass_through_the_compiled_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # "compiled" = the eager forward
    m = SegmentationModule(create_model("unet", 3, width=4, depth=2), create_loss("dice"),
                           compile=True)
    m.on_fit_start()
    with pytest.raises(ModelError, match="pad to 16"):
        m(torch.randn(1, 3, 14, 14))
    assert m.compile_model  # a wrong input is not a compiler failure
