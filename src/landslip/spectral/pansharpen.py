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

Everything here works on blocks (:class:`Block`, built by :func:`make_block`), so that a
streaming driver (:mod:`landslip.spectral.fusion`) and the whole-image function
:func:`fuse_arrays` share the same code and give bit-identical results: box sums are exact for
8- and 16-bit integer data (int32) and a fixed summation order otherwise, resampling
coordinates are computed from global pixel indices, and a block is fused :data:`ROW_CHUNK`
rows at a time (cache-sized planes) with the same float32 operations per pixel wherever a
block or a row chunk starts. Global statistics travel in :class:`FusionStats`.

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
    "ROW_CHUNK",
    "Block",
    "PixelMapping",
    "RowTaps",
    "apply_nodata",
    "block_moments",
    "block_rows",
    "box_sum",
    "exact_integer",
    "fuse_arrays",
    "fuse_block",
    "high_pass",
    "make_block",
    "ms_span",
    "nodata_mask",
    "pad_reflect",
    "pan_fill_value",
    "row_taps",
    "to_output_dtype",
    "upsample_bilinear",
    "upsample_cols",
    "upsample_rows",
    "upsample_valid",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]


# ----------------------------------------------------------------------------- filtering


ROW_CHUNK = 64
"""Output rows a block is fused in per step: the per-row planes of a 1024-pixel-wide block
(HP, C up-sampled bands, scratch) stay in the CPU cache between the steps of the formula."""


