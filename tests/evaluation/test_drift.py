"""The drift rule: the training profile in the bundle, the input's medians, warn or refuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.datasets import write_synthetic_dataset
from helpers.inputs import make_bundle, write_scene
from landslip.dataset.folder import open_dataset
from landslip.dataset.stats import valid_mask
from landslip.errors import DriftError
from landslip.evaluation.drift import (
    Measurement,
    check_drift,
    measure_image,
    measure_patches,
    profile_dataset,
)
from landslip.evaluation.evaluate import EvaluateOptions, evaluate
from landslip.inference.predict import predict_scene
from landslip.models.bundle import BandProfile, BundleMeta, InputProfile, read_bundle_meta

PROFILE = InputProfile(dtype="uint16", pixels=100,
                       bands={"red": BandProfile(p1=100.0, p50=500.0, p99=900.0),
                              "nir": BandProfile(p1=200.0, p50=400.0, p99=600.0)})


def _measured(red: float, nir: float = 400.0, dtype: str = "uint16") -> Measurement:
    return Measurement("input.tif", dtype, {"red": red, "nir": nir}, 50)


@pytest.mark.parametrize(("red", "far"), [(100.0, False), (900.0, False), (500.0, False),
                                          (99.9, True), (900.1, True), (5000.0, True)])
def test_both_sides_of_the_threshold(red: float, far: bool,
                                     caplog: pytest.LogCaptureFixture) -> None:
    """Far means: the input median strictly outside the training 1-99 % range."""
    found = check_drift(PROFILE, _measured(red))
    assert bool(found) == far
    assert ("far outside" in caplog.text) == far
    if far:
        assert len(found) == 1 and found[0].startswith(f"red median {red:.4g}")
        assert "outside the training 1-99 % range 100 to 900" in found[0]


def test_message_names_bands_ratio_and_dtypes() -> None:
    with pytest.raises(DriftError) as err:
        check_drift(PROFILE, _measured(5000.0, 10.0, dtype="float64"), strict=True)
    text = str(err.value)
    assert "red median 5000 is 10x the training median 500" in text
    assert "nir median 10 is 0.025x the training median 400" in text
    assert "trained on uint16 data, the input is float64" in text and "--strict" in text
    assert "\n" not in text


def test_no_profile_no_check() -> None:
    assert check_drift(None, _measured(1e9), strict=True) == []


def test_measure_image_uses_valid_pixels_only(tmp_path: Path) -> None:
    data = np.full((4, 40, 40), 300, dtype=np.uint16)
    data[:, :, :10] = 0  # nodata
    data[2, :, 10:] = 700  # red
    write_scene(tmp_path / "a.tif", data=data, nodata=0)
    m = measure_image(tmp_path / "a.tif", [3, 4], ["red", "nir"], 0.0)
    assert m.medians == {"red": 700.0, "nir": 300.0} and m.pixels == 40 * 30
    f = data.astype(np.float32)
    f[:, :20] = np.nan
    write_scene(tmp_path / "b.tif", data=f, nodata=None)
    m = measure_image(tmp_path / "b.tif", [3], ["red"], None)
    assert m.medians == {"red": 700.0} and m.dtype == "float32" and m.pixels == 20 * 40


def test_measure_image_samples_large_scenes_in_windows(tmp_path: Path) -> None:
    data = np.zeros((4, 1100, 1300), dtype=np.uint8)
    data[:] = 9
    write_scene(tmp_path / "big.tif", data=data, nodata=None)
    m = measure_image(tmp_path / "big.tif", [1], ["blue"], None)
    assert m.pixels == 16 * 256 * 256 and m.medians == {"blue": 9.0}


def test_profile_of_a_dataset_is_the_training_percentiles(tmp_path: Path) -> None:
    ds = write_synthetic_dataset(tmp_path / "ds", n=8, patch_size=16)
    prof = profile_dataset(ds, ["red", "nir"])
    assert prof is not None and prof.dtype == "uint16"
    idx = ds.split_indices("train")
    imgs, labs = np.asarray(ds.images[idx]), np.asarray(ds.labels[idx])
    valid = valid_mask(imgs, labs, ds.nodata)
    red = imgs[:, ds.band_names.index("red")][valid].astype(np.float64)
    assert prof.bands["red"].p50 == pytest.approx(float(np.median(red)))
    assert prof.bands["red"].p1 == pytest.approx(float(np.percentile(red, 1)))
    assert prof.pixels == int(valid.sum())
    small = profile_dataset(ds, ["red"], max_pixels=256)  # one patch of 16 x 16
    assert small is not None and small.pixels <= 256
    m = measure_patches(ds, ds.split_indices("test"), ["red"])
    assert check_drift(prof, m) == []


def test_old_bundles_without_a_profile_still_load(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", with_profile=False)
    doc = json.loads((bundle / "model.json").read_text())
    del doc["input_profile"]
    (bundle / "model.json").write_text(json.dumps(doc))
    assert read_bundle_meta(bundle).input_profile is None
    assert BundleMeta.from_json(doc).input_profile is None


def test_predict_warns_or_refuses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run = make_bundle(tmp_path / "run" / "bundle").parent
    write_scene(tmp_path / "far.tif", low=5000, high=9000)
    write_scene(tmp_path / "near.tif", low=200, high=800)
    with pytest.raises(DriftError, match="blue median"):
        predict_scene(run, tmp_path / "far.tif", tmp_path / "o1", window=32, overlap=8,
                      strict=True)
    assert not (tmp_path / "o1").exists()
    predict_scene(run, tmp_path / "near.tif", tmp_path / "o2", window=32, overlap=8,
                  strict=True)
    assert "far outside" not in caplog.text
    predict_scene(run, tmp_path / "far.tif", tmp_path / "o3", window=32, overlap=8)
    assert "far outside" in caplog.text and (tmp_path / "o3" / "probability.tif").is_file()


def test_evaluate_refuses_with_strict(tmp_path: Path) -> None:
    ds = write_synthetic_dataset(tmp_path / "ds", n=8, patch_size=32)
    tiny = InputProfile(dtype="uint8", pixels=10,
                        bands={b: BandProfile(p1=1.0, p50=50.0, p99=99.0)
                               for b in ("blue", "green", "red")})
    run = make_bundle(tmp_path / "run" / "bundle", profile=tiny).parent
    with pytest.raises(DriftError, match="trained on uint8 data, the input is uint16"):
        evaluate(run, ds, EvaluateOptions(out_dir=tmp_path / "ev", strict=True,
                                          figure_patches=0))
    assert not (tmp_path / "ev").exists()


def test_training_records_the_profile(tmp_path: Path) -> None:
    from landslip.training.config import load_config
    from landslip.training.fit import train

    ds = write_synthetic_dataset(tmp_path / "ds", n=6, patch_size=32)
    cfg = load_config(None, dataset=ds.path, output=tmp_path / "run", bands="bg-ndvi",
                      epochs=1, model="unet", width=4, depth=2, batch_size=4,
                      max_train_batches=1)
    train(cfg, progress=False)
    prof = read_bundle_meta(tmp_path / "run").input_profile
    assert prof is not None and sorted(prof.bands) == ["blue", "green", "nir", "red"]
    assert prof == profile_dataset(open_dataset(ds.path), ["blue", "green", "red", "nir"])
