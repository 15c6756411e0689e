"""Global statistics of a fusion and the per-band coefficients derived from them.

The streaming driver accumulates the mean and covariance of z = (HP1, HP2, MSup_1..C, PAN)
over valid output pixels, and the mean, SD, min and max of every MS band over valid MS pixels,
with :class:`landslip.moments.RunningMoments`; HPF weights, the histogram match and the Brovey
least-squares weights all follow from these moments, so no extra pass over the fused image is
needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

import numpy as np

from landslip.errors import InputError
from landslip.moments import RunningMoments
from landslip.spectral.hpf_params import HPFParams, Method

__all__ = [
    "BandTransform",
    "FusionStats",
    "brovey_weights",
    "hpf_transform",
    "make_transform",
]

@dataclass(frozen=True)
class FusionStats:
    """Global statistics that make block-wise fusion equal to whole-image fusion.

    Attributes:
        ms_mean, ms_std, ms_min, ms_max: Per MS band over valid MS pixels (original MS).
        pan_mean: Mean of valid PAN pixels (fills PAN nodata before filtering).
        n: Number of output pixels the moments were taken over.
        mean: (D,) means of z = (HP1, HP2, MSup_1..C, PAN) over valid output pixels.
        cov: (D, D) covariance of z.
    """

    ms_mean: tuple[float, ...]
    ms_std: tuple[float, ...]
    ms_min: tuple[float, ...]
    ms_max: tuple[float, ...]
    pan_mean: float
    n: int
    mean: tuple[float, ...]
    cov: tuple[tuple[float, ...], ...]

    @property
    def bands(self) -> int:
        """Number of MS bands C."""
        return len(self.ms_mean)

    @classmethod
    def from_moments(cls, ms: RunningMoments, pan_mean: float,
                     z: RunningMoments | None = None) -> FusionStats:
        """The statistics from the MS band moments and the moments (with covariance) of z.

        Args:
            ms: Moments of the C MS bands over valid MS pixels.
            pan_mean: Mean of valid PAN pixels.
            z: Moments of z = (HP1, HP2, MSup_1..C, PAN) over valid output pixels, kept with
                ``covariance=True``; None leaves ``n``, ``mean`` and ``cov`` empty.
        """
        return cls(tuple(ms.mean.tolist()), tuple(ms.std.tolist()), tuple(ms.min.tolist()),
                   tuple(ms.max.tolist()), float(pan_mean), 0 if z is None else z.count,
                   () if z is None else tuple(z.mean.tolist()),
                   () if z is None else tuple(tuple(row) for row in z.cov.tolist()))


@dataclass(frozen=True)
class BandTransform:
    """Per-band coefficients of a fusion, derived from :class:`FusionStats`.

    HPF: ``out_b = (MSup_b + w1_b * HP1 + w2_b * HP2) * gain_b + offset_b``, clipped to
    ``[lo_b, hi_b]``. Brovey: ``out_b = MSup_b * PAN / sum_i(weights_i * MSup_i)``.
    """

    w1: tuple[float, ...] = ()
    w2: tuple[float, ...] = ()
    gain: tuple[float, ...] = ()
    offset: tuple[float, ...] = ()
    lo: tuple[float, ...] = ()
    hi: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()


def hpf_transform(stats: FusionStats, params: HPFParams, histogram_match: bool = True
                  ) -> BandTransform:
    """Injection weights and the histogram-match gain/offset for every band.

    ``mean(F_b)`` and ``SD(F_b)`` follow from the moments of (HP1, HP2, MSup_b) because F_b is
    linear in them, so no extra pass over the fused image is needed.

    Raises:
        InputError: When the PAN has no high-pass detail (SD(HP) = 0).
    """
    mean = np.asarray(stats.mean)
    cov = np.asarray(stats.cov)
    sd1 = math.sqrt(max(cov[0, 0], 0.0))
    sd2 = math.sqrt(max(cov[1, 1], 0.0))
    if sd1 == 0.0:
        raise InputError("the PAN image has no high-pass detail (SD of the high-pass image is 0);"
                         " check that the PAN band is not constant")
    w1, w2, gains, offsets = [], [], [], []
    for b in range(stats.bands):
        a1 = stats.ms_std[b] / sd1 * params.modulation
        a2 = (stats.ms_std[b] / sd2 * params.second_modulation
              if params.second_kernel and sd2 > 0 else 0.0)
        coef = np.zeros(len(mean))
        coef[0], coef[1], coef[2 + b] = a1, a2, 1.0
        f_mean = float(coef @ mean)
        f_sd = math.sqrt(max(float(coef @ cov @ coef), 0.0))
        if histogram_match and f_sd > 0:
            g = stats.ms_std[b] / f_sd
            gains.append(g)
            offsets.append(stats.ms_mean[b] - f_mean * g)
        else:
            gains.append(1.0)
            offsets.append(0.0)
        w1.append(a1)
        w2.append(a2)
    return BandTransform(tuple(w1), tuple(w2), tuple(gains), tuple(offsets), stats.ms_min,
                         stats.ms_max)


def brovey_weights(stats: FusionStats, weights: Sequence[float] | None = None) -> tuple[float, ...]:
    """Brovey weights: the given ones, or non-negative least squares of PAN on MSup.

    The fit minimises ``E[(PAN - sum_i w_i MSup_i)^2]`` with ``w >= 0`` from the (uncentred)
    second moments in ``stats`` (no intercept, as the Brovey ratio has none).

    Raises:
        InputError: For the wrong number of weights, negative weights, or weights summing to 0.
    """
    c = stats.bands
    if weights is not None:
        w = tuple(float(x) for x in weights)
        if len(w) != c:
            raise InputError(f"Brovey needs one weight per MS band: {c} bands but {len(w)} "
                             "weights were given")
        if any(x < 0 for x in w) or sum(w) <= 0:
            raise InputError(f"Brovey weights must be >= 0 and not all 0, got {list(w)}")
        return w
    from scipy.optimize import nnls

    mean = np.asarray(stats.mean)
    cov = np.asarray(stats.cov)
    idx = list(range(2, 2 + c))
    p = 2 + c
    gram = cov[np.ix_(idx, idx)] + np.outer(mean[idx], mean[idx])
    rhs = cov[idx, p] + mean[idx] * mean[p]
    # min |A w - p|^2 = w'Gw - 2 w'c + const = |L' w - L^-1 c|^2 + const, with G = L L'.
    jitter = 1e-9 * np.trace(gram) / c
    chol = np.linalg.cholesky(gram + jitter * np.eye(c))
    fitted, _ = nnls(chol.T, np.linalg.solve(chol, rhs))
    if not np.any(fitted > 0):
        return tuple([1.0 / c] * c)
    return tuple(float(x) for x in fitted)


def make_transform(method: Method, stats: FusionStats, params: HPFParams | None,
                   histogram_match: bool, weights: Sequence[float] | None) -> BandTransform:
    """The per-band coefficients of ``method`` from the global statistics."""
    if method not in get_args(Method):
        raise InputError(f"unknown method {method!r}; use one of {', '.join(get_args(Method))}")
    if method == "hpf":
        if params is None:
            raise InputError("HPF fusion needs its parameters")
        return hpf_transform(stats, params, histogram_match)
    if method == "brovey":
        return BandTransform(weights=brovey_weights(stats, weights))
    return BandTransform()
