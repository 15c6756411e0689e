"""Band statistics of a dataset on valid training pixels, and the derived-band cache.

A pixel is *valid* when its label is not :data:`~landslip.encoding.IGNORE` and none of the
raw bands equals the nodata value (:func:`valid_mask`). The per-band mean, population standard
deviation, min, max and count over the valid pixels of the training patches
(:func:`compute_stats`, with :class:`landslip.moments.RunningMoments`) are stored in
dataset.json for the raw bands; those of derived bands and inline expressions are computed on
demand and cached in ``derived_stats.json`` (:func:`band_set_stats`), keyed by expression and
tied to the dataset fingerprint.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from landslip.dataset.memmaps import CHUNK_PATCHES, RemapBudget, reopen
from landslip.encoding import IGNORE
from landslip.io.atomic import write_json_atomic
from landslip.moments import RunningMoments
from landslip.spectral.bands import BandSet, parse_expression, resolve_band_set

if TYPE_CHECKING:
    from landslip.dataset.folder import DatasetFolder

__all__ = [
    "DERIVED_STATS",
    "band_set_stats",
    "compute_stats",
    "nodata_free",
    "valid_mask",
    "warn_nonfinite_patches",
]

log = logging.getLogger(__name__)

DERIVED_STATS = "derived_stats.json"
"""Cache file of the statistics of derived bands, in the dataset folder."""

BandStats = dict[str, dict[str, float]]
"""{band name: {"mean", "std", "min", "max", "count"}}."""


def valid_mask(
    images: npt.NDArray[Any], labels: npt.NDArray[np.uint8], nodata: float | None
) -> npt.NDArray[np.bool_]:
    """Valid pixels of patches: label not IGNORE (255), no raw band nodata, NaN or infinite.

    Args:
        images: (N, C, P, P) or (C, P, P) raw bands.
        labels: (N, P, P) or (P, P) uint8 labels.
        nodata: Nodata value of the raw bands, or None.

    Returns:
        Bool array shaped like ``labels``.
    """
    valid: npt.NDArray[np.bool_] = labels != IGNORE
    if nodata is not None:
        valid &= nodata_free(images, nodata)
    if images.dtype.kind == "f":  # NaN and infinite values are nodata too
        valid &= np.isfinite(images).all(axis=images.ndim - 3)
    return valid


def nodata_free(images: npt.NDArray[Any], nodata: float) -> npt.NDArray[np.bool_]:
    """Pixels where no raw band equals ``nodata`` (is NaN, for a NaN nodata).

    Args:
        images: (N, C, P, P) or (C, P, P) raw bands.
        nodata: Nodata value of the raw bands.

    Returns:
        (N, P, P) or (P, P) bool.
    """
    axis = images.ndim - 3
    hit = np.isnan(images) if math.isnan(nodata) else images == images.dtype.type(nodata)
    free: npt.NDArray[np.bool_] = ~hit.any(axis=axis)
    return free


def warn_nonfinite_patches(ds: DatasetFolder, indices: npt.NDArray[np.int64] | None = None
                           ) -> int:
    """Count the patch pixels where any band is NaN or infinite (nodata); warn if there are any.

    Args:
        ds: The dataset.
        indices: Patches to look at (all when None).

    Returns:
        The count (0 for integer data, which is not read).
    """
    if np.dtype(ds.images.dtype).kind != "f":
        return 0
    idx = np.arange(len(ds)) if indices is None else np.sort(np.asarray(indices))
    n = 0
    for start in range(0, idx.size, CHUNK_PATCHES):
        imgs = np.asarray(ds.images[idx[start:start + CHUNK_PATCHES]])
        n += int(np.count_nonzero(~np.isfinite(imgs).all(axis=1)))
    if n:
        log.warning("%s: %d pixel(s) hold NaN or infinite values; they are treated as nodata",
                    ds.path, n)
    return n


def compute_stats(
    images: npt.NDArray[Any],
    labels: npt.NDArray[np.uint8],
    indices: npt.NDArray[np.int64] | Sequence[int],
    band_names: Sequence[str],
    nodata: float | None,
    band_set: BandSet | None = None,
) -> BandStats:
    """Per-band mean, std, min, max and count over the valid pixels of some patches.

    Reads :data:`~landslip.dataset.memmaps.CHUNK_PATCHES` patches at a time, so
    memory-mapped arrays of any size work.

    Args:
        images: (N, C, P, P) raw bands (memmap or array).
        labels: (N, P, P) uint8 labels.
        indices: Patches to use (for example the training patches).
        band_names: Names of the C raw bands.
        nodata: Nodata value of the raw bands, or None.
        band_set: When given, statistics of these (possibly derived) bands instead of the raw
            bands, computed with :meth:`BandSet.compute`.

    Returns:
        {band name: {"mean", "std", "min", "max", "count"}} in the bands' units (std is the
        population standard deviation); a band with no valid pixel gets mean 0 and std 1.
    """
    idx = np.sort(np.asarray(indices, dtype=np.int64))
    names = list(band_set.names) if band_set is not None else list(band_names)
    moments = RunningMoments(len(names))
    images, labels = reopen(images), reopen(labels)
    budget = RemapBudget()
    for start in range(0, idx.size, CHUNK_PATCHES):
        chunk = idx[start:start + CHUNK_PATCHES]
        img = np.asarray(images[chunk])
        lab = np.asarray(labels[chunk])
        if budget.spend(img.nbytes):
            images, labels = reopen(images), reopen(labels)
        valid = valid_mask(img, lab, nodata)
        if band_set is None:
            moments.update(img, valid, axis=1)
        else:
            bands, band_valid = band_set.compute(img, band_names, nodata)
            moments.update(bands, valid & band_valid, axis=1)
    return _as_dict(moments, names)


def _as_dict(moments: RunningMoments, names: Sequence[str]) -> BandStats:
    if moments.count == 0:
        return {name: {"mean": 0.0, "std": 1.0, "min": 0.0, "max": 0.0, "count": 0}
                for name in names}
    return {name: {"mean": float(moments.mean[i]), "std": float(moments.std[i]),
                   "min": float(moments.min[i]), "max": float(moments.max[i]),
                   "count": int(moments.count)}
            for i, name in enumerate(names)}


def band_set_stats(ds: DatasetFolder, band_set: BandSet | str) -> tuple[list[float], list[float]]:
    """Means and standard deviations of a band set on the valid training pixels of ``ds``.

    Raw bands use the statistics stored in dataset.json. Derived bands (NDVI, inline
    expressions) and raw bands without stored statistics are computed from the stored raw
    bands and cached in ``derived_stats.json`` in the folder (when it is writable).

    Args:
        ds: The dataset.
        band_set: A :class:`BandSet` or a band set spec such as ``"bg-ndvi"``.

    Returns:
        (means, stds), one value per band of the set, in the set's units; a zero std is
        returned as 1.

    Raises:
        BandError: If the set needs a raw band the dataset does not have.
    """
    bs = resolve_band_set(band_set) if isinstance(band_set, str) else band_set
    bs.check_available(ds.band_names)
    stored = ds.stats
    keys = [expr if expr is not None else name
            for name, expr in zip(bs.names, bs.expressions, strict=True)]
    cache = _read_cache(ds)
    missing = [(name, expr, key)
               for name, expr, key in zip(bs.names, bs.expressions, keys, strict=True)
               if not (expr is None and name in stored) and key not in cache]
    if missing:
        cache.update(_compute_missing(ds, missing))
        try:
            write_json_atomic(ds.path / DERIVED_STATS,
                              {"fingerprint": ds.fingerprint, "stats": cache})
        except OSError as exc:  # read-only dataset: fine, just not cached
            log.debug("cannot cache derived statistics in %s: %s", ds.path, exc)
    means: list[float] = []
    stds: list[float] = []
    for name, expr, key in zip(bs.names, bs.expressions, keys, strict=True):
        stat = stored[name] if expr is None and name in stored else cache[key]
        means.append(float(stat["mean"]))
        std = float(stat["std"])
        stds.append(std if std > 0 else 1.0)
    return means, stds


def _read_cache(ds: DatasetFolder) -> BandStats:
    """The cached derived statistics of ``ds`` ({} when absent, unreadable or stale)."""
    path = ds.path / DERIVED_STATS
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if loaded.get("fingerprint") == ds.fingerprint:
            return dict(loaded.get("stats", {}))
    except (OSError, json.JSONDecodeError, AttributeError):
        pass
    return {}


def _compute_missing(ds: DatasetFolder, missing: Sequence[tuple[str, str | None, str]]
                     ) -> BandStats:
    """Statistics of the (name, expression, cache key) bands, keyed by cache key."""
    required: list[str] = []
    for name, expr, _ in missing:
        reads = parse_expression(expr)[1] if expr is not None else (name,)
        required.extend(r for r in reads if r not in required)
    sub = BandSet(spec="stats", names=tuple(k for _, _, k in missing),
                  expressions=tuple(e for _, e, _ in missing), required=tuple(required))
    computed = compute_stats(ds.images, ds.labels, ds.split_indices("train"), ds.band_names,
                             ds.nodata, band_set=sub)
    return {key: stat for (_, _, key), stat in zip(missing, computed.values(), strict=True)}
