"""The U-Net of the paper's Figure 4, and the same architecture with a configurable size.

Architecture (``docs/reference.md``, "U-Net of Figure 4"):

* encoder: per level two 3x3 convolutions ("same" padding) with ReLU, then 2x2 max pooling;
  widths ``width * 2**i`` for levels ``i = 0 .. depth`` (the paper: 64, 128, 256, 512, 1024);
* decoder: 2x up-sampling that KEEPS the channel count (2x2 transposed convolution with as many
  output as input channels, or parameter-free bilinear / nearest up-sampling), concatenation with
  the encoder map of the same level (the paper: 1024+512 = 1536, 768, 384, 192 channels), two 3x3
  convolutions with ReLU back to the level's width;
* a 1x1 convolution to one output channel.

Parameter counts with 4 input bands (checked by the tests): 36,952,001 with transposed
convolutions (``unet-paper``), 31,379,521 with parameter-free up-sampling; 3 bands: 576 fewer.

Output convention: the models return LOGITS. The paper's final sigmoid is applied by the losses
(:mod:`landslip.models.losses`, through ``binary_cross_entropy_with_logits`` / ``sigmoid``) and by
prediction (probability = ``sigmoid(logits)``; threshold 0.5 on the probability equals threshold
0 on the logit). This is mathematically the same network, and numerically more stable than
taking the log of a saturated sigmoid.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

from landslip.errors import ModelError
from landslip.models.registry import check_input, register_model

__all__ = ["PAPER_DEPTH", "PAPER_WIDTH", "UNet", "Upsampling", "unet", "unet_paper"]

Upsampling = Literal["transpose", "bilinear", "nearest"]
"""Decoder up-sampling: 2x2 transposed convolution keeping the channel count (the paper), or
parameter-free bilinear or nearest-neighbour (Keras ``UpSampling2D``) interpolation."""

PAPER_WIDTH = 64
"""Channels of the first level in Figure 4."""
PAPER_DEPTH = 4
"""Number of 2x2 poolings in Figure 4 (five levels: 64 to 1024 channels)."""


class _DoubleConv(nn.Sequential):
    """Two 3x3 convolutions with "same" padding, each followed by ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
        )


def _upsampler(channels: int, mode: Upsampling) -> nn.Module:
    if mode == "transpose":
        # 2x2 transposed convolution, stride 2, channel count kept (Figure 4: 1024 -> 1024).
        return nn.ConvTranspose2d(channels, channels, kernel_size=2, stride=2)
    if mode == "bilinear":
        return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    return nn.Upsample(scale_factor=2, mode="nearest")


def _up_concat(up: nn.Module, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """``torch.cat([up(x), skip], dim=1)``, for channels_last training as one matrix product.

    A 2x2 stride-2 transposed convolution does not overlap: output pixel ``(2i+a, 2j+b)`` is
    ``x[:, :, i, j] @ weight[:, :, a, b] + bias``. On channels_last (NHWC) tensors the pixels
    of ``x`` are the rows of an (N*H*W, C) matrix, so the up-sampling is ONE ``addmm`` with the
    (C, 2*2*O) weight, and the concatenation places its (a, b) blocks straight into the output
    pixels: no transposed-convolution kernel, no layout conversion, one copy fewer than
    ``cat`` of the up-sampled map (forward and backward about 1.5-2x faster on the CPU). Same
    parameters and the same sums (equal to float32 rounding; tested).

    Used while gradients are recorded on channels_last inputs, outside tracing and compiling;
    otherwise (NCHW, inference, export, ``torch.compile``, bilinear/nearest up-sampling) this
    is the plain ``torch.cat([up(x), skip], dim=1)``.

    Args:
        up: The decoder level's up-sampler.
        x: (N, C, H, W) float map to up-sample.
        skip: (N, S, 2H, 2W) encoder map of the same level.

    Returns:
        (N, O + S, 2H, 2W), channels_last on the fast path.
    """
    cl = torch.channels_last
    if not (isinstance(up, nn.ConvTranspose2d) and torch.is_grad_enabled()
            and x.is_contiguous(memory_format=cl) and skip.is_contiguous(memory_format=cl)
            and x.dim() == 4 and up.kernel_size == (2, 2) and up.stride == (2, 2)
            and up.padding == (0, 0) and up.output_padding == (0, 0) and up.groups == 1
            and up.dilation == (1, 1) and not torch.compiler.is_compiling()
            and not torch.jit.is_tracing()):  # type: ignore[attr-defined,no-untyped-call]
        return torch.cat([up(x), skip], dim=1)
    n, c, h, w = x.shape
    o, s = up.out_channels, skip.shape[1]
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)  # a view: x is NHWC in memory
    weight = up.weight.permute(0, 2, 3, 1).reshape(c, 4 * o)  # columns (a, b, o)
    y = rows @ weight if up.bias is None else torch.addmm(up.bias.repeat(4), rows, weight)
    cells = y.view(n, h, w, 2, 2, o).permute(0, 1, 3, 2, 4, 5)  # (n, i, a, j, b, o)
    skip6 = skip.permute(0, 2, 3, 1).view(n, h, 2, w, 2, s)
    out = torch.cat([cells, skip6], dim=5).view(n, 2 * h, 2 * w, o + s)
    return out.permute(0, 3, 1, 2)


