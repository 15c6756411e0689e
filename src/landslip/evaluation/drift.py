"""Is the input like the data the model was trained on? (``predict``, ``evaluate``)

Training records an :class:`~landslip.models.bundle.InputProfile` in the bundle: the dtype of
the training images and, for every raw band the model reads, the 1st, 50th and 99th percentiles
of a sample of valid training pixels (:func:`profile_dataset`, at most
:data:`SAMPLE_PIXELS` pixels from patches spread evenly over the training split).

Prediction and evaluation measure the median of each of those bands over a sample of valid
input pixels (:func:`measure_image`: up to 16 windows of 256 x 256 spread over the scene;
:func:`measure_patches`: patches spread over the split) and apply the **drift rule**: a band is
*far* from the training data when its input median lies outside the training 1-99 % range
(``median < p1`` or ``median > p99``). Any far band gives one warning naming each such band, its
median and the training range (and the dtypes when they differ); with ``--strict`` it is a
:class:`~landslip.errors.DriftError` (exit 2) instead. A bundle without a profile (written
before profiles existed) is not checked.

:func:`check_image_input` and :func:`check_dataset_input` run the rule and count the NaN and
infinite input pixels (nodata everywhere) with one warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.dataset.folder import DatasetFolder
from landslip.dataset.stats import valid_mask, warn_nonfinite_patches
from landslip.errors import DriftError
from landslip.grid import Window
from landslip.io.checks import warn_nonfinite
from landslip.io.raster import RasterInfo, open_raster, read_valid, read_window
from landslip.models.bundle import BandProfile, InputProfile

__all__ = [
    "PERCENTILES",
    "SAMPLE_PIXELS",
    "Measurement",
    "check_dataset_input",
    "check_drift",
    "check_image_input",
    "far_bands",
    "measure_image",
    "measure_patches",
    "profile_dataset",
]

log = logging.getLogger(__name__)

PERCENTILES = (1.0, 50.0, 99.0)
"""Percentiles of the training pixels kept in the profile."""

SAMPLE_PIXELS = 1 << 20
"""Pixels (per band) at most in a training profile or an input measurement."""

SAMPLE_WINDOWS = 4
"""An image is measured on up to SAMPLE_WINDOWS x SAMPLE_WINDOWS windows..."""

SAMPLE_WINDOW = 256
"""...of this many pixels a side, spread evenly over the scene."""


@dataclass(frozen=True)
class Measurement:
    """The input side of the drift rule.

    Attributes:
        source: What was measured (a file, or a dataset split), for messages.
        dtype: Numpy dtype name of the input pixels.
        medians: Per raw band name, the median of the sampled valid pixels (absent when the
            sample had none).
        pixels: Valid pixels in the sample.
    """

    source: str
    dtype: str
    medians: dict[str, float]
    pixels: int


def _spread(n: int, k: int) -> npt.NDArray[np.int64]:
    """``k`` distinct positions spread evenly over ``range(n)`` (all when k >= n)."""
    if k >= n:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def _sample_patches(ds: DatasetFolder, indices: npt.NDArray[np.int64], names: Sequence[str],
                    max_pixels: int) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    """(values (B, n) of the named raw bands, valid (n,)) over patches spread over ``indices``."""
    per_patch = ds.patch_size * ds.patch_size
    chosen = np.sort(indices[_spread(indices.size, max(1, max_pixels // per_patch))])
    cols = [list(ds.band_names).index(b) for b in names]
    imgs = np.asarray(ds.images[chosen])[:, cols]
    valid = valid_mask(imgs, np.asarray(ds.labels[chosen]), ds.nodata)
    return np.moveaxis(imgs, 1, 0).reshape(len(cols), -1), valid.reshape(-1)


def profile_dataset(ds: DatasetFolder, names: Sequence[str], split: str = "train",
                    max_pixels: int = SAMPLE_PIXELS) -> InputProfile | None:
    """The training profile of a dataset: dtype and band percentiles of a training sample.

    Args:
        ds: The training dataset.
        names: Raw bands to profile (a band set's ``required``).
        split: The split to sample.
        max_pixels: Pixels per band at most in the sample.

    Returns:
        The profile, or None when the split has no valid pixel.
    """
    idx = ds.split_indices(split)
    if idx.size == 0 or not names:
        return None
    values, valid = _sample_patches(ds, idx, names, max_pixels)
    n = int(valid.sum())
    if n == 0:
        return None
    bands = {}
    for name, v in zip(names, values, strict=True):
        p1, p50, p99 = np.percentile(v[valid].astype(np.float64), PERCENTILES)
        bands[name] = BandProfile(p1=float(p1), p50=float(p50), p99=float(p99))
    return InputProfile(dtype=np.dtype(ds.images.dtype).name, bands=bands, pixels=n)


def _medians(names: Sequence[str], values: npt.NDArray[Any], valid: npt.NDArray[np.bool_]
             ) -> dict[str, float]:
    if not valid.any():
        return {}
    return {name: float(np.median(v[valid].astype(np.float64)))
            for name, v in zip(names, values, strict=True)}


def measure_patches(ds: DatasetFolder, indices: npt.NDArray[np.int64], names: Sequence[str],
                    max_pixels: int = SAMPLE_PIXELS) -> Measurement:
    """Medians of the named raw bands over patches spread over ``indices`` of a dataset."""
    values, valid = _sample_patches(ds, indices, names, max_pixels)
    return Measurement(str(ds.path), np.dtype(ds.images.dtype).name,
                       _medians(names, values, valid), int(valid.sum()))


def _sample_windows(height: int, width: int) -> list[Window]:
    size = SAMPLE_WINDOW
    if height * width <= SAMPLE_WINDOWS * SAMPLE_WINDOWS * size * size:
        return [Window(0, 0, height, width)]
    rows = _spread(max(1, height - size + 1), SAMPLE_WINDOWS)
    cols = _spread(max(1, width - size + 1), SAMPLE_WINDOWS)
    return [Window(int(r), int(c), min(size, height), min(size, width))
            for r in rows for c in cols]


def measure_image(path: str | Path, band_indexes: Sequence[int], names: Sequence[str],
                  nodata: float | None, masked: bool = False) -> Measurement:
    """Medians of the named bands of an image over up to 16 windows spread over it.

    Args:
        path: The image.
        band_indexes: 1-based band index of each name.
        names: Raw band names, as in the profile.
        nodata: The image's nodata value (declared or tagged), or None.
        masked: Also honour GDAL's masks (alpha band, internal mask).
    """
    values: list[npt.NDArray[Any]] = []
    valids: list[npt.NDArray[np.bool_]] = []
    with open_raster(path) as ds:
        dtype = str(ds.dtypes[0])
        for win in _sample_windows(ds.height, ds.width):
            raw = read_window(ds, win, band_indexes)
            ok = np.ones(raw.shape[1:], dtype=bool)
            if raw.dtype.kind == "f":
                ok &= np.isfinite(raw).all(axis=0)
            if nodata is not None:
                ok &= ~(np.isnan(raw) if np.isnan(nodata) else raw == nodata).any(axis=0)
            if masked:
                ok &= read_valid(ds, win, band_indexes)
            values.append(raw.reshape(raw.shape[0], -1))
            valids.append(ok.reshape(-1))
    v, ok = np.concatenate(values, axis=1), np.concatenate(valids)
    return Measurement(str(path), dtype, _medians(names, v, ok), int(ok.sum()))


def far_bands(profile: InputProfile, measured: Measurement) -> list[str]:
    """The bands whose input median lies outside the training 1-99 % range, described.

    Returns:
        One phrase per far band, such as ``red median 612 is 10.9x the training median 56,
        outside the training 1-99 % range 12 to 180``; empty when nothing is far.
    """
    out = []
    for name, band in profile.bands.items():
        m = measured.medians.get(name)
        if m is None or band.p1 <= m <= band.p99:
            continue
        rng = f"the training 1-99 % range {band.p1:.4g} to {band.p99:.4g}"
        if band.p50 > 0 and m > 0:
            out.append(f"{name} median {m:.4g} is {m / band.p50:.3g}x the training median "
                       f"{band.p50:.4g}, outside {rng}")
        else:
            out.append(f"{name} median {m:.4g} is outside {rng} (training median "
                       f"{band.p50:.4g})")
    return out


def check_drift(profile: InputProfile | None, measured: Measurement, strict: bool = False
                ) -> list[str]:
    """Apply the drift rule: warn (or, ``strict``, refuse) when the input is far outside.

    Args:
        profile: The bundle's training profile (None: no check).
        measured: The input's :class:`Measurement`.
        strict: Raise instead of warning.

    Returns:
        The far bands, described (empty when none or no profile).

    Raises:
        DriftError: With ``strict``, when any band is far.
    """
    if profile is None:
        return []
    far = far_bands(profile, measured)
    if not far:
        return far
    types = (f"; the model was trained on {profile.dtype} data, the input is {measured.dtype}"
             if profile.dtype != measured.dtype else "")
    message = (f"{measured.source} is far outside the model's training data: {'; '.join(far)}"
               f"{types}; check the bands and their scaling (digital numbers, reflectance)")
    if strict:
        raise DriftError(f"{message}, or use a model trained on such data (refused: --strict)")
    log.warning("%s; results may be meaningless (--strict refuses such input)", message)
    return far


def check_image_input(profile: InputProfile | None, info: RasterInfo,
                      band_indexes: Sequence[int], names: Sequence[str], strict: bool = False
                      ) -> list[str]:
    """The input checks of ``predict``: the drift rule, then the count of NaN/inf pixels.

    Args:
        profile: The bundle's training profile (None: no drift check).
        info: The image (with a declared ``--nodata`` applied).
        band_indexes: 1-based band index of each of ``names``.
        names: The raw bands the model reads.
        strict: Refuse drift instead of warning.

    Returns:
        The far bands, described (see :func:`check_drift`).

    Raises:
        DriftError: With ``strict``, when the image is far outside the training data.
    """
    far: list[str] = []
    if profile is not None:
        measured = measure_image(info.path, band_indexes, names, info.nodata, info.masked)
        far = check_drift(profile, measured, strict)
    warn_nonfinite(info.path, band_indexes)
    return far


def check_dataset_input(profile: InputProfile | None, ds: DatasetFolder,
                        indices: npt.NDArray[np.int64], strict: bool = False) -> list[str]:
    """The input checks of ``evaluate`` on a split: the drift rule, then NaN/inf pixels.

    Raises:
        DriftError: With ``strict``, when the split is far outside the training data.
    """
    far: list[str] = []
    if profile is not None and indices.size:
        names = [b for b in profile.bands if b in ds.band_names]
        far = check_drift(profile, measure_patches(ds, indices, names), strict)
    warn_nonfinite_patches(ds, indices)
    return far
