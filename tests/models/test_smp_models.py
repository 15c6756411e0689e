"""The smp models: sizes, encoder names, offline bundles, and pretrained encoder weights."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch
from safetensors.torch import save_file

from landslip.errors import ConfigError, ModelError
from landslip.models.bundle import BundleMeta, load_bundle, save_bundle
from landslip.models.encoder_weights import (
    EncoderWeightsError,
    adapt_first_conv,
    encoder_params,
    load_encoder_weights,
)
from landslip.models.registry import create_model, model_info
from landslip.models.smp_models import SMP_MODELS

MULTIPLE = {"smp-unet": 32, "smp-unetplusplus": 32, "smp-fpn": 32, "smp-deeplabv3plus": 16}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any download attempt by smp (Hugging Face Hub) or timm fails loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(smp.encoders, "hf_hub_download", refuse)
    monkeypatch.setattr("timm.models._builder.load_pretrained", refuse)
    monkeypatch.setattr("socket.socket.connect", refuse)


@pytest.mark.parametrize("name", SMP_MODELS)
def test_required_multiple_is_the_smallest_size_step(name: str) -> None:
    model = create_model(name, 2, encoder="resnet18").eval()
    m = model.required_multiple
    assert m == MULTIPLE[name] and model.params == {"encoder": "resnet18"}
    with torch.no_grad():
        for size in (m, 3 * m):  # an odd multiple: feature maps of odd size at the bottom
            assert model(torch.zeros(1, 2, size, 2 * m)).shape == (1, 1, size, 2 * m)


def test_default_encoder_and_one_parameter() -> None:
    assert model_info("smp-unet").params == ("encoder",)
    with torch.device("meta"):
        assert create_model("smp-unet", 3).params == {"encoder": "resnet34"}


def test_unknown_encoder_lists_valid_names() -> None:
    with pytest.raises(ModelError, match=r"unknown encoder 'resnet19'; .*resnet18, resnet34"):
        create_model("smp-unet", 3, encoder="resnet19")
    with pytest.raises(ModelError, match="unknown encoder 'tu-nonesuch'"):
        create_model("smp-fpn", 3, encoder="tu-nonesuch")
    with pytest.raises(ModelError, match="unknown encoder 3"):
        create_model("smp-fpn", 3, encoder=3)


def test_timm_encoders_are_accepted(no_network: None) -> None:
    model = create_model("smp-unet", 5, encoder="tu-resnet10t").eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 5, 64, 64)).shape == (1, 1, 64, 64)


def test_deeplab_trains_on_a_batch_of_one() -> None:
    # The batch norm after ASPP's image pooling sees one value per channel: it would fail.
    model = create_model("smp-deeplabv3plus", 3, encoder="resnet18").train()
    model(torch.randn(1, 3, 32, 32)).mean().backward()
    assert all(m.training for m in model.modules())


def test_bundle_is_rebuilt_offline(tmp_path: Path, no_network: None) -> None:
    torch.manual_seed(0)
    net = create_model("smp-fpn", 4, encoder="resnet18").eval()
    meta = BundleMeta(model="smp-fpn", model_params=net.params, in_channels=4, band_set="bgrn",
                      band_names=["blue", "green", "red", "nir"], mean=[0.0] * 4, std=[1.0] * 4)
    save_bundle(tmp_path / "b", net, meta)
    bundle = load_bundle(tmp_path / "b")
    assert bundle.meta.model_params == {"encoder": "resnet18"}
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        assert torch.equal(bundle.model(x), net(x))


def test_encoder_options_are_refused_for_models_without_an_encoder() -> None:
    assert encoder_params("smp-unet", {}, "resnet18", None) == {"encoder": "resnet18"}
    assert encoder_params("unet", {"width": 8}, None, None) == {"width": 8}
    with pytest.raises(ConfigError, match=r"^--encoder is only for the smp models .*'unet-paper'"):
        encoder_params("unet-paper", {}, "resnet18", None)
    with pytest.raises(ConfigError, match=r"--encoder-weights is only .* drop --encoder-weights"):
        encoder_params("unet", {}, None, "imagenet")
    with pytest.raises(ConfigError, match=r"^--encoder and --encoder-weights are only for"):
        encoder_params("unet", {}, "resnet18", "imagenet")


# ---- pretrained encoder weights ----------------------------------------------------------

def _source(encoder: str = "resnet18", bands: int = 3) -> dict[str, torch.Tensor]:
    """A whole smp model's state dict (keys ``encoder.*``, ``decoder.*``) with random weights."""
    torch.manual_seed(1)
    net = smp.Unet(encoder, encoder_weights=None, in_channels=bands, classes=1)
    for _, buf in net.named_buffers():  # non-trivial running statistics
        if buf.is_floating_point():
            buf.uniform_(0.5, 1.5)
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_adapt_first_conv_as_smp_does() -> None:
    w = torch.randn(8, 3, 7, 7)
    assert torch.equal(adapt_first_conv(w, 3), w)
    assert torch.allclose(adapt_first_conv(w, 1), w.sum(1, keepdim=True))
    assert torch.allclose(adapt_first_conv(w, 2), w[:, :2] * 1.5)
    five = adapt_first_conv(w, 5)
    assert torch.allclose(five, torch.cat([w, w[:, :2]], dim=1) * 0.6)
    # smp's own adaptation of a pretrained 3-band first convolution gives the same kernels.
    for c in (1, 2, 4, 14):
        conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 7))
        conv[0].weight.data.copy_(w)
        smp.encoders._utils.patch_first_conv(conv, c, pretrained=True)
        assert torch.allclose(conv[0].weight, adapt_first_conv(w, c), atol=1e-6)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("prefix", ["", "encoder."])
