"""Pan-sharpening quality: ERGAS, SAM, Q (UIQI), Q4, and Wald's protocol.

Definitions (``docs/reference.md``, "Pan-sharpening quality"):

* ERGAS = (100 / R) * sqrt(mean_b(MSE_b / mu_b^2)), mu_b the mean of reference band b
  (Wald 2002). Ideal 0.
* SAM = mean over pixels of arccos(<x, y> / (|x| |y|)), in degrees. Ideal 0. Pixels where
  either vector is zero are skipped.
* Q (UIQI, Wang & Bovik 2002) = 4 s_xy mu_x mu_y / ((s_x^2 + s_y^2)(mu_x^2 + mu_y^2)) on
  non-overlapping 32 x 32 blocks, averaged over blocks and then over bands. Ideal 1.
* Q4 (Alparone et al. 2004): the same with each pixel's 4 bands as a quaternion
  z = a + ib + jc + kd, the covariance ``E[(z - mu_z)(y - mu_y)*]`` a quaternion (``*`` the
  conjugate) and its modulus in the numerator; 32 x 32 blocks, averaged. Ideal 1.

Statistics use the population divisor N throughout (it cancels in Q and Q4). Blocks that
are less than half valid are skipped, the others use their valid pixels; an image smaller
than a block is one block. In a block
where both images are constant, the correlation and contrast terms are taken as 1, leaving the
luminance term 2 mu_x mu_y / (mu_x^2 + mu_y^2) (1 when both means are 0).

Wald's protocol (Wald, Ranchin & Mangolini 1997): degrade MS and PAN by R (here: R x R block
means), fuse the degraded pair, and compare the result with the original MS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.errors import InputError
from landslip.spectral.hpf_params import Center, Method, Modulation, hpf_parameters
from landslip.spectral.pansharpen import PixelMapping, fuse_arrays

__all__ = [
    "BLOCK",
    "WaldScore",
    "degrade",
    "ergas",
    "format_table",
    "q4",
    "q_index",
    "sam",
    "wald_protocol",
]

BLOCK = 32
"""Block size of Q and Q4 (pixels)."""

Arr = npt.NDArray[Any]
Bool = npt.NDArray[np.bool_]


def _check(ref: Arr, fused: Arr, valid: Bool | None) -> tuple[npt.NDArray[np.float64],
                                                              npt.NDArray[np.float64], Bool]:
    if ref.shape != fused.shape or ref.ndim != 3:
        raise InputError(f"reference and fused images must both be (C, H, W) of the same shape, "
                         f"got {ref.shape} and {fused.shape}")
    v = np.ones(ref.shape[1:], dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if v.shape != ref.shape[1:]:
        raise InputError(f"valid mask {v.shape} does not match the images {ref.shape[1:]}")
    if not v.any():
        raise InputError("no valid pixel to compare")
    return ref.astype(np.float64), fused.astype(np.float64), v


def ergas(ref: Arr, fused: Arr, ratio: float, valid: Bool | None = None) -> float:
    """ERGAS of ``fused`` against ``ref`` (C, H, W) over valid pixels; ratio R = MS/PAN size.

    Raises:
        InputError: For mismatched shapes or a reference band with mean 0.
    """
    r, f, v = _check(ref, fused, valid)
    terms = []
    for b in range(r.shape[0]):
        x, y = r[b][v], f[b][v]
        mu = x.mean()
        if mu == 0:
            raise InputError(f"ERGAS is undefined: reference band {b} has mean 0")
        terms.append(np.mean((x - y) ** 2) / mu**2)
    return float(100.0 / ratio * math.sqrt(float(np.mean(terms))))


def sam(ref: Arr, fused: Arr, valid: Bool | None = None) -> float:
    """Mean spectral angle in degrees between ``ref`` and ``fused`` (C, H, W) pixel vectors."""
    r, f, v = _check(ref, fused, valid)
    x, y = r[:, v], f[:, v]
    nx, ny = np.linalg.norm(x, axis=0), np.linalg.norm(y, axis=0)
    ok = (nx > 0) & (ny > 0)
    if not ok.any():
        raise InputError("SAM is undefined: every pixel vector is zero")
    cos = (x[:, ok] * y[:, ok]).sum(axis=0) / (nx[ok] * ny[ok])
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean())


def _blocks(a: npt.NDArray[np.float64], block: int) -> npt.NDArray[np.float64]:
    """(C, H, W) -> (C, nb, block*block) non-overlapping blocks (one block if smaller)."""
    c, h, w = a.shape
    if h < block or w < block:
        return a.reshape(c, 1, h * w)
    nh, nw = h // block, w // block
    t = a[:, :nh * block, :nw * block].reshape(c, nh, block, nw, block)
    return t.transpose(0, 1, 3, 2, 4).reshape(c, nh * nw, block * block)


def _block_moments(r: npt.NDArray[np.float64], f: npt.NDArray[np.float64], v: Bool,
                   block: int) -> tuple[npt.NDArray[np.float64], ...]:
    """Masked block statistics: (means x, means y, centred x, centred y, weights), blocks kept.

    A block is kept when at least half its pixels are valid; statistics use valid pixels only.
    """
    rb, fb = _blocks(r, block), _blocks(f, block)
    wb = _blocks(v[None].astype(np.float64), block)[0]
    n = wb.sum(axis=1)
    keep = n >= wb.shape[1] / 2
    if not keep.any():
        raise InputError(f"no {block} x {block} block is at least half valid")
    rb, fb, wb, n = rb[:, keep], fb[:, keep], wb[keep], n[keep]
    mx = (rb * wb).sum(axis=2) / n
    my = (fb * wb).sum(axis=2) / n
    dx = (rb - mx[..., None]) * wb
    dy = (fb - my[..., None]) * wb
    return mx, my, dx, dy, n


def _q_from_moments(mx: Any, my: Any, vx: Any, vy: Any, cxy: Any) -> npt.NDArray[np.float64]:
    mx, my, vx, vy, cxy = (np.asarray(t, dtype=np.float64) for t in (mx, my, vx, vy, cxy))
    lum_den = mx**2 + my**2
    lum = np.where(lum_den > 0, 2 * mx * my / np.where(lum_den > 0, lum_den, 1), 1.0)
    den = vx + vy
    struct = np.where(den > 0, 2 * cxy / np.where(den > 0, den, 1), 1.0)
    return np.asarray(struct * lum, dtype=np.float64)


def q_index(ref: Arr, fused: Arr, valid: Bool | None = None, block: int = BLOCK) -> float:
    """Universal image quality index Q, on ``block`` x ``block`` blocks, mean over bands."""
    r, f, v = _check(ref, fused, valid)
    mx, my, dx, dy, n = _block_moments(r, f, v, block)
    q = _q_from_moments(mx, my, (dx * dx).sum(axis=2) / n, (dy * dy).sum(axis=2) / n,
                        (dx * dy).sum(axis=2) / n)
    return float(q.mean())


def _qmul_conj(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]
               ) -> npt.NDArray[np.float64]:
    """Quaternion product a * conj(b) for arrays of shape (4, ...)."""
    a1, b1, c1, d1 = a
    a2, b2, c2, d2 = b[0], -b[1], -b[2], -b[3]
    return np.stack([
        a1 * a2 - b1 * b2 - c1 * c2 - d1 * d2,
        a1 * b2 + b1 * a2 + c1 * d2 - d1 * c2,
        a1 * c2 - b1 * d2 + c1 * a2 + d1 * b2,
        a1 * d2 + b1 * c2 - c1 * b2 + d1 * a2,
    ])


def q4(ref: Arr, fused: Arr, valid: Bool | None = None, block: int = BLOCK) -> float:
    """Q4 quaternion quality index (Alparone et al. 2004) of 4-band images, block average.

    Raises:
        InputError: Unless the images have exactly 4 bands.
    """
    if ref.shape[0] != 4:
        raise InputError(f"Q4 needs exactly 4 bands, got {ref.shape[0]}")
    r, f, v = _check(ref, fused, valid)
    mx, my, dx, dy, n = _block_moments(r, f, v, block)  # means: (4, nb) quaternions
    cov = _qmul_conj(dx, dy).sum(axis=2) / n  # (4, nb) quaternion covariance
    cov_mod = np.sqrt((cov**2).sum(axis=0))
    vx, vy = (dx**2).sum(axis=(0, 2)) / n, (dy**2).sum(axis=(0, 2)) / n
    mod_x, mod_y = np.sqrt((mx**2).sum(axis=0)), np.sqrt((my**2).sum(axis=0))
    q = _q_from_moments(mod_x, mod_y, vx, vy, cov_mod)
    return float(q.mean())


def degrade(arr: Arr, factor: int, nodata: float | None = None) -> npt.NDArray[np.float32]:
    """Block-mean down-sampling by an integer factor (Wald's protocol degradation).

    Args:
        arr: (C, H, W) or (H, W); H and W are cropped to multiples of ``factor``.
        factor: Integer R >= 1.
        nodata: Input nodata; a block with any nodata pixel becomes NaN.

    Returns:
        float32 array of shape (C, H // factor, W // factor) (or 2-D), NaN where invalid.
    """
    if factor < 1:
        raise InputError(f"degradation factor must be >= 1, got {factor}")
    a = arr[None] if arr.ndim == 2 else arr
    c, h, w = a.shape
    nh, nw = h // factor, w // factor
    if nh == 0 or nw == 0:
        raise InputError(f"image of {h} x {w} pixels is smaller than the factor {factor}")
    t = a[:, :nh * factor, :nw * factor].astype(np.float64)
    if nodata is not None:
        t = np.where(t == nodata, np.nan, t)
    out = t.reshape(c, nh, factor, nw, factor).mean(axis=(2, 4)).astype(np.float32)
    return np.asarray(out[0] if arr.ndim == 2 else out, dtype=np.float32)


@dataclass(frozen=True)
class WaldScore:
    """Quality of one method under Wald's protocol.

    Attributes:
        method: ``bilinear``, ``hpf`` or ``brovey``.
        ergas: ERGAS (0 ideal).
        sam: Mean spectral angle in degrees (0 ideal).
        q: Mean UIQI over bands and 32 x 32 blocks (1 ideal).
        q4: Q4 (1 ideal), None unless the image has 4 bands.
    """

    method: str
    ergas: float
    sam: float
    q: float
    q4: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def wald_protocol(
    pan_low: Arr,
    ms_low: Arr,
    ms_ref: Arr,
    ratio: int,
    methods: Sequence[Method] = ("bilinear", "hpf", "brovey"),
    center: Center = "low",
    modulation: Modulation = "mid",
    histogram_match: bool = True,
    weights: Sequence[float] | None = None,
) -> list[WaldScore]:
    """Fuse a degraded pair with each method and score it against the original MS.

    Args:
        pan_low: (H, W) PAN at the original MS resolution (NaN = invalid).
        ms_low: (C, H / R, W / R) MS degraded by R, same top-left corner as ``pan_low``.
        ms_ref: (C, H, W) original MS, the reference.
        ratio: Integer R.
        methods: Methods to score, in order.
        center, modulation, histogram_match: HPF options.
        weights: Brovey weights (fitted when None).

    Returns:
        One :class:`WaldScore` per method.
    """
    pan2 = pan_low[0] if pan_low.ndim == 3 else pan_low
    if pan2.shape != ms_ref.shape[1:]:
        raise InputError(f"PAN {pan2.shape} and reference MS {ms_ref.shape[1:]} differ in size")
    mapping = PixelMapping.aligned(ratio)
    ref_valid = np.isfinite(ms_ref).all(axis=0) if ms_ref.dtype.kind == "f" else None
    scores = []
    for method in methods:
        params = hpf_parameters(ratio, center, modulation) if method == "hpf" else None
        fused, valid, _ = fuse_arrays(
            pan2, ms_low, mapping, method, params, histogram_match,
            weights if method == "brovey" else None, pan_nodata=math.nan, ms_nodata=math.nan)
        if ref_valid is not None:
            valid = valid & ref_valid
        ref = np.nan_to_num(ms_ref.astype(np.float64))
        scores.append(WaldScore(
            method=method,
            ergas=ergas(ref, fused, ratio, valid),
            sam=sam(ref, fused, valid),
            q=q_index(ref, fused, valid),
            q4=q4(ref, fused, valid) if ref.shape[0] == 4 else None,
        ))
    return scores


def format_table(scores: Sequence[WaldScore]) -> str:
    """A plain-text table of scores (one row per method)."""
    lines = [f"{'method':<10} {'ERGAS':>8} {'SAM(deg)':>9} {'Q':>7} {'Q4':>7}"]
    for s in scores:
        q4s = f"{s.q4:7.4f}" if s.q4 is not None else f"{'-':>7}"
        lines.append(f"{s.method:<10} {s.ergas:8.4f} {s.sam:9.4f} {s.q:7.4f} {q4s}")
    return "\n".join(lines)
