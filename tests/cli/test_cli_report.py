"""``landslip predict --html`` and ``landslip report``: map.html and stac-item.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.predictions import BANDS, write_image, write_prediction
from landslip.cli.app import main
from landslip.models.bundle import BundleMeta, save_bundle
from landslip.models.registry import create_model


def test_predict_html_writes_the_page_and_the_item(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=4,
                      band_set="bgrn", band_names=BANDS, mean=[400.0, 600.0, 500.0, 2600.0],
                      std=[300.0] * 4, threshold=0.5)
    save_bundle(tmp_path / "run" / "bundle", create_model("unet", 4, width=4, depth=2), meta)
    write_image(tmp_path / "scene.tif")
    rc = main(["-q", "predict", str(tmp_path / "run"), str(tmp_path / "scene.tif"), "-o",
               str(tmp_path / "out"), "--window", "64", "--overlap", "32", "--html"])
    assert rc == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "map.html" in out and "stac-item.json" in out
    page = (tmp_path / "out" / "map.html").read_text(encoding="utf-8")
    assert "landslip-data" in page and "Image (true colour)" in page
    item = json.loads((tmp_path / "out" / "stac-item.json").read_text())
    assert item["assets"]["map"]["href"] == "./map.html"
    bundle_link = [x for x in item["links"] if x["title"].startswith("model bundle")]
    assert Path(bundle_link[0]["href"]) == (tmp_path / "run" / "bundle" / "model.json")


def test_predict_without_html_writes_no_page(tmp_path: Path) -> None:
    write_prediction(tmp_path, html=False)
    assert not (tmp_path / "pred" / "map.html").exists()
    assert (tmp_path / "pred" / "stac-item.json").is_file()


def test_report_writes_the_page_for_an_existing_prediction(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_prediction(tmp_path, html=False)
    pred = tmp_path / "pred"
    assert main(["report", str(pred)]) == 0, capsys.readouterr().err
    assert "map.html" in capsys.readouterr().out
    assert (pred / "map.html").stat().st_size < 2_000_000
    item = json.loads((pred / "stac-item.json").read_text())
    assert "map" in item["assets"]
    assert not [p for p in pred.iterdir() if p.name.startswith(".")]
    assert np.isclose(item["properties"]["landslip:threshold"], 0.5)


def test_report_refuses_a_folder_that_is_no_prediction(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a prediction folder" in err and "\n" not in err
