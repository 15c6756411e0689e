"""Choosing the torch device: one rule for training, evaluation, prediction and the study.

``auto`` (or nothing) means CUDA when a CUDA device is present, else the CPU. A device that was
asked for but is not there (``cuda`` on a machine without CUDA, ``cuda:3`` with two GPUs) is a
clear :class:`~landslip.errors.InputError`, not a traceback deep inside torch.
"""

from __future__ import annotations

import torch

from landslip.errors import InputError

__all__ = ["select_device"]


def select_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device to run on.

    Args:
        device: ``None``, ``""`` or ``"auto"`` for CUDA when available else the CPU; otherwise
            a torch device string such as ``"cpu"``, ``"cuda"`` or ``"cuda:1"``.

    Returns:
        The device.

    Raises:
        InputError: If the string is not a device, or names a CUDA device that is absent.
    """
    if device is None or str(device) in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
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
