"""Device choice: one rule, and no torch import where the answer is the CPU."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from landslip import devices
from landslip.devices import Device, resolve_device, select_device
from landslip.errors import InputError


def test_device_names_parse_and_print() -> None:
    assert Device.parse("cpu") == Device("cpu") and str(Device("cpu")) == "cpu"
    assert Device.parse("cuda:1") == Device("cuda", 1) and str(Device("cuda", 1)) == "cuda:1"
    assert Device.parse(torch.device("cuda", 0)) == Device("cuda", 0)
    for bad in ("cuda:x", "", "gpu 1"):
        with pytest.raises(InputError, match="unknown device"):
            Device.parse(bad)


def test_resolve_device_agrees_with_select_device(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (None, "", "auto", "cpu"):
        assert str(resolve_device(name)) == str(select_device(name))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == Device("cuda")
    assert resolve_device("cuda:1") == Device("cuda", 1)
    with pytest.raises(InputError, match="only 2 CUDA"):
        resolve_device("cuda:2")


def test_no_driver_means_cpu_without_asking_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without torch loaded, ``auto`` on a machine without an NVIDIA driver is the CPU."""
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.setattr(devices, "_nvidia_driver_installed", lambda: False)
    assert not devices.cuda_may_exist()
    assert resolve_device("auto") == Device("cpu")
    assert "torch" not in sys.modules


def test_importing_devices_does_not_import_torch() -> None:
    code = "import sys, landslip.devices; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
