"""The registry of segmentation models: one factory, names listed on a wrong name.

Every model registered here maps ``(N, C, H, W)`` float32 inputs with any number of bands ``C``
to LOGITS of shape ``(N, 1, H, W)``; probability = ``sigmoid(logits)``. Models expose
``required_multiple`` (height and width must be multiples of it) and refuse other sizes with a
:class:`~landslip.errors.ModelError` that says how to pad or crop. Every registered model passes
the one shared contract test in ``tests/models/test_model_contract.py``.

Example:
    >>> from landslip.models.registry import create_model
    >>> net = create_model("unet", in_channels=3, width=16)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from landslip.errors import ModelError

if TYPE_CHECKING:  # the registry itself runs without torch (the ONNX Runtime engine uses it)
    import torch
    from torch import nn

__all__ = [
    "ModelInfo",
    "SegmentationModel",
    "check_input",
    "check_input_size",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
]


@runtime_checkable
class SegmentationModel(Protocol):
    """What every registered model offers beyond ``nn.Module``."""

    required_multiple: int
    in_channels: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


Factory = Callable[..., "nn.Module"]
F = TypeVar("F", bound=Factory)


@dataclass(frozen=True)
class ModelInfo:
    """A registered model.

    Attributes:
        name: Registry name (``unet-paper``, ``unet``, ...).
        factory: ``factory(in_channels, **params) -> nn.Module``.
        summary: One line describing it (first docstring line of the factory).
        params: Names of the keyword parameters the factory accepts (besides ``in_channels``).
    """

    name: str
    factory: Factory
    summary: str
    params: tuple[str, ...]


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(name: str) -> Callable[[F], F]:
    """Class or function decorator registering a model factory under ``name``.

    The factory is called as ``factory(in_channels, **params)`` and must return an
    ``nn.Module`` with ``required_multiple`` and ``in_channels`` attributes that returns logits
    of shape (N, 1, H, W).

    Raises:
        ModelError: If ``name`` is already registered.
    """

    def deco(factory: F) -> F:
        if name in _REGISTRY:
            raise ModelError(f"model name {name!r} is registered twice")
        sig = inspect.signature(factory)
        params = tuple(p for p in sig.parameters if p not in ("self", "in_channels"))
        doc = (inspect.getdoc(factory) or name).strip().splitlines()[0]
        _REGISTRY[name] = ModelInfo(name=name, factory=factory, summary=doc, params=params)
        return factory

    return deco


def _ensure_builtin() -> None:
    # The built-in models register themselves on import; imported lazily to avoid a cycle.
    import landslip.models.ensemble
    import landslip.models.smp_models
    import landslip.models.unet  # noqa: F401


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _ensure_builtin()
    return sorted(_REGISTRY)


def model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``.

    Raises:
        ModelError: For an unknown name; the message lists the valid names.
    """
    _ensure_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; valid models: {', '.join(sorted(_REGISTRY))}"
        ) from None


def create_model(name: str, in_channels: int, **params: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: Registry name; see :func:`list_models`.
        in_channels: Number of input bands C (>= 1).
        **params: Model parameters (for ``unet``: ``width``, ``depth``, ``upsampling``).

    Returns:
        The model (train mode), mapping float32 (N, C, H, W) to logits (N, 1, H, W).

    Raises:
        ModelError: For an unknown name, a bad ``in_channels``, or parameters the model does
            not take (the message lists the ones it does).
    """
    info = model_info(name)
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ModelError(f"in_channels must be a positive integer, got {in_channels!r}")
    unknown = sorted(set(params) - set(info.params))
    if unknown:
        accepted = ", ".join(info.params) or "none"
        raise ModelError(
            f"model {name!r} does not take parameter(s) {', '.join(unknown)}; "
            f"it takes: {accepted}"
        )
    try:
        return info.factory(in_channels, **params)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"cannot build model {name!r} with {params}: {exc}") from exc


def check_input_size(height: int, width: int, multiple: int, model: str) -> None:
    """Refuse spatial sizes that are not multiples of ``multiple``, saying how to fix them.

    Args:
        height: Input height in pixels.
        width: Input width in pixels.
        multiple: Required divisor (``2 ** depth`` for a U-Net).
        model: Model name, for the message.

    Raises:
        ModelError: Naming the nearest larger size to pad to and the smaller one to crop to.
    """
    bad = [(axis, n) for axis, n in (("height", height), ("width", width)) if n % multiple]
    if not bad:
        return
    hints = []
    for axis, n in bad:
        up = -(-n // multiple) * multiple
        down = (n // multiple) * multiple
        crop = f" or crop to {down}" if down > 0 else ""
        hints.append(f"{axis} {n}: pad to {up}{crop}")
    raise ModelError(
        f"{model} needs input height and width divisible by {multiple}, got {height} x {width} "
        f"({'; '.join(hints)})"
    )


def check_input(x: torch.Tensor, in_channels: int, multiple: int, model: str) -> None:
    """The checks every registered model makes on its input before the forward pass.

    Args:
        x: The input, expected float (N, C, H, W).
        in_channels: Bands C the model was built for.
        multiple: Required divisor of H and W.
        model: Model name, for the messages.

    Raises:
        ModelError: If ``x`` is not 4-D, has another number of bands, or H or W is not a
            multiple of ``multiple`` (the message says how to pad or crop).
    """
    if x.ndim != 4:
        raise ModelError(f"{model} expects (N, C, H, W) input, got shape {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise ModelError(f"{model} was built for {in_channels} band(s), got {x.shape[1]}")
    check_input_size(int(x.shape[2]), int(x.shape[3]), multiple, model)
