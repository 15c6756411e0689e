"""Choosing the torch device: one rule for training, evaluation, prediction and the study.

``auto`` (or nothing) means CUDA when a CUDA device is present, else the CPU. A device that was
asked for but is not there (``cuda`` on a machine without CUDA, ``cuda:3`` with two GPUs) is a
clear :class:`~landslip.errors.InputError`, not a traceback deep inside torch.

:func:`resolve_device` gives the same answer as :func:`select_device` as a plain
:class:`Device`, without importing torch when the answer is the CPU and no NVIDIA driver is
installed: prediction with ONNX Runtime then never loads torch (about 0.5 GB of memory and a
second of start-up with a CUDA build of torch).
"""

from __future__ import annotations

import ctypes.util
import functools
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from landslip.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["Device", "cuda_may_exist", "resolve_device", "select_device"]


@dataclass(frozen=True)
class Device:
    """A device named like torch's (``cpu``, ``cuda:0``), usable without importing torch.

    Attributes:
        type: ``cpu``, ``cuda``, ``mps`` or ``xpu``.
        index: Device index, or None.
    """

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    @classmethod
    def parse(cls, name: object) -> Device:
        """``"cpu"``, ``"cuda"``, ``"cuda:1"`` (or a ``torch.device``) as a :class:`Device`.

        Raises:
            InputError: If ``name`` is not of the form ``type`` or ``type:index``.
        """
        kind, _, index = str(name).partition(":")
        if not kind.isidentifier() or (index and not index.isdigit()):
            raise InputError(f"unknown device {str(name)!r}: use auto, cpu, cuda or cuda:N")
        return cls(kind, int(index) if index else None)


def select_device(device: str | torch.device | Device | None = None) -> torch.device:
    """The torch device to run on.

    Args:
        device: ``None``, ``""`` or ``"auto"`` for CUDA when available else the CPU; otherwise
            a torch device string such as ``"cpu"``, ``"cuda"`` or ``"cuda:1"``.

    Returns:
        The device.

    Raises:
        InputError: If the string is not a device, or names a CUDA device that is absent.
    """
    import torch

    if device is None or str(device) in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(str(device))
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"unknown device {str(device)!r}: use auto, cpu, cuda or cuda:N") from exc
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise InputError(f"device {str(device)!r} was requested but this machine has no "
                             "CUDA device; use --device cpu (or auto)")
        if dev.index is not None and dev.index >= n:
            raise InputError(f"device {str(device)!r} was requested but only {n} CUDA "
                             f"device(s) exist (cuda:0..cuda:{n - 1})")
    elif dev.type not in ("cpu", "mps", "xpu"):
        raise InputError(f"device {str(device)!r} is not supported: use auto, cpu or cuda[:N]")
    return dev


def resolve_device(device: str | torch.device | Device | None = None) -> Device:
    """:func:`select_device`'s answer, importing torch only when it may not be the CPU.

    ``cpu``, and ``auto`` (or None) on a machine where :func:`cuda_may_exist` is False, give
    ``Device("cpu")`` at once; anything else asks :func:`select_device`.

    Raises:
        InputError: As :func:`select_device`.
    """
    name = "auto" if device is None or str(device) == "" else str(device)
    if name == "cpu" or (name == "auto" and not cuda_may_exist()):
        return Device("cpu")
    dev = select_device(device)
    return Device(dev.type, dev.index)


def cuda_may_exist() -> bool:
    """Whether a CUDA device may be present, without importing torch when it is not loaded.

    With torch already imported this is ``torch.cuda.is_available()``. Otherwise False only
    when no NVIDIA driver is installed (no ``/proc/driver/nvidia`` and no CUDA driver library
    on the library path), which CUDA cannot run without.
    """
    if "torch" in sys.modules:
        return bool(sys.modules["torch"].cuda.is_available())
    return _nvidia_driver_installed()


@functools.cache
def _nvidia_driver_installed() -> bool:
    if os.path.exists("/proc/driver/nvidia"):
        return True
    return any(ctypes.util.find_library(name) for name in ("cuda", "nvcuda"))
