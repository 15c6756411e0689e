"""Photometric augmentation and random scaling of normalised training batches (pure functions).

Applied by :class:`landslip.dataset.torch.PatchDataset` after the symmetries of the square, on
batches that are already standardised (``(x - mean) / std``, 0 and label 255 at nodata). The
normalised space is the one place where a strength means the same for every band and every
sensor: a brightness shift of 0.1 is a tenth of the band's standard deviation whether the band
is 8-bit RGB, 16-bit reflectance or NDVI (which can be negative, so a gamma on raw values would
not even be defined); and nodata is already marked by the labels.

Every operation leaves nodata pixels (label :data:`~landslip.encoding.IGNORE`) untouched: their
input stays 0. Parameters are drawn per sample and per band (bands vary independently) by
:func:`draw_params` from a per-sample seed, so a batch depends on the seeds only, never on the
worker that built it. With strength ``s`` the parameters are drawn uniformly:

* gamma: ``g = exp(U(-0.3 s, 0.3 s))``, applied to the band rescaled to [0, 1] between its
  valid minimum and maximum in the patch, then mapped back (a monotone remap, range kept);
* contrast: ``c = 1 + U(-0.3 s, 0.3 s)``, ``x -> m + c (x - m)`` around the band's valid mean
  ``m`` in the patch;
* brightness: ``b = U(-0.2 s, 0.2 s)``, ``x -> x + b`` (standard deviations);
* noise: ``x -> x + sigma N(0, 1)`` per pixel, ``sigma = U(0, 0.1 s)``.

Random scaling zooms each patch about its centre by a factor ``f`` drawn log-uniformly in
``[lo, hi]``, keeping its size: the image is resampled bilinearly, the label nearest; zooming in
crops, zooming out pads with 0 and label 255 (so padding is ignored by losses and metrics), and
input pixels whose resampled label is 255 are set to 0 as nodata is everywhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch.nn import functional

from landslip.encoding import IGNORE
from landslip.errors import DatasetError

__all__ = [
    "AugmentParams",
    "augment_batch",
    "check_scale_range",
    "draw_params",
    "photometric",
    "scale_patches",
]

GAMMA_LIMIT = 0.3
"""Half-width of ``log(gamma)`` at strength 1."""
CONTRAST_LIMIT = 0.3
"""Half-width of the contrast factor around 1 at strength 1."""
BRIGHTNESS_LIMIT = 0.2
"""Half-width of the brightness shift at strength 1, in standard deviations."""
NOISE_LIMIT = 0.1
"""Largest noise standard deviation at strength 1, in standard deviations."""


@dataclass(frozen=True)
class AugmentParams:
    """Drawn parameters of one batch.

    Attributes:
        scale: (N,) float zoom factors (1 = unchanged).
        gamma: (N, C) float32 gamma exponents.
        contrast: (N, C) float32 contrast factors.
        brightness: (N, C) float32 additive shifts (standard deviations).
        noise: (N, C, P, P) float32 additive noise, or None without photometric augmentation.
    """

    scale: npt.NDArray[np.float64]
    gamma: npt.NDArray[np.float32]
    contrast: npt.NDArray[np.float32]
    brightness: npt.NDArray[np.float32]
    noise: npt.NDArray[np.float32] | None


def check_scale_range(scale_range: tuple[float, float] | None) -> None:
    """Refuse a scale range that is not ``0 < lo <= hi``.

    Raises:
        DatasetError: For a bad range.
    """
    if scale_range is not None and not 0 < scale_range[0] <= scale_range[1]:
        raise DatasetError(f"scale range {list(scale_range)} must be [lo, hi] with "
                           "0 < lo <= hi, e.g. [0.75, 1.25]")


def draw_params(seeds: npt.NDArray[np.int64], n_bands: int, size: int, strength: float,
                scale_range: tuple[float, float] | None) -> AugmentParams:
    """Draw the augmentation of each sample from its own seed.

    Args:
        seeds: (N,) int seeds, one per sample (drawn by the sampler in the main process).
        n_bands: Number of bands C.
        size: Patch size P.
        strength: Photometric strength ``s`` (0: no photometric change).
        scale_range: ``(lo, hi)`` zoom factors, or None for no scaling.

    Returns:
        The parameters; identity values where an augmentation is off.
    """
    n = len(seeds)
    scale = np.ones(n)
    shape = (n, n_bands)
    gamma, contrast = np.ones(shape, np.float32), np.ones(shape, np.float32)
    brightness = np.zeros(shape, np.float32)
    noise = np.empty((n, n_bands, size, size), np.float32) if strength > 0 else None
    for k, seed in enumerate(seeds):
        rng = np.random.default_rng(int(seed))
        if scale_range is not None:
            lo, hi = math.log(scale_range[0]), math.log(scale_range[1])
            scale[k] = math.exp(rng.uniform(lo, hi))
        if noise is not None:
            u = rng.uniform(-1.0, 1.0, (4, n_bands)) * strength
            gamma[k] = np.exp(GAMMA_LIMIT * u[0])
            contrast[k] = 1 + CONTRAST_LIMIT * u[1]
            brightness[k] = BRIGHTNESS_LIMIT * u[2]
            sigma = (NOISE_LIMIT * np.abs(u[3])).astype(np.float32)
            noise[k] = rng.standard_normal((n_bands, size, size), np.float32)
            noise[k] *= sigma[:, None, None]
    return AugmentParams(scale, gamma, contrast, brightness, noise)


def photometric(x: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_],
                params: AugmentParams) -> npt.NDArray[np.float32]:
    """Gamma, contrast, brightness and noise per sample and band, on valid pixels only.

    Args:
        x: (N, C, P, P) float32 normalised inputs; modified in place.
        valid: (N, P, P) bool, False at nodata (label 255): those pixels keep their value.
        params: Parameters from :func:`draw_params` (``noise`` not None).

    Returns:
        ``x``.
    """
    m = valid[:, None]
    count = np.maximum(valid.sum(axis=(1, 2)), 1)[:, None].astype(np.float32)  # (N, 1)
    lo = np.where(m, x, np.inf).min(axis=(2, 3))
    hi = np.where(m, x, -np.inf).max(axis=(2, 3))
    span = np.where(np.isfinite(hi - lo) & (hi > lo), hi - lo, 1).astype(np.float32)
    lo = np.where(np.isfinite(lo), lo, 0).astype(np.float32)
    e = (slice(None), slice(None), None, None)
    y = np.clip((x - lo[e]) / span[e], 0, 1)
    y **= params.gamma[e]
    y = y * span[e] + lo[e]
    mean = np.where(m, y, 0).sum(axis=(2, 3)) / count
    y -= mean[e]
    y *= params.contrast[e]
    y += (mean + params.brightness)[e]
    if params.noise is not None:
        y += params.noise
    np.copyto(x, y.astype(np.float32, copy=False), where=m)
    return x


def scale_patches(x: npt.NDArray[np.float32], y: npt.NDArray[np.uint8],
                  factors: npt.NDArray[np.float64]
                  ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    """Zoom each patch about its centre, keeping its size (crop in, pad out with nodata).

    Output pixel centre ``u`` (in pixels from the patch centre) samples the input at ``u / f``:
    bilinearly for the image, nearest for the label; outside the patch the image is 0 and the
    label 255. Image pixels whose new label is 255 are set to 0.

    Args:
        x: (N, C, P, P) float32 normalised inputs.
        y: (N, P, P) uint8 labels 0/1/255.
        factors: (N,) zoom factors (> 1 zooms in).

    Returns:
        New (x, y) arrays of the same shapes and dtypes.
    """
    n = len(factors)
    theta = torch.zeros((n, 2, 3), dtype=torch.float32)
    inv = torch.from_numpy((1.0 / factors).astype(np.float32))
    theta[:, 0, 0] = inv
    theta[:, 1, 1] = inv
    grid = functional.affine_grid(theta, [n, 1, *y.shape[1:]], align_corners=False)
    xs = functional.grid_sample(torch.from_numpy(x), grid, mode="bilinear",
                                padding_mode="zeros", align_corners=False)
    # Labels + 1, so the zero padding becomes 0 and maps to IGNORE below.
    lab = torch.from_numpy(y.astype(np.float32) + 1)[:, None]
    ys = functional.grid_sample(lab, grid, mode="nearest", padding_mode="zeros",
                                align_corners=False)[:, 0].numpy()
    y_out = np.where(ys == 0, IGNORE, ys - 1).astype(np.uint8)
    x_out = np.ascontiguousarray(xs.numpy())
    np.copyto(x_out, np.float32(0), where=(y_out == IGNORE)[:, None])
    return x_out, y_out


def augment_batch(x: npt.NDArray[np.float32], y: npt.NDArray[np.uint8],
                  seeds: npt.NDArray[np.int64], strength: float,
                  scale_range: tuple[float, float] | None
                  ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    """Random scaling, then photometric changes, of a normalised batch.

    Args:
        x: (N, C, P, P) float32 normalised inputs, 0 at nodata (modified in place or replaced).
        y: (N, P, P) uint8 labels, 255 at nodata.
        seeds: (N,) per-sample seeds.
        strength: Photometric strength (0 = off).
        scale_range: Zoom factor range, or None (no scaling).

    Returns:
        (x, y) augmented; nodata pixels keep input 0 and label 255.
    """
    params = draw_params(seeds, x.shape[1], x.shape[-1], strength, scale_range)
    if scale_range is not None:
        x, y = scale_patches(x, y, params.scale)
    if strength > 0:
        x = photometric(x, y != IGNORE, params)
    return x, y
