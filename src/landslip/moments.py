"""Running statistics of data seen in chunks: count, mean, spread, min and max, in float64.

The one implementation behind every pass that summarises data too large to hold at once: the
per-band statistics of a dataset's valid training pixels, the statistics of the MS bands of a
fusion and the moments (with covariance) of its (HP, MSup, PAN) samples.

Each chunk is summarised in two passes (its mean, then the sum of squared deviations from that
mean), and summaries are combined with the parallel update of Chan, Golub and LeVeque (1979):
with ``delta = mean_b - mean_a`` and ``n = n_a + n_b``::

    mean = mean_a + delta * n_b / n
    M2   = M2_a + M2_b + delta^2 * n_a * n_b / n        (outer(delta, delta) for covariance)

which neither loses precision for values far from zero (as ``E[x^2] - E[x]^2`` does) nor
depends on how the data were cut into chunks beyond rounding. Variance and covariance are
population statistics (divisor ``count``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["RunningMoments"]

F64 = npt.NDArray[np.float64]


class RunningMoments:
    """Count, mean, M2, min and max of D variables, updated chunk by chunk (float64).

    Attributes:
        dim: Number of variables D.
        covariance: Whether the full (D, D) co-moment matrix is kept (else only the diagonal).
        count: Number of samples seen.
        mean: (D,) float64 running mean.
        m2: (D,) float64 sums of squared deviations from the mean, or (D, D) sums of
            cross products of deviations when ``covariance``.
        min: (D,) float64 smallest value seen (+inf before any sample).
        max: (D,) float64 largest value seen (-inf before any sample).
    """

    def __init__(self, dim: int, covariance: bool = False) -> None:
        if dim < 1:
            raise ValueError(f"dim must be at least 1, got {dim}")
        self.dim = dim
        self.covariance = covariance
        self.count = 0
        self.mean: F64 = np.zeros(dim)
        self.m2: F64 = np.zeros((dim, dim) if covariance else dim)
        self.min: F64 = np.full(dim, np.inf)
        self.max: F64 = np.full(dim, -np.inf)

    def __repr__(self) -> str:
        return (f"RunningMoments(dim={self.dim}, covariance={self.covariance}, "
                f"count={self.count})")

    def update(self, values: npt.NDArray[Any], valid: npt.NDArray[np.bool_] | None = None,
               axis: int = 0) -> None:
        """Add the samples of one chunk.

        Args:
            values: Numeric array with the D variables along ``axis``: (D, N) samples, a
                (C, H, W) raster (``axis=0``) or (N, C, H, W) patches (``axis=1``).
            valid: Bool array shaped like ``values`` without ``axis``; only its True
                positions are samples. None: every position is a sample.
            axis: Axis of ``values`` that holds the variables.
        """
        if values.shape[axis] != self.dim:
            raise ValueError(f"values have {values.shape[axis]} variables along axis {axis}, "
                             f"expected {self.dim}")
        rows = np.moveaxis(values, axis, 0)
        if valid is not None:
            if valid.shape != rows.shape[1:]:
                raise ValueError(f"valid mask of shape {valid.shape} does not match values "
                                 f"{values.shape} without axis {axis}")
            if valid.all():
                valid = None
        nb = int(rows[0].size if valid is None else np.count_nonzero(valid))
        if nb == 0:
            return
        if self.covariance:
            flat = rows.reshape(self.dim, -1)
            z = flat if valid is None else flat[:, valid.reshape(-1)]
            mb, m2b, lo, hi = _chunk_covariance(z)
        else:
            mb, m2b = np.empty(self.dim), np.empty(self.dim)
            lo, hi = np.empty(self.dim), np.empty(self.dim)
            for d in range(self.dim):  # one variable at a time bounds the float64 copy
                v = rows[d].reshape(-1) if valid is None else rows[d][valid]
                mb[d], m2b[d], lo[d], hi[d] = _chunk_variance(v)
        self._combine(nb, mb, m2b, lo, hi)

    def merge(self, other: RunningMoments) -> None:
        """Add the samples summarised by ``other`` (same ``dim`` and ``covariance``)."""
        if other.dim != self.dim or other.covariance != self.covariance:
            raise ValueError(f"cannot merge {other!r} into {self!r}")
        if other.count:
            self._combine(other.count, other.mean, other.m2, other.min, other.max)

    def _combine(self, nb: int, mb: F64, m2b: F64, lo: F64, hi: F64) -> None:
        n = self.count + nb
        delta = mb - self.mean
        spread = np.outer(delta, delta) if self.covariance else delta * delta
        self.m2 = self.m2 + m2b + spread * (self.count * nb / n)
        self.mean = self.mean + delta * (nb / n)
        self.min = np.minimum(self.min, lo)
        self.max = np.maximum(self.max, hi)
        self.count = n

    @property
    def var(self) -> F64:
        """(D,) population variance (0 before any sample)."""
        diag = np.diagonal(self.m2) if self.covariance else self.m2
        return np.maximum(diag, 0.0) / max(self.count, 1)

    @property
    def std(self) -> F64:
        """(D,) population standard deviation (0 before any sample)."""
        return np.sqrt(self.var)

    @property
    def cov(self) -> F64:
        """(D, D) population covariance (divisor ``count``; needs ``covariance=True``)."""
        if not self.covariance:
            raise ValueError("this RunningMoments keeps no covariance; create it with "
                             "covariance=True")
        return self.m2 / max(self.count, 1)


def _chunk_variance(v: npt.NDArray[Any]) -> tuple[float, float, float, float]:
    """(mean, sum of squared deviations, min, max) of one variable's samples, float64."""
    vf = v.astype(np.float64)
    m = float(vf.mean())
    vf -= m
    return m, float(np.dot(vf, vf)), float(v.min()), float(v.max())


def _chunk_covariance(z: npt.NDArray[Any]) -> tuple[F64, F64, F64, F64]:
    """(mean (D,), co-moment matrix (D, D), min (D,), max (D,)) of (D, N) samples, float64."""
    zf = z.astype(np.float64, copy=False)
    mb = zf.mean(axis=1)
    c = zf - mb[:, None]
    return mb, c @ c.T, zf.min(axis=1), zf.max(axis=1)
