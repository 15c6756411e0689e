"""A raster that opens but fails on read: one RasterIOError naming the file and the window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from helpers.inputs import write_scene
from landslip.errors import RasterIOError
from landslip.grid import Window
from landslip.io.raster import CheckedDataset, open_raster, raster_info, read_valid, read_window


@pytest.fixture
def truncated(tmp_path: Path) -> Path:
    data = np.random.default_rng(0).integers(1, 999, (2, 512, 512)).astype(np.uint16)
    write_scene(tmp_path / "full.tif", data=np.concatenate([data, data]))
    raw = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[: len(raw) // 2])
    return tmp_path / "cut.tif"


def test_reads_of_a_truncated_file_name_the_file_and_window(truncated: Path) -> None:
    assert raster_info(truncated).grid.shape == (512, 512)  # it opens
    with open_raster(truncated) as ds:
        assert isinstance(ds, CheckedDataset)
        with pytest.raises(RasterIOError) as err:
            ds.read(window=Window(256, 0, 256, 512).to_rasterio())
        text = str(err.value)
        assert f"rows 256-511, columns 0-511 of {truncated}" in text and "truncated" in text
        assert "TIFFReadEncodedTile" in text and "\n" not in text
        with pytest.raises(RasterIOError, match="rows 300-511, columns 300-511"):
            read_window(ds, Window(300, 300, 400, 400))
        with pytest.raises(RasterIOError, match="the mask of rows 256-511"):
            read_valid(ds, Window(256, 0, 256, 512))
        with pytest.raises(RasterIOError, match="the whole raster"):
            ds.read()


def test_bare_rasterio_datasets_get_the_same_message(truncated: Path) -> None:
    with rasterio.open(truncated) as ds, pytest.raises(RasterIOError, match="rows 256-511"):
        read_window(ds, Window(256, 0, 256, 512))


def test_checked_reads_pass_everything_else_through(tmp_path: Path) -> None:
    write_scene(tmp_path / "a.tif", nodata=0)
    with open_raster(tmp_path / "a.tif") as ds:
        assert ds.count == 4 and ds.nodata == 0 and ds.descriptions[0] == "blue"
        np.testing.assert_array_equal(ds.read(1), rasterio.open(tmp_path / "a.tif").read(1))
        valid = read_valid(ds, Window(-2, -2, 6, 6))
        assert valid.shape == (6, 6) and not valid[:2].any() and valid[2:, 2:].all()
