"""Reading a dataset folder: :func:`open_dataset` and :class:`DatasetFolder`.

A dataset folder is what ``landslip prepare`` and ``landslip import-patches`` write
(:mod:`landslip.dataset.writer`) and what training, evaluation and the band-set study read.
Its layout (documented in DESIGN.md)::

    DATASET/
      dataset.json   metadata: format, version, band names, dtype, nodata, patch size, stride,
                     split method, counts per split, CRS (WKT), resolution, source files with
                     sha256, leakage audit, per-band statistics on valid training pixels,
                     checksums of the other files and the dataset fingerprint
      index.csv      one row per patch (row i <-> array index i): :mod:`landslip.dataset.index`
      images.npy     (N, C, P, P) raw bands in the source dtype (opened memory-mapped)
      labels.npy     (N, P, P) uint8: 0 background, 1 landslide, 255 ignore
      derived_stats.json  (optional) cache of statistics of derived bands such as NDVI
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.dataset.checksums import DATA_FILES, data_checksums, fingerprint, sha256_file
from landslip.dataset.index import SPLITS, IndexRow, read_index
from landslip.dataset.memmaps import open_npy
from landslip.dataset.stats import band_set_stats
from landslip.errors import DatasetError
from landslip.formats import read_document
from landslip.spectral.bands import BandSet

__all__ = ["FORMAT", "VERSION", "DatasetFolder", "open_dataset"]

FORMAT = "landslip-dataset"
"""Value of ``format`` in dataset.json."""

VERSION = 1
"""Version of the dataset folder format written by this landslip (and the newest it reads)."""

_CREATE_HINT = "create one with `landslip prepare` or `landslip import-patches`"


def _read_meta(path: str | Path) -> dict[str, Any]:
    """Read and check the dataset.json of the dataset folder ``path``.

    Raises:
        DatasetError: If the folder or its dataset.json is missing, unreadable, of another
            format or of a newer version than this landslip reads.
    """
    folder = Path(path)
    meta_path = folder / "dataset.json"
    if not folder.is_dir():
        raise DatasetError(f"dataset folder not found: {folder}; {_CREATE_HINT}")
    if not meta_path.is_file():
        raise DatasetError(f"{folder} is not a landslip dataset (no dataset.json); "
                           f"{_CREATE_HINT}")
    return read_document(meta_path, expected=FORMAT, supported=VERSION, error=DatasetError)


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
        meta = _read_meta(self.path)
        for name in DATA_FILES:
            if not (self.path / name).is_file():
                raise DatasetError(f"dataset {self.path} is incomplete: {name} is missing; "
                                   "prepare or import it again")
        self.meta: dict[str, Any] = meta
        self.band_names: tuple[str, ...] = tuple(str(b).lower() for b in meta["bands"])
        nd = meta.get("nodata")
        self.nodata: float | None = None if nd is None else float(nd)
        self.patch_size: int = int(meta["patch_size"])
        self.index: list[IndexRow] = read_index(self.path / "index.csv")
        self._splits = np.array([r.split for r in self.index], dtype=object)
        self._images: np.memmap[Any, Any] | None = None
        self._labels: np.memmap[Any, Any] | None = None
        self._check_arrays()

    def _check_arrays(self) -> None:
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
            self._images = open_npy(self.path / "images.npy")
        return self._images

    @property
    def labels(self) -> np.memmap[Any, Any]:
        """(N, P, P) uint8 labels (0, 1, 255), memory-mapped read-only."""
        if self._labels is None:
            self._labels = open_npy(self.path / "labels.npy")
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
        return fingerprint(data_checksums(self.path), self.meta)

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

    def band_stats(self, band_set: BandSet | str) -> tuple[list[float], list[float]]:
        """Means and standard deviations of a band set on valid training pixels.

        See :func:`landslip.dataset.stats.band_set_stats` (raw bands from dataset.json,
        derived bands computed once and cached in ``derived_stats.json``).

        Args:
            band_set: A :class:`BandSet` or a band set spec such as ``"bg-ndvi"``.

        Returns:
            (means, stds), one value per band of the set, in the set's units.

        Raises:
            BandError: If the set needs a raw band the dataset does not have.
        """
        return band_set_stats(self, band_set)


def open_dataset(path: str | Path) -> DatasetFolder:
    """Open a dataset folder written by ``landslip prepare`` or ``landslip import-patches``.

    Raises:
        DatasetError: If the folder is missing, incomplete or of an unknown format or version.
    """
    return DatasetFolder(path)
