"""Pretrained encoder weights for the smp models: ImageNet from the library, or a local file.

Training copies them into a freshly built model once, before the first epoch
(``landslip train --encoder-weights imagenet|PATH``); the model bundle then holds every
weight, so rebuilding a model from its bundle never needs the source again, nor a network.
This is why encoder weights are a TRAINING option and not a model parameter.

Sources:

* ``imagenet``: smp downloads the encoder's ImageNet weights (from the Hugging Face Hub, or the
  timm model's for ``tu-NAME``), only when asked. Offline, or on any download failure, a
  one-line :class:`EncoderWeightsError` says to pass a local file instead.
* ``PATH``: a ``.safetensors`` file or a weights-only torch state dict
  (``torch.load(weights_only=True)``: nothing is unpickled but tensors). Keys may be the
  encoder's own (``conv1.weight``, ``layer1.0.conv1.weight``, ...) or carry a prefix ending in
  ``encoder.`` (``encoder.`` of a whole smp model, ``net.encoder.`` of a landslip bundle);
  tensors under other prefixes (a decoder) and a classifier's head (``fc.*``, ...) are ignored.

The first convolution of a 3-band (RGB) source is adapted to a model with C bands as smp does
(:func:`adapt_first_conv`). Any other missing key or shape mismatch is refused, naming the first
few.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

import torch
from torch import nn

from landslip.errors import ConfigError, ModelError
from landslip.models.smp_models import SMP_MODELS

__all__ = [
    "IMAGENET",
    "EncoderWeightsError",
    "adapt_first_conv",
    "download_imagenet",
    "encoder_params",
    "fit_encoder_state",
    "load_encoder_weights",
    "read_weights_file",
]

logger = logging.getLogger(__name__)

IMAGENET: Final = "imagenet"
"""The ``--encoder-weights`` value that asks smp to download ImageNet weights."""

_PREFIXES: Final = ("", "encoder.", "net.encoder.", "model.net.encoder.")
"""Key prefixes tried on a weights file: plain, smp model, landslip bundle, training checkpoint."""

_HEADS: Final = frozenset({"fc", "_fc", "last_linear", "head", "classifier"})
"""First key components of image classifiers' heads, ignored in an encoder weights file."""

_SHOWN: Final = 4
"""How many keys an error message names."""


class EncoderWeightsError(ModelError):
    """Pretrained encoder weights cannot be fetched, read or fitted to the model."""


def encoder_params(model: str, params: dict[str, Any], encoder: str | None,
                   encoder_weights: str | None) -> dict[str, Any]:
    """Model parameters with the training option ``encoder``; refused for non-smp models.

    Args:
        model: Registry name the run builds.
        params: Its other parameters.
        encoder: ``--encoder`` (an smp encoder name) or None.
        encoder_weights: ``--encoder-weights`` or None (only checked against the model here).

    Returns:
        ``params`` plus ``{"encoder": encoder}`` when given.

    Raises:
        ConfigError: ``--encoder`` or ``--encoder-weights`` with a model that has no encoder.
    """
    given = [o for o, v in (("--encoder", encoder), ("--encoder-weights", encoder_weights))
             if v is not None]
    if given and model not in SMP_MODELS:
        raise ConfigError(
            f"{' and '.join(given)} {'are' if len(given) > 1 else 'is'} only for the smp models "
            f"({', '.join(SMP_MODELS)}), not for model {model!r}: drop {given[0]} or choose "
            "e.g. --model smp-unet"
        )
    return {**params, "encoder": encoder} if encoder is not None else params


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt a 3-band first-convolution kernel to ``in_channels`` bands, as smp does.

    C = 1: the sum of the RGB kernels; C = 2 or C > 3: the RGB kernels repeated cyclically
    over the C bands (R, G, B, R, ...) and scaled by 3 / C, so that an input whose bands all
    equal one image gives the same response as that image in RGB; C = 3: unchanged.

    Args:
        weight: (O, 3, kh, kw) float kernel.
        in_channels: Number of bands C of the model (>= 1).

    Returns:
        (O, C, kh, kw) kernel of the same dtype.
    """
    rgb = weight.shape[1]
    if in_channels == rgb:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    index = torch.arange(in_channels) % rgb
    return weight[:, index] * (rgb / in_channels)


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def download_imagenet(encoder: str) -> dict[str, torch.Tensor]:
    """The ImageNet weights of a 3-band ``encoder``, fetched by smp (or timm for ``tu-NAME``).

    Raises:
        EncoderWeightsError: smp has no ImageNet weights for it, or the download failed
            (offline, no access): one line saying to pass a local file.
    """
    import segmentation_models_pytorch as smp

    if not encoder.startswith("tu-"):
        available = list(smp.encoders.encoders[encoder]["pretrained_settings"])
        if IMAGENET not in available:
            raise EncoderWeightsError(
                f"smp has no imagenet weights for encoder {encoder} (it has: "
                f"{', '.join(available) or 'none'}); choose another encoder or pass "
                "--encoder-weights PATH to a local file")
    weights: str | bool = True if encoder.startswith("tu-") else IMAGENET
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    if not logger.isEnabledFor(logging.DEBUG):  # its retry warnings would bury the one line
        hub_log.setLevel(logging.ERROR)
    logger.info("downloading the imagenet weights of %s (or reading them from the cache)",
                encoder)
    try:
        module = smp.encoders.get_encoder(encoder, in_channels=3, weights=weights)
    except Exception as exc:  # hub, HTTP, OS and timm errors of many types
        reason = _one_line(exc).split(". ")[0].rstrip(".")  # the hub's first sentence
        raise EncoderWeightsError(
            f"could not download imagenet weights for {encoder}: {reason}; pass "
            "--encoder-weights PATH to a local file") from exc
    finally:
        hub_log.setLevel(level)
    return {k: v.detach() for k, v in module.state_dict().items()}


def read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file or a weights-only torch state dict.

    A torch file holding ``{"state_dict": {...}}`` (a checkpoint) gives that inner dict.

    Raises:
        EncoderWeightsError: The file is missing, unreadable, or not a dict of tensors.
    """
    if not path.is_file():
        raise EncoderWeightsError(f"encoder weights file {path} not found; pass imagenet or a "
                                  ".safetensors or torch state dict file")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, unpickling and OS errors of many types
        raise EncoderWeightsError(
            f"cannot read encoder weights {path} as safetensors or a weights-only torch state "
            f"dict: {_one_line(exc)}") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise EncoderWeightsError(f"encoder weights {path} are not a state dict (a mapping of "
                                  "names to tensors)")
    return obj


