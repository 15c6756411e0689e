"""``landslip predict`` through either engine: the same map, recorded settings, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
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
from landslip.models.engine import DEFAULT_WINDOWS
from landslip.models.registry import create_model

BANDS = ["blue", "green", "red", "nir"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random U-Net bundle and a 256 x 256 4-band uint16 scene with a nodata strip.

    The network's head is rescaled so that its logits are centred on 0 with a spread of about
    2, like a trained model's (a random one's are within a few thousandths of each other, which
    would put many pixels within float rounding of the threshold)."""
    root = tmp_path_factory.mktemp("engines")
    torch.manual_seed(0)
    model = create_model("unet", 4, width=4, depth=2).eval()
    mean, std = [400.0, 500.0, 450.0, 1500.0], [120.0, 130.0, 150.0, 400.0]
    rng = np.random.default_rng(0)
    field = rng.normal(0, 1, (4, 9, 9)).repeat(32, axis=1).repeat(32, axis=2)[:, :256, :256]
    img = (np.array(mean)[:, None, None] + 150 * field
           + rng.normal(0, 20, (4, 256, 256))).clip(1, 60000).astype(np.uint16)
    img[:, :, 250:] = 0
    x = (img[:, :, :250].astype(np.float32) - np.array(mean, np.float32)[:, None, None])
    x /= np.array(std, np.float32)[:, None, None]
    with torch.inference_mode():
        logits = model(torch.from_numpy(np.pad(x, ((0, 0), (0, 0), (0, 6))))[None])
        centre, spread = float(logits[..., :250].median()), float(logits[..., :250].std())
        model.head.weight *= 2.0 / spread
        model.head.bias.copy_((model.head.bias - centre) * 2.0 / spread)
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=4,
                      band_set="bgrn", band_names=BANDS, mean=mean, std=std, threshold=0.5)
    save_bundle(root / "run" / "bundle", model, meta)
    grid = Grid.from_bounds(CRS.from_epsg(32654), 500000.0, 4740000.0, 1.5, 256, 256)
    write_raster(root / "img.tif", img, grid, nodata=0, descriptions=BANDS)
    return {"run": root / "run", "image": root / "img.tif"}


def test_onnx_and_torch_give_the_same_map(scene: dict[str, Path], tmp_path: Path) -> None:
    """Same windows, both engines: probabilities within 1e-3, masks differing in fewer than
    1e-5 of the pixels (none, at 65,536 pixels), same polygons."""
    runs = {e: predict_scene(scene["run"], scene["image"], tmp_path / e, engine=e, threads=1,
                             window=96, overlap=32, probability_dtype="float32")
            for e in ("torch", "onnx")}
    assert runs["onnx"].plan == runs["torch"].plan and runs["onnx"].plan.n_windows == 16
    p = {e: read_raster(r.probability)[0][0] for e, r in runs.items()}
    m = {e: read_raster(r.mask)[0][0] for e, r in runs.items()}
    np.testing.assert_array_equal(np.isnan(p["onnx"]), np.isnan(p["torch"]))
    valid = ~np.isnan(p["torch"])
    assert valid.sum() == 256 * 250
    assert float(np.abs(p["onnx"][valid] - p["torch"][valid]).max()) < 1e-3
    assert 0.2 < float(np.mean(m["torch"][valid] == 1)) < 0.8  # the threshold matters here
    assert np.count_nonzero(m["onnx"] != m["torch"]) < 1e-5 * m["torch"].size
    assert runs["onnx"].n_polygons == runs["torch"].n_polygons > 0


def test_prediction_json_records_engine_threads_and_window(scene: dict[str, Path],
                                                           tmp_path: Path) -> None:
    r = predict_scene(scene["run"], scene["image"], tmp_path / "o", threads=1, polygons=False)
    report = json.loads(r.report.read_text())
    assert report["engine"] == r.engine == "onnx"  # auto on the CPU
    assert report["threads"] == r.threads == 1
    assert report["max_window"] == DEFAULT_WINDOWS[("onnx", "cpu")]  # the engine's default
    assert report["window"] == [256, 256] and "onnxruntime" in report["engine_description"]
    r = predict_scene(scene["run"], scene["image"], tmp_path / "t", engine="torch", threads=2,
                      window=128, overlap=32, polygons=False)
    report = json.loads(r.report.read_text())
    assert (report["engine"], report["threads"], report["max_window"]) == ("torch", 2, 128)
    assert max(report["window"]) <= 128 and report["device"] == "cpu"


def test_predict_restores_the_torch_thread_count(scene: dict[str, Path], tmp_path: Path) -> None:
    before = torch.get_num_threads()
    predict_scene(scene["run"], scene["image"], tmp_path / "o", engine="torch",
                  threads=before + 1, polygons=False)
    assert torch.get_num_threads() == before


def test_cli_engine_and_threads(scene: dict[str, Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["-q", "predict", str(scene["run"]), str(scene["image"]), "-o",
               str(tmp_path / "out"), "--engine", "torch", "--threads", "1", "--window", "128"])
    assert rc == 0, capsys.readouterr().err
    assert "with torch, 1 thread(s)" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "prediction.json").read_text())
    assert (report["engine"], report["threads"], report["max_window"]) == ("torch", 1, 128)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0"], "--threads must be at least 1"),
        (["--threads", "-3"], "--threads must be at least 1"),
        (["--engine", "tensorrt"], "--engine must be one of auto, torch, onnx"),
    ],
)
def test_cli_bad_engine_options_exit_2(scene: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str], args: list[str],
                                       message: str) -> None:
    rc = main(["-q", "predict", str(scene["run"]), str(scene["image"]), "-o",
               str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_cli_onnx_engine_without_onnxruntime_exits_2(
    scene: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    rc = main(["-q", "predict", str(scene["run"]), str(scene["image"]), "-o",
               str(tmp_path / "out"), "--engine", "onnx"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "onnxruntime package is not installed" in err and "--engine torch" in err
    assert not (tmp_path / "out").exists()
    # auto falls back to PyTorch with a warning
    assert main(["-q", "predict", str(scene["run"]), str(scene["image"]), "-o",
                 str(tmp_path / "auto"), "--threads", "1"]) == 0
    assert json.loads((tmp_path / "auto" / "prediction.json").read_text())["engine"] == "torch"


def test_onnx_prediction_never_imports_torch(scene: dict[str, Path], tmp_path: Path) -> None:
    """With the bundle's own model.onnx, ``landslip predict`` on the CPU runs without torch
    (a CUDA build of torch costs about 0.5 GB of memory and a second to import), and maps the
    same as in this process."""
    from landslip.models.export import ensure_onnx

    ensure_onnx(scene["run"])
    code = ("import sys; from landslip.cli.app import main; rc = main(sys.argv[1:]); "
            "print('torch' in sys.modules); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, "-q", "predict", str(scene["run"]),
                          str(scene["image"]), "-o", str(tmp_path / "cli"), "--device", "cpu",
                          "--threads", "1"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
    here = predict_scene(scene["run"], scene["image"], tmp_path / "here", threads=1)
    for name in ("probability.tif", "landslides.tif"):
        np.testing.assert_array_equal(read_raster(tmp_path / "cli" / name)[0],
                                      read_raster(getattr(here, "probability" if name[0] == "p"
                                                          else "mask"))[0])
