"""``landslip prepare``: exact patch cover of awkward scenes, nodata, splits, stats, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS

from landslip.cli.app import main
from landslip.dataset.folder import open_dataset
from landslip.dataset.prepare import prepare_dataset
from landslip.dataset.tiling import patch_layout
from landslip.errors import BandError, GridError, LabelError
from landslip.grid import Grid
from landslip.io.raster import write_raster

BANDS = ["blue", "green", "red", "nir"]


def _scene(folder: Path, h: int, w: int, seed: int = 0, nodata_rect: tuple | None = None,
           descriptions: bool = True) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    grid = Grid.from_bounds(CRS.from_epsg(32654), 500000.0, 4750000.0, 1.5, h, w)
    img = rng.integers(1, 4000, size=(4, h, w), dtype=np.uint16)
    lab = (rng.random((h, w)) < 0.1).astype(np.uint8)
    if nodata_rect is not None:
        r0, r1, c0, c1 = nodata_rect
        img[2, r0:r1, c0:c1] = 0  # one band nodata -> pixel invalid
        lab[r0:r1, c0:c1] = 255
    folder.mkdir(parents=True, exist_ok=True)
    ip, lp = folder / "img.tif", folder / "lab.tif"
    write_raster(ip, img, grid, nodata=0, descriptions=BANDS if descriptions else None)
    write_raster(lp, lab, grid, nodata=255)
    return ip, lp, img, lab


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(9, 70), w=st.integers(9, 70), p=st.sampled_from([8, 16]),
       half=st.booleans(), seed=st.integers(0, 99))
def test_patches_cover_awkward_scenes_exactly(
    tmp_path_factory: pytest.TempPathFactory, h: int, w: int, p: int, half: bool, seed: int
) -> None:
    stride = p // 2 if half else p
    d = tmp_path_factory.mktemp("s")
    ip, lp, img, lab = _scene(d, h, w, seed)
    ds = prepare_dataset(ip, lp, d / "ds", patch_size=p, stride=stride, max_nodata=1.0,
                         seed=seed).dataset
    lay = patch_layout(h, w, p, stride)
    assert len(ds) == len(lay)  # nothing dropped: every window, right and bottom edges too
    assert sum(ds.counts.values()) == len(lay)
    cover = np.zeros((h, w), np.int32)
    for row in ds.index:
        i, r, c = row.id, row.row_off, row.col_off
        assert (row.height, row.width) == (p, p)
        hh, ww = min(p, h - r), min(p, w - c)
        np.testing.assert_array_equal(ds.images[i][:, :hh, :ww], img[:, r:r + hh, c:c + ww])
        np.testing.assert_array_equal(ds.labels[i][:hh, :ww], lab[r:r + hh, c:c + ww])
        assert (ds.labels[i][hh:, :] == 255).all() and (ds.labels[i][:, ww:] == 255).all()
        assert (ds.images[i][:, hh:, :] == 0).all() and (ds.images[i][:, :, ww:] == 0).all()
        assert row.valid_fraction == pytest.approx(hh * ww / p / p)
        cover[r:r + hh, c:c + ww] += 1
    assert (cover >= 1).all()
    if stride == p:
        assert (cover == 1).all()


def test_mostly_nodata_patches_dropped_and_stats_ignore_nodata(tmp_path: Path) -> None:
    ip, lp, _, _ = _scene(tmp_path, 64, 64, nodata_rect=(0, 64, 0, 20))
    res = prepare_dataset(ip, lp, tmp_path / "ds", patch_size=16, max_nodata=0.5, seed=1)
    ds = res.dataset
    # columns 0-15 fully nodata (dropped), 16-31 have 4 of 16 nodata columns (kept)
    assert len(ds) == 12 and res.report["patches"]["dropped_nodata"] == 4
    assert {r.col_off for r in ds.index} == {16, 32, 48}
    tr = ds.split_indices("train")
    x = ds.images[tr].astype(np.float64)
    valid = (ds.labels[tr] != 255) & (x != 0).all(axis=1)
    for b, name in enumerate(BANDS):
        vals = x[:, b][valid]
        st_ = ds.stats[name]
        assert st_["count"] == vals.size
        assert st_["mean"] == pytest.approx(vals.mean())
        assert st_["std"] == pytest.approx(vals.std())
        assert st_["min"] >= 1
    # invalid pixels of kept patches carry label 255 even where the label raster said 0/1
    i = int(np.flatnonzero([r.col_off == 16 for r in ds.index])[0])
    assert (ds.labels[i][:, :4] == 255).all()


def test_random_and_blocks_reports(tmp_path: Path) -> None:
    ip, lp, _, _ = _scene(tmp_path, 160, 160)
    r = prepare_dataset(ip, lp, tmp_path / "rand", patch_size=16, seed=0).report
    assert r["counts"] == {"train": 64, "val": 16, "test": 20}
    assert r["split"]["method"] == "random"
    assert r["leakage"]["test"]["share"] > 0.8
    assert r["sources"][0]["sha256"] and r["sources"][1]["role"] == "labels"
    assert "32654" in r["crs"] and r["res"] == [1.5, 1.5]
    on_disk = json.loads((tmp_path / "rand" / "report.json").read_text())
    assert on_disk["counts"] == r["counts"]
    assert 0.05 < on_disk["landslide_fraction"]["train"] < 0.15
    b = prepare_dataset(ip, lp, tmp_path / "blocks", patch_size=16, split="blocks",
                        block_size=2, seed=0).report
    assert b["leakage"]["test"]["touching_train"] == 0
    assert b["leakage"]["val"]["touching_train"] == 0
    assert b["counts"]["test"] > 0 and b["counts"]["val"] > 0 and b["counts"]["train"] > 0
    assert b["patches"]["dropped_buffer"] > 0
    ds = open_dataset(tmp_path / "blocks")
    assert ds.meta["split"]["method"] == "blocks" and ds.meta["leakage"] == b["leakage"]


def test_band_names_and_refusals(tmp_path: Path) -> None:
    ip, lp, _, _ = _scene(tmp_path / "a", 40, 40, descriptions=False)
    with pytest.raises(BandError, match="--band-names"):
        prepare_dataset(ip, lp, tmp_path / "x", patch_size=16)
    with pytest.raises(BandError, match=r"gives 3 name\(s\)"):
        prepare_dataset(ip, lp, tmp_path / "x", patch_size=16, band_names=["b", "g", "r"])
    ds = prepare_dataset(ip, lp, tmp_path / "x", patch_size=16,
                         band_names=["Blue", "green", "red", "nir"]).dataset
    assert ds.band_names == tuple(BANDS)
    ip2, lp2, _, _ = _scene(tmp_path / "b", 40, 41)
    with pytest.raises(GridError, match="--like"):
        prepare_dataset(ip, lp2, tmp_path / "y", patch_size=16, band_names=BANDS)
    bad = tmp_path / "bad.tif"
    write_raster(bad, np.full((40, 41), 7, np.uint8),
                 Grid.from_bounds(CRS.from_epsg(32654), 500000.0, 4750000.0, 1.5, 40, 41))
    with pytest.raises(LabelError, match="besides 0, 1 and 255"):
        prepare_dataset(ip2, bad, tmp_path / "z", patch_size=16)
    assert not (tmp_path / "z").exists()
    assert not list(tmp_path.glob(".z*"))


def test_cli_prepare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ip, lp, _, _ = _scene(tmp_path, 96, 80)
    out = tmp_path / "ds"
    rc = main(["-q", "prepare", str(ip), str(lp), "-o", str(out), "--patch-size", "16",
               "--split", "blocks", "--block-size", "2", "--seed", "3"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "0.0% of test" in text and (out / "dataset.json").exists()
    assert main(["prepare", str(ip), str(lp), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["-q", "prepare", str(ip), str(lp), "-o", str(out), "--patch-size", "16",
                 "--overwrite", "--fractions", "0.5,0.5"]) == 2


def test_image_mask_without_nodata_value(tmp_path: Path) -> None:
    """An image whose invalid pixels are flagged by a GDAL mask (no nodata value)."""
    import rasterio

    grid = Grid.from_bounds(CRS.from_epsg(32654), 500000.0, 4750000.0, 1.5, 32, 32)
    img = np.full((4, 32, 32), 700, np.uint16)
    ip = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
        ip, "w", driver="GTiff", height=32, width=32, count=4, dtype="uint16",
        crs=grid.crs, transform=grid.transform) as ds:
        ds.write(img)
        for b, name in enumerate(BANDS, start=1):
            ds.set_band_description(b, name)
        mask = np.full((32, 32), 255, np.uint8)
        mask[:, :8] = 0
        ds.write_mask(mask)
    lp = tmp_path / "lab.tif"
    write_raster(lp, np.ones((32, 32), np.uint8), grid)
    ds_ = prepare_dataset(ip, lp, tmp_path / "ds", patch_size=16, max_nodata=1.0).dataset
    assert ds_.nodata is None
    for row in ds_.index:
        lab = ds_.labels[row.id]
        if row.col_off == 0:
            assert (lab[:, :8] == 255).all() and (lab[:, 8:] == 1).all()
        else:
            assert (lab == 1).all()
    assert ds_.stats["red"]["count"] == ds_.counts["train"] * 16 * 16 - sum(
        8 * 16 for r in ds_.index if r.split == "train" and r.col_off == 0)
