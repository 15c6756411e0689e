"""index.csv: written and read with the csv module, exact floats, damaged files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from landslip.dataset.index import INDEX_COLUMNS, IndexRow, read_index, write_index
from landslip.errors import DatasetError


def _row(i: int, source: str, left: float | None = None) -> IndexRow:
    return IndexRow(id=i, split="train", row_off=0, col_off=8 * i, height=8, width=8,
                    left=left, bottom=None if left is None else 1.0, right=None,
                    top=None, landslide_fraction=0.1 + 0.2, valid_fraction=1 / 3,
                    source=source)


def test_roundtrip_quotes_awkward_sources(tmp_path: Path) -> None:
    rows = [_row(0, 'a,b "quoted"\r\nname.png', left=500000.123456789), _row(1, ""),
            _row(2, "carriage\rreturn.tif"), _row(3, "plain/x.tif")]
    path = write_index(tmp_path / "index.csv", rows)
    assert path.read_text().splitlines()[0] == ",".join(INDEX_COLUMNS)
    assert read_index(path) == rows  # floats exact, None kept, quoting undone


def test_missing_column_and_bad_cell_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "index.csv"
    path.write_text("id,split\n0,train\n")
    with pytest.raises(DatasetError, match="lacks the column"):
        read_index(path)
    write_index(path, [_row(0, "x")])
    path.write_text(path.read_text().replace(",0.3", ",abc"))
    with pytest.raises(DatasetError, match="line 2"):
        read_index(path)
