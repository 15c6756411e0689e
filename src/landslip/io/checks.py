"""Checks every verb runs before it starts work: writable outputs, declared nodata, NaN counts.

* :func:`check_writable`: the output location can be written (a folder that exists or can be
  created, write permission, a writable file system with some free space), tested by creating
  and removing a probe file in the nearest existing folder, so that a read-only folder, a
  missing permission or a full disk is one :class:`~landslip.errors.OutputError` *before* any
  work, not a traceback after it.
* :func:`declare_nodata`: the ``--nodata`` option: the value that marks nodata in an input that
  lacks the tag (or overrides it, with a warning), checked against the raster's data type.
* :func:`count_nonfinite` / :func:`warn_nonfinite`: NaN and infinite values of a float raster
  are nodata everywhere in landslip; the verbs count them once and say so in one warning.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from landslip.errors import InputError, OutputError
from landslip.grid import iter_clipped_tiles
from landslip.io.raster import RasterInfo, open_raster

__all__ = [
    "MIN_FREE_BYTES",
    "check_writable",
    "count_nonfinite",
    "declare_nodata",
    "parse_nodata",
    "warn_nonfinite",
]

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 1 << 20
"""An output folder on a file system with less free space than this is refused up front."""

SCAN_TILE = 1024
"""Pixels per side of the blocks :func:`count_nonfinite` reads."""


def _reason(exc: OSError) -> str:
    return exc.strerror or " ".join(str(exc).split()) or type(exc).__name__


def _unwritable(path: Path, reason: str) -> OutputError:
    return OutputError(f"cannot write {path}: {reason}; choose a writable folder")


def check_writable(path: str | Path, *, folder: bool = False) -> Path:
    """Check that an output file or folder can be written, before any work starts.

    Nothing is created: the probe file goes into the nearest folder that already exists and is
    removed at once.

    Args:
        path: The output file (``folder=False``) or output folder (``folder=True``); it and its
            parents need not exist yet.
        folder: True when ``path`` is a folder that the verb fills (or creates).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: ``path`` is a folder where a file is expected (or the reverse), a parent
            is a file, the nearest existing folder is not writable, or its file system has less
            than :data:`MIN_FREE_BYTES` free.
    """
    target = Path(path).expanduser()
    if target.exists():
        if folder and not target.is_dir():
            raise _unwritable(target, "it is a file, not a folder")
        if not folder and target.is_dir():
            raise _unwritable(target, "it is a folder; give a file name")
    base = target if folder else target.parent
    probe_dir = base
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise _unwritable(target, f"{probe_dir} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".landslip-write-test-", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _unwritable(target, _reason(exc)) from exc
    try:
        free = shutil.disk_usage(probe_dir).free
    except OSError:  # some file systems do not report usage: nothing to check
        return target
    if free < MIN_FREE_BYTES:
        raise _unwritable(target, f"the disk holding {probe_dir} is full ({free} bytes free)")
    return target


def parse_nodata(text: str | None, option: str = "--nodata") -> float | None:
    """Parse a ``--nodata`` value: a number, ``nan``, or None when not given.

    Raises:
        InputError: For anything that is not a number.
    """
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{option} must be a number (such as 0 or -9999) or nan, got "
                         f"{text!r}") from None


def declare_nodata(info: RasterInfo, nodata: float | None, option: str = "--nodata"
                   ) -> RasterInfo:
    """The raster's description with ``nodata`` as its nodata value (``--nodata``).

    Args:
        info: The raster as read from the file.
        nodata: The declared value, or None to keep the file's tag.
        option: The option's name, for messages.

    Returns:
        ``info`` with ``nodata`` set (a warning when it replaces a different tag), or ``info``.

    Raises:
        InputError: When the value cannot occur in the raster's data type (NaN or a fraction
            for integers, a value out of range).
    """
    if nodata is None:
        return info
    dt = np.dtype(info.dtype)
    if dt.kind in "iub":
        lim = np.iinfo(dt) if dt.kind != "b" else np.iinfo(np.uint8)
        if math.isnan(nodata) or nodata != int(nodata) or not lim.min <= nodata <= lim.max:
            raise InputError(f"{option} {nodata:g} cannot occur in {info.path}, whose pixels "
                             f"are {info.dtype} ({lim.min} to {lim.max}); give a whole number "
                             "in that range")
    if info.nodata is not None and not _same(info.nodata, nodata):
        log.warning("%s: using %s %g instead of the file's nodata value %g", info.path, option,
                    nodata, info.nodata)
    return replace(info, nodata=float(nodata), masked=False)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def count_nonfinite(path: str | Path, bands: Sequence[int] | None = None) -> int:
    """Pixels where any of ``bands`` is NaN or infinite (0 for an integer raster, unread).

    Args:
        path: The raster.
        bands: 1-based band indexes to look at (all when None).

    Returns:
        The number of such pixels.

    Raises:
        RasterIOError: When the raster cannot be read.
    """
    with open_raster(path) as ds:
        if np.dtype(ds.dtypes[0]).kind != "f":
            return 0
        idx = list(bands) if bands is not None else list(range(1, ds.count + 1))
        n = 0
        for tile in iter_clipped_tiles(ds.height, ds.width, SCAN_TILE):
            data = ds.read(idx, window=tile.to_rasterio())
            n += int(np.count_nonzero(~np.isfinite(data).all(axis=0)))
        return n


def warn_nonfinite(path: str | Path, bands: Sequence[int] | None = None) -> int:
    """Count the NaN/infinite pixels of a float raster and warn once when there are any.

    Returns:
        The count (see :func:`count_nonfinite`).
    """
    n = count_nonfinite(path, bands)
    if n:
        log.warning("%s: %d pixel(s) hold NaN or infinite values; they are treated as nodata",
                    path, n)
    return n
