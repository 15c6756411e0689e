"""``predict --extra`` builds the training inputs (slope with halos); ``--min-slope``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from rasterio.crs import CRS
from torch import nn

from landslip.cli.app import main
from landslip.errors import BandError, InputError
from landslip.grid import Grid
from landslip.inference.predict import PredictOptions, match_bands, predict_image
from landslip.inference.stream import InputSpec
from landslip.io.raster import raster_info, read_raster, write_raster
from landslip.models.bundle import BundleMeta, save_bundle
from landslip.models.registry import create_model
from landslip.spectral.bands import BandSet, resolve_band_set
from landslip.spectral.extras import model_inputs
from landslip.spectral.terrain import HALO, terrain_window

UTM = CRS.from_epsg(32654)
GRID = Grid.from_bounds(UTM, 500000.0, 4740000.0, 2.0, 70, 90)


class Band0Logit(nn.Module):
    """Stand-in model: the logit is the first (normalised) input band (one-band sets here)."""

    in_channels = 1
    required_multiple = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1]


def _write_inputs(folder: Path) -> tuple[Path, Path, np.ndarray]:
    """Image (blue bright in two squares) and a DEM flat in the west, 30 degrees in the east."""
    img = np.full((4, 70, 90), 100, np.uint16)
    img[0, 20:30, 10:20] = 900  # a square on flat ground
    img[0, 40:52, 60:75] = 900  # a square on the 30-degree slope
    cols = np.arange(-3, 93)[None, :].repeat(76, axis=0)
    x = (cols + 0.5) * 2.0
    dem = np.where(x < 80.0, 50.0, 50.0 + math.tan(math.radians(30.0)) * (x - 80.0))
    dem_grid = GRID.window_grid(GRID.full_window().expand(3))  # DEM larger than the image
    write_raster(folder / "img.tif", img, GRID, nodata=0,
                 descriptions=["blue", "green", "red", "nir"])
    write_raster(folder / "dem.tif", dem[None].astype(np.float32), dem_grid,
                 descriptions=["dem"])
    return folder / "img.tif", folder / "dem.tif", dem.astype(np.float32)


def _spec(band_set: BandSet, image: Path, extras: list[str], mean: float, std: float,
          need_slope: bool = False) -> InputSpec:
    info = raster_info(image)
    inputs = model_inputs(band_set, info, None, extras, need_slope)
    return InputSpec(band_set, match_bands(info, inputs.image_set), (mean,), (std,),
                     info.nodata, inputs.extras)


def test_slope_input_is_computed_on_the_scene_with_halos(tmp_path: Path) -> None:
    image, dem_path, dem = _write_inputs(tmp_path)
    spec = _spec(resolve_band_set("slope"), image, [str(dem_path)], 20.0, 10.0)
    assert spec.band_indexes == ()
    with spec.extras:
        predict_image(Band0Logit(), spec, image, tmp_path / "out", PredictOptions(
            window=64, overlap=32, probability_dtype="float32", polygons=False))
    prob = read_raster(tmp_path / "out" / "probability.tif")[0][0]
    inner = dem[3 - HALO:73 + HALO, 3 - HALO:93 + HALO]
    slope = terrain_window(inner, GRID, GRID.full_window())[0]
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-(slope - 20.0) / 10.0)), atol=2e-6)
    assert slope[:, :35].max() < 1e-3 and abs(slope[:, 45:].mean() - 30.0) < 1e-3


def test_min_slope_drops_flat_polygons_and_mean_slope_is_written(tmp_path: Path) -> None:
    import geopandas as gpd

    image, dem_path, _ = _write_inputs(tmp_path)
    for name, min_slope in (("all", None), ("steep", 10.0)):
        spec = _spec(resolve_band_set("blue"), image, [f"dem={dem_path}"], 500.0, 100.0,
                     need_slope=min_slope is not None)
        with spec.extras:
            predict_image(Band0Logit(), spec, image, tmp_path / name, PredictOptions(
                window=64, overlap=32, min_slope=min_slope))
    every = gpd.read_file(tmp_path / "all" / "landslides.gpkg")
    steep = gpd.read_file(tmp_path / "steep" / "landslides.gpkg")
    assert len(every) == 2 and len(steep) == 1
    np.testing.assert_allclose(sorted(every["mean_slope"]), [0.0, 30.0], atol=1e-3)
    assert steep["mean_slope"].iloc[0] == pytest.approx(30.0, abs=1e-3)
    assert steep["id"].tolist() == [1] and steep["pixels"].iloc[0] == 12 * 15
    # the mask agrees with the polygons: the flat square's pixels are background in "steep"
    import rasterio

    with rasterio.open(tmp_path / "all" / "landslides.tif") as a, \
            rasterio.open(tmp_path / "steep" / "landslides.tif") as b:
        all_mask, steep_mask = a.read(1), b.read(1)
    assert (all_mask[20:30, 10:20] == 1).all() and (steep_mask[20:30, 10:20] == 0).all()
    assert (steep_mask[40:52, 60:75] == 1).all()
    assert int((steep_mask == 1).sum()) == 12 * 15


def test_min_slope_without_a_dem_is_refused(tmp_path: Path) -> None:
    image, _, _ = _write_inputs(tmp_path)
    with pytest.raises(InputError, match=r"--extra dem=DEM\.tif"):
        model_inputs(resolve_band_set("blue"), raster_info(image), None, [], need_slope=True)


def test_cli_refuses_a_missing_extra_before_writing(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    model = create_model("unet", 5, width=4, depth=2)
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=5,
                      band_set="bg-ndvi,dndvi,slope",
                      band_names=["blue", "green", "ndvi", "dndvi", "slope"],
                      mean=[300.0, 400.0, 0.2, 0.0, 20.0], std=[50.0, 60.0, 0.3, 0.2, 10.0],
                      threshold=0.5)
    save_bundle(tmp_path / "run" / "bundle", model, meta)
    image, dem, _ = _write_inputs(tmp_path)
    pre = tmp_path / "pre.tif"
    write_raster(pre, np.full((4, 70, 90), 200, np.uint16), GRID,
                 descriptions=["blue", "green", "red", "nir"])
    args = ["predict", str(tmp_path / "run"), str(image), "--window", "64", "--overlap", "32"]
    for extra, missing in (([], "pre_nir, pre_red, slope"), ([f"dem={dem}"], "pre_nir, pre_red"),
                           ([f"pre={pre}"], "slope")):
        out = tmp_path / f"out{len(extra)}{missing[:3]}"
        rc = main([*args, "-o", str(out), *[a for e in extra for a in ("--extra", e)]])
        assert rc == 2
        err = capsys.readouterr().err
        assert f"needs band(s) {missing}" in err and "--extra" in err
        assert not out.exists()
    assert main([*args, "-o", str(tmp_path / "ok"), "--extra", f"pre={pre}", "--extra",
                 str(dem), "--min-slope", "5"]) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "ok" / "prediction.json").read_text())
    assert report["min_slope"] == 5.0 and [e["bands"] for e in report["extras"]] == [
        ["pre_blue", "pre_green", "pre_red", "pre_nir"], ["dem"]]


def test_model_inputs_split_between_image_and_extras(tmp_path: Path) -> None:
    image, dem, _ = _write_inputs(tmp_path)
    bs = resolve_band_set("bgrn,slope")
    inputs = model_inputs(bs, raster_info(image), None, [str(dem)])
    assert inputs.image_set.required == ("blue", "green", "red", "nir")
    assert inputs.extras is not None and inputs.extras.names == ("dem", "slope")
    with pytest.raises(BandError, match=r"needs band\(s\) slope"):
        model_inputs(bs, raster_info(image), None, [])
