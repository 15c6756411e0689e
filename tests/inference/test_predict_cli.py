"""``landslip predict`` with a real (tiny, random) model bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rasterio.crs import CRS

from landslip.cli.app import main
from landslip.encoding import apply_threshold, decode_probability
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
    """Default run: the bundle's threshold (0.4) decides the mask written next to the uint8
    probability codes."""
    grid = _image(tmp_path / "img.tif", ["blue", "green", "red", "nir"])
    rc = main(["-q", "predict", str(run_dir), str(tmp_path / "img.tif"), "-o",
               str(tmp_path / "out"), "--window", "64", "--overlap", "32", "--geojson"])
    assert rc == 0, capsys.readouterr().err
    assert "polygon" in capsys.readouterr().out
    codes, pgrid = read_raster(tmp_path / "out" / "probability.tif")
    mask, mgrid = read_raster(tmp_path / "out" / "landslides.tif")
    assert pgrid.aligned_with(grid) and mgrid.aligned_with(grid)
    assert (codes[0, :5] == 255).all() and (mask[0, :5] == 255).all()
    prob = decode_probability(codes[0, 5:])
    assert np.isfinite(prob).all() and codes[0, 5:].max() <= 254
    # The mask is p >= 0.4 wherever the uint8 rounding (half a step, 1/508) cannot matter.
    clear = np.abs(prob - 0.4) > 1 / 508
    np.testing.assert_array_equal(mask[0, 5:][clear], (prob[clear] >= 0.4).astype(np.uint8))
    report = json.loads((tmp_path / "out" / "prediction.json").read_text())
    assert report["threshold"] == 0.4 and report["band_set"] == "bg-ndvi"
    assert (tmp_path / "out" / "landslides.geojson").is_file()


def test_cli_mask_uses_the_threshold_given(run_dir: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--threshold T: the written mask is exactly p >= T on the float32 probabilities read back
    from probability.tif, and differs from the mask at the bundle's threshold."""
    _image(tmp_path / "img.tif", ["blue", "green", "red", "nir"])
    args = ["-q", "predict", str(run_dir), str(tmp_path / "img.tif"), "--window", "64",
            "--overlap", "32", "--probability-dtype", "float32"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0, capsys.readouterr().err
    p0 = read_raster(tmp_path / "a" / "probability.tif")[0][0, 5:]
    # A threshold well inside the predicted probabilities, away from the bundle's 0.4.
    q = [float(np.quantile(p0, f)) for f in (0.25, 0.75)]
    t = round(max(q, key=lambda v: abs(v - 0.4)), 4)
    assert main([*args, "-o", str(tmp_path / "b"), "--threshold", str(t)]) == 0
    prob = read_raster(tmp_path / "b" / "probability.tif")[0][0]
    mask = read_raster(tmp_path / "b" / "landslides.tif")[0][0]
    np.testing.assert_array_equal(prob[5:], p0)
    np.testing.assert_array_equal(mask[5:], apply_threshold(prob[5:], t).astype(np.uint8))
    assert 0 < mask[5:].mean() < 1
    assert (mask[5:] != apply_threshold(prob[5:], 0.4)).sum() > 100
    assert json.loads((tmp_path / "b" / "prediction.json").read_text())["threshold"] == t


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
