"""Random small rasters through prepare, pansharpen and predict: no traceback, nodata kept.

Hypothesis draws rasters of every real GDAL data type (Byte, Int8 to UInt64, Float32,
Float64), sizes from 1 x 1 to odd sizes, NaN and infinite values in float data, a nodata value
or none, and a geographic or projected CRS. Each verb runs in process through ``main``: it
must end with exit 0 or 2 (a one-line input error), never with an exception, and a pixel that
is nodata in the input (the nodata value, NaN or infinite) is nodata in the output, while a
valid input pixel stays valid. Example counts are small so that the suite stays fast.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS

from helpers.inputs import BANDS, make_bundle
from landslip.cli.app import main
from landslip.encoding import IGNORE, PROBABILITY_NODATA
from landslip.grid import Grid
from landslip.io.raster import read_raster, write_raster

DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
          "float32", "float64"]
# LANDSLIP_PROPERTY_EXAMPLES=200 for a deeper search than the default suite's.
SETTINGS = settings(max_examples=int(os.environ.get("LANDSLIP_PROPERTY_EXAMPLES", "25")),
                    deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@dataclass(frozen=True)
class Raster:
    """A drawn raster: pixels (C, H, W), nodata value or None, CRS."""

    data: npt.NDArray[Any]
    nodata: float | None
    geographic: bool

    def grid(self, res_factor: float = 1.0) -> Grid:
        h, w = self.data.shape[1:]
        if self.geographic:
            return Grid.from_bounds(CRS.from_epsg(4326), 141.9, 42.7, 1e-5 * res_factor, h, w)
        return Grid.from_bounds(CRS.from_epsg(32654), 500000.0, 4740000.0, 1.5 * res_factor,
                                h, w)

    def invalid(self) -> npt.NDArray[np.bool_]:
        """(H, W): any band nodata, NaN or infinite."""
        bad = np.zeros(self.data.shape[1:], dtype=bool)
        if self.data.dtype.kind == "f":
            bad |= ~np.isfinite(self.data).any(axis=0) | ~np.isfinite(self.data).all(axis=0)
        if self.nodata is not None and not np.isnan(self.nodata):
            bad |= (self.data == self.nodata).any(axis=0)
        return bad


@st.composite
def rasters(draw: st.DrawFn, bands: int, max_side: int = 23) -> Raster:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dtype.kind == "f":
        data = rng.uniform(-1e4, 1e4, (bands, h, w)).astype(dtype)
        k = draw(st.integers(0, h * w))
        if k:
            flat = data.reshape(bands, -1)
            cols = rng.choice(h * w, size=k, replace=False)
            flat[rng.integers(0, bands, k), cols] = rng.choice([np.nan, np.inf, -np.inf], k)
        nodata = draw(st.sampled_from([None, float("nan"), -9999.0]))
    else:
        info = np.iinfo(dtype)
        lo, hi = max(int(info.min), -30000), min(int(info.max), 60000)
        data = rng.integers(lo, hi, (bands, h, w), endpoint=True).astype(dtype)
        nodata = draw(st.sampled_from([None, float(lo), float(max(lo, 0))]))
        if nodata is not None:
            data.reshape(bands, -1)[:, rng.random(h * w) < 0.2] = dtype.type(nodata)
    return Raster(data, nodata, draw(st.booleans()))


def _write(path: Path, r: Raster, names: list[str] | None = None,
           res_factor: float = 1.0) -> Path:
    write_raster(path, r.data, r.grid(res_factor), nodata=r.nodata, descriptions=names)
    return path


@given(r=rasters(bands=4))
@SETTINGS
def test_prepare_keeps_nodata(r: Raster) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        _write(d / "img.tif", r, BANDS)
        labels = np.random.default_rng(0).integers(0, 2, r.data.shape[1:]).astype(np.uint8)
        write_raster(d / "lab.tif", labels, r.grid())
        rc = main(["-q", "prepare", str(d / "img.tif"), str(d / "lab.tif"), "-o",
                   str(d / "ds"), "--patch-size", "8", "--max-nodata", "1"])
        event(f"exit {rc}")
        assert rc in (0, 2)
        if rc == 2:
            assert not (d / "ds").exists()
            return
        from landslip.dataset.folder import open_dataset

        ds = open_dataset(d / "ds")
        bad = r.invalid()
        h, w = bad.shape
        for k, row in enumerate(ds.index):
            lab = np.asarray(ds.labels[k])
            r0, c0 = row.row_off, row.col_off
            hh, ww = min(8, h - r0), min(8, w - c0)
            inside_bad = bad[r0:r0 + hh, c0:c0 + ww]
            inside_lab = lab[:hh, :ww]
            assert (inside_lab[inside_bad] == IGNORE).all()  # nodata in -> nodata out
            np.testing.assert_array_equal(inside_lab[~inside_bad],
                                          labels[r0:r0 + hh, c0:c0 + ww][~inside_bad])
            assert (lab[hh:] == IGNORE).all() and (lab[:, ww:] == IGNORE).all()


@given(pan=rasters(bands=1, max_side=45), ms_bands=st.integers(1, 4), ratio=st.integers(2, 3),
       method=st.sampled_from(["hpf", "brovey", "bilinear"]))
@SETTINGS
def test_pansharpen_keeps_nodata(pan: Raster, ms_bands: int, ratio: int, method: str) -> None:
    h, w = pan.data.shape[1:]
    mh, mw = max(1, h // ratio), max(1, w // ratio)
    pan = Raster(pan.data[:, :mh * ratio, :mw * ratio], pan.nodata, pan.geographic)
    rng = np.random.default_rng(h * 31 + w)
    ms_data = rng.uniform(1, 250, (ms_bands, mh, mw)).astype(pan.data.dtype if
                                                             pan.data.dtype.kind == "f"
                                                             else "uint16")
    if ms_data.dtype.kind == "f" and mh * mw > 1:
        ms_data[:, 0, 0] = np.nan
    ms = Raster(ms_data, None, pan.geographic)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        _write(d / "pan.tif", pan)
        _write(d / "ms.tif", ms, res_factor=ratio)
        rc = main(["-q", "pansharpen", str(d / "pan.tif"), str(d / "ms.tif"), "-o",
                   str(d / "out.tif"), "--method", method, "--tile", "16"])
        event(f"exit {rc}")
        assert rc in (0, 2)
        if rc == 2:
            assert not (d / "out.tif").exists()
            return
        out, _ = read_raster(d / "out.tif")
        from landslip.io.raster import raster_info

        nd = raster_info(d / "out.tif").nodata
        out_bad = np.zeros(out.shape[1:], dtype=bool)
        if nd is not None:
            out_bad = (np.isnan(out) if np.isnan(nd) else out == nd).any(axis=0)
        ms_bad = np.kron(Raster(ms_data, None, False).invalid(),
                         np.ones((ratio, ratio), dtype=bool))
        in_bad = pan.invalid() | ms_bad
        assert (out_bad[in_bad]).all()  # nodata in -> nodata out
        if out.dtype.kind == "f":
            assert np.isfinite(out[:, ~out_bad]).all()
        if not in_bad.any():
            assert not out_bad.any()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("b") / "run" / "bundle", band_set="bgrn",
                       with_profile=False).parent


@given(r=rasters(bands=4))
@SETTINGS
def test_predict_keeps_nodata(r: Raster, bundle: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        _write(d / "img.tif", r, BANDS)
        rc = main(["-q", "predict", str(bundle), str(d / "img.tif"), "-o", str(d / "out"),
                   "--window", "32", "--overlap", "8"])
        assert rc == 0
        codes, _ = read_raster(d / "out" / "probability.tif")
        mask, _ = read_raster(d / "out" / "landslides.tif")
        bad = r.invalid()
        np.testing.assert_array_equal(codes[0] == PROBABILITY_NODATA, bad)
        np.testing.assert_array_equal(mask[0] == 255, bad)
