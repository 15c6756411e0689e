"""Bounded resident memory while streaming through the memory-mapped arrays of a dataset.

Pages of a memory map that were read or written stay in the resident memory of the process
until the map is dropped; for datasets larger than memory, the readers and writers of
:mod:`landslip.dataset` therefore go through the arrays :data:`CHUNK_PATCHES` patches at a
time and reopen their maps after every :data:`REMAP_BYTES` bytes (:class:`RemapBudget`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from landslip.errors import DatasetError

__all__ = ["CHUNK_PATCHES", "REMAP_BYTES", "RemapBudget", "open_npy", "reopen"]

CHUNK_PATCHES = 64
"""Patches read or copied at a time."""

REMAP_BYTES = 64 * 2**20
"""Memory maps are dropped and reopened after this many bytes went through them."""


def open_npy(path: Path, mode: Literal["r", "r+"] = "r") -> Any:
    """Memory-map a ``.npy`` file of a dataset; a damaged file is one :class:`DatasetError`.

    Raises:
        DatasetError: When the file is truncated, not a ``.npy`` file, or cannot be read.
    """
    try:
        return np.load(path, mmap_mode=mode)
    except (ValueError, OSError, EOFError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DatasetError(f"cannot read {path}: {reason}; the file may be truncated or "
                           "damaged: prepare or import the dataset again") from exc


def reopen(arr: npt.NDArray[Any], mode: str = "r") -> npt.NDArray[Any]:
    """A fresh memory map of the whole ``.npy`` file behind ``arr``, else ``arr`` itself.

    Args:
        arr: A memory map opened with ``np.load(..., mmap_mode=...)`` (or any array, returned
            unchanged).
        mode: Memory-map mode of the new map (``"r"`` or ``"r+"``).
    """
    fname = getattr(arr, "filename", None)
    if not isinstance(arr, np.memmap) or not fname:
        return arr
    fresh: npt.NDArray[Any] = np.load(fname, mmap_mode=mode)  # type: ignore[arg-type]
    return fresh if fresh.shape == arr.shape else arr


class RemapBudget:
    """Counts the bytes that went through memory maps and says when to reopen them.

    The limit is :data:`REMAP_BYTES` as it is when the budget is created.
    """

    def __init__(self) -> None:
        self.limit = REMAP_BYTES
        self.passed = 0

    def spend(self, nbytes: int) -> bool:
        """Count ``nbytes``; True (and a fresh count) when the maps should be reopened now."""
        self.passed += nbytes
        if self.passed <= self.limit:
            return False
        self.passed = 0
        return True
