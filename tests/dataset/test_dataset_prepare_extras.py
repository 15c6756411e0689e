"""``prepare --extra``: warped extra rasters, terrain bands computed on the scene not patches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.crs import CRS

from landslip.cli.app import main
from landslip.dataset.prepare import EXTRA_NODATA, prepare_dataset
from landslip.errors import BandError
from landslip.grid import Grid, Window
from landslip.io.raster import write_raster
from landslip.io.warp import WarpedReader
from landslip.spectral.terrain import HALO, terrain_window

BANDS = ["blue", "green", "red", "nir"]
GRID = Grid.from_bounds(CRS.from_epsg(32654), 500000.0, 4750000.0, 1.5, 40, 56)


def _inputs(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(5)
    img = rng.integers(1, 4000, size=(4, 40, 56), dtype=np.uint16)
    img[1, 3, 4] = 0  # image nodata
    lab = (rng.random((40, 56)) < 0.1).astype(np.uint8)
    dem = (np.cumsum(rng.normal(size=(40, 56)), axis=0) * 3 + 100).astype(np.float32)
    dem[30, 50] = -9999.0  # DEM nodata
    # the pre-event image on a coarser 6 m grid (warped bilinearly onto the 1.5 m grid)
    pre_grid = Grid.from_bounds(GRID.crs, 499994.0, 4750006.0, 6.0, 12, 16)
    pre = rng.integers(100, 3000, size=(4, 12, 16), dtype=np.uint16)
    paths = {k: folder / f"{k}.tif" for k in ("img", "lab", "dem", "pre")}
    write_raster(paths["img"], img, GRID, nodata=0, descriptions=BANDS)
    write_raster(paths["lab"], lab, GRID, nodata=255)
    write_raster(paths["dem"], dem, GRID, nodata=-9999.0, descriptions=["dem"])
    write_raster(paths["pre"], pre, pre_grid, descriptions=BANDS)
    return paths


def test_extras_are_stored_after_the_image_bands(tmp_path: Path) -> None:
    p = _inputs(tmp_path)
    ds = prepare_dataset(p["img"], p["lab"], tmp_path / "ds", patch_size=16, max_nodata=1.0,
                         extras=[f"pre={p['pre']}", str(p["dem"])],
                         terrain=("slope", "hillshade")).dataset
    assert ds.band_names == (*BANDS, "pre_blue", "pre_green", "pre_red", "pre_nir", "dem",
                             "slope", "hillshade")
    assert ds.images.dtype == np.float32 and ds.nodata == EXTRA_NODATA
    assert ds.meta["extras"]["terrain"] == ["slope", "hillshade"]
    assert [s["role"] for s in ds.meta["sources"]] == ["image", "labels", "extra", "extra"]
    # slope of every patch equals slope computed on the whole DEM (halo, not patch edges)
    dem = np.pad(np.where(_read(p["dem"]) == -9999.0, np.nan, _read(p["dem"])), HALO,
                 constant_values=np.nan).astype(np.float32)
    whole = terrain_window(dem, GRID, GRID.full_window(), ("slope", "hillshade"))
    with WarpedReader(p["pre"], GRID) as reader:
        pre = reader.read(GRID.full_window())
    checked = 0
    for row in ds.index:
        win = Window(row.row_off, row.col_off, 16, 16)
        inside = win.intersection(GRID.full_window())
        assert inside is not None
        rs, cs = inside.relative_to(win).slices()
        patch = np.asarray(ds.images[row.id])[:, rs, cs]
        valid = patch[0] != np.float32(EXTRA_NODATA)
        ref = whole[:, inside.row_off:inside.row_end, inside.col_off:inside.col_end]
        np.testing.assert_array_equal(patch[9:11][:, valid], ref[:, valid])
        ref_pre = pre[:, inside.row_off:inside.row_end, inside.col_off:inside.col_end]
        np.testing.assert_array_equal(patch[4:8][:, valid], ref_pre[:, valid])
        checked += int(valid.sum())
    assert checked == 40 * 56 - 2  # every pixel but the two nodata ones


def _read(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1)


def test_a_pixel_nodata_in_any_input_is_nodata_everywhere(tmp_path: Path) -> None:
    p = _inputs(tmp_path)
    ds = prepare_dataset(p["img"], p["lab"], tmp_path / "ds", patch_size=8, stride=8,
                         max_nodata=1.0, extras=[str(p["dem"])]).dataset
    assert ds.band_names == (*BANDS, "dem", "slope")  # slope by default with a dem
    for r, c in ((3, 4), (30, 50)):  # image nodata, DEM nodata
        row = next(x for x in ds.index if x.row_off == r // 8 * 8 and x.col_off == c // 8 * 8)
        img, lab = ds.images[row.id], ds.labels[row.id]
        assert (img[:, r % 8, c % 8] == np.float32(EXTRA_NODATA)).all()
        assert lab[r % 8, c % 8] == 255
        assert (img[:, (r + 1) % 8, c % 8] != np.float32(EXTRA_NODATA)).all()
    assert ds.stats["slope"]["count"] == sum(
        int((ds.labels[i] != 255).sum()) for i in ds.split_indices("train"))


def test_refusals_before_writing(tmp_path: Path) -> None:
    p = _inputs(tmp_path)
    out = tmp_path / "ds"
    with pytest.raises(BandError, match="given twice"):
        prepare_dataset(p["img"], p["lab"], out, patch_size=8, extras=[str(p["pre"])])
    with pytest.raises(BandError, match="need a DEM"):
        prepare_dataset(p["img"], p["lab"], out, patch_size=8, terrain=("slope",))
    with pytest.raises(BandError, match=r"dem=DEM\.tif"):
        prepare_dataset(p["img"], p["lab"], out, patch_size=8, extras=[f"elev={p['dem']}"],
                        terrain=("slope",))
    assert not out.exists()


def test_cli_prepare_extra(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _inputs(tmp_path)
    out = tmp_path / "ds"
    rc = main(["prepare", str(p["img"]), str(p["lab"]), "-o", str(out), "--patch-size", "16",
               "--extra", f"pre={p['pre']}:cubic", "--extra", f"dem={p['dem']}",
               "--terrain", ""])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "Bands: blue, green, red, nir, pre_blue, pre_green, pre_red, pre_nir, dem" in text
    assert "slope" not in text
