"""Segmentation models of segmentation_models_pytorch (smp): U-Net, U-Net++, FPN, DeepLabV3+.

Registered as ``smp-unet``, ``smp-unetplusplus``, ``smp-fpn`` and ``smp-deeplabv3plus``, each
with one parameter, ``encoder`` (an smp encoder name such as ``resnet18``, ``resnet34``,
``efficientnet-b0``, or a timm model as ``tu-NAME``; default ``resnet34``). They take any number
of input bands and return logits (N, 1, H, W), like every registered model.

The encoder is ALWAYS built with random weights (``encoder_weights=None``): building a model,
and so rebuilding one from a bundle, never downloads anything. Pretrained encoder weights are a
training option that copies weights into a built model
(:func:`landslip.models.encoder_weights.load_encoder_weights`); the bundle then holds all the
weights.

``required_multiple`` is the encoder's output stride: 32 for U-Net, U-Net++ and FPN with the
default 5-level encoders, 16 for DeepLabV3+ (dilated last stage, ``encoder_output_stride=16``).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import torch
from torch import nn

from landslip.errors import ModelError
from landslip.models.registry import check_input, register_model

__all__ = ["DEFAULT_ENCODER", "SMP_MODELS", "SmpModel", "check_encoder_name", "encoder_names"]

logger = logging.getLogger(__name__)

DEFAULT_ENCODER: Final = "resnet34"
"""Encoder of the smp models when none is given."""

SMP_MODELS: Final = ("smp-unet", "smp-unetplusplus", "smp-fpn", "smp-deeplabv3plus")
"""Registry names of the smp models (those that take ``encoder`` and encoder weights)."""

_ARCHITECTURES: Final = {
    "smp-unet": "Unet", "smp-unetplusplus": "UnetPlusPlus", "smp-fpn": "FPN",
    "smp-deeplabv3plus": "DeepLabV3Plus",
}

_EXAMPLES: Final = ("resnet18", "resnet34", "resnet50", "efficientnet-b0", "efficientnet-b4",
                    "mobilenet_v2", "mit_b0")


def encoder_names() -> list[str]:
    """smp's own encoder names (timm encoders, ``tu-NAME``, are accepted besides these)."""
    import segmentation_models_pytorch as smp

    return list(smp.encoders.get_encoder_names())


def check_encoder_name(encoder: object, model: str) -> str:
    """Refuse an encoder name that smp (or timm, for ``tu-NAME``) does not know.

    Args:
        encoder: The requested encoder name.
        model: Model name, for the message.

    Returns:
        The name.

    Raises:
        ModelError: Listing a few valid names.
    """
    if isinstance(encoder, str):
        if encoder.startswith("tu-"):
            import timm

            if timm.is_model(encoder[3:]):
                return encoder
        elif encoder in encoder_names():
            return encoder
    names = encoder_names()
    examples = ", ".join(n for n in _EXAMPLES if n in names)
    raise ModelError(
        f"{model}: unknown encoder {encoder!r}; valid encoders include {examples}, or a timm "
        f"model as tu-NAME ({len(names)} in all: "
        "segmentation_models_pytorch.encoders.get_encoder_names())"
    )


def _image_pool_norms(net: nn.Module) -> list[nn.Module]:
    """BatchNorm layers after a global average pooling (DeepLabV3+'s ASPP image pooling)."""
    norms: list[nn.Module] = []
    for module in net.modules():
        children = list(module.children())
        if children and isinstance(children[0], nn.AdaptiveAvgPool2d):
            norms += [c for c in children if isinstance(c, nn.modules.batchnorm._BatchNorm)]
    return norms


class SmpModel(nn.Module):
    """An smp segmentation model with landslip's input checks; returns logits.

    Args:
        name: Registry name (``smp-unet``, ``smp-unetplusplus``, ``smp-fpn``,
            ``smp-deeplabv3plus``).
        in_channels: Number of input bands C.
        encoder: smp encoder name (``resnet34``, ``efficientnet-b0``, ``tu-NAME``, ...).

    Attributes:
        net: The smp model (its encoder is ``net.encoder``).
        required_multiple: The encoder's output stride; height and width must be multiples.
        in_channels: Number of input bands.
        params: ``{"encoder": encoder}``, for the model bundle.

    Shapes:
        input (N, C, H, W) float32 -> logits (N, 1, H, W) float32.
    """

    def __init__(self, name: str, in_channels: int, encoder: str = DEFAULT_ENCODER) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        check_encoder_name(encoder, name)
        architecture = getattr(smp, _ARCHITECTURES[name])
        try:
            # encoder_weights=None: never download here (see the module docstring).
            self.net = architecture(encoder_name=encoder, encoder_weights=None,
                                    in_channels=in_channels, classes=1, activation=None)
        except Exception as exc:  # smp raises many types for unsupported combinations
            raise ModelError(f"cannot build {name} with encoder {encoder!r} and {in_channels} "
                             f"band(s): {' '.join(str(exc).split())}") from exc
        self.name = name
        self.in_channels = in_channels
        self.required_multiple = int(self.net.encoder.output_stride)
        self.params: dict[str, Any] = {"encoder": encoder}
        self._pool_norms = _image_pool_norms(self.net)

    @property
    def encoder(self) -> nn.Module:
        """The encoder (``net.encoder``), whose weights can be pretrained."""
        encoder: nn.Module = self.net.encoder
        return encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, H, W) float32 inputs to (N, 1, H, W) logits.

        A training batch of one sample runs the batch normalisation after DeepLabV3+'s global
        image pooling (one value per channel) with its running statistics, instead of failing.

        Raises:
            ModelError: If the input is not 4-D, has the wrong number of bands, or H or W is not
                a multiple of :attr:`required_multiple` (the message says how to pad).
        """
        check_input(x, self.in_channels, self.required_multiple, self.name)
        single = self.training and x.shape[0] == 1 and bool(self._pool_norms)
        for norm in self._pool_norms if single else ():
            norm.eval()
        try:
            out: torch.Tensor = self.net(x)
        finally:
            for norm in self._pool_norms if single else ():
                norm.train()
        return out


@register_model("smp-unet")
def smp_unet(in_channels: int, encoder: str = DEFAULT_ENCODER) -> SmpModel:
    """smp U-Net with a pretrainable encoder (default resnet34: 24.4 M params); inputs x32."""
    return SmpModel("smp-unet", in_channels, encoder)


@register_model("smp-unetplusplus")
def smp_unetplusplus(in_channels: int, encoder: str = DEFAULT_ENCODER) -> SmpModel:
    """smp U-Net++ (nested skip connections; default resnet34: 26.1 M params); inputs x32."""
    return SmpModel("smp-unetplusplus", in_channels, encoder)


@register_model("smp-fpn")
def smp_fpn(in_channels: int, encoder: str = DEFAULT_ENCODER) -> SmpModel:
    """smp Feature Pyramid Network (default resnet34: 23.2 M params); inputs x32."""
    return SmpModel("smp-fpn", in_channels, encoder)


@register_model("smp-deeplabv3plus")
def smp_deeplabv3plus(in_channels: int, encoder: str = DEFAULT_ENCODER) -> SmpModel:
    """smp DeepLabV3+ (output stride 16; default resnet34: 22.4 M params); inputs x16."""
    return SmpModel("smp-deeplabv3plus", in_channels, encoder)
