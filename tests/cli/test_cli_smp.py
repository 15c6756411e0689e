"""An smp model end to end: train with local encoder weights, then predict, evaluate, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import segmentation_models_pytorch as smp
import torch

from helpers.datasets import write_synthetic_dataset
from helpers.predictions import write_image
from landslip.cli.app import main
from landslip.io.raster import read_raster
from landslip.models.bundle import load_bundle
from landslip.models.onnx_meta import read_onnx_metadata

TINY = ["--epochs", "1", "--batch-size", "2", "--max-train-batches", "2", "--bands", "bgrn",
        "--accelerator", "cpu", "--compile", "off"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli_smp")
    ds = write_synthetic_dataset(root / "ds", n=12, patch_size=64, seed=5)
    torch.manual_seed(3)  # a 3-band (RGB) encoder, as published weights are
    encoder = smp.Unet("resnet18", encoder_weights=None, in_channels=3).encoder
    torch.save(encoder.state_dict(), root / "resnet18.pt")
    rc = main(["-q", "train", str(ds.path), "-o", str(root / "run"), "--model", "smp-unet",
               "--encoder", "resnet18", "--encoder-weights", str(root / "resnet18.pt"), *TINY])
    assert rc == 0
    return {"ds": ds.path, "run": root / "run", "root": root, "weights": root / "resnet18.pt"}


def test_bundle_records_the_encoder_not_the_weights_source(trained: dict[str, Path]) -> None:
    bundle = load_bundle(trained["run"])
    assert (bundle.meta.model, bundle.meta.model_params) == ("smp-unet", {"encoder": "resnet18"})
    config = bundle.meta.training["config"]
    assert config["encoder"] == "resnet18"
    assert config["encoder_weights"] == str(trained["weights"])


def test_evaluate_and_predict_with_an_smp_bundle(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-q", "evaluate", str(trained["run"]), str(trained["ds"]),
                 "-o", str(tmp_path / "ev")]) == 0
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["dataset"]["split"] == "test"
    write_image(tmp_path / "scene.tif", h=112, w=96)  # not multiples of 32: padded
    assert main(["-q", "predict", str(trained["run"]), str(tmp_path / "scene.tif"),
                 "-o", str(tmp_path / "pred"), "--window", "64", "--overlap", "16"]) == 0
    codes, _ = read_raster(tmp_path / "pred" / "probability.tif")
    assert codes.shape == (1, 112, 96)
    assert (codes[0, :4] == 255).all() and (codes[0, 4:] <= 254).all()  # nodata rows kept


def test_export_onnx_agrees_with_torch(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.onnx"
    assert main(["-q", "export", str(trained["run"]), "-o", str(out)]) == 0
    assert "Exported smp-unet encoder=resnet18 (4 bands" in capsys.readouterr().out
    assert read_onnx_metadata(out).required_multiple == 32
    bundle = load_bundle(trained["run"])
    # Another shape than the (2, C, 64, 64) example the graph was traced with.
    x = np.random.default_rng(0).normal(size=(1, 4, 96, 64)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (probability,) = session.run(None, {session.get_inputs()[0].name: x})
    with torch.inference_mode():
        expected = torch.sigmoid(bundle.model(torch.from_numpy(x))).numpy()
    assert probability.shape == (1, 1, 96, 64)
    assert np.abs(probability - expected).max() < 1e-4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "unet", "--encoder", "resnet18"],
         "Error: --encoder is only for the smp models"),
        (["--model", "unet-paper", "--encoder-weights", "imagenet"],
         "Error: --encoder-weights is only for the smp models"),
        (["--model", "smp-unet", "--encoder", "resnet19"], "unknown encoder 'resnet19'"),
        (["--model", "smp-unet", "--encoder", "resnet18", "--encoder-weights", "imagenet"],
         "Error: could not download imagenet weights for resnet18: network is unreachable; "
         "pass --encoder-weights PATH to a local file"),
        (["--model", "smp-unet", "--encoder", "resnet34", "--encoder-weights", "{weights}"],
         "lacks 96 weight(s) of the encoder"),
    ],
)
def test_bad_encoder_options_exit_2_with_one_line(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, args: list[str], message: str,
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(smp.encoders, "hf_hub_download", offline)
    argv = [a.format(weights=trained["weights"]) for a in args]
    capsys.readouterr()
    rc = main(["-q", "train", str(trained["ds"]), "-o", str(tmp_path / "run"), *argv, *TINY])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "config.yaml").exists()
