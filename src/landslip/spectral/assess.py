"""Wald's protocol on a PAN/MS raster pair: degrade both by R, fuse, compare with the MS.

The pair is checked as for fusion (:func:`landslip.spectral.fusion.check_pair`); the
protocol also needs an integer ratio R (within 1 %) and an MS grid whose corner lies on a PAN
pixel corner, so that R x R PAN pixels degrade exactly onto one MS pixel. The reference is the
MS window covered by the PAN (cropped to a multiple of R, and to a centred window of at most
``max_pixels`` MS pixels, since the protocol runs in memory at MS resolution). The PAN is
degraded by block means while it is streamed in strips; MS and PAN nodata make the whole
degraded block invalid, and the metrics skip invalid pixels (Q and Q4 skip blocks with any).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from landslip.errors import GridError
from landslip.grid import Window
from landslip.io.raster import open_raster
from landslip.progress import track
from landslip.spectral.fusion import check_pair
from landslip.spectral.hpf_params import Center, Method, Modulation
from landslip.spectral.pansharpen import nodata_mask
from landslip.spectral.quality import WaldScore, degrade, format_table, wald_protocol

__all__ = ["WaldReport", "assess_pair"]


@dataclass(frozen=True)
class WaldReport:
    """Result of :func:`assess_pair`.

    Attributes:
        pan: PAN path.
        ms: MS path.
        ratio: Integer R used for the degradation.
        ms_window: MS window used as the reference.
        scores: One score per method.
    """

    pan: Path
    ms: Path
    ratio: int
    ms_window: Window
    scores: tuple[WaldScore, ...]

    def table(self) -> str:
        """The scores as a plain-text table."""
        return format_table(self.scores)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        w = self.ms_window
        return {
            "protocol": "wald",
            "pan": str(self.pan),
            "ms": str(self.ms),
            "ratio": self.ratio,
            "degradation": "block mean R x R",
            "ms_window": {"row_off": w.row_off, "col_off": w.col_off, "height": w.height,
                          "width": w.width},
            "q_block": 32,
            "scores": [s.to_dict() for s in self.scores],
        }


def assess_pair(
    pan_path: str | Path,
    ms_path: str | Path,
    methods: Sequence[Method] = ("bilinear", "hpf", "brovey"),
    center: Center = "low",
    modulation: Modulation = "mid",
    histogram_match: bool = True,
    weights: Sequence[float] | None = None,
    max_pixels: int = 4096 * 4096,
) -> WaldReport:
    """Score each fusion method on a PAN/MS pair by Wald's protocol.

    Raises:
        GridError: When R is not an integer or the grids are not nested.
        CRSMismatchError, InputError, RasterIOError: As :func:`check_pair`.
    """
    setup = check_pair(pan_path, ms_path)
    r = round(setup.ratio)
    if r < 2 or abs(setup.ratio - r) > 0.01 * r:
        raise GridError(
            f"Wald's protocol needs an integer resolution ratio >= 2; this pair has R = "
            f"{setup.ratio:.3f}"
        )
    pt, mt = setup.pan.grid.transform, setup.ms.grid.transform
    oc = (mt.c - pt.c) / pt.a
    orow = (mt.f - pt.f) / pt.e
    if abs(oc - round(oc)) > 0.01 or abs(orow - round(orow)) > 0.01:
        raise GridError(
            "Wald's protocol needs the MS pixel corners on PAN pixel corners; the MS origin is "
            f"offset by ({oc:.3f}, {orow:.3f}) PAN pixels"
        )
    oc, orow = round(oc), round(orow)
    ph, pw = setup.pan.grid.shape
    mh, mw = setup.ms.grid.shape
    c0 = max(math.ceil(-oc / r), 0)
    c1 = min(math.floor((pw - oc) / r), mw)
    r0 = max(math.ceil(-orow / r), 0)
    r1 = min(math.floor((ph - orow) / r), mh)
    h, w = (r1 - r0) // r * r, (c1 - c0) // r * r
    side = max(math.isqrt(max_pixels) // r * r, r)
    if h > side:
        r0, h = r0 + (h - side) // 2, side
    if w > side:
        c0, w = c0 + (w - side) // 2, side
    if h < 2 * r or w < 2 * r:
        raise GridError(f"the PAN covers too few MS pixels ({h} x {w}) for Wald's protocol")
    ms_win = Window(r0, c0, h, w)
    with open_raster(setup.ms.path) as ds:
        raw = ds.read(window=ms_win.to_rasterio())
    ms_ref = raw.astype(np.float32)
    ms_ref[:, ~nodata_mask(raw, setup.ms.nodata)] = np.nan
    pan_low = np.empty((h, w), dtype=np.float32)
    strip = max(1, (1 << 22) // (w * r * r)) * r  # MS rows per strip, times R PAN rows
    with open_raster(setup.pan.path) as ds:
        for i in track(range(0, h, strip // r), None, "assess: degrading PAN"):
            n = min(strip // r, h - i)
            pwin = Window(orow + (r0 + i) * r, oc + c0 * r, n * r, w * r)
            praw = ds.read(1, window=pwin.to_rasterio())
            p = praw.astype(np.float32)
            p[~nodata_mask(praw[None], setup.pan.nodata)] = np.nan
            pan_low[i:i + n] = degrade(p, r)
    ms_low = degrade(ms_ref, r)
    scores = wald_protocol(pan_low, ms_low, ms_ref, r, methods, center, modulation,
                           histogram_match, weights)
    return WaldReport(setup.pan.path, setup.ms.path, r, ms_win, tuple(scores))
