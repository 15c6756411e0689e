"""Writing a dataset folder: :class:`DatasetWriter` (patch by patch) and :func:`write_dataset`.

A folder is written into a hidden temporary folder beside its target and renamed when
complete, so an interrupted run never leaves a folder that looks finished. The layout is
described in :mod:`landslip.dataset.folder`; statistics are computed on the valid pixels of the
training patches (:func:`landslip.dataset.stats.compute_stats`).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.dataset.checksums import data_checksums, fingerprint
from landslip.dataset.folder import FORMAT, VERSION, DatasetFolder, open_dataset
from landslip.dataset.index import SPLITS, IndexRow, write_index
from landslip.dataset.memmaps import CHUNK_PATCHES, RemapBudget, reopen
from landslip.dataset.stats import compute_stats, valid_mask
from landslip.encoding import LANDSLIDE
from landslip.errors import DatasetError
from landslip.io.atomic import remove_stale_partials, write_json_atomic

__all__ = ["DatasetWriter", "write_dataset"]

log = logging.getLogger(__name__)


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
        self.rows: list[IndexRow] = []
        self._images: np.memmap[Any, Any] | None = None
        self._labels: np.memmap[Any, Any] | None = None
        self._done = False
        self._budget = RemapBudget()

    def __enter__(self) -> DatasetWriter:
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(self.out)  # left by a run that was killed
        self.tmp.mkdir()
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
        if self._budget.spend(image.nbytes):  # keep the resident memory bounded
            self._reopen()
        valid = valid_mask(image, lab, self.nodata)
        nvalid = int(valid.sum())
        slides = int(((lab == LANDSLIDE) & valid).sum())
        left, bottom, right, top = bounds if bounds is not None else (None, None, None, None)
        self.rows.append(IndexRow(
            id=i, split="", row_off=int(row_off), col_off=int(col_off), height=p, width=p,
            left=left, bottom=bottom, right=right, top=top,
            landslide_fraction=slides / nvalid if nvalid else 0.0,
            valid_fraction=nvalid / float(p * p), source=source,
        ))
        return i

    def _reopen(self) -> None:
        """Flush the arrays and open fresh read-write maps of them."""
        assert self._images is not None and self._labels is not None
        self._images.flush()
        self._labels.flush()
        self._images = np.load(self.tmp / "images.npy", mmap_mode="r+")
        self._labels = np.load(self.tmp / "labels.npy", mmap_mode="r+")

    def _compact(self, keep: Sequence[int]) -> None:
        """Keep only the patches ``keep`` (in order), copying in chunks into new files."""
        assert self._images is not None and self._labels is not None
        if list(keep) == list(range(self.capacity)):
            return
        idx = np.asarray(keep, dtype=np.int64)
        for name, mapped in (("images.npy", self._images), ("labels.npy", self._labels)):
            _copy_rows(mapped, idx, self.tmp / f"new-{name}")
            del mapped
            os.replace(self.tmp / f"new-{name}", self.tmp / name)
        self._images = None
        self._labels = None
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
        keep = self._kept(splits)
        self._images.flush()
        self._labels.flush()
        self._compact(keep)
        assert self._images is not None and self._labels is not None
        self.rows = [replace(self.rows[i], id=new_id, split=str(splits[i]))
                     for new_id, i in enumerate(keep)]
        write_index(self.tmp / "index.csv", self.rows)
        train = [r.id for r in self.rows if r.split == "train"]
        stats = compute_stats(self._images, self._labels, train, self.band_names, self.nodata)
        self._images = None
        self._labels = None
        doc = self._document(meta or {}, stats)
        if report is not None:
            report = {**report, "counts": doc["counts"],
                      "landslide_fraction": doc["landslide_fraction"],
                      "fingerprint": doc["fingerprint"]}
            write_json_atomic(self.tmp / "report.json", _jsonable(report))
        write_json_atomic(self.tmp / "dataset.json", _jsonable(doc))
        self._rename_into_place()
        self._done = True
        return open_dataset(self.out)

    def _kept(self, splits: Sequence[str | None]) -> list[int]:
        """Indices of the added patches that ``splits`` keeps (checked)."""
        if len(splits) != len(self.rows):
            raise DatasetError(f"{len(splits)} split labels for {len(self.rows)} patches")
        bad = sorted({s for s in splits if s is not None and s not in SPLITS})
        if bad:
            raise DatasetError(f"unknown split name(s) {bad}; use {', '.join(SPLITS)}")
        keep = [i for i, s in enumerate(splits) if s is not None]
        if not keep:
            raise DatasetError("no patch to write: every patch was dropped (mostly nodata?); "
                               "check the image nodata value or raise --max-nodata")
        return keep

    def _document(self, meta: dict[str, Any], stats: dict[str, dict[str, float]]
                  ) -> dict[str, Any]:
        """dataset.json of the kept rows, with checksums of the files already written."""
        extra = dict(meta)
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "bands": self.band_names,
            "dtype": self.dtype.name,
            "nodata": self.nodata,
            "patch_size": self.patch_size,
            "stride": extra.pop("stride", self.patch_size),
            "split": extra.pop("split", {"method": "unknown"}),
            "counts": {s: sum(1 for r in self.rows if r.split == s) for s in SPLITS},
            "landslide_fraction": _landslide_fractions(self.rows),
            "crs": extra.pop("crs", None),
            "res": extra.pop("res", None),
            "sources": extra.pop("sources", []),
            "leakage": extra.pop("leakage", None),
            "stats": stats,
        }
        doc.update(extra)
        doc["checksums"] = data_checksums(self.tmp)
        doc["fingerprint"] = fingerprint(doc["checksums"], doc)
        return doc

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


def _copy_rows(old: npt.NDArray[Any], idx: npt.NDArray[np.int64], target: Path) -> None:
    """Write ``old[idx]`` to the new ``.npy`` file ``target``, in chunks of patches."""
    n = idx.size
    new = np.lib.format.open_memmap(target, mode="w+", dtype=old.dtype,
                                    shape=(n, *old.shape[1:]))
    budget = RemapBudget()
    for s in range(0, n, CHUNK_PATCHES):
        e = min(s + CHUNK_PATCHES, n)
        new[s:e] = old[idx[s:e]]
        if budget.spend(new[s:e].nbytes):  # keep the resident memory bounded
            new.flush()
            new = np.load(target, mmap_mode="r+")
            old = reopen(old)
    new.flush()


def _landslide_fractions(rows: Sequence[IndexRow]) -> dict[str, float]:
    """{split: landslide pixels / valid pixels} over the patches of each split."""
    out: dict[str, float] = {}
    for s in SPLITS:
        split_rows = [r for r in rows if r.split == s]
        valid = sum(r.valid_fraction for r in split_rows)
        slide = sum(r.landslide_fraction * r.valid_fraction for r in split_rows)
        out[s] = slide / valid if valid else 0.0
    return out


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
