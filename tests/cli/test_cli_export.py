"""``landslip export``: a self-describing ONNX file on success, one line and exit 2 on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from landslip.cli.app import main
from landslip.models.bundle import BundleMeta, save_bundle
from landslip.models.onnx_meta import read_onnx_metadata
from landslip.models.registry import create_model


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli_export")
    torch.manual_seed(0)
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=3,
                      band_set="grn", band_names=["green", "red", "nir"], mean=[1.0, 2.0, 3.0],
                      std=[1.0, 1.0, 1.0], threshold=0.3)
    save_bundle(root / "run" / "bundle", create_model("unet", 3, width=4, depth=2), meta)
    return root / "run"


def test_export_writes_file_and_prints_summary(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sub" / "model.onnx"
    assert main(["-q", "export", str(run), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Exported unet width=4 depth=2 (3 bands green,red,nir, threshold 0.3)" in text
    assert "max probability difference" in text
    meta = read_onnx_metadata(out)
    assert meta.bundle.threshold == 0.3 and meta.required_multiple == 4
    assert [p.name for p in out.parent.iterdir()] == ["model.onnx"]  # no temporary left


def test_export_defaults_into_the_bundle_folder(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-q", "export", str(run / "bundle" / "model.json"), "--no-check"]) == 0
    assert (run / "bundle" / "model.onnx").is_file()
    assert "difference" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing", "-o", "{tmp}/m.onnx"], "no model bundle"),
        (["{run}", "-o", "{tmp}"], "is a folder"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
    message: str,
) -> None:
    argv = [a.format(run=run, tmp=tmp_path) for a in args]
    assert main(["-q", "export", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and message in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []
