"""The dataset folder: patches of raw bands, label patches, an index and statistics.

A dataset folder is what ``landslip prepare`` and ``landslip import-patches`` write and what
training, evaluation and the band-set study read. Its layout (documented in DESIGN.md)::

    DATASET/
      dataset.json   metadata: format, version, band names, dtype, nodata, patch size, stride,
                     split method, counts per split, CRS (WKT), resolution, source files with
                     sha256, leakage audit, per-band statistics on valid training pixels,
                     checksums of the other files and the dataset fingerprint
      index.csv      one row per patch (row i <-> array index i): id, split, row_off, col_off,
                     height, width, left, bottom, right, top, landslide_fraction,
                     valid_fraction, source
      images.npy     (N, C, P, P) raw bands in the source dtype (opened memory-mapped)
      labels.npy     (N, P, P) uint8: 0 background, 1 landslide, 255 ignore
      derived_stats.json  (optional) cache of statistics of derived bands such as NDVI

A folder is written into a hidden temporary folder beside its target and renamed when
complete (:class:`DatasetWriter`), so an interrupted run never leaves a folder that looks
finished.

A pixel is *valid* when its label is not 255 and none of the raw bands equals the nodata value;
statistics are computed on valid pixels of training patches only.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.errors import DatasetError
from landslip.io.atomic import write_json_atomic, write_text_atomic
from landslip.spectral.bands import BandSet, parse_expression, resolve_band_set

__all__ = [
    "FORMAT",
    "IGNORE",
    "INDEX_COLUMNS",
    "SPLITS",
    "VERSION",
    "DatasetFolder",
    "DatasetWriter",
    "IndexRow",
    "compute_stats",
    "open_dataset",
    "valid_mask",
    "write_dataset",
    "write_synthetic_dataset",
]

log = logging.getLogger(__name__)

FORMAT = "landslip-dataset"
"""Value of ``format`` in dataset.json."""

VERSION = 1
"""Version of the dataset folder format written by this module."""

SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Split names, in this order everywhere."""

IGNORE = 255
"""Label value of pixels that loss, metrics and statistics skip."""

INDEX_COLUMNS: tuple[str, ...] = (
    "id", "split", "row_off", "col_off", "height", "width", "left", "bottom", "right", "top",
    "landslide_fraction", "valid_fraction", "source",
)
"""Columns of index.csv, in order."""

_STATS_CHUNK = 64
"""Patches read at a time when computing statistics."""

_REMAP_BYTES = 64 * 2**20
"""Memory maps are dropped and reopened after this many bytes went through them, so that the
pages of a large dataset do not pile up in the resident memory of the process."""


def _remapped(arr: npt.NDArray[Any], mode: str = "r") -> npt.NDArray[Any]:
    """A fresh memory map of the same whole ``.npy`` file as ``arr``, else ``arr`` itself."""
    fname = getattr(arr, "filename", None)
    if not isinstance(arr, np.memmap) or not fname:
        return arr
    fresh: npt.NDArray[Any] = np.load(fname, mmap_mode=mode)  # type: ignore[arg-type]
    return fresh if fresh.shape == arr.shape else arr


@dataclass(frozen=True)
class IndexRow:
    """One patch of a dataset (one row of index.csv).

    Attributes:
        id: Patch id, equal to its index in images.npy / labels.npy.
        split: ``train``, ``val`` or ``test``.
        row_off: First row of the patch window on the source scene grid (0 for imports).
        col_off: First column of the window (0 for imports).
        height: Window height in pixels (the patch size; a window may overhang the scene).
        width: Window width in pixels.
        left: West bound of the window in scene CRS units (None without georeferencing).
        bottom: South bound (None without georeferencing).
        right: East bound (None without georeferencing).
        top: North bound (None without georeferencing).
        landslide_fraction: Share of valid pixels labelled landslide (0..1).
        valid_fraction: Share of the patch's pixels that are valid (0..1).
        source: Source file of an imported patch (empty for patches cut from a scene).
    """

    id: int
    split: str
    row_off: int
    col_off: int
    height: int
    width: int
    left: float | None
    bottom: float | None
    right: float | None
    top: float | None
    landslide_fraction: float
    valid_fraction: float
    source: str = ""

    def to_csv(self) -> dict[str, str]:
        """The row as index.csv strings (None as an empty cell)."""
        out: dict[str, str] = {}
        for k, v in asdict(self).items():
            if v is None:
                out[k] = ""
            elif isinstance(v, float):
                out[k] = repr(v)
            else:
                out[k] = str(v)
        return out

    @classmethod
    def from_csv(cls, rec: dict[str, str]) -> IndexRow:
        """Parse one index.csv record."""

        def opt(key: str) -> float | None:
            text = rec.get(key, "")
            return None if text in ("", None) else float(text)

        return cls(
            id=int(rec["id"]), split=rec["split"], row_off=int(rec["row_off"]),
            col_off=int(rec["col_off"]), height=int(rec["height"]), width=int(rec["width"]),
            left=opt("left"), bottom=opt("bottom"), right=opt("right"), top=opt("top"),
            landslide_fraction=float(rec["landslide_fraction"]),
            valid_fraction=float(rec["valid_fraction"]), source=rec.get("source", "") or "",
        )


def valid_mask(
    images: npt.NDArray[Any], labels: npt.NDArray[np.uint8], nodata: float | None
) -> npt.NDArray[np.bool_]:
    """Valid pixels of patches: label not 255 and no raw band equal to nodata.

    Args:
        images: (N, C, P, P) or (C, P, P) raw bands.
        labels: (N, P, P) or (P, P) uint8 labels.
        nodata: Nodata value of the raw bands, or None.

    Returns:
        Bool array shaped like ``labels``.
    """
    valid: npt.NDArray[np.bool_] = labels != IGNORE
    if nodata is not None:
        axis = images.ndim - 3
        if isinstance(nodata, float) and math.isnan(nodata):
            valid &= ~np.isnan(images).any(axis=axis)
        else:
            valid &= ~(images == images.dtype.type(nodata)).any(axis=axis)
    return valid


class _Moments:
    """Running count, shifted sums, min and max per band (float64, numerically stable).

    Sums are of ``x - shift`` with ``shift`` the mean of the first values seen, so that the
    variance ``E[(x-k)^2] - E[x-k]^2`` does not lose precision for large offsets.
    """

    def __init__(self, n: int) -> None:
        self.count = 0
        self.shift = np.zeros(n)
        self.sum = np.zeros(n)
        self.sumsq = np.zeros(n)
        self.min = np.full(n, np.inf)
        self.max = np.full(n, -np.inf)

    def add(self, bands: npt.NDArray[Any], valid: npt.NDArray[np.bool_]) -> None:
        """Add (N, C, H, W) bands at the (N, H, W) valid pixels."""
        k = int(valid.sum())
        if k == 0:
            return
        every = k == valid.size
        for c in range(bands.shape[1]):
            band = bands[:, c]
            v = band.reshape(-1) if every else band[valid]
            vf = v.astype(np.float64)
            if self.count == 0:
                self.shift[c] = float(vf.mean())
            vf -= self.shift[c]
            self.sum[c] += float(vf.sum())
            self.sumsq[c] += float(np.dot(vf, vf))
            self.min[c] = min(self.min[c], float(v.min()))
            self.max[c] = max(self.max[c], float(v.max()))
        self.count += k

    def result(self, names: Sequence[str]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for i, name in enumerate(names):
            if self.count == 0:
                out[name] = {"mean": 0.0, "std": 1.0, "min": 0.0, "max": 0.0, "count": 0}
                continue
            m = self.sum[i] / self.count
            var = max(self.sumsq[i] / self.count - m * m, 0.0)
            out[name] = {"mean": float(m + self.shift[i]), "std": float(math.sqrt(var)),
                         "min": float(self.min[i]), "max": float(self.max[i]),
                         "count": int(self.count)}
        return out


def compute_stats(
    images: npt.NDArray[Any],
    labels: npt.NDArray[np.uint8],
    indices: npt.NDArray[np.int64] | Sequence[int],
    band_names: Sequence[str],
    nodata: float | None,
    band_set: BandSet | None = None,
) -> dict[str, dict[str, float]]:
    """Per-band mean, std, min, max and count over the valid pixels of some patches.

    Reads ``_STATS_CHUNK`` patches at a time, so memory-mapped arrays of any size work.

    Args:
        images: (N, C, P, P) raw bands (memmap or array).
        labels: (N, P, P) uint8 labels.
        indices: Patches to use (for example the training patches).
        band_names: Names of the C raw bands.
        nodata: Nodata value of the raw bands, or None.
        band_set: When given, statistics of these (possibly derived) bands instead of the raw
            bands, computed with :meth:`BandSet.compute`.

    Returns:
        {band name: {"mean", "std", "min", "max", "count"}} in the bands' units; a band with no
        valid pixel gets mean 0 and std 1.
    """
    idx = np.sort(np.asarray(indices, dtype=np.int64))
    names = list(band_set.names) if band_set is not None else list(band_names)
    moments = _Moments(len(names))
    images, labels = _remapped(images), _remapped(labels)
    passed = 0
    for start in range(0, idx.size, _STATS_CHUNK):
        chunk = idx[start:start + _STATS_CHUNK]
        img = np.asarray(images[chunk])
        lab = np.asarray(labels[chunk])
        passed += img.nbytes
        if passed > _REMAP_BYTES:
            images, labels, passed = _remapped(images), _remapped(labels), 0
        valid = valid_mask(img, lab, nodata)
        if band_set is None:
            moments.add(img, valid)
        else:
            bands, band_valid = band_set.compute(img, band_names, nodata)
            moments.add(bands, valid & band_valid)
    return moments.result(names)


def sha256_file(path: str | Path, block: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in blocks of ``block`` bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def _fingerprint(checksums: dict[str, str], meta: dict[str, Any]) -> str:
    core = {k: meta.get(k) for k in ("format", "version", "bands", "dtype", "nodata",
                                     "patch_size")}
    core["split"] = meta.get("split", {}).get("method")
    text = json.dumps({"checksums": checksums, "meta": core}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class DatasetFolder:
    """An opened dataset folder (use :func:`open_dataset`).

    The arrays are opened memory-mapped on first access and dropped when the object is
    pickled (for example into DataLoader worker processes), which reopen them themselves.

    Attributes:
        path: The folder.
        meta: The parsed dataset.json.
        band_names: Names of the stored raw bands, in array order.
        nodata: Nodata value of the raw bands, or None.
        patch_size: Patch size P in pixels.
        index: One :class:`IndexRow` per patch; ``index[i]`` describes ``images[i]``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_path = self.path / "dataset.json"
        if not self.path.is_dir():
            raise DatasetError(f"dataset folder not found: {self.path}; create one with "
                               "`landslip prepare` or `landslip import-patches`")
        if not meta_path.is_file():
            raise DatasetError(f"{self.path} is not a landslip dataset (no dataset.json); "
                               "create one with `landslip prepare` or `landslip import-patches`")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"cannot read {meta_path}: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise DatasetError(f"{meta_path} is not a landslip dataset description "
                               f"(format is {found!r}, expected {FORMAT!r})")
        if int(meta.get("version", 0)) > VERSION:
            raise DatasetError(f"{self.path} has dataset format version {meta.get('version')}, "
                               f"newer than this landslip reads ({VERSION}); upgrade landslip")
        for name in ("index.csv", "images.npy", "labels.npy"):
            if not (self.path / name).is_file():
                raise DatasetError(f"dataset {self.path} is incomplete: {name} is missing; "
                                   "prepare or import it again")
        self.meta: dict[str, Any] = meta
        self.band_names: tuple[str, ...] = tuple(str(b).lower() for b in meta["bands"])
        nd = meta.get("nodata")
        self.nodata: float | None = None if nd is None else float(nd)
        self.patch_size: int = int(meta["patch_size"])
        with open(self.path / "index.csv", newline="", encoding="utf-8") as f:
            self.index: list[IndexRow] = [IndexRow.from_csv(r) for r in csv.DictReader(f)]
        self._splits = np.array([r.split for r in self.index], dtype=object)
        self._images: np.memmap[Any, Any] | None = None
        self._labels: np.memmap[Any, Any] | None = None
        n = len(self.index)
        if self.images.shape[0] != n or self.labels.shape[0] != n:
            raise DatasetError(
                f"dataset {self.path} is inconsistent: index.csv has {n} rows but images.npy "
                f"has {self.images.shape[0]} and labels.npy {self.labels.shape[0]} patches"
            )
        if self.images.shape[1] != len(self.band_names):
            raise DatasetError(f"dataset {self.path}: images.npy has {self.images.shape[1]} bands "
                               f"but dataset.json names {len(self.band_names)}")

    # -- arrays ---------------------------------------------------------------------------------
    @property
    def images(self) -> np.memmap[Any, Any]:
        """(N, C, P, P) raw bands, memory-mapped read-only, in the stored dtype."""
        if self._images is None:
            self._images = np.load(self.path / "images.npy", mmap_mode="r")
        return self._images

    @property
    def labels(self) -> np.memmap[Any, Any]:
        """(N, P, P) uint8 labels (0, 1, 255), memory-mapped read-only."""
        if self._labels is None:
            self._labels = np.load(self.path / "labels.npy", mmap_mode="r")
        return self._labels

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_images"] = None
        state["_labels"] = None
        return state

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}={n}" for s, n in self.counts.items())
        return (f"DatasetFolder({str(self.path)!r}, bands={list(self.band_names)}, "
                f"patch_size={self.patch_size}, {counts})")

    # -- metadata -------------------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        """Numpy dtype name of the stored raw bands."""
        return str(self.meta.get("dtype", self.images.dtype.name))

    @property
    def crs(self) -> str | None:
        """CRS of the source scene as WKT, or None (imports without georeferencing)."""
        crs = self.meta.get("crs")
        return None if crs is None else str(crs)

    @property
    def res(self) -> tuple[float, float] | None:
        """(x, y) pixel size in CRS units, or None."""
        res = self.meta.get("res")
        return None if res is None else (float(res[0]), float(res[1]))

    @property
    def counts(self) -> dict[str, int]:
        """Number of patches per split."""
        return {s: int((self._splits == s).sum()) for s in SPLITS}

    @property
    def stats(self) -> dict[str, dict[str, float]]:
        """Stored statistics of the raw bands on valid training pixels."""
        return dict(self.meta.get("stats", {}))

    @property
    def fingerprint(self) -> str:
        """sha256 identifying the dataset content (arrays, index, bands, split method)."""
        fp = self.meta.get("fingerprint")
        if fp:
            return str(fp)
        checksums = {n: sha256_file(self.path / n)
                     for n in ("index.csv", "images.npy", "labels.npy")}
        return _fingerprint(checksums, self.meta)

    def split_indices(self, split: str) -> npt.NDArray[np.int64]:
        """Array indices of the patches of one split (``train``, ``val`` or ``test``)."""
        name = {"validation": "val", "valid": "val"}.get(split, split)
        if name not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        return np.flatnonzero(self._splits == name).astype(np.int64)

    def verify(self) -> None:
        """Recompute the checksums of index.csv and the arrays; raise DatasetError on mismatch."""
        stored = self.meta.get("checksums", {})
        for name, digest in stored.items():
            actual = sha256_file(self.path / name)
            if actual != digest:
                raise DatasetError(f"dataset {self.path}: {name} has changed since it was "
                                   f"written (sha256 {actual[:12]}..., expected {digest[:12]}...)")

    # -- statistics -----------------------------------------------------------------------------
    def band_stats(self, band_set: BandSet | str) -> tuple[list[float], list[float]]:
        """Means and standard deviations of a band set on valid training pixels.

        Raw bands use the statistics stored in dataset.json. Derived bands (NDVI, inline
        expressions) and raw bands without stored statistics are computed from the stored raw
        bands of the valid training pixels and cached in ``derived_stats.json`` in the folder
        (when the folder is writable).

        Args:
            band_set: A :class:`BandSet` or a band set spec such as ``"bg-ndvi"``.

        Returns:
            (means, stds), one value per band of the set, in the set's units.

        Raises:
            BandError: If the set needs a raw band the dataset does not have.
        """
        bs = resolve_band_set(band_set) if isinstance(band_set, str) else band_set
        bs.check_available(self.band_names)
        stored = self.stats
        cache_path = self.path / "derived_stats.json"
        cache: dict[str, dict[str, float]] = {}
        if cache_path.is_file():
            try:
                loaded = json.loads(cache_path.read_text(encoding="utf-8"))
                if loaded.get("fingerprint") == self.fingerprint:
                    cache = dict(loaded.get("stats", {}))
            except (OSError, json.JSONDecodeError, AttributeError):
                cache = {}
        keys = [expr if expr is not None else name
                for name, expr in zip(bs.names, bs.expressions, strict=True)]
        missing = [(name, expr, key)
                   for name, expr, key in zip(bs.names, bs.expressions, keys, strict=True)
                   if not (expr is None and name in stored) and key not in cache]
        if missing:
            required: list[str] = []
            for name, expr, _ in missing:
                reads = parse_expression(expr)[1] if expr is not None else (name,)
                required.extend(r for r in reads if r not in required)
            sub = BandSet(spec="stats", names=tuple(k for _, _, k in missing),
                          expressions=tuple(e for _, e, _ in missing),
                          required=tuple(required))
            computed = compute_stats(self.images, self.labels, self.split_indices("train"),
                                     self.band_names, self.nodata, band_set=sub)
            for (_, _, key), stat in zip(missing, computed.values(), strict=True):
                cache[key] = stat
            try:
                write_json_atomic(cache_path, {"fingerprint": self.fingerprint, "stats": cache})
            except OSError as exc:  # read-only dataset: fine, just not cached
                log.debug("cannot cache derived statistics in %s: %s", cache_path, exc)
        means: list[float] = []
        stds: list[float] = []
        for name, expr, key in zip(bs.names, bs.expressions, keys, strict=True):
            stat = stored[name] if expr is None and name in stored else cache[key]
            means.append(float(stat["mean"]))
            std = float(stat["std"])
            stds.append(std if std > 0 else 1.0)
        return means, stds


def open_dataset(path: str | Path) -> DatasetFolder:
    """Open a dataset folder written by ``landslip prepare`` or ``landslip import-patches``.

    Raises:
        DatasetError: If the folder is missing, incomplete or of an unknown format.
    """
    return DatasetFolder(path)


class DatasetWriter:
    """Write a dataset folder patch by patch, atomically.

    Patches go into memory-mapped ``.npy`` files in a hidden temporary folder beside ``out``;
    :meth:`finish` assigns splits, computes statistics on valid training pixels, writes the
    index and dataset.json with checksums, and renames the folder into place. Leaving the
    ``with`` block without :meth:`finish` (or with an exception) deletes the temporary folder.

    Example:
        >>> with DatasetWriter(out, capacity=n, band_names=["blue", "green", "red", "nir"],
        ...                    dtype="uint16", patch_size=256) as w:  # doctest: +SKIP
        ...     for img, lab, info in patches:
        ...         w.add(img, lab, **info)
        ...     w.finish(splits, meta={"split": {"method": "random"}})
    """

    def __init__(
        self,
        out: str | Path,
        capacity: int,
        band_names: Sequence[str],
        dtype: str | np.dtype[Any],
        patch_size: int,
        nodata: float | None = None,
        overwrite: bool = False,
    ) -> None:
        self.out = Path(out)
        if capacity < 0:
            raise DatasetError(f"capacity must be >= 0, got {capacity}")
        if self.out.exists() and not overwrite and (
            not self.out.is_dir() or any(self.out.iterdir())
        ):
            raise DatasetError(f"output {self.out} already exists; choose a new folder or "
                               "pass --overwrite")
        names = [str(b).strip().lower() for b in band_names]
        if not names or any(not n for n in names) or len(set(names)) != len(names):
            raise DatasetError(f"band names must be non-empty and unique, got {list(band_names)}")
        self.capacity = capacity
        self.band_names = names
        self.dtype = np.dtype(dtype)
        self.patch_size = int(patch_size)
        self.nodata = nodata
        self.overwrite = overwrite
        self.tmp = self.out.with_name(f".{self.out.name}.partial-{os.getpid()}")
        self.rows: list[dict[str, Any]] = []
        self._images: np.memmap[Any, Any] | None = None
        self._labels: np.memmap[Any, Any] | None = None
        self._done = False
        self._written = 0

    def __enter__(self) -> DatasetWriter:
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        p = self.patch_size
        cap = max(self.capacity, 1)
        self._images = np.lib.format.open_memmap(
            self.tmp / "images.npy", mode="w+", dtype=self.dtype,
            shape=(cap, len(self.band_names), p, p))
        self._labels = np.lib.format.open_memmap(
            self.tmp / "labels.npy", mode="w+", dtype=np.uint8, shape=(cap, p, p))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._images = None
        self._labels = None
        if not self._done and self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __len__(self) -> int:
        return len(self.rows)

    def add(
        self,
        image: npt.NDArray[Any],
        label: npt.NDArray[Any],
        row_off: int = 0,
        col_off: int = 0,
        bounds: tuple[float, float, float, float] | None = None,
        source: str = "",
    ) -> int:
        """Store one patch and return its id.

        Args:
            image: (C, P, P) raw bands (cast to the dataset dtype).
            label: (P, P) labels 0/1/255 (cast to uint8).
            row_off: Window row on the source scene.
            col_off: Window column on the source scene.
            bounds: (left, bottom, right, top) of the window in the scene CRS, or None.
            source: Source file of an imported patch.
        """
        assert self._images is not None and self._labels is not None, "use inside `with`"
        p, c = self.patch_size, len(self.band_names)
        if image.shape != (c, p, p) or label.shape != (p, p):
            raise DatasetError(f"patch {len(self.rows)} has image shape {image.shape} and label "
                               f"shape {label.shape}; expected ({c}, {p}, {p}) and ({p}, {p})")
        i = len(self.rows)
        if i >= self.capacity:
            raise DatasetError(f"more patches than the announced capacity {self.capacity}")
        lab = label.astype(np.uint8, copy=False)
        self._images[i] = image
        self._labels[i] = lab
        self._written += image.nbytes
        if self._written > _REMAP_BYTES:  # keep the resident memory bounded
            self._images.flush()
            self._labels.flush()
            self._images = np.load(self.tmp / "images.npy", mmap_mode="r+")
            self._labels = np.load(self.tmp / "labels.npy", mmap_mode="r+")
            self._written = 0
        valid = valid_mask(image, lab, self.nodata)
        nvalid = int(valid.sum())
        slides = int(((lab == 1) & valid).sum())
        left, bottom, right, top = bounds if bounds is not None else (None, None, None, None)
        self.rows.append({
            "id": i, "row_off": int(row_off), "col_off": int(col_off), "height": p, "width": p,
            "left": left, "bottom": bottom, "right": right, "top": top,
            "landslide_fraction": slides / nvalid if nvalid else 0.0,
            "valid_fraction": nvalid / float(p * p), "source": source,
        })
        return i

    def _compact(self, keep: Sequence[int]) -> None:
        """Keep only the patches ``keep`` (in order), copying in chunks into new files."""
        assert self._images is not None and self._labels is not None
        if list(keep) == list(range(self.capacity)):
            return
        idx = np.asarray(keep, dtype=np.int64)
        n = idx.size
        for name, mapped in (("images.npy", self._images), ("labels.npy", self._labels)):
            old: npt.NDArray[Any] = mapped
            target = self.tmp / f"new-{name}"
            new = np.lib.format.open_memmap(target, mode="w+", dtype=old.dtype,
                                            shape=(n, *old.shape[1:]))
            passed = 0
            for s in range(0, n, _STATS_CHUNK):
                e = min(s + _STATS_CHUNK, n)
                new[s:e] = old[idx[s:e]]
                passed += new[s:e].nbytes
                if passed > _REMAP_BYTES:  # keep the resident memory bounded
                    new.flush()
                    new = np.load(target, mmap_mode="r+")
                    old = _remapped(old)
                    passed = 0
            new.flush()
            del new, old, mapped
            os.replace(self.tmp / f"new-{name}", self.tmp / name)
        self._images = np.load(self.tmp / "images.npy", mmap_mode="r+")
        self._labels = np.load(self.tmp / "labels.npy", mmap_mode="r+")

    def finish(
        self,
        splits: Sequence[str | None],
        meta: dict[str, Any] | None = None,
        report: dict[str, Any] | None = None,
    ) -> DatasetFolder:
        """Assign splits, compute statistics, write index and metadata, rename into place.

        Args:
            splits: One split name (``train``, ``val``, ``test``) per added patch, or None to
                drop the patch (ids are renumbered).
            meta: Further dataset.json entries: ``stride``, ``split`` (dict with at least
                ``method``), ``crs`` (WKT), ``res``, ``sources``, ``leakage``, ...
            report: When given, written as ``report.json`` in the folder, with the final
                ``counts`` and ``landslide_fraction`` per split filled in.

        Returns:
            The opened dataset.
        """
        assert self._images is not None and self._labels is not None, "use inside `with`"
        if len(splits) != len(self.rows):
            raise DatasetError(f"{len(splits)} split labels for {len(self.rows)} patches")
        bad = sorted({s for s in splits if s is not None and s not in SPLITS})
        if bad:
            raise DatasetError(f"unknown split name(s) {bad}; use {', '.join(SPLITS)}")
        keep = [i for i, s in enumerate(splits) if s is not None]
        if not keep:
            raise DatasetError("no patch to write: every patch was dropped (mostly nodata?); "
                               "check the image nodata value or raise --max-nodata")
        self._images.flush()
        self._labels.flush()
        self._compact(keep)
        assert self._images is not None and self._labels is not None
        self.rows = [self.rows[i] for i in keep]
        kept_splits: list[str] = [s for s in splits if s is not None]
        for new_id, (row, split) in enumerate(zip(self.rows, kept_splits, strict=True)):
            row["id"] = new_id
            row["split"] = split
        splits = kept_splits
        index = [IndexRow(**{f.name: row[f.name] for f in fields(IndexRow)}) for row in self.rows]
        lines = [",".join(INDEX_COLUMNS)]
        for r in index:
            rec = r.to_csv()
            lines.append(",".join(_csv_cell(rec[c]) for c in INDEX_COLUMNS))
        write_text_atomic(self.tmp / "index.csv", "\n".join(lines) + "\n")
        train = [i for i, s in enumerate(splits) if s == "train"]
        stats = compute_stats(self._images, self._labels, train, self.band_names, self.nodata)
        counts = {s: sum(1 for x in splits if x == s) for s in SPLITS}
        landslide = {}
        for s in SPLITS:
            rows = [r for r in index if r.split == s]
            valid = sum(r.valid_fraction for r in rows)
            slide = sum(r.landslide_fraction * r.valid_fraction for r in rows)
            landslide[s] = slide / valid if valid else 0.0
        extra = dict(meta or {})
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "bands": self.band_names,
            "dtype": self.dtype.name,
            "nodata": self.nodata,
            "patch_size": self.patch_size,
            "stride": extra.pop("stride", self.patch_size),
            "split": extra.pop("split", {"method": "unknown"}),
            "counts": counts,
            "landslide_fraction": landslide,
            "crs": extra.pop("crs", None),
            "res": extra.pop("res", None),
            "sources": extra.pop("sources", []),
            "leakage": extra.pop("leakage", None),
            "stats": stats,
        }
        doc.update(extra)
        self._images = None
        self._labels = None
        checksums = {n: sha256_file(self.tmp / n)
                     for n in ("index.csv", "images.npy", "labels.npy")}
        doc["checksums"] = checksums
        doc["fingerprint"] = _fingerprint(checksums, doc)
        if report is not None:
            report = {**report, "counts": counts, "landslide_fraction": landslide,
                      "fingerprint": doc["fingerprint"]}
            write_json_atomic(self.tmp / "report.json", _jsonable(report))
        write_json_atomic(self.tmp / "dataset.json", _jsonable(doc))
        self._rename_into_place()
        self._done = True
        return open_dataset(self.out)

    def _rename_into_place(self) -> None:
        old: Path | None = None
        if self.out.exists():
            if self.out.is_dir() and not any(self.out.iterdir()):
                self.out.rmdir()
            elif self.overwrite:
                old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
                os.replace(self.out, old)
            else:
                raise DatasetError(f"output {self.out} appeared while writing; not replacing it")
        os.replace(self.tmp, self.out)
        if old is not None:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)


def _csv_cell(text: str) -> str:
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else str(obj)
    return obj


def write_dataset(
    out: str | Path,
    images: npt.NDArray[Any],
    labels: npt.NDArray[Any],
    band_names: Sequence[str],
    splits: Sequence[str],
    nodata: float | None = None,
    windows: Sequence[tuple[int, int]] | None = None,
    bounds: Sequence[tuple[float, float, float, float] | None] | None = None,
    sources: Sequence[str] | None = None,
    meta: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> DatasetFolder:
    """Write in-memory patches as a dataset folder (small datasets, tests, imports).

    Args:
        out: Target folder (must not exist or be empty unless ``overwrite``).
        images: (N, C, P, P) raw bands, any numeric dtype (kept).
        labels: (N, P, P) labels 0/1/255.
        band_names: C raw band names (``blue``, ``green``, ``red``, ``nir``, ...).
        splits: N split names.
        nodata: Nodata value of the raw bands, or None.
        windows: N (row_off, col_off) window offsets on a source scene (zeros when None).
        bounds: N (left, bottom, right, top) map bounds, or None.
        sources: N source file names (for imports).
        meta: Further dataset.json entries (see :meth:`DatasetWriter.finish`).
        overwrite: Replace an existing folder.

    Returns:
        The opened dataset.
    """
    if images.ndim != 4 or labels.ndim != 3 or images.shape[0] != labels.shape[0]:
        raise DatasetError(f"expected images (N, C, P, P) and labels (N, P, P), got "
                           f"{images.shape} and {labels.shape}")
    n, _, p, _ = images.shape
    with DatasetWriter(out, n, band_names, images.dtype, p, nodata, overwrite) as w:
        for i in range(n):
            r, c = windows[i] if windows is not None else (0, 0)
            w.add(images[i], labels[i], r, c, bounds[i] if bounds is not None else None,
                  sources[i] if sources is not None else "")
        return w.finish(splits, meta)


def write_synthetic_dataset(
    out: str | Path,
    n: int = 24,
    patch_size: int = 32,
    band_names: Sequence[str] = ("blue", "green", "red", "nir"),
    fractions: tuple[float, float, float] = (0.5, 0.25, 0.25),
    nodata: float | None = 0,
    seed: int = 0,
    overwrite: bool = False,
) -> DatasetFolder:
    """Write a small, learnable synthetic dataset folder (for tests of downstream stages).

    Each patch is a uint16 vegetated background (high NIR, low red) with one or two bright
    bare-soil discs (red up, NIR down) labelled 1; one patch in four has a nodata margin on the
    right (raw value 0 when ``nodata`` is 0, label 255). Patches are laid out on a grid of a
    fictitious UTM scene (EPSG:32654, 3 m pixels) so that bounds and windows are meaningful.

    Args:
        out: Target folder.
        n: Number of patches (>= 3).
        patch_size: Patch size P.
        band_names: Raw band names; ``red`` and ``nir`` get the landslide signal when present.
        fractions: Shares of train, val and test (assigned in order, not shuffled).
        nodata: Nodata value written in the margins (None: no margins).
        seed: Random seed.
        overwrite: Replace an existing folder.

    Returns:
        The opened dataset.
    """
    if n < 3:
        raise DatasetError(f"a synthetic dataset needs at least 3 patches, got {n}")
    rng = np.random.default_rng(seed)
    names = [b.lower() for b in band_names]
    c, p = len(names), patch_size
    yy, xx = np.mgrid[0:p, 0:p]
    images = np.empty((n, c, p, p), dtype=np.uint16)
    labels = np.zeros((n, p, p), dtype=np.uint8)
    base = {"blue": 400.0, "green": 600.0, "red": 500.0, "nir": 2600.0}
    slide = {"blue": 900.0, "green": 1100.0, "red": 1500.0, "nir": 1300.0}
    for i in range(n):
        mask = np.zeros((p, p), dtype=bool)
        for _ in range(int(rng.integers(1, 3))):
            cy, cx = rng.uniform(0.2 * p, 0.8 * p, size=2)
            rad = rng.uniform(0.1 * p, 0.25 * p)
            mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= rad * rad
        for b, name in enumerate(names):
            lo, hi = base.get(name, 1000.0), slide.get(name, 1000.0)
            band = np.where(mask, hi, lo) + rng.normal(0, 60, size=(p, p))
            images[i, b] = np.clip(band, 1, 65535).astype(np.uint16)
        labels[i] = mask
        if nodata is not None and i % 4 == 3:
            images[i, :, :, -p // 4:] = np.uint16(nodata)
            labels[i, :, -p // 4:] = IGNORE
    n_train = max(1, round(fractions[0] * n))
    n_val = max(1, round(fractions[1] * n))
    n_train = min(n_train, n - 2)
    n_val = min(n_val, n - n_train - 1)
    splits = ["train"] * n_train + ["val"] * n_val + ["test"] * (n - n_train - n_val)
    cols = math.ceil(math.sqrt(n))
    res, left0, top0 = 3.0, 500000.0, 4750000.0
    windows = [((i // cols) * p, (i % cols) * p) for i in range(n)]
    bounds = [(left0 + co * res, top0 - (ro + p) * res, left0 + (co + p) * res, top0 - ro * res)
              for ro, co in windows]
    from rasterio.crs import CRS

    meta = {"split": {"method": "synthetic", "fractions": list(fractions), "seed": seed},
            "crs": CRS.from_epsg(32654).to_wkt(), "res": [res, res],
            "sources": [{"path": "synthetic", "sha256": None}]}
    return write_dataset(out, images, labels, names, splits, nodata=nodata, windows=windows,
                         bounds=bounds, meta=meta, overwrite=overwrite)

