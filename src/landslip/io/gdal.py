"""GDAL configuration in one place: the block cache size and other options per job.

rasterio hands ``GDAL_CACHEMAX`` to ``GDALSetCacheMax64`` as a number of bytes, so
``rasterio.Env(GDAL_CACHEMAX=128)`` sets a 128-byte cache, not 128 MB (the round-1 code did
that at four call sites). :func:`gdal_env` takes MiB only and passes bytes.
"""

from __future__ import annotations

from typing import Any

import rasterio

__all__ = ["gdal_env"]


def gdal_env(cache_mb: int, **options: Any) -> rasterio.Env:
    """A ``rasterio.Env`` with the GDAL block cache capped at ``cache_mb`` megabytes.

    Args:
        cache_mb: Block cache size in MiB (at least 1).
        **options: Other GDAL configuration options, e.g. ``GDAL_NUM_THREADS="ALL_CPUS"``.

    Returns:
        The environment, to be used as a context manager.
    """
    if cache_mb < 1:
        raise ValueError(f"cache_mb must be at least 1, got {cache_mb}")
    return rasterio.Env(GDAL_CACHEMAX=int(cache_mb) * 1024 * 1024, **options)