def pad_reflect(arr: npt.NDArray[Any], top: int, bottom: int, left: int, right: int) -> Any:
    """Pad the last two axes by mirror reflection including the edge pixel (``d c b a | a b``).

    This is the edge rule of the HPF everywhere (scipy ``mode="reflect"``, numpy
    ``"symmetric"``); the streaming driver pads only where a block touches the image edge.
    """
    if not (top or bottom or left or right):
        return arr
    widths = [(0, 0)] * (arr.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(arr, widths, mode="symmetric")


def exact_integer(dtype: np.dtype[Any]) -> bool:
    """Whether box sums of ``dtype`` data are computed in integers: 8- and 16-bit integers,
    whose k x k sums (k <= 15) are exact in int32 and, being below 2**24, in float32."""
    return dtype.kind in "iub" and dtype.itemsize <= 2


def _span(a: npt.NDArray[Any], start: int, stop: int, axis: int) -> npt.NDArray[Any]:
    return a[start:stop] if axis == 0 else a[:, start:stop]


def _sliding_sum(x: npt.NDArray[Any], k: int, axis: int) -> npt.NDArray[np.int32]:
    """Sums of k consecutive values along ``axis`` of a 2-D integer array, in int32.

    Binary doubling: sums of 1, 2, 4, ... consecutive values, of which those in the binary
    expansion of k are added (k = 9: 4 additions instead of 8). Integer sums are exact, so
    the order of the additions does not matter.
    """
    n = x.shape[axis] - k + 1
    result: npt.NDArray[np.int32] | None = None
    power: npt.NDArray[Any] = x
    width, used, rest = 1, 0, k
    while True:
        if rest & 1:
            part = _span(power, used, used + n, axis)
            if result is None:
                result = part.astype(np.int32)
            else:
                np.add(result, part, out=result, dtype=np.int32)
            used += width
        rest >>= 1
        if not rest:
            break
        size = power.shape[axis]
        power = np.add(_span(power, 0, size - width, axis), _span(power, width, size, axis),
                       dtype=np.int32)
        width *= 2
    assert result is not None
    return result


def box_sum(padded: npt.NDArray[Any], k: int) -> F32:
    """Sum over k x k windows ("valid" part) of a 2-D array.

    Every output pixel is computed the same way wherever a block starts, so block-wise and
    whole-image results are bit-identical: 8- and 16-bit integer data are summed exactly in
    int32 (:func:`exact_integer`; the float32 result is exact as every sum is below 2**24);
    other data by two separable ``scipy.ndimage.correlate1d`` passes with weights of one, a
    fixed sequence of double-precision additions per pixel.

    Args:
        padded: (H, W) array, any real dtype.
        k: Window size (odd, at most 15).

    Returns:
        (H - k + 1, W - k + 1) float32 sums.
    """
    if exact_integer(padded.dtype):
        return _sliding_sum(_sliding_sum(padded, k, 0), k, 1).astype(np.float32)
    from scipy.ndimage import correlate1d  # imported here: integer data never need scipy

    h = k // 2
    ones = np.ones(k)
    src = padded.astype(np.float32, copy=False)
    rows = correlate1d(src, ones, axis=0, output=np.float32, mode="constant")[h:src.shape[0] - h]
    out = correlate1d(rows, ones, axis=1, output=np.float32, mode="constant")
    return np.asarray(out[:, h:src.shape[1] - h])


def high_pass(padded: npt.NDArray[Any], kernel: int, center: int, halo: int,
              out: F32 | None = None) -> F32:
    """Convolve with the HPF kernel: -1 everywhere but ``center`` in the middle.

    ``HP = center * PAN - (boxsum_k(PAN) - PAN) = (center + 1) * PAN - boxsum_k(PAN)``
    (Gangkofner et al. 2008, step 1), in float32: PAN converted to float32, times
    ``center + 1``, minus the box sums.

    Args:
        padded: (H + 2 * halo, W + 2 * halo) PAN block with ``halo >= kernel // 2`` pixels of
            context on each side.
        kernel: Kernel size k (odd).
        center: Centre value.
        halo: Context pixels around the block in ``padded``.
        out: (H, W) float32 array to write into (a new one when None).

    Returns:
        (H, W) float32 high-pass image of the block.
    """
    h = kernel // 2
    extra = halo - h
    inner = (padded[extra:padded.shape[0] - extra, extra:padded.shape[1] - extra]
             if extra else padded)
    core = padded[halo:padded.shape[0] - halo, halo:padded.shape[1] - halo]
    hp: F32 = np.multiply(core, np.float32(center + 1), out=out, dtype=np.float32)
    if exact_integer(padded.dtype):
        # int32 sums below 2**24 convert to float32 exactly: the same as box_sum's result.
        np.subtract(hp, _sliding_sum(_sliding_sum(inner, kernel, 0), kernel, 1), out=hp,
                    dtype=np.float32)
    else:
        hp -= box_sum(inner, kernel)
    return hp


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


@dataclass(frozen=True)
class RowTaps:
    """Bilinear taps of output rows in an MS block: row ``lo``, row ``hi`` and the weight of hi.

    Attributes:
        lo: (h,) intp row of the MS block above (or at) each output row's centre.
        hi: (h,) intp row below (equal to ``lo`` past the outermost MS centres).
        w: (h,) float32 weight of row ``hi``.
    """

    lo: npt.NDArray[np.intp]
    hi: npt.NDArray[np.intp]
    w: F32


def row_taps(row_coords: F64, ms_height: int, origin_row: int = 0) -> RowTaps:
    """The bilinear row taps of output rows at fractional global MS rows ``row_coords``, as
    rows of an MS block starting at global row ``origin_row``."""
    lo, hi, w = _linear_taps(row_coords, ms_height)
    return RowTaps(lo - origin_row, hi - origin_row, w)


def upsample_cols(ms: npt.NDArray[Any], col_coords: F64, ms_width: int, origin_col: int = 0
                  ) -> F32:
    """First half of bilinear resampling: interpolate MS rows to the output columns.

    Args:
        ms: (C, m, w) MS block (float32) starting at global MS column ``origin_col``.
        col_coords: Fractional global MS column index of each output column.
        ms_width: Width of the whole MS image (taps are clamped to it).
        origin_col: Global column of ``ms[:, :, 0]``.

    Returns:
        (C, m, len(col_coords)) float32: ``a + (b - a) * w`` from the two column taps.
    """
    c0, c1, wc = _linear_taps(col_coords, ms_width)
    src = ms.astype(np.float32, copy=False)
    # On the small MS block: gathers along the last axis are the slow ones.
    a = np.take(src, c0 - origin_col, axis=2)
    cols = np.take(src, c1 - origin_col, axis=2)
    cols -= a
    cols *= wc[None, None, :]
    cols += a
    return cols


def upsample_rows(cols: F32, taps: RowTaps, start: int, stop: int, out: F32,
                  scratch: F32) -> None:
    """Second half of bilinear resampling: output rows ``start .. stop - 1``.

    Args:
        cols: (C, m, w) from :func:`upsample_cols`.
        taps: Row taps of the block's output rows, into ``cols``.
        start, stop: Output rows to compute.
        out: (C, stop - start, w) float32 result: ``a + (b - a) * w``.
        scratch: Float32 array shaped like ``out``.
    """
    np.take(cols, taps.lo[start:stop], axis=1, out=scratch, mode="clip")
    np.take(cols, taps.hi[start:stop], axis=1, out=out, mode="clip")
    out -= scratch
    out *= taps.w[start:stop, None]
    out += scratch


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
    cols = upsample_cols(ms, col_coords, ms_shape[1], origin[1])
    taps = row_taps(row_coords, ms_shape[0], origin[0])
    out = np.empty((cols.shape[0], len(row_coords), cols.shape[2]), dtype=np.float32)
    upsample_rows(cols, taps, 0, len(row_coords), out, np.empty_like(out))
    return out


def upsample_valid(valid: Bool, row_coords: F64, col_coords: F64, ms_shape: tuple[int, int],
                   origin: tuple[int, int] = (0, 0)) -> Bool:
    """Validity of bilinear samples: False when any tap with a weight >= 1e-4 is invalid."""
    up = upsample_bilinear(valid[None].astype(np.float32), row_coords, col_coords, ms_shape,
                           origin)[0]
    return np.asarray(up > np.float32(1 - 1e-4))


# ----------------------------------------------------------------------------- blocks


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


def pan_fill_value(pan_mean: float, integer_valued: bool) -> np.float32:
    """The value PAN nodata pixels take before filtering: the PAN mean (rounded for integer
    PAN, which keeps box sums exact)."""
    return np.float32(round(pan_mean) if integer_valued else pan_mean)


@dataclass(frozen=True)
class Block:
    """The inputs of one output block, ready to fuse row by row.

    Attributes:
        pan: (h + 2 * halo, w + 2 * halo) PAN with nodata filled: in its own dtype when
            :func:`exact_integer`, else float32.
        halo: Context pixels on each side of ``pan``.
        ms_cols: (C, m, w) float32 MS rows under the block, nodata filled, interpolated to the
            output columns (:func:`upsample_cols`).
        taps: Row taps of the h output rows into ``ms_cols``.
        valid: (h, w) output validity; None when every pixel is valid.
    """

    pan: npt.NDArray[Any]
    halo: int
    ms_cols: F32
    taps: RowTaps
    valid: Bool | None

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) output pixels of the block."""
        return len(self.taps.w), int(self.ms_cols.shape[2])

    @property
    def bands(self) -> int:
        """Number of MS bands C."""
        return int(self.ms_cols.shape[0])


def make_block(
    pan_padded: npt.NDArray[Any],
    halo: int,
    ms: npt.NDArray[Any],
    row_coords: F64,
    col_coords: F64,
    ms_shape: tuple[int, int],
    ms_origin: tuple[int, int],
    nodata: tuple[float | None, float | None],
    pan_mean: float,
    ms_mean: Sequence[float],
) -> Block:
    """Fill nodata and interpolate the MS columns of one block (see :class:`Block`).

    Args:
        pan_padded: (h + 2 * halo, w + 2 * halo) PAN as read, mirrored at the image edges.
        halo: Context pixels on each side of ``pan_padded``.
        ms: (C, m, n) MS block as read, starting at global MS pixel ``ms_origin``.
        row_coords, col_coords: Fractional global MS indices of the h output rows and w
            output columns (:class:`PixelMapping`).
        ms_shape: (height, width) of the whole MS image.
        ms_origin: Global (row, col) of ``ms[:, 0, 0]``.
        nodata: (PAN nodata, MS nodata).
        pan_mean: Fills PAN nodata (rounded for integer PAN).
        ms_mean: Per-band MS means, fill MS nodata before interpolation.
    """
    pvalid = nodata_mask(pan_padded[None], nodata[0])
    pan = pan_padded if exact_integer(pan_padded.dtype) else pan_padded.astype(np.float32)
    valid: Bool | None = None
    if not pvalid.all():
        pan = pan.copy() if pan is pan_padded else pan
        pan[~pvalid] = pan_fill_value(pan_mean, pan_padded.dtype.kind in "iub")
        valid = pvalid[halo:pvalid.shape[0] - halo, halo:pvalid.shape[1] - halo]
    mvalid = nodata_mask(ms, nodata[1])
    ms_f = ms.astype(np.float32)
    if not mvalid.all():
        for b in range(ms_f.shape[0]):
            ms_f[b][~mvalid] = np.float32(ms_mean[b])
        up = upsample_valid(mvalid, row_coords, col_coords, ms_shape, ms_origin)
        valid = up if valid is None else valid & up
    cols = upsample_cols(ms_f, col_coords, ms_shape[1], ms_origin[1])
    return Block(pan, halo, cols, row_taps(row_coords, ms_shape[0], ms_origin[0]), valid)


Z_HP1, Z_HP2, Z_MS = 0, 1, 2
"""Rows of z = (HP1, HP2, MSup_1..C, PAN): the variables of the fusion statistics."""


def _row_chunks(h: int) -> list[tuple[int, int]]:
    return [(r, min(r + ROW_CHUNK, h)) for r in range(0, h, ROW_CHUNK)]


def block_rows(block: Block, params: HPFParams | None, start: int, stop: int, z: F32,
               pan_plane: bool = True) -> F32:
    """z = (HP1, HP2, MSup_1..C, PAN) for output rows ``start .. stop - 1`` of a block.

    Args:
        block: From :func:`make_block`.
        params: HPF parameters; None leaves HP1 and HP2 as they are in ``z`` (zeros).
        start, stop: Output rows, at most ``z.shape[1]`` of them.
        z: (3 + C, >= stop - start, w) float32 buffer, reused from call to call.
        pan_plane: Fill the PAN row (else it is left as it is).

    Returns:
        The (3 + C, stop - start, w) view of ``z`` holding the rows.
    """
    n, c, halo = stop - start, block.bands, block.halo
    zz = z[:, :n]
    upsample_rows(block.ms_cols, block.taps, start, stop, zz[Z_MS:Z_MS + c],
                  np.empty_like(zz[Z_MS:Z_MS + c]))
    rows = block.pan[start:stop + 2 * halo]
    if params is not None:
        high_pass(rows, params.kernel, params.center, halo, out=zz[Z_HP1])
        if params.second_kernel:
            high_pass(rows, params.second_kernel, params.second_center, halo, out=zz[Z_HP2])
    if pan_plane:
        np.copyto(zz[Z_MS + c], rows[halo:halo + n, halo:rows.shape[1] - halo],
                  casting="unsafe")
    return zz


def block_moments(block: Block, params: HPFParams | None) -> RunningMoments:
    """Mean and covariance (float64) of z = (HP1, HP2, MSup_1..C, PAN) over the valid pixels
    of a block; HP1 and HP2 are 0 without ``params``, HP2 without a second pass."""
    h, w = block.shape
    acc = RunningMoments(3 + block.bands, covariance=True)
    z = np.zeros((3 + block.bands, min(ROW_CHUNK, h), w), dtype=np.float32)
    for start, stop in _row_chunks(h):
        zz = block_rows(block, params, start, stop, z)
        acc.update(zz, None if block.valid is None else block.valid[start:stop])
    return acc


def _hpf_rows(ms: F32, hp1: F32, hp2: F32 | None, t: BandTransform) -> None:
    """out_b = (MSup_b + w1 HP1 + w2 HP2) * gain + offset, clipped, in place on ``ms``."""
    buf = np.empty_like(hp1)
    for b in range(ms.shape[0]):
        g = t.gain[b]
        f = ms[b]
        f *= np.float32(g)
        np.multiply(hp1, np.float32(t.w1[b] * g), out=buf)
        f += buf
        if hp2 is not None:
            np.multiply(hp2, np.float32(t.w2[b] * g), out=buf)
            f += buf
        f += np.float32(t.offset[b])
        np.clip(f, np.float32(t.lo[b]), np.float32(t.hi[b]), out=f)


def _brovey_rows(ms: F32, pan: F32, weights: Sequence[float]) -> None:
    """out_b = MSup_b * PAN / sum_i w_i MSup_i (MSup_b where the sum is <= 0), in place."""
    pseudo = ms[0] * np.float32(weights[0])
    buf = np.empty_like(pseudo)
    for b in range(1, ms.shape[0]):  # a fixed order of float32 operations, pixel by pixel
        np.multiply(ms[b], np.float32(weights[b]), out=buf)
        pseudo += buf
    ratio = np.ones_like(pseudo)
    np.divide(pan, pseudo, out=ratio, where=pseudo > 0)
    ms *= ratio[None]


def _store(fused: F32, out: npt.NDArray[Any], in_range: bool = False) -> None:
    """Round (integer ``out``), clip to the dtype range and cast ``fused`` into ``out``.

    ``in_range``: ``fused`` already lies within integer bounds inside the dtype range, so
    rounding keeps it there and the clip is skipped (the result is the same).
    """
    if out.dtype.kind in "iu":
        info = np.iinfo(out.dtype)
        np.rint(fused, out=fused)
        if not in_range:
            np.clip(fused, info.min, info.max, out=fused)
    out[...] = fused


def fuse_block(
    method: Method,
    block: Block,
    transform: BandTransform,
    params: HPFParams | None,
    dtype: np.dtype[Any],
) -> npt.NDArray[Any]:
    """Fuse one block, :data:`ROW_CHUNK` rows at a time.

    Args:
        method: ``hpf``, ``brovey`` or ``bilinear``.
        block: From :func:`make_block`.
        transform: Per-band coefficients (:func:`hpf_transform` / Brovey weights).
        params: HPF parameters (required for ``hpf``).
        dtype: Output dtype: float32 gives the fused values before rounding; an integer dtype
            rounds, clips to its range and casts as :func:`to_output_dtype` does (nodata is
            left to :func:`apply_nodata`).

    Returns:
        (C, h, w) fused bands in ``dtype``.
    """
    if method == "hpf" and params is None:
        raise InputError("HPF fusion needs its parameters")
    h, w = block.shape
    c = block.bands
    out = np.empty((c, h, w), dtype=dtype)
    z = np.zeros((3 + c, min(ROW_CHUNK, h), w), dtype=np.float32)
    # HPF clips every band to [lo_b, hi_b]: integer bounds inside the dtype's range (the MS
    # minimum and maximum of the same dtype) make the dtype clip a no-op.
    in_range = method == "hpf" and dtype.kind in "iu" and all(
        float(lo).is_integer() and float(hi).is_integer()
        and np.iinfo(dtype).min <= lo <= hi <= np.iinfo(dtype).max
        for lo, hi in zip(transform.lo, transform.hi, strict=True))
    for start, stop in _row_chunks(h):
        zz = block_rows(block, params if method == "hpf" else None, start, stop, z,
                        pan_plane=method == "brovey")
        ms = zz[Z_MS:Z_MS + c]
        if method == "hpf":
            assert params is not None
            _hpf_rows(ms, zz[Z_HP1], zz[Z_HP2] if params.second_kernel else None, transform)
        elif method == "brovey":
            _brovey_rows(ms, zz[Z_MS + c], transform.weights)
        _store(ms, out[:, start:stop], in_range)
    return out


def apply_nodata(out: npt.NDArray[Any], valid: Bool | None, nodata: float | None) -> None:
    """Write ``nodata`` where not valid (None: all valid), in place on (C, h, w) ``out``.

    Valid integer pixels that equal ``nodata`` are moved one step away from it, so that no
    real pixel reads as nodata; an integer ``nodata`` outside the dtype range is ignored.
    """
    if nodata is None:
        return
    if out.dtype.kind in "iu":
        info = np.iinfo(out.dtype)
        if not info.min <= nodata <= info.max:
            return
        nd = out.dtype.type(nodata)
        step = 1 if nodata < info.max else -1
        clash = out == nd
        if valid is not None:
            clash &= valid[None]
        out[clash] = out.dtype.type(int(nodata) + step)
    if valid is not None:
        out[:, ~valid] = out.dtype.type(nodata)


def to_output_dtype(
    fused: F32, valid: Bool, dtype: np.dtype[Any], nodata: float | None
) -> npt.NDArray[Any]:
    """Round, clip to the dtype range and cast; write ``nodata`` where not valid.

    Valid integer pixels that would equal ``nodata`` are moved one step away from it, so that
    no real pixel reads as nodata.
    """
    out = np.empty(fused.shape, dtype=dtype)
    _store(fused.copy(), out)
    apply_nodata(out, valid, nodata)
    return out


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
    if params is None and method == "hpf":
        params = hpf_parameters(1.0 / mapping.sx)
    halo = params.halo if params is not None else 0
    if stats is None:
        ms_moments = RunningMoments(ms.shape[0])
        ms_moments.update(ms, nodata_mask(ms, ms_nodata))
        if ms_moments.count == 0:
            raise InputError("the MS image has no valid pixel")
        pan_valid = nodata_mask(pan2[None], pan_nodata)
        pan_mean = float(pan2[pan_valid].astype(np.float64).mean()) if pan_valid.any() else 0.0
        partial = FusionStats.from_moments(ms_moments, pan_mean)
    else:
        partial = stats
    block = make_block(pad_reflect(pan2, halo, halo, halo, halo), halo, ms,
                       mapping.rows(0, h), mapping.cols(0, w), (ms.shape[1], ms.shape[2]),
                       (0, 0), (pan_nodata, ms_nodata), partial.pan_mean, partial.ms_mean)
    if stats is None:
        stats = FusionStats.from_moments(ms_moments, partial.pan_mean,
                                         block_moments(block, params))
    transform = make_transform(method, stats, params, histogram_match, weights)
    fused = fuse_block(method, block, transform, params, np.dtype(np.float32))
    valid = np.ones((h, w), dtype=bool) if block.valid is None else block.valid
    return fused, valid, stats
