"""Importing pre-chipped datasets: PNG/GeoTIFF/npy folders, Landslide4Sense HDF5, real L4S RGB."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landslip.cli.app import main
from landslip.dataset.imports import L4S_BAND_NAMES, import_patches, pair_key
from landslip.errors import BandError, DatasetError


def _png_set(root: Path, split: str, n: int, size: int = 16, seed: int = 0,
             offset: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """RGBA image PNGs and 0/255 RGBA mask PNGs, as in the Landslide4Sense RGB set."""
    rng = np.random.default_rng(seed)
    (root / split / "images").mkdir(parents=True, exist_ok=True)
    (root / split / "masks").mkdir(parents=True, exist_ok=True)
    out = {}
    for k in range(offset, offset + n):
        rgb = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        rgba = np.dstack([rgb, np.full((size, size), 255, np.uint8)])
        m = (rng.random((size, size)) < 0.2).astype(np.uint8) * 255
        Image.fromarray(rgba, "RGBA").save(root / split / "images" / f"image_{k}.png")
        Image.fromarray(np.dstack([m, m, m, m]), "RGBA").save(
            root / split / "masks" / f"mask_{k}.png")
        out[f"{split}/images/image_{k}.png"] = (rgb, (m > 127).astype(np.uint8))
    return out


def test_pair_key_rule() -> None:
    assert pair_key("image_12") == pair_key("mask_12") == pair_key("img-0012") == "12"
    assert pair_key("img_tile-a") == pair_key("mask_tile-a") == "tile-a"
    assert pair_key("label.north") == "north"


def test_png_folders_keep_splits_and_carve_validation(tmp_path: Path) -> None:
    src = tmp_path / "src"
    truth = _png_set(src, "train", 10) | _png_set(src, "test", 3, seed=1, offset=100)
    res = import_patches(src, tmp_path / "ds", val_fraction=0.2, seed=5)
    ds = res.dataset
    assert ds.counts == {"train": 8, "val": 2, "test": 3}
    assert ds.band_names == ("red", "green", "blue") and ds.patch_size == 16
    assert ds.images.dtype == np.uint8 and ds.images.shape == (13, 3, 16, 16)
    assert ds.meta["split"]["method"] == "imported"
    for row in ds.index:
        rgb, mask = truth[row.source]
        np.testing.assert_array_equal(ds.images[row.id], np.moveaxis(rgb, -1, 0))
        np.testing.assert_array_equal(ds.labels[row.id], mask)
        assert row.split == ("test" if row.source.startswith("test") else row.split)
    assert {r.source.split("/")[0] for r in ds.index if r.split == "val"} == {"train"}
    again = import_patches(src, tmp_path / "ds2", val_fraction=0.2, seed=5).dataset
    assert again.split_indices("val").tolist() == ds.split_indices("val").tolist()
    other = import_patches(src, tmp_path / "ds3", val_fraction=0.2, seed=6).dataset
    assert other.split_indices("val").tolist() != ds.split_indices("val").tolist()
    assert res.report["leakage"]["test"]["share"] is None


def test_unpaired_files_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _png_set(src, "train", 3)
    (src / "train" / "masks" / "mask_1.png").unlink()
    with pytest.raises(DatasetError, match=r"1 image\(s\) without mask, e\.g\. image_1\.png"):
        import_patches(src, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_npy_and_geotiff_patches(tmp_path: Path) -> None:
    src = tmp_path / "flat"
    (src / "img").mkdir(parents=True)
    (src / "labels").mkdir()
    rng = np.random.default_rng(0)
    arrs = []
    for k in range(4):
        a = rng.integers(0, 3000, size=(8, 8, 4), dtype=np.uint16)  # (H, W, C)
        np.save(src / "img" / f"patch_{k:03d}.npy", a)
        lab = np.zeros((8, 8), np.uint8)
        lab[k, :] = 1
        lab[0, 0] = 255
        np.save(src / "labels" / f"gt_{k}.npy", lab)
        arrs.append((a, lab))
    with pytest.raises(BandError, match="--band-names"):
        import_patches(src, tmp_path / "x")
    ds = import_patches(src, tmp_path / "ds", band_names=["blue", "green", "red", "nir"],
                        val_fraction=0.25).dataset
    assert ds.counts == {"train": 3, "val": 1, "test": 0}
    for row in ds.index:
        k = int(row.source.split("_")[1][:3])
        np.testing.assert_array_equal(ds.images[row.id], np.moveaxis(arrs[k][0], -1, 0))
        np.testing.assert_array_equal(ds.labels[row.id], arrs[k][1])  # 0/1/255 kept
    assert len(ds.band_stats("bg-ndvi")[0]) == 3

    from rasterio.crs import CRS

    from landslip.grid import Grid
    from landslip.io.raster import write_raster

    tif = tmp_path / "tif"
    (tif / "images").mkdir(parents=True)
    (tif / "masks").mkdir()
    g = Grid.from_bounds(CRS.from_epsg(32654), 0, 80, 10, 8, 8)
    for k in range(3):
        write_raster(tif / "images" / f"s{k}.tif", np.full((2, 8, 8), k + 1, np.uint16), g,
                     descriptions=["red", "nir"])
        write_raster(tif / "masks" / f"s{k}.tif", np.full((8, 8), k % 2, np.uint8), g)
    ds = import_patches(tif, tmp_path / "dst", val_fraction=0).dataset
    assert ds.band_names == ("red", "nir") and ds.counts["train"] == 3


def _h5(path: Path, **arrays: np.ndarray) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)


def test_landslide4sense_h5_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    src = tmp_path / "l4s"
    truth = {}
    for folder, n in (("TrainData", 4), ("ValidData", 2)):
        for k in range(1, n + 1):
            img = rng.random((128, 128, 14), dtype=np.float32)
            mask = (rng.random((128, 128)) < 0.05).astype(np.uint8)
            _h5(src / folder / "img" / f"image_{k}.h5", img=img)
            _h5(src / folder / "mask" / f"mask_{k}.h5", mask=mask)
            truth[f"{folder}/img/image_{k}.h5"] = (img, mask)
    res = import_patches(src, tmp_path / "ds", val_fraction=0.5)
    ds = res.dataset
    assert res.report["layout"] == "l4s-h5"
    assert ds.counts == {"train": 4, "val": 2, "test": 0}  # val from its folder, not carved
    assert ds.band_names == L4S_BAND_NAMES and ds.images.shape == (6, 14, 128, 128)
    assert ds.images.dtype == np.float32
    for row in ds.index:
        img, mask = truth[row.source]
        np.testing.assert_array_equal(ds.images[row.id], np.moveaxis(img, -1, 0))
        np.testing.assert_array_equal(ds.labels[row.id], mask)
    means, _ = ds.band_stats("bg-ndvi")
    assert -1 <= means[2] <= 1


def test_cli_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    _png_set(src, "train", 4)
    assert main(["-q", "import-patches", str(src), "-o", str(tmp_path / "ds"),
                 "--val-fraction", "0.25"]) == 0
    assert "train 3, val 1, test 0" in capsys.readouterr().out
    assert main(["import-patches", str(tmp_path / "nope"), "-o", str(tmp_path / "x")]) == 2


@pytest.mark.realdata
def test_real_landslide4sense_rgb(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "l4s-rgb"
    if not src.is_dir():
        pytest.skip(f"{src} is absent")
    t0 = time.perf_counter()
    ds = import_patches(src, tmp_path / "l4s", val_fraction=0).dataset
    assert ds.counts == {"train": 1385, "val": 0, "test": 199}
    assert ds.patch_size == 128 and ds.band_names == ("red", "green", "blue")
    rng = np.random.default_rng(0)
    for i in rng.choice(len(ds), size=60, replace=False):
        row = ds.index[int(i)]
        img = np.asarray(Image.open(src / row.source))
        mpath = src / row.source.replace("images", "masks").replace("image_", "mask_")
        m = np.asarray(Image.open(mpath))
        np.testing.assert_array_equal(ds.images[row.id], np.moveaxis(img[..., :3], -1, 0))
        np.testing.assert_array_equal(ds.labels[row.id], (m[..., 0] > 127).astype(np.uint8))
    share = float((ds.labels[:] == 1).mean())
    assert 0.03 < share < 0.06  # README: about 4.5 % landslide pixels
    assert time.perf_counter() - t0 < 60  # measured about 10 s on 2 shared cores