def _shown(keys: list[str]) -> str:
    more = f" (and {len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def _encoder_part(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                  source: str) -> dict[str, torch.Tensor]:
    """The tensors of ``state`` under the key prefix that matches the encoder best."""
    best: dict[str, torch.Tensor] = {}
    for prefix in _PREFIXES:
        part = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if len(part.keys() & expected.keys()) > len(best.keys() & expected.keys()):
            best = part
    if not best:
        raise EncoderWeightsError(
            f"{source} holds no weights of this encoder: it has {_shown(sorted(state))}, the "
            f"encoder needs {_shown(list(expected))}")
    return best


def fit_encoder_state(
    encoder: nn.Module, state: dict[str, torch.Tensor], in_channels: int, source: str
) -> tuple[dict[str, torch.Tensor], bool]:
    """Match a weights file to an encoder: pick its keys, adapt the first convolution.

    Args:
        encoder: The model's encoder.
        state: The source's tensors.
        in_channels: Number of bands C of the model.
        source: Where the weights come from, for messages.

    Returns:
        (a state dict with exactly the encoder's keys, whether the first convolution was
        adapted from 3 bands).

    Raises:
        EncoderWeightsError: Naming the first few missing keys or mismatched shapes.
    """
    expected = encoder.state_dict()
    part = _encoder_part(state, expected, source)
    extra = sorted(part.keys() - expected.keys())
    heads = [k for k in extra if k.split(".")[0] in _HEADS]
    if heads:
        logger.info("%s: ignoring the classifier's %s", source, _shown(heads))
    missing = [k for k in expected if k not in part]
    unknown = [k for k in extra if k not in heads]
    for keys, what in ((missing, "lacks {} weight(s) of the encoder"),
                       (unknown, "has {} tensor(s) that the encoder lacks")):
        if keys:
            raise EncoderWeightsError(f"{source} {what.format(len(keys))}: {_shown(keys)}; is "
                                      "it for another encoder?")
    first = next(k for k, v in expected.items() if v.ndim == 4)
    out, adapted, bad = {}, False, []
    for key, target in expected.items():
        value = part[key]
        if (key == first and value.shape != target.shape and value.shape[1] == 3
                and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]):
            value, adapted = adapt_first_conv(value, in_channels), True
        if value.shape != target.shape:
            bad.append(f"{key} {tuple(value.shape)} vs {tuple(target.shape)}")
        out[key] = value
    if bad:
        raise EncoderWeightsError(f"{source} does not fit the encoder: {len(bad)} shape "
                                  f"mismatch(es) (file vs model): {_shown(bad)}")
    return out, adapted


def load_encoder_weights(model: nn.Module, source: str | Path | None) -> None:
    """Copy pretrained weights into an smp model's encoder (a no-op for ``None``).

    Args:
        model: A model built by the registry with an ``encoder`` (the smp models).
        source: ``"imagenet"`` (download, only now), a weights file path, or None.

    Raises:
        EncoderWeightsError: The download failed, the file cannot be read or does not fit.
        ModelError: The model has no encoder.
    """
    if source is None:
        return
    encoder = getattr(model, "encoder", None)
    params = getattr(model, "params", {})
    if not isinstance(encoder, nn.Module) or "encoder" not in params:
        raise ModelError(f"encoder weights apply to the smp models ({', '.join(SMP_MODELS)}) "
                         f"only, not to {type(model).__name__}")
    name = str(params["encoder"])
    if str(source) == IMAGENET:
        state, label = download_imagenet(name), f"imagenet weights of {name}"
    else:
        state, label = read_weights_file(Path(source)), f"encoder weights {source}"
    in_channels = int(getattr(model, "in_channels", 3))
    fitted, adapted = fit_encoder_state(encoder, state, in_channels, label)
    encoder.load_state_dict(fitted)
    logger.info("loaded %s: %d tensors into the %s encoder%s", label, len(fitted), name,
                f" (first convolution adapted from 3 to {in_channels} bands)" if adapted else "")
