"""--extra parsing and naming, and the window reader of extra rasters with terrain bands."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from rasterio.crs import CRS

from landslip.errors import BandError, InputError, RasterIOError
from landslip.grid import Grid, Window, iter_clipped_tiles
from landslip.io.raster import raster_info, write_raster
from landslip.spectral.bands import resolve_band_set
from landslip.spectral.extras import ExtraInputs, ExtraSpec, extra_band_names, parse_extra

UTM = CRS.from_epsg(32654)
IMAGE = Grid.from_bounds(UTM, 500000.0, 4730000.0, 2.0, 30, 40)


def test_parse_extra_forms() -> None:
    assert parse_extra("dem.tif") == ExtraSpec(Path("dem.tif"))
    assert parse_extra("dem=a/b.tif") == ExtraSpec(Path("a/b.tif"), ("dem",))
    assert parse_extra("Pre=pre.tif:Cubic") == ExtraSpec(Path("pre.tif"), ("pre",), "cubic")
    assert parse_extra("x,y=two.tif") == ExtraSpec(Path("two.tif"), ("x", "y"))
    assert parse_extra("C:/data/dem.tif") == ExtraSpec(Path("C:/data/dem.tif"))
    assert parse_extra("dir=1/dem.tif").names == ("dir",)
    assert str(parse_extra("pre=pre.tif:nearest")) == "pre=pre.tif:nearest"
    with pytest.raises(InputError, match="names no file"):
        parse_extra("dem=")
    with pytest.raises(BandError, match="reserved"):
        parse_extra("ndvi=x.tif")


def _write(path: Path, data: np.ndarray, grid: Grid, desc: list[str | None],
           nodata: float | None = None) -> Path:
    write_raster(path, data, grid, nodata=nodata, descriptions=desc)
    return path


def test_band_names_from_descriptions_prefix_or_list(tmp_path: Path) -> None:
    four = _write(tmp_path / "pre.tif", np.zeros((4, 30, 40), np.uint16), IMAGE,
                  ["blue", "green", "red", "nir"])
    one = _write(tmp_path / "d.tif", np.zeros((1, 30, 40), np.float32), IMAGE, [None])
    info4, info1 = raster_info(four), raster_info(one)
    assert extra_band_names(ExtraSpec(four), info4) == ("blue", "green", "red", "nir")
    assert extra_band_names(ExtraSpec(four, ("pre",)), info4) == (
        "pre_blue", "pre_green", "pre_red", "pre_nir")
    assert extra_band_names(ExtraSpec(one, ("dem",)), info1) == ("dem",)
    with pytest.raises(BandError, match="NAME="):
        extra_band_names(ExtraSpec(one), info1)
    with pytest.raises(BandError, match="2 names for 4"):
        extra_band_names(ExtraSpec(four, ("a", "b")), info4)


def _plane_dem(tmp_path: Path, grid: Grid, degrees: float = 30.0) -> Path:
    cols = np.mgrid[0:grid.height, 0:grid.width][1]
    x = grid.transform.c + (cols + 0.5) * grid.transform.a
    z = math.tan(math.radians(degrees)) * (x - 500000.0) + 50.0
    return _write(tmp_path / "dem.tif", z[None].astype(np.float32), grid, ["dem"], -9999.0)


def test_slope_at_image_edges_uses_the_dem_beyond_the_image(tmp_path: Path) -> None:
    # the DEM covers 3 pixels more than the image on each side, on the same lattice
    dem = _plane_dem(tmp_path, IMAGE.window_grid(Window(-3, -3, 36, 46)))
    with ExtraInputs([ExtraSpec(dem)], IMAGE, terrain=("slope",)) as extras:
        assert extras.names == ("dem", "slope")
        out = extras.read(IMAGE.full_window())
    np.testing.assert_allclose(out[1], 30.0, atol=1e-3)


def test_dem_on_another_crs_gives_slope_on_the_image_grid(tmp_path: Path) -> None:
    # a 10 m DEM in UTM zone 53 (another CRS), larger than the image
    from pyproj import Transformer

    z53 = CRS.from_epsg(32653)
    e, n = Transformer.from_crs(UTM, z53, always_xy=True).transform(500040.0, 4729940.0)
    src = Grid.from_bounds(z53, e - 300.0, n + 300.0, 10.0, 60, 60)
    rows, cols = np.mgrid[0:60, 0:60]
    x = src.transform.c + (cols + 0.5) * src.transform.a
    y = src.transform.f + (rows + 0.5) * src.transform.e
    ex, _ = Transformer.from_crs(z53, UTM, always_xy=True).transform(x, y)
    z = (math.tan(math.radians(20.0)) * (ex - 500000.0) + 50.0).astype(np.float32)
    path = _write(tmp_path / "dem53.tif", z[None], src, ["dem"])
    with ExtraInputs([ExtraSpec(path)], IMAGE, terrain=("slope",)) as extras:
        whole = extras.read(IMAGE.full_window())
        tiles = np.concatenate([np.concatenate(
            [extras.read(Window(r, c, 15, 20)) for c in (0, 20)], axis=2) for r in (0, 15)],
            axis=1)
    np.testing.assert_allclose(whole[1], 20.0, atol=0.05)
    np.testing.assert_array_equal(tiles, whole)  # window by window = whole, halos included


def test_windows_equal_whole_and_nodata_is_nan(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    z = np.cumsum(rng.normal(size=(30, 40)), axis=1).astype(np.float32)
    z[10:12, 5:9] = -9999.0
    path = _write(tmp_path / "dem.tif", z[None], IMAGE, ["dem"], -9999.0)
    with ExtraInputs([ExtraSpec(path)], IMAGE, terrain=("slope", "hillshade")) as extras:
        whole = extras.read(IMAGE.full_window())
        tiled = np.empty_like(whole)
        for w in iter_clipped_tiles(30, 40, 8):
            tiled[:, w.row_off:w.row_end, w.col_off:w.col_end] = extras.read(w)
        assert np.array_equal(extras.band(Window(0, 0, 30, 40), "slope"), whole[1],
                              equal_nan=True)
    np.testing.assert_array_equal(tiled, whole)
    assert np.isnan(whole[:, 10:12, 5:9]).all()
    assert np.isfinite(whole[:, :10]).all()


def test_stack_turns_image_nodata_into_nan_and_names_all_bands(tmp_path: Path) -> None:
    dem = _plane_dem(tmp_path, IMAGE)
    img = np.full((2, 4, 4), 7, np.uint16)
    img[0, 0, 0] = 0
    with ExtraInputs([ExtraSpec(dem)], IMAGE, terrain=("slope",), image_names=("red", "nir")
                     ) as extras:
        raw, names, nodata = extras.stack(img, 0.0, Window(2, 2, 4, 4))
    assert names == ("red", "nir", "dem", "slope") and math.isnan(nodata)
    assert raw.dtype == np.float32 and np.isnan(raw[0, 0, 0]) and raw[1, 0, 0] == 7
    bands, valid = resolve_band_set("red,slope").compute(raw, names, nodata)
    assert not valid[0, 0] and valid.sum() == 15
    np.testing.assert_allclose(bands[1][valid], 30.0, atol=1e-3)


def test_checks_before_reading(tmp_path: Path) -> None:
    dem = _plane_dem(tmp_path, IMAGE)
    with pytest.raises(BandError, match="given twice"):
        ExtraInputs([ExtraSpec(dem)], IMAGE, image_names=("dem",))
    with pytest.raises(BandError, match=r"--extra dem=DEM\.tif"):
        ExtraInputs([ExtraSpec(dem, ("elev",))], IMAGE, terrain=("slope",))
    with pytest.raises(RasterIOError, match="not found"):
        ExtraInputs([ExtraSpec(tmp_path / "missing.tif")], IMAGE)
