"""GDAL configuration in one place: the block cache size and other options per job.

GDAL's ``GDAL_CACHEMAX`` is read as megabytes when below 100 000 and as bytes above, which is
easy to get wrong; :func:`gdal_env` takes megabytes only and passes them as bytes.
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
