"""The HPF resolution merge parameter table (Gangkofner, Pradhan & Holcomb 2008).

Kernel size, kernel centre value and modulation factor as functions of the resolution ratio
R = MS pixel size / PAN pixel size, as in ERDAS IMAGINE and ``docs/reference.md`` ("HPF
resolution merge"); lower bounds inclusive, upper bounds exclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from landslip.errors import InputError

__all__ = [
    "HPF_TABLE",
    "SECOND_PASS",
    "Center",
    "HPFParams",
    "Method",
    "Modulation",
    "hpf_parameters",
]

Center = Literal["low", "mid", "high"]
Modulation = Literal["min", "mid", "max"]
Method = Literal["hpf", "brovey", "bilinear"]


# Gangkofner et al. 2008 / ERDAS IMAGINE HPF resolution merge (docs/reference.md):
# (R lower bound inclusive, R upper bound exclusive, kernel size,
#  centre values low/mid/high, modulation min/mid/max).
_Row = tuple[float, float, int, tuple[int, int, int], tuple[float, float, float]]
HPF_TABLE: tuple[_Row, ...] = (
    (1.0, 2.5, 5, (24, 28, 32), (0.20, 0.25, 0.30)),
    (2.5, 3.5, 7, (48, 56, 64), (0.35, 0.50, 0.65)),
    (3.5, 5.5, 9, (80, 93, 106), (0.35, 0.50, 0.65)),
    (5.5, 7.5, 11, (120, 150, 180), (0.50, 0.65, 1.00)),
    (7.5, 9.5, 13, (168, 210, 252), (0.65, 1.00, 1.40)),
    (9.5, math.inf, 15, (336, 392, 448), (1.00, 1.35, 2.00)),
)
"""The HPF parameter table: ratio range, kernel, centre values and modulation factors."""

SECOND_PASS: tuple[int, tuple[int, int, int], tuple[float, float, float]] = (
    5, (24, 28, 32), (0.25, 0.35, 0.50)
)
"""The optional second pass for R >= 5.5: kernel, centres low/mid/high, modulation min/mid/max."""

_CENTER_INDEX = {"low": 0, "mid": 1, "high": 2}
_MOD_INDEX = {"min": 0, "mid": 1, "max": 2}


@dataclass(frozen=True)
class HPFParams:
    """The HPF parameters for one resolution ratio.

    Attributes:
        ratio: R = MS pixel size / PAN pixel size.
        kernel: Kernel size k of the first pass (odd).
        center: Centre value of the first-pass kernel (all other cells are -1).
        modulation: Modulation factor M of the first pass.
        second_kernel: Kernel size of the second pass, or None when there is none.
        second_center: Centre value of the second-pass kernel (0 when none).
        second_modulation: Modulation factor of the second pass (0 when none).
    """

    ratio: float
    kernel: int
    center: int
    modulation: float
    second_kernel: int | None = None
    second_center: int = 0
    second_modulation: float = 0.0

    @property
    def halo(self) -> int:
        """Pixels of PAN context needed on each side of a block (half the largest kernel)."""
        return max(self.kernel, self.second_kernel or 0) // 2


def hpf_parameters(
    ratio: float,
    center: Center = "low",
    modulation: Modulation = "mid",
    second_pass: bool = False,
) -> HPFParams:
    """Look up kernel size, centre value and modulation factor for a resolution ratio.

    Args:
        ratio: R = MS pixel size / PAN pixel size, >= 1 (SPOT-7: 6 m / 1.5 m = 4).
        center: Kernel centre value level: ``low`` (default, ERDAS), ``mid`` or ``high``.
        modulation: Modulation factor level: ``min``, ``mid`` (default, ERDAS) or ``max``.
        second_pass: Add the 5 x 5 second pass (only allowed for R >= 5.5).

    Raises:
        InputError: For R < 1, an unknown level, or a second pass with R < 5.5.
    """
    if center not in _CENTER_INDEX:
        raise InputError(f"centre level must be one of low, mid, high; got {center!r}")
    if modulation not in _MOD_INDEX:
        raise InputError(f"modulation level must be one of min, mid, max; got {modulation!r}")
    if not ratio >= 1.0:
        raise InputError(
            f"the resolution ratio R = MS pixel size / PAN pixel size must be >= 1, got {ratio:g}"
        )
    ci, mi = _CENTER_INDEX[center], _MOD_INDEX[modulation]
    for lo, hi, k, centres, mods in HPF_TABLE:
        if lo <= ratio < hi:
            params = HPFParams(ratio, k, centres[ci], mods[mi])
            break
    else:  # pragma: no cover - the table ends at infinity
        raise InputError(f"no HPF parameters for R = {ratio}")
    if second_pass:
        if ratio < 5.5:
            raise InputError(
                f"the HPF second pass is defined for R >= 5.5 only (Gangkofner et al. 2008); "
                f"this pair has R = {ratio:g}; drop --second-pass"
            )
        k2, c2, m2 = SECOND_PASS
        params = HPFParams(ratio, params.kernel, params.center, params.modulation, k2, c2[ci],
                           m2[mi])
    return params