def test_local_weights_load_into_a_4_band_model(
    tmp_path: Path, suffix: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    full = _source()
    enc = {k.removeprefix("encoder."): v for k, v in full.items() if k.startswith("encoder.")}
    state = full if prefix else {**enc, "fc.weight": torch.zeros(10, 512),
                                 "fc.bias": torch.zeros(10)}  # a classifier's head: ignored
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    model = create_model("smp-unet", 4, encoder="resnet18")
    decoder_before = {k: v.clone() for k, v in model.net.decoder.state_dict().items()}
    with caplog.at_level(logging.INFO, logger="landslip"):
        load_encoder_weights(model, path)
    got = model.encoder.state_dict()
    w = enc["conv1.weight"]
    assert torch.allclose(got["conv1.weight"], w[:, [0, 1, 2, 0]] * 0.75)
    for key in ("layer1.0.conv1.weight", "layer4.1.bn2.running_var", "bn1.bias"):
        assert torch.equal(got[key], enc[key]), key
    # Only the encoder changes.
    for k, v in model.net.decoder.state_dict().items():
        assert torch.equal(v, decoder_before[k]), k
    assert "first convolution adapted from 3 to 4 bands" in caplog.text


def test_weights_of_a_landslip_bundle_load_unchanged(tmp_path: Path) -> None:
    torch.manual_seed(2)
    src = create_model("smp-unet", 4, encoder="resnet18")
    torch.save(src.state_dict(), tmp_path / "w.pt")  # keys net.encoder.*, net.decoder.*
    model = create_model("smp-deeplabv3plus", 4, encoder="resnet18")
    load_encoder_weights(model, tmp_path / "w.pt")
    for k, v in src.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[k], v), k


def test_mismatched_weights_are_refused_naming_keys(tmp_path: Path) -> None:
    cases = [  # (source encoder, source bands, model encoder, message)
        ("resnet18", 3, "resnet34", r"lacks 96 weight\(s\) of the encoder: layer1\.2\.conv1"),
        ("resnet34", 3, "resnet18", r"has 96 tensor\(s\) that the encoder lacks: layer1\.2"),
        ("resnet18", 4, "resnet18", r"shape mismatch.*conv1\.weight \(64, 4, 7, 7\) vs "
                                    r"\(64, 3, 7, 7\)"),
    ]
    for src_encoder, bands, encoder, message in cases:
        save_file(_source(src_encoder, bands), str(tmp_path / "w.safetensors"))
        model = create_model("smp-unet", 3, encoder=encoder)
        with pytest.raises(EncoderWeightsError, match=message) as err:
            load_encoder_weights(model, tmp_path / "w.safetensors")
        assert "\n" not in str(err.value)
    torch.save({"decoder.x": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(EncoderWeightsError, match="holds no weights of this encoder"):
        load_encoder_weights(model, tmp_path / "other.pt")


def test_unreadable_weights_are_refused(tmp_path: Path) -> None:
    model = create_model("smp-unet", 3, encoder="resnet18")
    with pytest.raises(EncoderWeightsError, match="not found"):
        load_encoder_weights(model, tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(EncoderWeightsError, match="cannot read encoder weights"):
        load_encoder_weights(model, tmp_path / "junk.pt")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(EncoderWeightsError, match="not a state dict"):
        load_encoder_weights(model, tmp_path / "list.pt")
    with pytest.raises(ModelError, match="apply to the smp models"):
        load_encoder_weights(create_model("unet", 3, width=4, depth=2), tmp_path / "list.pt")


def test_imagenet_offline_is_one_clear_line(no_network: None) -> None:
    model = create_model("smp-unet", 4, encoder="resnet18")
    with pytest.raises(EncoderWeightsError) as err:
        load_encoder_weights(model, "imagenet")
    assert str(err.value) == (
        "could not download imagenet weights for resnet18: network is unreachable; pass "
        "--encoder-weights PATH to a local file")
