"""``landslip info``: every kind of artefact in a few lines; anything else one error line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.datasets import write_tiny_dataset
from helpers.predictions import write_prediction
from landslip.cli.app import main
from landslip.errors import InputError
from landslip.info import describe


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("info")
    write_prediction(folder)
    write_tiny_dataset(folder)
    return folder


def _text(path: Path) -> str:
    lines = describe(path)
    assert 1 < len(lines) <= 6
    return "\n".join(lines)


def test_each_kind_is_recognised(artefacts: Path) -> None:
    pred = artefacts / "pred"
    text = _text(pred)
    assert text.startswith(f"prediction {pred}") and "3 landslide(s)" in text
    assert "stac-item.json" in text and "EPSG:32654" in text
    assert _text(pred / "prediction.json") == text
    assert _text(pred / "stac-item.json") == text
    run = _text(artefacts / "run")
    assert run.startswith("run ") and "model unet (width 4, depth 2)" in run
    assert "band set bgrn" in run
    assert _text(artefacts / "run" / "bundle").startswith("model bundle ")
    assert _text(artefacts / "run" / "bundle" / "model.json").startswith("model bundle ")
    mask = _text(pred / "landslides.tif")
    assert "[palette]" in mask and "Cloud-Optimized GeoTIFF: valid" in mask
    assert "LANDSLIP_LABELS" in mask
    prob = _text(pred / "probability.tif")
    assert "value = stored x 0.00393701 + 0 (probability)" in prob
    image = _text(artefacts / "scene.tif")
    assert "blue [blue], green [green], red [red], nir [undefined]" in image
    gpkg = _text(pred / "landslides.gpkg")
    assert "3 Polygon feature(s)" in gpkg and "spatial index yes" in gpkg
    datasets = [p for p in artefacts.iterdir() if (p / "dataset.json").is_file()]
    assert len(datasets) == 1
    ds = _text(datasets[0])
    assert ds.startswith("dataset ") and "bands red, nir" in ds and "train 2" in ds


def test_unknown_paths_are_one_line_errors(artefacts: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match="not found"):
        describe(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a landslip artefact"):
        describe(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="not a landslip artefact"):
        describe(tmp_path)
    assert main(["info", str(tmp_path / "notes.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and "\n" not in err
    assert main(["info", str(artefacts / "pred")]) == 0
    assert capsys.readouterr().out.startswith("prediction ")


def test_evaluation_and_scene_folders(tmp_path: Path) -> None:
    """Described from their JSON documents alone (written here with the fields read)."""
    ev = tmp_path / "eval"
    ev.mkdir()
    (ev / "report.json").write_text(json.dumps({
        "format": "landslip-evaluation", "version": 1, "dataset": {"split": "test"},
        "threshold": {"value": 0.45},
        "pixel": {"f1": 0.5, "iou": 0.25, "precision": 0.4, "recall": 0.6}}))
    text = _text(ev)
    assert text.startswith("evaluation ") and "split test, threshold 0.45: F1 0.5000" in text
    sc = tmp_path / "scene"
    sc.mkdir()
    (sc / "scene.json").write_text(json.dumps({
        "format": "landslip-synthetic-scene", "version": 1, "seed": 7, "size": 256,
        "crs": "EPSG:32654", "landslides": {"count": 16, "fraction": 0.05}}))
    assert "16 landslides, 5.00 % of pixels" in _text(sc)
