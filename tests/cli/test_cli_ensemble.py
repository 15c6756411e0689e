"""``landslip ensemble``: a bundle that evaluate (with --tta), predict and export all take."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.datasets import write_synthetic_dataset
from helpers.inputs import make_bundle, write_scene
from landslip.cli.app import main
from landslip.io.raster import read_raster
from landslip.models.bundle import BundleMeta, load_bundle, save_bundle
from landslip.models.onnx_meta import read_onnx_metadata
from landslip.models.registry import create_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli_ensemble")
    ds = write_synthetic_dataset(root / "ds", n=12, patch_size=32, seed=3)
    mean, std = ds.band_stats("grn")
    for name, seed, depth, threshold in (("a", 0, 2, 0.4), ("b", 1, 3, 0.6)):
        torch.manual_seed(seed)
        meta = BundleMeta(model="unet", model_params={"width": 4, "depth": depth},
                          in_channels=3, band_set="grn", band_names=["green", "red", "nir"],
                          mean=mean, std=std, threshold=threshold, patch_size=32)
        save_bundle(root / name / "bundle", create_model("unet", 3, width=4, depth=depth), meta)
    make_bundle(root / "bgr" / "bundle")
    write_scene(root / "scene.tif", 40, 56)
    return {"ds": ds.path, "a": root / "a", "b": root / "b", "bgr": root / "bgr",
            "scene": root / "scene.tif", "root": root}


def test_ensemble_works_in_evaluate_predict_and_export(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ens = tmp_path / "ens"
    assert main(["-q", "ensemble", str(setup["a"]), str(setup["b"] / "bundle"), "-o",
                 str(ens)]) == 0
    text = capsys.readouterr().out
    assert "Ensemble of 2 models (unet, unet)" in text and "threshold 0.5 " in text
    assert (ens / "model.json").is_file() and (ens / "model.onnx").is_file()

    ev = tmp_path / "ev"
    assert main(["-q", "evaluate", str(ens), str(setup["ds"]), "--threshold", "tuned",
                 "--tta", "-o", str(ev), "--figure-patches", "0"]) == 0
    report = json.loads((ev / "report.json").read_text())
    assert report["model"]["model"] == "ensemble" and report["prediction"]["tta"] is True
    assert report["threshold"]["mode"] == "tuned" and report["model"]["bundle_threshold"] == 0.5

    pred = tmp_path / "pred"
    assert main(["-q", "predict", str(ens), str(setup["scene"]), "-o", str(pred),
                 "--engine", "torch"]) == 0
    codes = read_raster(pred / "probability.tif")[0][0]
    # The probabilities are the members' mean, predicted one by one with the same options.
    member_codes = []
    for m in ("a", "b"):
        assert main(["-q", "predict", str(setup[m]), str(setup["scene"]), "-o",
                     str(tmp_path / m), "--engine", "torch"]) == 0
        member_codes.append(read_raster(tmp_path / m / "probability.tif")[0][0])
    valid = codes != 255
    mean = (member_codes[0][valid].astype(float) + member_codes[1][valid]) / 2
    assert np.abs(codes[valid] - mean).max() <= 1.0
    assert json.loads((pred / "prediction.json").read_text())["threshold"] == 0.5

    onnx = tmp_path / "e.onnx"
    assert main(["-q", "export", str(ens), "-o", str(onnx)]) == 0
    assert "max probability difference" in capsys.readouterr().out
    assert read_onnx_metadata(onnx).bundle == load_bundle(ens).meta


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{a}"], "at least 2 members, got 1"),
        (["{a}", "{root}/nothing"], "no model bundle"),
        (["{a}", "{bgr}"], "must read the same bands"),
        (["{a}", "{b}", "-o", "{a}"], "already holds a model bundle"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    args: list[str], message: str,
) -> None:
    argv = [a.format(**{k: str(v) for k, v in setup.items()}) for a in args]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "out")]
    assert main(["-q", "ensemble", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()
