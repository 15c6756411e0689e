"""Which values of a label raster or mask mean landslide (``--landslide-values``).

landslip's labels are 0 background, 1 landslide, 255 ignore (:mod:`landslip.encoding`). Label
data from elsewhere uses other codes: class rasters (1 = landslide, 2 = other slope failure,
3 = water), 0/255 masks. The rules, shared by ``prepare`` and ``import-patches``:

* Without ``--landslide-values`` a label raster must hold 0, 1 and 255 only; any other value is
  an error that lists the values found and asks which of them mean landslide. The hint never
  proposes a reading that would silently drop a class.
* With ``--landslide-values V[,V...]`` a pixel is a landslide when its value is listed; 255 is
  ignore unless listed; every other value is background.
* An import mask read as a 0/255 mask (``--mask-mode threshold``, landslide where > 127, or
  ``auto`` on a mask without 1s) whose values are above 0 but none above 127 would come out
  empty: that is an error (``--mask-mode labels`` for 0/1 masks, else ``--landslide-values``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.encoding import BACKGROUND, IGNORE, LANDSLIDE
from landslip.errors import InputError, LabelError

__all__ = [
    "LANDSLIDE_VALUES_HINT",
    "check_threshold_mask",
    "labels_from_values",
    "parse_landslide_values",
]

LANDSLIDE_VALUES_HINT = ("say which values mean landslide with --landslide-values V[,V...] "
                         "(every other value but 255, ignore, then becomes background)")
"""The safe hint for label values landslip does not know."""


def parse_landslide_values(text: str | None, option: str = "--landslide-values"
                           ) -> tuple[int, ...] | None:
    """Parse ``--landslide-values``: a comma list of whole numbers, or None when not given.

    Raises:
        InputError: For an empty list, an item that is not a whole number, or a value twice.
    """
    if text is None:
        return None
    items = [t.strip() for t in text.split(",")]
    try:
        values = tuple(int(t) for t in items)
    except ValueError:
        raise InputError(f"{option} must be a comma list of whole numbers such as 1 or 1,2; "
                         f"got {text!r}") from None
    if len(set(values)) != len(values):
        raise InputError(f"{option} lists a value twice: {text!r}")
    return values


def _found(values: npt.NDArray[Any]) -> str:
    shown = [str(v) for v in values[:8].tolist()]
    return ", ".join(shown) + (", ..." if values.size > 8 else "")


def labels_from_values(
    arr: npt.NDArray[Any],
    landslide_values: Sequence[int] | None,
    path: str | Path,
    what: str = "label raster",
) -> npt.NDArray[np.uint8]:
    """landslip labels (0, 1, 255) from label codes.

    Args:
        arr: Label codes, any integer dtype, any shape.
        landslide_values: The codes that mean landslide, or None for landslip's own codes.
        path: The file, named in messages.
        what: What the file is (``label raster``, ``mask``), for messages.

    Returns:
        uint8 labels of the same shape.

    Raises:
        LabelError: Without ``landslide_values``, when a code other than 0, 1 and 255 occurs.
    """
    if landslide_values is None:
        bad = ~np.isin(arr, (BACKGROUND, LANDSLIDE, IGNORE))
        if bad.any():
            found = np.unique(arr[bad])
            raise LabelError(f"{what} {path} has values {_found(found)} besides 0, 1 and 255 "
                             f"(background, landslide, ignore); {LANDSLIDE_VALUES_HINT}")
        return arr.astype(np.uint8, copy=False)
    slide = np.isin(arr, np.asarray(landslide_values))
    out = np.full(arr.shape, BACKGROUND, dtype=np.uint8)
    if IGNORE not in landslide_values:
        out[arr == IGNORE] = IGNORE
    out[slide] = LANDSLIDE
    return out


def check_threshold_mask(arr: npt.NDArray[Any], path: str | Path) -> None:
    """Refuse a mask that ``--mask-mode threshold`` (> 127) would read as empty though it is not.

    Raises:
        LabelError: When some values are above 0 but none above 127 (a 0/1 mask, class codes).
    """
    if arr.size == 0:
        return
    top = int(arr.max())
    if 0 < top <= 127:
        fix = ("use --mask-mode labels (or auto) for 0/1 masks" if top == 1
               else LANDSLIDE_VALUES_HINT)
        raise LabelError(f"mask {path} holds values {_found(np.unique(arr))}, none above 127, "
                         "so reading it as a 0/255 mask (landslide where > 127) would find no "
                         f"landslide; {fix}")
