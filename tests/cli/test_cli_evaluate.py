"""``landslip evaluate``: summary on success, one-line error and exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers.datasets import write_synthetic_dataset
from landslip.cli.app import main
from landslip.models.bundle import BundleMeta, save_bundle
from landslip.models.registry import create_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli_eval")
    ds = write_synthetic_dataset(root / "ds", n=12, patch_size=32, seed=3)
    rgb = write_synthetic_dataset(root / "rgb", n=6, patch_size=32, seed=4,
                                  band_names=("red", "green", "blue"))
    torch.manual_seed(0)
    mean, std = ds.band_stats("grn")
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=3,
                      band_set="grn", band_names=["green", "red", "nir"], mean=mean, std=std,
                      patch_size=32)
    save_bundle(root / "run" / "bundle", create_model("unet", 3, width=4, depth=2), meta)
    return {"ds": ds.path, "rgb": rgb.path, "run": root / "run", "root": root}


def test_evaluate_writes_report_and_prints_summary(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ev"
    rc = main(["-q", "evaluate", str(setup["run"]), str(setup["ds"]), "--threshold", "tuned",
               "-o", str(out), "--figure-patches", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "landslide class" in text and "F1" in text and "detection rate" in text
    report = json.loads((out / "report.json").read_text())
    assert report["threshold"]["mode"] == "tuned"
    assert report["dataset"]["split"] == "test"
    assert len(report["figures"]["patch panels"]) == 1
    assert (out / "masks.npy").is_file()


def test_min_area_tuned_is_reported(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ma"
    rc = main(["-q", "evaluate", str(setup["run"]), str(setup["ds"]), "--min-area", "tuned",
               "-o", str(out), "--figure-patches", "0", "--no-save-predictions"])
    assert rc == 0
    area = json.loads((out / "report.json").read_text())["min_area"]
    assert area["mode"] == "tuned" and area["unit"] == "m2" and len(area["candidates"]) == 9
    assert f"under {area['value']:g} m2 removed (tuned on val)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{run}", "{root}/missing"], "dataset folder not found"),
        (["{run}", "{ds}", "--split", "holdout"], "unknown split"),
        (["{run}", "{rgb}"], "nir"),
        (["{root}/norun", "{ds}"], "no model bundle"),
        (["{run}", "{ds}", "--threshold", "best"], "threshold"),
        (["{run}", "{ds}", "--match", "dice"], "--match"),
        (["{run}", "{ds}", "--split", "val", "--threshold", "tuned"],
         "would tune on the val split it scores"),
        (["{run}", "{ds}", "--min-area", "-5"], "--min-area must be an area >= 0"),
        (["{run}", "{ds}", "--min-area", "big"], "--min-area must be an area >= 0"),
        (["{run}", "{ds}", "--split", "val", "--min-area", "tuned"],
         "--min-area tuned would tune on the val split it scores"),
        (["{run}", "{ds}", "--device", "tpu"], "unknown device"),
        (["{run}", "{ds}", "--threads", "0"], "--threads must be at least 1"),
        (["{run}", "{ds}", "--engine", "tensorrt"], "--engine must be one of"),
    ],
)
def test_bad_input_exits_2(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    args: list[str], message: str,
) -> None:
    argv = [a.format(**{k: str(v) for k, v in setup.items()}) for a in args]
    rc = main(["-q", "evaluate", *argv, "-o", str(tmp_path / "x")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("Error:") and message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_exits_2(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["-q", "evaluate", str(setup["run"]), str(setup["ds"]), "--device", "cuda",
               "-o", str(tmp_path / "x")])
    assert rc == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_device_defaults_to_auto(setup: dict[str, Path], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI asks for --device auto (CUDA when present; evaluate resolves it with
    select_device, see tests/evaluation/test_evaluate.py)."""
    import landslip.evaluation.evaluate as ev
    from landslip.errors import InputError

    seen: list[ev.EvaluateOptions] = []

    def fake(run: object, dataset: object, options: ev.EvaluateOptions) -> None:
        seen.append(options)
        raise InputError("stopped by the test")

    monkeypatch.setattr(ev, "evaluate", fake)
    assert main(["-q", "evaluate", str(setup["run"]), str(setup["ds"])]) == 2
    assert "stopped by the test" in capsys.readouterr().err
    assert [o.device for o in seen] == ["auto"]


def test_engine_and_threads_reach_the_report(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["-q", "evaluate", str(setup["run"]), str(setup["ds"]), "-o", str(tmp_path / "e"),
               "--figure-patches", "0", "--engine", "torch", "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    pred = json.loads((tmp_path / "e" / "report.json").read_text())["prediction"]
    assert (pred["engine"], pred["threads"]) == ("torch", 1)


def test_onnx_engine_without_onnxruntime_exits_2(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    rc = main(["-q", "evaluate", str(setup["run"]), str(setup["ds"]), "-o", str(tmp_path / "x"),
               "--engine", "onnx"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("Error:") and len(err.strip().splitlines()) == 1
    assert "onnxruntime package is not installed" in err and "--engine torch" in err
    assert not (tmp_path / "x").exists()
