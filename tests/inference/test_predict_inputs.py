"""Prediction on awkward inputs: NaN, declared nodata, alpha, empty scenes; --min-area agreement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.features
from rasterio.crs import CRS
from rasterio.enums import ColorInterp

from helpers.inputs import make_bundle, utm_grid, write_scene
from landslip.encoding import PROBABILITY_NODATA
from landslip.inference.min_area import drop_small_landslides
from landslip.inference.predict import predict_scene
from landslip.inference.vectorize import polygonize_mask
from landslip.io.raster import read_raster, write_raster

KW = {"window": 32, "overlap": 8, "geojson": False}


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "run" / "bundle", with_profile=False).parent


def _codes(folder: Path) -> np.ndarray:
    return read_raster(folder / "probability.tif")[0][0]


def test_nan_is_nodata_and_does_not_leak_into_neighbours(
        run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """NaN rows: nodata in every output, and the rows beside them are predicted exactly as
    when the same pixels are tagged nodata (before, they came out all 0)."""
    data = np.random.default_rng(0).uniform(100, 900, (4, 48, 40)).astype(np.float32)
    data[:, 20:22] = np.nan
    data[0, 30, 7] = np.inf
    write_scene(tmp_path / "nan.tif", data=data, nodata=None)
    tagged = np.where(np.isfinite(data).all(axis=0), data, np.float32(-9999))
    write_scene(tmp_path / "tagged.tif", data=tagged, nodata=-9999)
    predict_scene(run, tmp_path / "nan.tif", tmp_path / "a", **KW)
    predict_scene(run, tmp_path / "tagged.tif", tmp_path / "b", **KW)
    assert "81 pixel(s) hold NaN or infinite values" in caplog.text
    a, b = _codes(tmp_path / "a"), _codes(tmp_path / "b")
    np.testing.assert_array_equal(a, b)
    assert (a[20:22] == PROBABILITY_NODATA).all() and a[30, 7] == PROBABILITY_NODATA
    assert (a[[19, 22]] != PROBABILITY_NODATA).all()
    mask = read_raster(tmp_path / "a" / "landslides.tif")[0][0]
    assert (mask[20:22] == 255).all()


def test_declared_nodata(run: Path, tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(100, 900, (4, 40, 40)).astype(np.uint16)
    data[:, :, :6] = 7
    write_scene(tmp_path / "img.tif", data=data, nodata=None)
    predict_scene(run, tmp_path / "img.tif", tmp_path / "a", nodata=7, **KW)
    codes = _codes(tmp_path / "a")
    assert (codes[:, :6] == PROBABILITY_NODATA).all()
    assert (codes[:, 6:] != PROBABILITY_NODATA).all()


def test_alpha_zero_is_nodata(run: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    data = rng.integers(100, 250, (4, 40, 40)).astype(np.uint8)
    data[3] = 255
    data[3, :, :5] = 0
    g = utm_grid(40, 40)
    with rasterio.open(tmp_path / "rgba.tif", "w", driver="GTiff", height=40, width=40,
                       count=4, dtype="uint8", crs=g.crs, transform=g.transform,
                       photometric="RGB", alpha="YES") as ds:
        ds.write(data)
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue,
                          ColorInterp.alpha]
    predict_scene(run, tmp_path / "rgba.tif", tmp_path / "a", **KW)
    codes = _codes(tmp_path / "a")
    assert (codes[:, :5] == PROBABILITY_NODATA).all()
    assert (codes[:, 5:] != PROBABILITY_NODATA).all()


def test_an_all_nodata_scene_warns(run: Path, tmp_path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    write_scene(tmp_path / "empty.tif", data=np.zeros((4, 40, 40), np.uint16), nodata=0)
    r = predict_scene(run, tmp_path / "empty.tif", tmp_path / "a", **KW)
    assert r.valid_pixels == 0
    assert "every pixel the model needs is nodata" in caplog.text


def _blobs(path: Path, crs: CRS | str = "EPSG:32654", res: float = 2.0) -> np.ndarray:
    """A mask with landslides of 1, 2 (diagonal), 4, 9 and 30 pixels and a nodata corner."""
    m = np.zeros((30, 40), dtype=np.uint8)
    m[1, 1] = 1
    m[5, 5] = m[6, 6] = 1  # one 8-connected landslide of 2 pixels
    m[10:12, 10:12] = 1
    m[20:23, 3:6] = 1
    m[2:8, 30:35] = 1
    m[29, 39] = 255
    grid = utm_grid(30, 40, res=res, left=500000.0 if crs != "EPSG:4326" else 141.9,
                    top=4740000.0 if crs != "EPSG:4326" else 42.7, crs=CRS.from_user_input(crs))
    write_raster(path, m, grid, nodata=255)
    return m


@pytest.mark.parametrize(("crs", "res", "min_px", "kept"), [
    ("EPSG:32654", 2.0, 4, [4, 9, 30]), ("EPSG:32654", 2.0, 5, [9, 30]),
    ("EPSG:4326", 2e-5, 5, [9, 30])])
def test_min_area_drops_pixels_and_polygons_alike(tmp_path: Path, crs: str, res: float,
                                                  min_px: int, kept: list[int]) -> None:
    m = _blobs(tmp_path / "mask.tif", crs, res)
    polys = polygonize_mask(tmp_path / "mask.tif")
    per_pixel = float(np.median(polys.frame["area_m2"] / polys.frame["pixels"]))
    out = drop_small_landslides(polys, tmp_path / "mask.tif", (min_px - 0.5) * per_pixel)
    assert sorted(out.frame["pixels"]) == kept
    assert list(out.frame["id"]) == list(range(1, len(kept) + 1))
    assert out.dropped == 5 - len(kept) and out.dropped_pixels == 46 - sum(kept)
    new, grid = read_raster(tmp_path / "mask.tif")
    burned = rasterio.features.rasterize([(g, 1) for g in out.frame.geometry],
                                         out_shape=m.shape, transform=grid.transform)
    np.testing.assert_array_equal(new[0] == 1, burned == 1)  # mask == polygons
    assert new[0][29, 39] == 255 and int((new[0] == 1).sum()) == sum(kept)


def test_predict_min_area_keeps_mask_and_polygons_in_agreement(tmp_path: Path) -> None:
    import geopandas as gpd

    from landslip.encoding import decode_probability

    run = make_bundle(tmp_path / "run" / "bundle", with_profile=False, std=2.0).parent
    write_scene(tmp_path / "img.tif", h=64, w=64)
    predict_scene(run, tmp_path / "img.tif", tmp_path / "b", **KW)
    t = float(np.median(decode_probability(_codes(tmp_path / "b"))))
    predict_scene(run, tmp_path / "img.tif", tmp_path / "all", threshold=t, **KW)
    r = predict_scene(run, tmp_path / "img.tif", tmp_path / "a", min_area=30.0, threshold=t,
                      **KW)
    mask, grid = read_raster(tmp_path / "a" / "landslides.tif")
    frame = gpd.read_file(tmp_path / "a" / "landslides.gpkg")
    assert len(frame) and (frame["area_m2"] >= 30.0).all()
    burned = rasterio.features.rasterize([(g, 1) for g in frame.geometry], out_shape=(64, 64),
                                         transform=grid.transform)
    np.testing.assert_array_equal(mask[0] == 1, burned == 1)
    assert r.landslide_pixels == int((mask[0] == 1).sum())
    everything = read_raster(tmp_path / "all" / "landslides.tif")[0][0]
    assert (everything == 1).sum() > (mask[0] == 1).sum()  # small landslides were dropped
    np.testing.assert_array_equal(mask[0] == 1, (everything == 1) & (mask[0] == 1))
