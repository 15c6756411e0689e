"""One contract every registered model must pass, and the paper's exact parameter counts."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from landslip.errors import ModelError
from landslip.models.losses import create_loss
from landslip.models.registry import create_model, list_models, model_info, register_model
from landslip.models.smp_models import SMP_MODELS

# Small settings for models whose size is configurable, so the contract runs in seconds.
SMALL: dict[str, dict[str, Any]] = {
    "unet": {"width": 4, "depth": 2},
    "ensemble": {"members": [{"model": "unet", "params": {"width": 4, "depth": 2}},
                             {"model": "unet", "params": {"width": 4, "depth": 1}}]},
    **{name: {"encoder": "resnet18"} for name in SMP_MODELS},
}
# Models with a fixed large size: tested with batch 1 at the smallest size; in the default run
# with 4 bands only (each case builds 37 M parameters), all band counts with -m slow.
LARGE = {"unet-paper"}
CHANNELS = [1, 3, 4, 14]


def _cases() -> list[Any]:
    cases = []
    for name in list_models():
        for c in CHANNELS:
            marks = [pytest.mark.slow] if name in LARGE and c != 4 else []
            cases.append(pytest.param(name, c, marks=marks, id=f"{name}-{c}"))
    return cases



def _build(name: str, in_channels: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, in_channels, **SMALL.get(name, {}))


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "in_channels"), _cases())
def test_model_contract_forward_backward(name: str, in_channels: int) -> None:
    model = _build(name, in_channels)
    m = int(model.required_multiple)
    assert m >= 1 and model.in_channels == in_channels
    size = m if m >= 16 else 8 * m  # small for speed
    n = 1 if name in LARGE else 2
    x = torch.randn(n, in_channels, size, size, requires_grad=True)
    out = model(x)
    assert out.shape == (n, 1, size, size)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    out.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert x.grad is not None and x.grad.abs().sum() > 0


def _last_layer(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """The last module with weights that the forward pass runs."""
    ran: list[torch.nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, i, o: ran.append(m))
             for m in model.modules() if isinstance(getattr(m, "weight", None), torch.Tensor)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return ran[-1]


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] if n in LARGE else []) for n in list_models()]
)
def test_models_return_logits_that_the_losses_map_with_a_sigmoid(name: str) -> None:
    model = _build(name, 3).eval()
    m = int(getattr(model, "required_multiple", 1))
    x = torch.randn(1, 3, 2 * m, 2 * m, generator=torch.Generator().manual_seed(1))
    # An ensemble returns the logit of its members' mean probability: the members before the
    # last get a zero final layer (probability 0.5 everywhere) and the last one is scaled, so
    # the ensemble spans logit((0.5 + sigmoid(+-4)) / 2) = +-1.05.
    members = list(getattr(model, "members", [model]))
    for member in members[:-1]:
        with torch.no_grad():
            for t in (_last_layer(member, x).weight, _last_layer(member, x).bias):
                assert isinstance(t, torch.Tensor)
                t.zero_()
    target = members[-1]
    last = _last_layer(target, x)
    # Scale and shift the final layer so that its outputs span [-4, 4]: a final sigmoid (or
    # any squashing to probabilities) after it would still keep the outputs inside [0, 1].
    weight, bias = last.weight, last.bias
    assert isinstance(weight, torch.Tensor) and isinstance(bias, torch.Tensor)
    with torch.no_grad():
        bias.zero_()
        out = target(x)
        scale = 8.0 / float(out.max() - out.min())
        weight.mul_(scale)
        bias.fill_(-4.0 - scale * float(out.min()))
        out = model(x)
    assert out.min() < 0 and out.max() > 1, (out.min(), out.max())
    # The losses apply the sigmoid: their value on the logits is the one on sigmoid(logits).
    y = (torch.rand(out.shape[0], *out.shape[2:], generator=torch.Generator().manual_seed(2))
         > 0.5).to(torch.uint8)
    p = torch.sigmoid(out[:, 0])
    t = y.float()
    bce = torch.nn.functional.binary_cross_entropy(p, t)
    assert torch.allclose(create_loss("bce")(out, y), bce, atol=1e-6)
    dice = 1 - (2 * (p * t).sum() + 1) / (t.sum() + p.sum() + 1)
    assert torch.allclose(create_loss("dice")(out, y), dice, atol=1e-6)


@pytest.mark.parametrize("name", list_models())
def test_model_contract_refuses_bad_sizes_clearly(name: str) -> None:
    model = _build(name, 3).eval()
    m = int(model.required_multiple)
    bad = 2 * m + 2  # not a multiple
    with pytest.raises(ModelError) as err, torch.no_grad():
        model(torch.zeros(1, 3, bad, bad))
    msg = str(err.value)
    assert f"divisible by {m}" in msg
    assert f"pad to {3 * m}" in msg and f"crop to {2 * m}" in msg
    with pytest.raises(ModelError, match="built for 3 band"), torch.no_grad():
        model(torch.zeros(1, 4, 2 * m, 2 * m))
    with pytest.raises(ModelError, match=r"\(N, C, H, W\)"), torch.no_grad():
        model(torch.zeros(3, 2 * m, 2 * m))


@pytest.mark.parametrize("name", list_models())
def test_model_contract_in_channels_validated(name: str) -> None:
    with pytest.raises(ModelError, match="in_channels"):
        create_model(name, 0, **SMALL.get(name, {}))


def test_paper_unet_exact_parameter_counts() -> None:
    # docs/reference.md, "U-Net of Figure 4". Built on the meta device: shapes only, no memory.
    with torch.device("meta"):
        paper4 = create_model("unet-paper", 4)
        assert _n_params(paper4) == 36_952_001
        assert _n_params(create_model("unet-paper", 3)) == 36_951_425
        assert _n_params(create_model("unet", 4, upsampling="bilinear")) == 31_379_521
        assert _n_params(create_model("unet", 4, upsampling="nearest")) == 31_379_521
        # unet with default parameters is the paper's network.
        assert _n_params(create_model("unet", 4)) == 36_952_001
    # Figure 4's concatenations: 1536, 768, 384, 192 input channels of the decoder convs.
    dec_in = [blk[0].in_channels for blk in paper4.dec]  # type: ignore[index,union-attr]
    assert dec_in == [1536, 768, 384, 192]
    # Transposed convs keep the channel count.
    assert [(u.in_channels, u.out_channels) for u in paper4.up] == [  # type: ignore[union-attr]
        (1024, 1024), (512, 512), (256, 256), (128, 128)]


def test_width_16_is_about_2_3_million_parameters() -> None:
    with torch.device("meta"):
        n = _n_params(create_model("unet", 4, width=16))
    assert 2_250_000 < n < 2_350_000


def test_registry_errors_list_valid_names() -> None:
    with pytest.raises(ModelError, match=r"valid models: ensemble, smp-deeplabv3plus, smp-fpn, "
                                         r".*, unet, unet-paper"):
        create_model("resnet", 4)
    with pytest.raises(ModelError, match=r"does not take parameter.*width.*it takes: none"):
        create_model("unet-paper", 4, width=16)
    with pytest.raises(ModelError, match="it takes: width, depth, upsampling"):
        create_model("unet", 4, widht=16)
    with pytest.raises(ModelError, match="upsampling must be one of"):
        create_model("unet", 4, upsampling="cubic")
    with pytest.raises(ModelError, match="width must be an integer"):
        create_model("unet", 4, width=0)
    with pytest.raises(ModelError, match="registered twice"):
        register_model("unet")(lambda in_channels: torch.nn.Identity())
    assert model_info("unet").params == ("width", "depth", "upsampling")


@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
def test_unet_channels_last_training_matches_the_plain_layers(upsampling: str) -> None:
    """The channels_last training path (the transposed convolution and the concatenation as one
    matrix product, :func:`landslip.models.unet._up_concat`) gives the logits and gradients of
    the NCHW layers, and skips the ConvTranspose2d kernel only where it applies."""
    torch.manual_seed(0)
    ref = create_model("unet", 4, width=4, depth=2, upsampling=upsampling)
    fast = create_model("unet", 4, width=4, depth=2, upsampling=upsampling)
    fast.load_state_dict(ref.state_dict())
    fast.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    calls: list[str] = []
    for i, up in enumerate(fast.up):  # type: ignore[union-attr,arg-type]
        up.register_forward_hook(lambda *_a, i=i: calls.append(f"up{i}"))
    x = torch.randn(2, 4, 16, 16)
    y = (torch.rand(2, 16, 16) > 0.5).to(torch.uint8)
    out_ref, out = ref(x), fast(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-6)
    loss_fn = create_loss("bce")
    loss_fn(out_ref, y).backward()
    loss_fn(out, y).backward()
    grads = dict(fast.named_parameters())
    for name, p in ref.named_parameters():
        torch.testing.assert_close(grads[name].grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert calls == ([] if upsampling == "transpose" else ["up0", "up1"])
    with torch.no_grad():  # inference keeps the ConvTranspose2d layers
        fast(x.contiguous(memory_format=torch.channels_last))
    assert len(calls) == (2 if upsampling == "transpose" else 4)