class UNet(nn.Module):
    """U-Net with configurable base width and depth; returns logits.

    Args:
        in_channels: Number of input bands C.
        width: Channels of the first level; level ``i`` has ``width * 2**i``.
        depth: Number of 2x2 poolings (levels minus one); inputs must be multiples of
            ``2**depth`` pixels in height and width.
        upsampling: Decoder up-sampling, see :data:`Upsampling`.
        name: Name used in error messages.

    Attributes:
        required_multiple: ``2**depth``; height and width must be multiples of it.
        in_channels: Number of input bands.
        params: The constructor parameters (width, depth, upsampling), for the model bundle.

    Shapes:
        input (N, C, H, W) float32 -> logits (N, 1, H, W) float32.
    """

    def __init__(
        self,
        in_channels: int,
        width: int = PAPER_WIDTH,
        depth: int = PAPER_DEPTH,
        upsampling: Upsampling = "transpose",
        name: str = "unet",
    ) -> None:
        super().__init__()
        for label, value, low in (("width", width, 1), ("depth", depth, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ModelError(f"{name}: {label} must be an integer >= {low}, got {value!r}")
        if depth > 8:
            raise ModelError(f"{name}: depth {depth} is too deep (at most 8 poolings)")
        if upsampling not in get_args(Upsampling):
            raise ModelError(
                f"{name}: upsampling must be one of {', '.join(get_args(Upsampling))}, "
                f"got {upsampling!r}"
            )
        self.in_channels = in_channels
        self.required_multiple = 2**depth
        self.name = name
        self.params: dict[str, int | str] = {
            "width": width, "depth": depth, "upsampling": upsampling,
        }
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.down.append(_DoubleConv(c, w))
            c = w
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(_upsampler(c, upsampling))
            self.dec.append(_DoubleConv(c + w, w))  # concat keeps c, adds the skip's w
            c = w
        self.head = nn.Conv2d(c, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, H, W) float32 inputs to (N, 1, H, W) logits.

        Raises:
            ModelError: If the input is not 4-D, has the wrong number of bands, or H or W is not
                a multiple of :attr:`required_multiple` (the message says how to pad).
        """
        check_input(x, self.in_channels, self.required_multiple, self.name)
        skips: list[torch.Tensor] = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)
                x = self.pool(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            x = dec(_up_concat(up, x, skip))
        out: torch.Tensor = self.head(x)
        return out


@register_model("unet-paper")
def unet_paper(in_channels: int) -> UNet:
    """The paper's Figure 4 U-Net: widths 64-1024, 2x2 transposed convs, 36,952,001 parameters."""
    return UNet(in_channels, PAPER_WIDTH, PAPER_DEPTH, "transpose", name="unet-paper")


@register_model("unet")
def unet(
    in_channels: int,
    width: int = PAPER_WIDTH,
    depth: int = PAPER_DEPTH,
    upsampling: Upsampling = "transpose",
) -> UNet:
    """Figure 4's U-Net with configurable width, depth and up-sampling (width 16: ~2.3 M params)."""
    return UNet(in_channels, width, depth, upsampling, name="unet")
