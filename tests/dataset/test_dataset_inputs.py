"""Inputs from elsewhere: NaN, declared nodata, alpha bands, class labels, a test-only import."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.enums import ColorInterp

from helpers.inputs import make_bundle, utm_grid, write_labels, write_scene
from landslip.dataset.imports import import_patches
from landslip.dataset.prepare import prepare_dataset
from landslip.encoding import IGNORE
from landslip.evaluation.evaluate import EvaluateOptions, evaluate


def _rgba_tif(path: Path, h: int, w: int, seed: int = 0) -> np.ndarray:
    """An RGBA GeoTIFF (alpha 0 on the first row); returns its alpha band."""
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 250, (4, h, w)).astype(np.uint8)
    data[3] = 255
    data[3, 0] = 0
    g = utm_grid(h, w)
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=4, dtype="uint8",
                       crs=g.crs, transform=g.transform, photometric="RGB",
                       alpha="YES") as ds:
        ds.write(data)
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue,
                          ColorInterp.alpha]
    return data[3]


def test_prepare_treats_nan_as_nodata(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = np.random.default_rng(0).uniform(100, 900, (4, 32, 32)).astype(np.float64)
    data[1, 3, :] = np.nan
    data[0, 5, 4] = np.inf
    write_scene(tmp_path / "img.tif", data=data, nodata=None)
    write_labels(tmp_path / "lab.tif", 32, 32)
    ds = prepare_dataset(tmp_path / "img.tif", tmp_path / "lab.tif", tmp_path / "ds",
                         patch_size=16, fractions=[0.5, 0.25, 0.25]).dataset
    assert "33 pixel(s) hold NaN or infinite values" in caplog.text
    images, labels = np.asarray(ds.images), np.asarray(ds.labels)
    bad = ~np.isfinite(images).all(axis=1)
    assert bad.sum() == 33 and (labels[bad] == IGNORE).all()
    for s in ds.stats.values():
        assert all(math.isfinite(float(v)) for v in s.values())


def test_prepare_with_declared_nodata_and_class_labels(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(1, 900, (4, 32, 32)).astype(np.int16)
    data[:, :, :4] = -9999
    write_scene(tmp_path / "img.tif", data=data, nodata=None)
    write_labels(tmp_path / "lab.tif", 32, 32, values=(0, 1, 2, 3))
    ds = prepare_dataset(tmp_path / "img.tif", tmp_path / "lab.tif", tmp_path / "ds",
                         patch_size=16, nodata=-9999, landslide_values=[2, 3]).dataset
    assert ds.nodata == -9999
    labels = np.asarray(ds.labels)
    src = rasterio.open(tmp_path / "lab.tif").read(1)
    for k, row in enumerate(ds.index):
        win = src[row.row_off:row.row_off + 16, row.col_off:row.col_off + 16]
        img = np.asarray(ds.images[k])
        expect = np.where(np.isin(win, (2, 3)), 1, 0)
        expect = np.where((img == -9999).any(axis=0), IGNORE, expect)
        np.testing.assert_array_equal(labels[k], expect)


def test_prepare_drops_an_alpha_band(tmp_path: Path) -> None:
    alpha = _rgba_tif(tmp_path / "rgba.tif", 32, 32)
    write_labels(tmp_path / "lab.tif", 32, 32)
    ds = prepare_dataset(tmp_path / "rgba.tif", tmp_path / "lab.tif", tmp_path / "ds",
                         patch_size=16).dataset
    assert ds.band_names == ("red", "green", "blue") and ds.images.shape[1] == 3
    for k, row in enumerate(ds.index):
        a = alpha[row.row_off:row.row_off + 16, row.col_off:row.col_off + 16]
        assert (np.asarray(ds.labels[k])[a == 0] == IGNORE).all()


def _patch_folder(root: Path, kind: str, n: int = 4) -> None:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(2)
    for k in range(n):
        if kind == "rgba-tif":
            _rgba_tif(root / "images" / f"image_{k}.tif", 16, 16, seed=k)
        elif kind == "rgba-png":
            arr = rng.integers(1, 250, (16, 16, 4)).astype(np.uint8)
            arr[..., 3] = 255
            arr[0, :, 3] = 0
            Image.fromarray(arr, "RGBA").save(root / "images" / f"image_{k}.png")
        else:
            arr = rng.uniform(0, 1, (3, 16, 16)).astype(np.float32)
            arr[:, 2, 2] = np.nan
            np.save(root / "images" / f"image_{k}.npy", arr)
        mask = (np.eye(16) * (1 + k % 3)).astype(np.uint8)  # classes 1..3
        Image.fromarray(mask).save(root / "masks" / f"mask_{k}.png")


@pytest.mark.parametrize("kind", ["rgba-tif", "rgba-png"])
def test_import_treats_alpha_the_same_in_tif_and_png(kind: str, tmp_path: Path) -> None:
    _patch_folder(tmp_path / "src", kind)
    ds = import_patches(tmp_path / "src", tmp_path / "ds", landslide_values=[1, 2]).dataset
    assert ds.band_names == ("red", "green", "blue")
    labels = np.asarray(ds.labels)
    assert (labels[:, 0] == IGNORE).all()
    eye = np.eye(16, dtype=bool)
    eye[0, 0] = False
    for k in range(len(ds)):
        cls = 1 + int(Path(ds.index[k].source).stem.split("_")[1]) % 3
        assert (labels[k][eye] == (1 if cls in (1, 2) else 0)).all()


def test_import_nan_patches_as_a_test_split_and_evaluate(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _patch_folder(tmp_path / "src", "npy")
    ds = import_patches(tmp_path / "src", tmp_path / "ds", band_names=["blue", "green", "red"],
                        landslide_values=[1, 2, 3], as_split="test").dataset
    assert "4 pixel(s) hold NaN or infinite values" in caplog.text
    assert ds.counts == {"train": 0, "val": 0, "test": 4}
    assert (np.asarray(ds.labels)[:, 2, 2] == IGNORE).all()
    assert ds.meta["split"]["as_split"] == "test"
    run = make_bundle(tmp_path / "run" / "bundle", with_profile=False).parent
    res = evaluate(run, ds, EvaluateOptions(out_dir=tmp_path / "ev", figure_patches=0))
    assert res.report["dataset"]["patches"] == 4
    assert res.report["pixel"]["pixels"] == 4 * (16 * 16 - 1)


def test_import_class_masks_need_landslide_values(tmp_path: Path) -> None:
    from landslip.errors import LabelError

    _patch_folder(tmp_path / "src", "rgba-png")
    with pytest.raises(LabelError, match="--landslide-values"):
        import_patches(tmp_path / "src", tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
