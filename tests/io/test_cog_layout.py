"""The raw re-layout of a compressed GeoTIFF with overviews into a Cloud-Optimized GeoTIFF."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

import landslip.io.cog as cog
import landslip.io.raster as raster
from landslip.errors import RasterIOError
from landslip.grid import Grid, Window
from landslip.io.cog import CONTINUOUS, LABELS, RasterStyle, check_cog, probability_style
from landslip.io.cog_layout import read_ifds, relayout_cog
from landslip.io.raster import RasterWriter

BANDS = ["blue", "green", "red", "nir"]


def _grid(h: int, w: int) -> Grid:
    return Grid.from_bounds(CRS.from_epsg(32654), 547000.0, 4727000.0, 1.5, h, w)


def _data(shape: tuple[int, int], count: int, dtype: str, style: RasterStyle
          ) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    if style is LABELS:
        data = rng.choice(np.array([0, 1, 255], dtype=np.uint8), (count, *shape))
        nodata = 255.0
    elif dtype == "float32":
        data, nodata = rng.normal(size=(count, *shape)).astype(np.float32), -9999.0
    else:
        data, nodata = rng.integers(1, 3000, (count, *shape)).astype(dtype), 0.0
    data[:, 10:40, 5:30] = nodata
    return data, nodata


def _write(target: Path, data: np.ndarray, nodata: float, style: RasterStyle,
           prebuilt: bool) -> None:
    count, h, w = data.shape
    with RasterWriter(target, _grid(h, w), count, data.dtype, nodata,
                      BANDS[:count] if count > 1 else None, {"PANSHARPEN_METHOD": "hpf"},
                      zlevel=1, style=style, prebuilt=prebuilt) as wr:
        for r in range(0, h, 100):  # windows that split the 256-pixel tiles
            win = Window(r, 0, min(100, h - r), w)
            wr.write(data[(slice(None), *win.slices())], win)


def _assert_same(old: Path, new: Path, data: np.ndarray, style: RasterStyle) -> None:
    """``new`` has the profile, metadata and full-resolution pixels of ``old`` and the overview
    pixels of GDAL's ``BuildOverviews`` on an uncompressed copy of ``data``."""
    with rasterio.open(old) as a, rasterio.open(new) as b:
        assert a.profile == b.profile
        for attr in ("descriptions", "colorinterp", "scales", "offsets", "units", "nodatavals"):
            assert getattr(a, attr) == getattr(b, attr), attr
        assert a.tags() == b.tags()
        # BuildOverviews' levels (the COG driver stops one level early on some odd sizes).
        assert b.overviews(1) == cog.overview_factors(b.height, b.width)
        if a.colorinterp[0].name == "palette":
            assert a.colormap(1) == b.colormap(1)
        np.testing.assert_array_equal(b.read(), data)
        profile = {k: v for k, v in a.profile.items() if k not in ("compress", "BIGTIFF")}
        profile["interleave"] = "pixel"  # as streamed (a 1-band "band" file cascades otherwise)
        levels, names = len(b.overviews(1)), b.descriptions
    ref = old.with_name("reference.tif")
    with rasterio.open(ref, "w", **profile) as r:
        r.write(data)
        cog.apply_style(r, style, names)
    cog.build_overviews(ref, style)
    for k in range(levels):
        with rasterio.open(ref, OVERVIEW_LEVEL=k) as a, rasterio.open(new, OVERVIEW_LEVEL=k) as b:
            assert b.block_shapes[0] == (cog.COG_BLOCK, cog.COG_BLOCK)
            np.testing.assert_array_equal(a.read(), b.read())
    ref.unlink()


def _assert_cog_order(path: Path) -> None:
    """IFDs first (full resolution, then overviews), then tiles from the smallest overview up."""
    with open(path, "rb") as f:
        _, ifds = read_ifds(f)
    first_tile = [min(o for o in ifd.offsets if o) for ifd in ifds]
    last_tile = [max(o for o in ifd.offsets if o) for ifd in ifds]
    assert min(first_tile) > 0
    for i in range(len(ifds) - 1):
        assert last_tile[i + 1] < first_tile[i]  # a smaller level lies wholly before


@pytest.mark.parametrize(("shape", "count", "dtype", "style", "bigtiff"), [
    ((700, 600), 4, "uint16", CONTINUOUS, False),
    ((701, 603), 3, "uint16", CONTINUOUS, True),
    ((1100, 300), 2, "uint16", CONTINUOUS, False),
    ((520, 530), 1, "uint8", LABELS, False),
    ((600, 257), 1, "uint8", probability_style("uint8"), True),
    ((300, 513), 2, "float32", CONTINUOUS, False),
    ((200, 180), 4, "uint16", CONTINUOUS, False),  # one tile: no overviews
    ((50, 7), 1, "uint16", CONTINUOUS, True),
])
def test_relaid_out_cog_equals_the_cog_drivers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: tuple[int, int], count: int,
    dtype: str, style: RasterStyle, bigtiff: bool,
) -> None:
    """Streamed compressed, overviews from the uncompressed copy, tiles copied raw: a valid COG
    without warnings, the same pixels, overviews and metadata as GDAL's COG driver computing
    everything, classic TIFF or BigTIFF as asked, no temporary file left."""
    if bigtiff:
        monkeypatch.setattr(raster, "BIGTIFF_THRESHOLD", 0)
    data, nodata = _data(shape, count, dtype, style)
    old, new = tmp_path / "driver.tif", tmp_path / "relaid.tif"
    _write(old, data, nodata, style, prebuilt=False)
    _write(new, data, nodata, style, prebuilt=True)
    check = check_cog(new)
    assert check.valid and not check.warnings, (check.errors, check.warnings)
    _assert_same(old, new, data, style)
    _assert_cog_order(new)
    with open(new, "rb") as f:
        assert read_ifds(f)[0].big is bigtiff
    assert sorted(p.name for p in tmp_path.iterdir()) == ["driver.tif", "relaid.tif"]


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="GDAL command-line tools absent")
def test_system_gdal_reads_the_relaid_out_cog(tmp_path: Path) -> None:
    data, nodata = _data((600, 520), 4, "uint16", CONTINUOUS)
    _write(tmp_path / "r.tif", data, nodata, CONTINUOUS, prebuilt=True)
    r = subprocess.run(["gdalinfo", "-checksum", str(tmp_path / "r.tif")], capture_output=True,
                       text=True, check=True)
    assert "Warning" not in r.stderr and "ERROR" not in r.stderr
    assert "Overviews: 260x300, 130x150" in r.stdout and "NoData Value=0" in r.stdout


def test_failed_relayout_leaves_no_temporary_file(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RasterIOError("disk full")

    monkeypatch.setattr(cog, "relayout_cog", broken)
    data, nodata = _data((300, 300), 1, "uint16", CONTINUOUS)
    with pytest.raises(RasterIOError, match="disk full"):
        _write(tmp_path / "x.tif", data, nodata, CONTINUOUS, prebuilt=True)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_stream_leaves_no_temporary_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), RasterWriter(tmp_path / "x.tif", _grid(300, 300), 1,
                                                   "uint8", prebuilt=True) as w:
        w.write(np.zeros((1, 300, 300), np.uint8))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_not_a_tiff_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.tif").write_bytes(b"PK\x03\x04 not a tiff")
    with pytest.raises(RasterIOError, match="not a TIFF"):
        relayout_cog(tmp_path / "a.tif", tmp_path / "b.tif")
