"""The index of a dataset folder: one :class:`IndexRow` per patch, stored as index.csv.

index.csv is written and read with the :mod:`csv` module in its default dialect (RFC 4180:
``\\r\\n`` line ends, a cell quoted when it holds a comma, a quote or a line break, so any
source file name round-trips); its columns are the fields of :class:`IndexRow` in order
(:data:`INDEX_COLUMNS`). Row ``i`` describes patch ``i`` of images.npy and labels.npy. A
missing bound is an empty cell; floats are written with ``repr`` and read back exactly.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from landslip.errors import DatasetError
from landslip.io.atomic import atomic_path

__all__ = ["INDEX_COLUMNS", "SPLITS", "IndexRow", "read_index", "write_index"]

SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Split names, in this order everywhere."""


@dataclass(frozen=True)
class IndexRow:
    """One patch of a dataset (one row of index.csv).

    Attributes:
        id: Patch id, equal to its index in images.npy / labels.npy.
        split: ``train``, ``val`` or ``test`` (empty while a writer has not assigned it).
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
        """The row as index.csv cells (None as an empty cell, floats exactly via repr)."""
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
    def from_csv(cls, rec: Mapping[str, str | None]) -> IndexRow:
        """Parse one index.csv record (as read by :class:`csv.DictReader`)."""

        def text(key: str) -> str:
            return rec.get(key) or ""

        def opt(key: str) -> float | None:
            return float(text(key)) if text(key) else None

        return cls(
            id=int(text("id")), split=text("split"), row_off=int(text("row_off")),
            col_off=int(text("col_off")), height=int(text("height")), width=int(text("width")),
            left=opt("left"), bottom=opt("bottom"), right=opt("right"), top=opt("top"),
            landslide_fraction=float(text("landslide_fraction")),
            valid_fraction=float(text("valid_fraction")), source=text("source"),
        )


INDEX_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(IndexRow))
"""Columns of index.csv, in order."""


def write_index(path: str | Path, rows: Iterable[IndexRow]) -> Path:
    """Write index.csv atomically: a header of :data:`INDEX_COLUMNS`, then one line per row."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=INDEX_COLUMNS)
        writer.writeheader()
        writer.writerows(r.to_csv() for r in rows)
    return Path(path)


def read_index(path: str | Path) -> list[IndexRow]:
    """Read index.csv.

    Raises:
        DatasetError: When the file lacks a column of :data:`INDEX_COLUMNS` or has a cell that
            is not a number where one is expected.
    """
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in INDEX_COLUMNS if c != "source" and c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{path} lacks the column(s) {', '.join(missing)}; the dataset "
                               "is damaged: prepare or import it again")
        try:
            return [IndexRow.from_csv(rec) for rec in reader]
        except ValueError as exc:
            raise DatasetError(f"{path} line {reader.line_num}: {exc}; the dataset is "
                               "damaged: prepare or import it again") from exc
