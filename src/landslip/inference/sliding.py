"""Window arithmetic and blending for whole-scene prediction (pure numpy, no I/O, no torch).

A scene of ``height`` x ``width`` pixels is covered by a regular grid of prediction windows
(:class:`SlidingPlan`). Neighbouring windows share ``overlap`` pixels; in the shared strip each
window's prediction is weighted by a raised-cosine ramp (:func:`ramp_weights`) that rises from
almost 0 at the window edge to 1, and the two ramps of neighbours sum to exactly 1. A pixel's
blended value is ``sum(w_i * p_i) / sum(w_i)`` over the windows covering it; the divisor is
separable (rows x columns, :meth:`SlidingPlan.weight_sums`), so no weight buffer is needed.

Window starts are multiples of the model's ``required_multiple`` (32 when unknown), so every
window sees the same pooling grid as a prediction over the whole scene: away from the window
edges (further than the network's receptive field) a pixel gets the same value whichever
window it is predicted in. Windows at the bottom and right edges overhang the scene; the
overhang is read as nodata (padded) and gets no weight in the output because it is outside.

:class:`RowBandAccumulator` holds only the rows in flight: windows are added one window row at
a time, and rows below which no later window reaches are handed out, block-aligned, for
writing. Each window is independent (read, normalise, predict, weight), so windows can be
computed anywhere (threads, a GPU, a Dask cluster) and accumulated afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.errors import InputError
from landslip.grid import Window

__all__ = [
    "DEFAULT_MULTIPLE",
    "RowBand",
    "RowBandAccumulator",
    "SlidingPlan",
    "blend_in_memory",
    "make_plan",
    "ramp_weights",
    "round_up",
]

DEFAULT_MULTIPLE = 32
"""Window size and start multiple for models that do not declare ``required_multiple``."""

Float = npt.NDArray[np.float32]
Bool = npt.NDArray[np.bool_]


def round_up(n: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``n``."""
    return -(-n // multiple) * multiple


def ramp_weights(size: int, overlap_before: int, overlap_after: int) -> Float:
    """1-D blending weights of a window: raised-cosine ramps over its overlaps, 1 elsewhere.

    The ramp over an overlap of ``o`` pixels is ``sin^2(pi/2 * (i + 0.5) / o)`` for
    ``i = 0 .. o-1``: strictly positive, and a window's falling ramp and its neighbour's rising
    ramp over the same ``o`` pixels sum to exactly 1 (up to float rounding). When the two
    ramps of a short window meet, they multiply (weights stay positive; blending divides by
    the weight sum anyway).

    Args:
        size: Window length in pixels.
        overlap_before: Pixels shared with the previous window (0 at the scene start).
        overlap_after: Pixels shared with the next window (0 at the scene end).

    Returns:
        float32 array of shape (size,), values in (0, 1].
    """
    if not (0 <= overlap_before <= size and 0 <= overlap_after <= size):
        raise InputError(
            f"overlaps {overlap_before} and {overlap_after} must lie between 0 and the window "
            f"size {size}"
        )
    w = np.ones(size, dtype=np.float64)
    if overlap_before > 0:
        i = np.arange(overlap_before, dtype=np.float64)
        w[:overlap_before] = np.sin(0.5 * np.pi * (i + 0.5) / overlap_before) ** 2
    if overlap_after > 0:
        i = np.arange(overlap_after, dtype=np.float64)
        w[size - overlap_after:] *= np.cos(0.5 * np.pi * (i + 0.5) / overlap_after) ** 2
    return w.astype(np.float32)


def _axis_weights(starts: tuple[int, ...], size: int) -> list[Float]:
    out = []
    for k, s in enumerate(starts):
        before = starts[k - 1] + size - s if k > 0 else 0
        after = s + size - starts[k + 1] if k + 1 < len(starts) else 0
        out.append(ramp_weights(size, max(before, 0), max(after, 0)))
    return out


def _axis_sums(starts: tuple[int, ...], size: int, weights: list[Float], length: int) -> Float:
    total = np.zeros(length, dtype=np.float64)
    for s, w in zip(starts, weights, strict=True):
        end = min(s + size, length)
        total[s:end] += w[: end - s]
    return total.astype(np.float32)


@dataclass(frozen=True)
class SlidingPlan:
    """The prediction windows covering a scene, and their blending weights.

    Attributes:
        height: Scene rows.
        width: Scene columns.
        win_h: Window height in pixels (a multiple of ``multiple``).
        win_w: Window width in pixels (a multiple of ``multiple``).
        row_starts: First row of each window row (multiples of ``multiple``, ascending).
        col_starts: First column of each window column.
        multiple: The size and start multiple the model needs.
        overlap: The requested overlap; the effective one may be larger (stride rounded down
            to a multiple) and is ``win - stride`` per axis.
    """

    height: int
    width: int
    win_h: int
    win_w: int
    row_starts: tuple[int, ...]
    col_starts: tuple[int, ...]
    multiple: int
    overlap: int
    _wy: list[Float] = field(default_factory=list, repr=False, compare=False)
    _wx: list[Float] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_wy", _axis_weights(self.row_starts, self.win_h))
        object.__setattr__(self, "_wx", _axis_weights(self.col_starts, self.win_w))

    @property
    def n_windows(self) -> int:
        """Total number of windows."""
        return len(self.row_starts) * len(self.col_starts)

    @property
    def stride(self) -> tuple[int, int]:
        """(row stride, column stride) between window starts, in pixels."""
        sy = self.row_starts[1] - self.row_starts[0] if len(self.row_starts) > 1 else self.win_h
        sx = self.col_starts[1] - self.col_starts[0] if len(self.col_starts) > 1 else self.win_w
        return (sy, sx)

    @property
    def predicted_pixels(self) -> int:
        """Pixels the model computes over all windows (including overlaps and padding)."""
        return self.n_windows * self.win_h * self.win_w

    @property
    def recompute_factor(self) -> float:
        """Predicted pixels per scene pixel (1.0 = no overlap and no padding)."""
        return self.predicted_pixels / (self.height * self.width)

    def window(self, i: int, j: int) -> Window:
        """The window in window row ``i`` and window column ``j`` (may overhang the scene)."""
        return Window(self.row_starts[i], self.col_starts[j], self.win_h, self.win_w)

    def window_rows(self) -> Iterator[list[Window]]:
        """Windows grouped by window row, top to bottom, each row left to right."""
        for i in range(len(self.row_starts)):
            yield [self.window(i, j) for j in range(len(self.col_starts))]

    def windows(self) -> Iterator[Window]:
        """All windows, row-major."""
        for row in self.window_rows():
            yield from row

    def weights(self, window: Window) -> Float:
        """The 2-D blending weights of one of this plan's windows.

        Returns:
            float32 (win_h, win_w), strictly positive.
        """
        i = self.row_starts.index(window.row_off)
        j = self.col_starts.index(window.col_off)
        return np.outer(self._wy[i], self._wx[j])

    def weight_sums(self) -> tuple[Float, Float]:
        """Per-row and per-column sums of the window weights over the scene.

        The total weight at pixel (r, c) is ``rows[r] * cols[c]`` because the weights are
        outer products over a regular window grid.

        Returns:
            (rows: float32 (height,), cols: float32 (width,)), all > 0.
        """
        rows = _axis_sums(self.row_starts, self.win_h, self._wy, self.height)
        cols = _axis_sums(self.col_starts, self.win_w, self._wx, self.width)
        return rows, cols

    def final_row_after(self, i: int) -> int:
        """Rows above this index receive no contribution from window rows after ``i``."""
        return self.row_starts[i + 1] if i + 1 < len(self.row_starts) else self.height


def _axis_plan(length: int, window: int, overlap: int, m: int) -> tuple[int, tuple[int, ...]]:
    """(window size, starts) along one axis: the fewest windows of at most ``window`` pixels
    with at least ``overlap`` shared pixels, then the smallest window size that still covers
    ``length`` with that many windows (balanced windows, little padding)."""
    full = round_up(length, m)
    if window >= full:
        return full, (0,)

    def stride_of(size: int) -> int:
        return max(m, ((size - overlap) // m) * m)

    n = -(-(length - window) // stride_of(window)) + 1
    size = window
    for cand in range(m, window + 1, m):
        if cand > overlap and (n - 1) * stride_of(cand) + cand >= length:
            size = cand
            break
    stride = stride_of(size)
    return size, tuple(k * stride for k in range(n))


def make_plan(
    height: int, width: int, window: int = 1024, overlap: int = 64, multiple: int | None = None
) -> SlidingPlan:
    """Plan the prediction windows of a scene.

    Per axis, the window is rounded up to a multiple of ``multiple``; a scene axis shorter than
    that gets one window of the scene length rounded up to the multiple. Otherwise the plan
    uses the fewest windows of at most ``window`` pixels that share at least ``overlap``
    pixels, then shrinks the window (in steps of ``multiple``) as far as that many windows
    still cover the scene, so the padding past the far edge stays small. Strides are
    multiples of ``multiple``, so every window start lies on the model's pooling grid.

    Args:
        height: Scene rows (> 0).
        width: Scene columns (> 0).
        window: Largest window size in pixels.
        overlap: Least number of pixels shared by neighbouring windows (0 <= overlap < window).
        multiple: Size multiple the model needs (``required_multiple``); default 32.

    Raises:
        InputError: For a non-positive size, a negative overlap or one not smaller than the
            window.
    """
    m = DEFAULT_MULTIPLE if multiple is None else int(multiple)
    if height <= 0 or width <= 0:
        raise InputError(f"scene must have positive size, got {height} x {width}")
    if m <= 0:
        raise InputError(f"size multiple must be positive, got {m}")
    if window <= 0:
        raise InputError(f"--window must be positive, got {window}")
    if overlap < 0:
        raise InputError(f"--overlap must be >= 0, got {overlap}")
    win = round_up(window, m)
    if overlap > win - m:
        raise InputError(
            f"--overlap {overlap} leaves no stride in a window of {win} pixels (the stride must "
            f"be at least {m}); use an overlap of at most {win - m} or a larger --window"
        )
    win_h, rows = _axis_plan(height, win, overlap, m)
    win_w, cols = _axis_plan(width, win, overlap, m)
    return SlidingPlan(height, width, win_h, win_w, rows, cols, m, overlap)


@dataclass(frozen=True)
class RowBand:
    """Finished rows of the blended output.

    Attributes:
        window: The rows, as a full-width window on the scene grid.
        prob: float32 (h, width) blended probabilities (0 where not valid).
        valid: bool (h, width), False where the input is nodata.
    """

    window: Window
    prob: Float
    valid: Bool


class RowBandAccumulator:
    """Blend window predictions into a buffer holding only the rows in flight.

    Add the windows of window row ``i`` (any order), then call :meth:`finish_row` to receive
    the rows that are now final, in bands of at most ``block`` rows whose boundaries are
    multiples of ``block`` (except the scene end), so they map onto whole GeoTIFF tile rows.
    The buffer holds at most ``win_h + block`` rows of the scene width: float32 sums and a
    bool valid mask, i.e. ``5 * width * (win_h + block)`` bytes, independent of the scene
    height.
    """

    def __init__(self, plan: SlidingPlan, block: int = 256, first_window_row: int = 0) -> None:
        self.plan = plan
        self.block = block
        self._row_w, self._col_w = plan.weight_sums()
        cap = min(plan.win_h + block, plan.height)
        self._acc = np.zeros((cap, plan.width), dtype=np.float32)
        self._valid = np.zeros((cap, plan.width), dtype=bool)
        # scene row held in buffer row 0 (block-aligned; rows above the first window row added
        # stay zero and invalid: a strip of window rows discards them)
        self._top = (plan.row_starts[first_window_row] // block) * block
        self._next_window_row = first_window_row

    @property
    def nbytes(self) -> int:
        """Bytes held by the row buffers."""
        return int(self._acc.nbytes + self._valid.nbytes)

    def add(self, window: Window, prob: Float, valid: Bool) -> None:
        """Add one window's prediction.

        Args:
            window: A window of the plan, in the current window row.
            prob: float32 (win_h, win_w) probabilities (or any per-pixel value).
            valid: bool (win_h, win_w), False at nodata pixels and outside the scene.
        """
        p = self.plan
        if window.row_off != p.row_starts[self._next_window_row]:
            raise InputError(
                f"window {window} is not in window row {self._next_window_row} (starting at "
                f"row {p.row_starts[self._next_window_row]})"
            )
        inside = window.clip(p.height, p.width)
        rel = inside.relative_to(window)
        rs, cs = rel.slices()
        w = p.weights(window)[rs, cs]
        r0 = inside.row_off - self._top
        dst = (slice(r0, r0 + inside.height), slice(inside.col_off, inside.col_end))
        self._acc[dst] += w * prob[rs, cs]
        self._valid[dst] |= valid[rs, cs]

    def finish_row(self, last: bool = False) -> list[RowBand]:
        """Close the current window row; return the rows that are final, block-aligned.

        Args:
            last: No window row follows (a strip of the plan ends here): hand out every final
                row, also those below the last block boundary.
        """
        p = self.plan
        final = p.final_row_after(self._next_window_row)
        self._next_window_row += 1
        last = last or self._next_window_row >= len(p.row_starts)
        emit_to = final if last else (final // self.block) * self.block
        out: list[RowBand] = []
        if emit_to > self._top:
            n = emit_to - self._top
            # Hand out at most one block of rows per band, so the temporaries the writers make
            # stay small (block x width) however wide the scene is.
            for a in range(0, n, self.block):
                b = min(a + self.block, n)
                r0, r1 = self._top + a, self._top + b
                prob = self._acc[a:b] / (self._row_w[r0:r1, None] * self._col_w[None, :])
                valid = self._valid[a:b].copy()
                prob[~valid] = 0
                out.append(RowBand(Window(r0, 0, b - a, p.width), prob, valid))
            _shift_up(self._acc, n, self.block)
            _shift_up(self._valid, n, self.block)
            self._top = emit_to
        return out


def _shift_up(buf: npt.NDArray[Any], n: int, chunk: int) -> None:
    """Move rows ``n:`` of ``buf`` to the top in place and zero the rest.

    Copies at most ``min(n, chunk)`` rows at a time, so no copy overlaps itself and numpy needs
    no temporary the size of the buffer.
    """
    keep = buf.shape[0] - n
    step = max(1, min(n, chunk))
    for a in range(0, keep, step):
        b = min(a + step, keep)
        buf[a:b] = buf[n + a:n + b]
    buf[max(keep, 0):] = 0


def blend_in_memory(
    plan: SlidingPlan, predictions: Iterator[tuple[Window, Float, Bool]]
) -> tuple[Float, Bool]:
    """Blend window predictions into whole-scene arrays (a reference for small scenes).

    Args:
        plan: The plan the windows come from.
        predictions: (window, prob (win_h, win_w) float32, valid (win_h, win_w) bool) for
            every window of the plan, in any order.

    Returns:
        (prob float32 (height, width) with 0 where not valid, valid bool (height, width)).
    """
    acc = np.zeros((plan.height, plan.width), dtype=np.float64)
    wsum = np.zeros((plan.height, plan.width), dtype=np.float64)
    valid = np.zeros((plan.height, plan.width), dtype=bool)
    for window, prob, ok in predictions:
        inside = window.clip(plan.height, plan.width)
        rs, cs = inside.relative_to(window).slices()
        w = plan.weights(window)[rs, cs]
        dst = inside.slices()
        acc[dst] += w * prob[rs, cs]
        wsum[dst] += w
        valid[dst] |= ok[rs, cs]
    if (wsum <= 0).any():
        raise InputError("a scene pixel is covered by no window; give every window of the plan")
    out = (acc / wsum).astype(np.float32)
    out[~valid] = 0
    return out, valid
