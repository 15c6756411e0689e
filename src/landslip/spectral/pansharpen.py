"""Pan-sharpening as pure array functions: HPF resolution merge, weighted Brovey, bilinear.

The HPF (high-pass filter addition) method is the ERDAS IMAGINE "HPF resolution merge" of
Gangkofner, Pradhan & Holcomb (2008), *Optimizing the high-pass filter addition technique for
image fusion*, PE&RS 74(9):1107-1118; the parameter table and the steps are those of
``docs/reference.md`` ("HPF resolution merge"):

1. ``HP = PAN (*) K`` with ``K`` a ``k x k`` kernel of -1 and a centre value ``c``; computed
   exactly as ``HP = (c + 1) * PAN - boxsum_k(PAN)``.
2. Each MS band is resampled bilinearly to the PAN grid (``MSup``).
3. ``W_b = SD(MS_b) / SD(HP) * M``.
4. ``F_b = MSup_b + W_b * HP`` (``+ W2_b * HP2`` with the optional 5 x 5 second pass for
   R >= 5.5; as in GRASS ``i.fusion.hpf``, ``W2_b = SD(MS_b) / SD(HP2) * M2``).
5. Linear histogram match: ``F_b = (F_b - mean(F_b)) * SD(MS_b) / SD(F_b) + mean(MS_b)``,
   clipped to the MS input range and rounded for integer output.

Weighted Brovey (as GDAL ``gdal_pansharpen``): ``pseudo = sum_i w_i MSup_i``,
``out_b = MSup_b * PAN / pseudo``; the weights are given or fitted by non-negative least
squares of PAN on the up-sampled bands.

Everything here works on blocks, so that a streaming driver (:mod:`landslip.spectral.fusion`)
and the whole-image function :func:`fuse_arrays` share the same code and give bit-identical
results: box sums are exact (integer-valued data in float64 cumulative sums, or a fixed
summation order for float data), and resampling coordinates are computed from global pixel
indices. Global statistics travel in :class:`FusionStats`.

Geometry (pixel-is-area): output pixel ``j`` has its centre at map ``x = x0 + (j + 0.5) * dx``;
in MS pixel-index space (integer = MS pixel centre) that is
``u = (j + 0.5) * sx + ox - 0.5`` with ``sx = dx_pan / dx_ms`` and ``ox`` the offset of the
output origin from the MS origin in MS pixels (:class:`PixelMapping`). Bilinear weights use the
two MS centres around ``u``; past the outermost MS centres the edge value is held.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.errors import InputError
from landslip.moments import RunningMoments
from landslip.spectral.fusion_stats import (
    BandTransform,
    FusionStats,
    make_transform,
)
from landslip.spectral.hpf_params import HPFParams, Method, hpf_parameters

__all__ = [
    "PixelMapping",
    "block_samples",
    "box_sum",
    "fuse_arrays",
    "fuse_block",
    "high_pass",
    "ms_span",
    "nodata_mask",
    "pad_reflect",
    "pan_fill_value",
    "to_output_dtype",
    "upsample_bilinear",
    "upsample_valid",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]


# ----------------------------------------------------------------------------- filtering


def pad_reflect(arr: npt.NDArray[Any], top: int, bottom: int, left: int, right: int) -> Any:
    """Pad the last two axes by mirror reflection including the edge pixel (``d c b a | a b``).

    This is the edge rule of the HPF everywhere (scipy ``mode="reflect"``, numpy
    ``"symmetric"``); the streaming driver pads only where a block touches the image edge.
    """
    if not (top or bottom or left or right):
        return arr
    widths = [(0, 0)] * (arr.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(arr, widths, mode="symmetric")


def box_sum(padded: npt.NDArray[Any], k: int) -> F32:
    """Sum over k x k windows ("valid" part) of a 2-D array.

    Two separable ``scipy.ndimage.correlate1d`` passes with weights of one: every output pixel
    is the same fixed sequence of double-precision additions of the same inputs wherever the
    block starts, so block-wise and whole-image results are bit-identical. For 16-bit integer
    data every partial sum is an integer below 2**24, hence exact in float32.

    Args:
        padded: (H, W) array, any real dtype.
        k: Window size (odd).

    Returns:
        (H - k + 1, W - k + 1) float32 sums.
    """
    from scipy.ndimage import correlate1d

    h = k // 2
    ones = np.ones(k)
    src = padded.astype(np.float32, copy=False)
    rows = correlate1d(src, ones, axis=0, output=np.float32, mode="constant")[h:src.shape[0] - h]
    out = correlate1d(rows, ones, axis=1, output=np.float32, mode="constant")
    return np.asarray(out[:, h:src.shape[1] - h])


def high_pass(padded: npt.NDArray[Any], kernel: int, center: int, halo: int) -> F32:
    """Convolve with the HPF kernel: -1 everywhere but ``center`` in the middle.

    ``HP = center * PAN - (boxsum_k(PAN) - PAN) = (center + 1) * PAN - boxsum_k(PAN)``
    (Gangkofner et al. 2008, step 1).

    Args:
        padded: (H + 2 * halo, W + 2 * halo) PAN block with ``halo >= kernel // 2`` pixels of
            context on each side.
        kernel: Kernel size k (odd).
        center: Centre value.
        halo: Context pixels around the block in ``padded``.
    Returns:
        (H, W) float32 high-pass image of the block.
    """
    h = kernel // 2
    extra = halo - h
    inner = (padded[extra:padded.shape[0] - extra, extra:padded.shape[1] - extra]
             if extra else padded)
    sums = box_sum(inner, kernel)
    core = padded[halo:padded.shape[0] - halo, halo:padded.shape[1] - halo]
    out = core.astype(np.float32) * np.float32(center + 1)
    out -= sums
    return out


# ----------------------------------------------------------------------------- resampling


@dataclass(frozen=True)
class PixelMapping:
    """Maps output (PAN-grid) pixel indices to fractional MS pixel indices.

    ``u = (j + 0.5) * sx + ox - 0.5`` for columns and ``v = (i + 0.5) * sy + oy - 0.5`` for
    rows, where integer u, v are MS pixel centres.

    Attributes:
        sx: PAN pixel width / MS pixel width (1 / R).
        ox: Offset of the output grid's left edge from the MS grid's left edge, in MS pixels.
        sy: PAN pixel height / MS pixel height.
        oy: Offset of the output grid's top edge from the MS grid's top edge, in MS pixels.
    """

    sx: float
    ox: float
    sy: float
    oy: float

    @classmethod
    def aligned(cls, ratio: float) -> PixelMapping:
        """The mapping for a PAN and an MS grid with the same top-left corner."""
        return cls(1.0 / ratio, 0.0, 1.0 / ratio, 0.0)

    def cols(self, start: int, n: int) -> F64:
        """Fractional MS column index of output columns ``start .. start + n - 1``."""
        return (np.arange(start, start + n, dtype=np.float64) + 0.5) * self.sx + self.ox - 0.5

    def rows(self, start: int, n: int) -> F64:
        """Fractional MS row index of output rows ``start .. start + n - 1``."""
        return (np.arange(start, start + n, dtype=np.float64) + 0.5) * self.sy + self.oy - 0.5


def _linear_taps(coords: F64, size: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], F32]:
    i0 = np.floor(coords)
    w = (coords - i0).astype(np.float32)
    lo = np.clip(i0, 0, size - 1).astype(np.intp)
    hi = np.clip(i0 + 1, 0, size - 1).astype(np.intp)
    return lo, hi, w


def ms_span(coords: F64, size: int) -> tuple[int, int]:
    """The MS index range [first, last + 1) that bilinear taps at ``coords`` read."""
    lo, hi, _ = _linear_taps(coords, size)
    return int(lo.min()), int(hi.max()) + 1


def upsample_bilinear(
    ms: npt.NDArray[Any],
    row_coords: F64,
    col_coords: F64,
    ms_shape: tuple[int, int],
    origin: tuple[int, int] = (0, 0),
) -> F32:
    """Bilinear resampling of MS bands to PAN pixel centres.

    Args:
        ms: (C, h, w) block of the MS image (float32) starting at MS pixel ``origin``.
        row_coords: Fractional global MS row index of each output row (see PixelMapping).
        col_coords: Fractional global MS column index of each output column.
        ms_shape: (height, width) of the whole MS image (taps are clamped to it, holding the
            edge value beyond the outermost pixel centres).
        origin: Global (row, col) of ``ms[:, 0, 0]``.

    Returns:
        (C, len(row_coords), len(col_coords)) float32.
    """
    r0, r1, wr = _linear_taps(row_coords, ms_shape[0])
    c0, c1, wc = _linear_taps(col_coords, ms_shape[1])
    r0, r1 = r0 - origin[0], r1 - origin[0]
    c0, c1 = c0 - origin[1], c1 - origin[1]
    src = ms.astype(np.float32, copy=False)
    # Columns first on the small MS block (gathers along the last axis are the slow ones),
    # then rows, whose gathers copy whole contiguous rows.
    a = np.take(src, c0, axis=2)
    cols = np.take(src, c1, axis=2)
    cols -= a
    cols *= wc[None, None, :]
    cols += a
    a = np.take(cols, r0, axis=1)
    out = np.take(cols, r1, axis=1)
    out -= a
    out *= wr[None, :, None]
    out += a
    return out


def upsample_valid(valid: Bool, row_coords: F64, col_coords: F64, ms_shape: tuple[int, int],
                   origin: tuple[int, int] = (0, 0)) -> Bool:
    """Validity of bilinear samples: False when any tap with a weight >= 1e-4 is invalid."""
    up = upsample_bilinear(valid[None].astype(np.float32), row_coords, col_coords, ms_shape,
                           origin)[0]
    return np.asarray(up > np.float32(1 - 1e-4))


# ----------------------------------------------------------------------------- fusion


def _finite_fill(arr: F32, valid: Bool, fill: Sequence[float]) -> F32:
    if valid.all():
        return arr
    out = arr.copy()
    for b in range(arr.shape[0]):
        out[b][~valid] = np.float32(fill[b])
    return out


def fuse_block(
    method: Method,
    pan_padded: F32,
    halo: int,
    msup: F32,
    transform: BandTransform,
    params: HPFParams | None,
) -> F32:
    """Fuse one block (float32 result, before conversion to the output dtype).

    Args:
        method: ``hpf``, ``brovey`` or ``bilinear``.
        pan_padded: (h + 2 * halo, w + 2 * halo) PAN with nodata already filled.
        halo: Context pixels on each side of ``pan_padded``.
        msup: (C, h, w) bilinearly up-sampled MS bands (overwritten by ``hpf``).
        transform: Per-band coefficients (:func:`hpf_transform` / Brovey weights).
        params: HPF parameters (required for ``hpf``).

    Returns:
        (C, h, w) float32 fused bands.
    """
    if method == "bilinear":
        return msup
    core = pan_padded[halo:pan_padded.shape[0] - halo, halo:pan_padded.shape[1] - halo]
    if method == "brovey":
        w = np.asarray(transform.weights, dtype=np.float32)
        pseudo = np.tensordot(w, msup, axes=1)
        ratio = np.ones_like(pseudo)
        np.divide(core, pseudo, out=ratio, where=pseudo > 0)
        return np.asarray(msup * ratio[None], dtype=np.float32)
    if params is None:
        raise InputError("HPF fusion needs its parameters")
    hp1 = high_pass(pan_padded, params.kernel, params.center, halo)
    hp2 = (high_pass(pan_padded, params.second_kernel, params.second_center, halo)
           if params.second_kernel else None)
    # out_b = (MSup_b + w1 HP1 + w2 HP2) * gain + offset, folded into in-place passes.
    buf = np.empty_like(hp1)
    for b in range(msup.shape[0]):
        g = transform.gain[b]
        f = msup[b]
        f *= np.float32(g)
        np.multiply(hp1, np.float32(transform.w1[b] * g), out=buf)
        f += buf
        if hp2 is not None:
            np.multiply(hp2, np.float32(transform.w2[b] * g), out=buf)
            f += buf
        f += np.float32(transform.offset[b])
        np.clip(f, np.float32(transform.lo[b]), np.float32(transform.hi[b]), out=f)
    return msup


def block_samples(
    pan_padded: F32,
    halo: int,
    msup: F32,
    valid: Bool,
    params: HPFParams | None,
) -> F64:
    """The vectors z = (HP1, HP2, MSup_1..C, PAN) at valid pixels of a block, shape (D, n)."""
    core = pan_padded[halo:pan_padded.shape[0] - halo, halo:pan_padded.shape[1] - halo]
    zeros = np.zeros(core.shape, dtype=np.float32)
    if params is not None:
        hp1 = high_pass(pan_padded, params.kernel, params.center, halo)
        hp2 = (high_pass(pan_padded, params.second_kernel, params.second_center, halo)
               if params.second_kernel else zeros)
    else:
        hp1 = hp2 = zeros
    planes = [hp1, hp2, *msup, core]
    if valid.all():
        return np.stack([p.reshape(-1) for p in planes]).astype(np.float64)
    return np.stack([p[valid] for p in planes]).astype(np.float64)


def pan_fill_value(pan_mean: float, integer_valued: bool) -> np.float32:
    """The value PAN nodata pixels take before filtering: the PAN mean (rounded for integer
    PAN, which keeps box sums exact)."""
    return np.float32(round(pan_mean) if integer_valued else pan_mean)


def to_output_dtype(
    fused: F32, valid: Bool, dtype: np.dtype[Any], nodata: float | None
) -> npt.NDArray[Any]:
    """Round, clip to the dtype range and cast; write ``nodata`` where not valid.

    Valid integer pixels that would equal ``nodata`` are moved one step away from it, so that
    no real pixel reads as nodata.
    """
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        arr = np.rint(fused)
        np.clip(arr, info.min, info.max, out=arr)
        out = arr.astype(dtype)
        if nodata is not None and info.min <= nodata <= info.max:
            nd = dtype.type(nodata)
            step = 1 if nodata < info.max else -1
            clash = (out == nd) & valid[None]
            out[clash] = dtype.type(int(nodata) + step)
            out[:, ~valid] = nd
        return out
    out = fused.astype(dtype)
    if nodata is not None:
        out[:, ~valid] = dtype.type(nodata)
    return out


def nodata_mask(arr: npt.NDArray[Any], nodata: float | None) -> Bool:
    """(H, W) True where no band is nodata (or NaN for float data)."""
    valid = np.ones(arr.shape[-2:], dtype=bool)
    if nodata is not None:
        if math.isnan(nodata):
            valid &= ~np.isnan(arr).any(axis=0)
        else:
            valid &= ~(arr == nodata).any(axis=0)
    if arr.dtype.kind == "f":
        valid &= np.isfinite(arr).all(axis=0)
    return valid


def fuse_arrays(
    pan: npt.NDArray[Any],
    ms: npt.NDArray[Any],
    mapping: PixelMapping,
    method: Method = "hpf",
    params: HPFParams | None = None,
    histogram_match: bool = True,
    weights: Sequence[float] | None = None,
    pan_nodata: float | None = None,
    ms_nodata: float | None = None,
    stats: FusionStats | None = None,
) -> tuple[F32, Bool, FusionStats]:
    """Fuse a whole PAN/MS pair held in memory (the reference for the streaming driver).

    Args:
        pan: (H, W) or (1, H, W) PAN, any numeric dtype.
        ms: (C, h, w) MS bands.
        mapping: PAN-grid pixel -> MS pixel index mapping (:meth:`PixelMapping.aligned` for a
            pair with a common top-left corner).
        method: ``hpf`` (default), ``brovey`` or ``bilinear``.
        params: HPF parameters (default: :func:`hpf_parameters` for 1 / mapping.sx).
        histogram_match: HPF step 5 on (default) or off.
        weights: Brovey weights (fitted by least squares when None).
        pan_nodata, ms_nodata: Nodata values of the inputs.
        stats: Global statistics to use (computed from these arrays when None).

    Returns:
        (fused (C, H, W) float32 before rounding, valid (H, W) bool, the statistics used).
    """
    pan2 = pan[0] if pan.ndim == 3 else pan
    h, w = pan2.shape
    ratio = 1.0 / mapping.sx
    if params is None and method == "hpf":
        params = hpf_parameters(ratio)
    halo = params.halo if params is not None else 0
    pan_valid = nodata_mask(pan2[None], pan_nodata)
    ms_valid = nodata_mask(ms, ms_nodata)
    integer_valued = pan2.dtype.kind in "iub"
    rows, cols = mapping.rows(0, h), mapping.cols(0, w)
    ms_shape = (ms.shape[1], ms.shape[2])
    if stats is None:
        ms_moments = RunningMoments(ms.shape[0])
        ms_moments.update(ms, ms_valid)
        if ms_moments.count == 0:
            raise InputError("the MS image has no valid pixel")
        pan_mean = float(pan2[pan_valid].astype(np.float64).mean()) if pan_valid.any() else 0.0
        partial = FusionStats.from_moments(ms_moments, pan_mean)
    else:
        partial = stats
    pan_f = pan2.astype(np.float32)
    if not pan_valid.all():
        pan_f = np.where(pan_valid, pan_f, pan_fill_value(partial.pan_mean, integer_valued))
    ms_f = _finite_fill(ms.astype(np.float32), ms_valid, partial.ms_mean)
    msup = upsample_bilinear(ms_f, rows, cols, ms_shape)
    valid = pan_valid & upsample_valid(ms_valid, rows, cols, ms_shape)
    padded = pad_reflect(pan_f, halo, halo, halo, halo)
    if stats is None:
        acc = RunningMoments(3 + ms.shape[0], covariance=True)
        acc.update(block_samples(padded, halo, msup, valid, params))
        stats = FusionStats.from_moments(ms_moments, partial.pan_mean, acc)
    transform = make_transform(method, stats, params, histogram_match, weights)
    fused = fuse_block(method, padded, halo, msup, transform, params)
    return fused, valid, stats
