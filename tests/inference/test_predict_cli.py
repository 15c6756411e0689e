"""``landslip predict`` with a real (tiny, random) model bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rasterio.crs import CRS

from landslip.cli.app import main
from landslip.grid import Grid
from landslip.inference.predict import predict_scene
from landslip.io.raster import read_raster, write_raster
from landslip.models.bundle import BundleMeta, save_bundle
from landslip.models.registry import create_model


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = create_model("unet", 3, width=4, depth=2)
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=3,
                      band_set="bg-ndvi", band_names=["blue", "green", "ndvi"],
                      mean=[300.0, 400.0, 0.2], std=[50.0, 60.0, 0.3], threshold=0.4)
    save_bundle(tmp_path / "run" / "bundle", model, meta)
    return tmp_path / "run"


def _image(path: Path, names: list[str] | None, h: int = 90, w: int = 110) -> Grid:
    rng = np.random.default_rng(1)
    img = rng.integers(100, 900, (4, h, w)).astype(np.uint16)
    img[:, :5, :] = 0
    grid = Grid.from_bounds(CRS.from_epsg(32654), 500000.0, 4740000.0, 1.5, h, w)
    write_raster(path, img, grid, nodata=0, descriptions=names)
    return grid


def test_cli_predicts_with_the_bundle(run_dir: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    grid = _image(tmp_path / "img.tif", ["blue", "green", "red", "nir"])
    rc = main(["-q", "predict", str(run_dir), str(tmp_path / "img.tif"), "-o",
               str(tmp_path / "out"), "--window", "64", "--overlap", "32", "--geojson",
               "--probability-dtype", "float32"])
    assert rc == 0, capsys.readouterr().err
    assert "polygon" in capsys.readouterr().out
    prob, pgrid = read_raster(tmp_path / "out" / "probability.tif")
    mask, mgrid = read_raster(tmp_path / "out" / "landslides.tif")
    assert pgrid.aligned_with(grid) and mgrid.aligned_with(grid)
    assert np.isnan(prob[0, :5]).all() and (mask[0, :5] == 255).all()
    inside = prob[0, 5:]
    assert np.isfinite(inside).all() and inside.min() >= 0 and inside.max() <= 1
    np.testing.assert_array_equal(mask[0, 5:], (inside >= 0.4).astype(np.uint8))
    report = json.loads((tmp_path / "out" / "prediction.json").read_text())
    assert report["threshold"] == 0.4 and report["band_set"] == "bg-ndvi"
    assert (tmp_path / "out" / "landslides.geojson").is_file()


def test_api_threshold_override_and_band_names(run_dir: Path, tmp_path: Path) -> None:
    _image(tmp_path / "anon.tif", None)
    r = predict_scene(run_dir / "bundle" / "model.json", tmp_path / "anon.tif", tmp_path / "o",
                      band_names=["blue", "green", "red", "nir"], threshold=0.6, window=64,
                      overlap=16)
    assert r.threshold == 0.6 and r.polygons.is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--band-names", "a,b,c,d"], "needs band"),
        (["--window", "0"], "--window"),
        (["--probability-dtype", "int16"], "probability-dtype"),
        (["--threshold", "1.0"], "threshold"),
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
    message: str,
) -> None:
    _image(tmp_path / "img.tif", ["blue", "green", "red", "nir"])
    rc = main(["-q", "predict", str(run_dir), str(tmp_path / "img.tif"), "-o",
               str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and "Error:" in err and message in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cli_refuses_unnamed_bands_and_missing_bundle(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _image(tmp_path / "anon.tif", None)
    assert main(["predict", str(run_dir), str(tmp_path / "anon.tif"), "-o",
                 str(tmp_path / "out")]) == 2
    assert "--band-names" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nothing"), str(tmp_path / "anon.tif"), "-o",
                 str(tmp_path / "out")]) == 2
    assert "no model bundle" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
