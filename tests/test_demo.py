"""End to end: every CLI verb in a row on a small synthetic scene, and the demo itself."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from landslip.cli.app import main
from landslip.demo import DemoProfile, run_demo
from landslip.errors import BandError
from landslip.io.raster import raster_info

EPSG = 32654


def _cli(args: list[str]) -> None:
    rc = main(["-q", *args])
    assert rc == 0, f"landslip {' '.join(args)} exited with {rc}"


def _same_grid(a: Path, b: Path) -> None:
    ga, gb = raster_info(a).grid, raster_info(b).grid
    assert ga.crs.to_epsg() == EPSG and gb.crs.to_epsg() == EPSG
    assert ga.shape == gb.shape
    assert ga.transform.almost_equals(gb.transform, precision=1e-9)


def _unit(x: float) -> None:
    assert 0.0 <= x <= 1.0 and not math.isnan(x)


def test_pipeline_through_the_cli(tmp_path: Path) -> None:
    """synth -> pansharpen -> rasterize -> prepare -> train -> evaluate -> predict, keeping
    EPSG:32654 and the 1.5 m transform at every stage."""
    scene, fused, labels = tmp_path / "scene", tmp_path / "fused.tif", tmp_path / "labels.tif"
    ds, run, pred = tmp_path / "ds", tmp_path / "run", tmp_path / "pred"

    _cli(["synth", "-o", str(scene), "--size", "512", "--seed", "3"])
    pan = raster_info(scene / "pan.tif")
    assert pan.grid.crs.to_epsg() == EPSG and pan.grid.res == (1.5, 1.5)

    _cli(["pansharpen", str(scene / "pan.tif"), str(scene / "ms.tif"), "-o", str(fused)])
    _same_grid(fused, scene / "pan.tif")
    assert [d.lower() for d in raster_info(fused).descriptions] == ["blue", "green", "red",
                                                                    "nir"]

    _cli(["rasterize", str(scene / "landslides.geojson"), "--like", str(fused), "-o",
          str(labels)])
    _same_grid(labels, fused)
    # The polygons (EPSG:4326) burn to the same pixels as the scene's own truth raster.
    from landslip.io.raster import read_raster

    lab, _ = read_raster(labels)
    truth, _ = read_raster(scene / "truth.tif")
    assert (lab[0] == 1).sum() > 0
    assert ((lab[0] == 1) == (truth[0] == 1)).mean() > 0.99

    _cli(["prepare", str(fused), str(labels), "-o", str(ds), "--patch-size", "128"])
    meta = json.loads((ds / "dataset.json").read_text())
    from pyproj import CRS

    assert CRS.from_user_input(meta["crs"]).to_epsg() == EPSG
    assert [abs(r) for r in meta["res"]] == [1.5, 1.5]
    assert meta["counts"]["train"] > 0 and meta["counts"]["test"] > 0

    _cli(["train", str(ds), "-o", str(run), "--bands", "bg-ndvi", "--model", "unet",
          "--width", "4", "--depth", "2", "--epochs", "1", "--batch-size", "4",
          "--max-train-batches", "2", "--accelerator", "cpu"])
    assert (run / "bundle" / "model.json").is_file()

    _cli(["evaluate", str(run), str(ds), "--threshold", "tuned", "-o", str(tmp_path / "ev"),
          "--figure-patches", "1"])
    rep = json.loads((tmp_path / "ev" / "report.json").read_text())
    for key in ("precision", "recall", "f1", "iou"):
        _unit(rep["pixel"][key])
    assert (tmp_path / "ev" / "report.md").is_file()
    assert rep["threshold"]["mode"] == "tuned"

    _cli(["predict", str(run), str(fused), "-o", str(pred), "--window", "256"])
    for name in ("probability.tif", "landslides.tif"):
        _same_grid(pred / name, fused)
        assert raster_info(pred / name).nodata == 255
    import pyogrio

    info = pyogrio.read_info(pred / "landslides.gpkg")
    assert CRS.from_user_input(info["crs"]).to_epsg() == EPSG


# The demo for tests: seconds, not minutes, yet a model that learns something (measured: test
# F1 about 0.5, unseen-scene F1 about 0.43 against 0.10 for the all-landslide mask).
TEST_PROFILE = DemoProfile(
    name="test", train_size=1024, unseen_size=512, patch_size=64,
    train={"model": "unet", "width": 8, "depth": 2, "epochs": 2, "loss": "bce-dice",
           "lr": 0.004},
    batch_size=4, threshold="tuned", figure_patches=0, window=256,
)


def _counts(pred: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """Landslide-class confusion counts by np.bincount over (truth, prediction) codes."""
    keep = (pred != 255) & (truth != 255)
    tn, fp, fn, tp = np.bincount(truth[keep].astype(np.int64) * 2 + pred[keep],
                                 minlength=4).tolist()
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def _f1(c: dict[str, int]) -> float:
    return 2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"])


def _all_landslide_f1(c: dict[str, int]) -> float:
    """F1 of the trivial mask that calls every pixel a landslide."""
    pos = c["tp"] + c["fn"]
    return 2 * pos / (2 * pos + c["fp"] + c["tn"])


def _row_counts(run: Path) -> dict[str, int]:
    """The test-split confusion summed from the evaluation's per-patch table."""
    with (run / "evaluation" / "patches.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {k: sum(int(r[k]) for r in rows) for k in ("tp", "fp", "fn", "tn")}


def test_run_demo(tmp_path: Path) -> None:
    from landslip.demo import run_demo
    from landslip.io.raster import read_raster

    events: list[tuple[int, str]] = []
    out = tmp_path / "demo"
    res = run_demo(out, profile=TEST_PROFILE, band_sets=("bgrn", "bg-ndvi"),
                   on_stage=lambda i, n, name, ev: events.append((i, ev)))
    assert [i for i, ev in events if ev == "start"] == list(range(1, 10))
    summary = json.loads((out / "summary.json").read_text())
    assert [r["band_set"] for r in summary["table"]] == ["bgrn", "bg-ndvi"]
    assert summary["best_selected_by"] == "validation F1"
    best = max(summary["table"], key=lambda r: r["val_f1"])
    assert summary["best_band_set"] == best["band_set"]
    # Table 1 is what the saved per-patch counts of each evaluation give.
    for row in summary["table"]:
        c = _row_counts(Path(row["run"]))
        assert row["precision"] == pytest.approx(c["tp"] / (c["tp"] + c["fp"]))
        assert row["recall"] == pytest.approx(c["tp"] / (c["tp"] + c["fn"]))
        assert row["f1"] == pytest.approx(_f1(c))
    c = _row_counts(Path(best["run"]))
    assert best["f1"] > 2 * _all_landslide_f1(c)
    # The unseen-scene score is what the written mask and the scene's truth give.
    pred = read_raster(out / "prediction" / "landslides.tif")[0][0]
    truth = read_raster(out / "scene-unseen" / "truth.tif")[0][0]
    c = _counts(pred, truth)
    u = summary["unseen"]
    assert {k: int(u[k]) for k in c} == c
    assert u["f1"] == pytest.approx(_f1(c))
    assert u["f1"] > 2 * _all_landslide_f1(c)
    assert u["threshold"] == best["threshold"]
    text = (out / "SUMMARY.md").read_text()
    assert "| bgrn" in text and "Unseen scene" in text and f"| {u['f1']:.3f} |" in text
    for path in res.files.values():
        assert Path(path).exists(), path
    # The prediction of the unseen scene lies on that scene's grid.
    _same_grid(out / "prediction" / "landslides.tif", out / "scene-unseen" / "truth.tif")
    assert set(summary["stage_seconds"]) >= {"synth", "study", "predict"}

    # The demo refuses to clear a folder that holds something else.
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    from landslip.errors import InputError

    with pytest.raises(InputError, match="not empty"):
        run_demo(other, profile=TEST_PROFILE)
    assert (other / "keep.txt").is_file()


@pytest.mark.parametrize("name", ["quick", "full", "test"])
def test_every_profile_is_a_valid_study(name: str, tmp_path: Path) -> None:
    """The profiles (the same code path with other settings) give valid study and training
    configurations; --full is the paper's configuration."""
    from landslip.demo import PROFILES
    from landslip.study import load_study_config

    prof = TEST_PROFILE if name == "test" else PROFILES[name]
    cfg = load_study_config(dataset=str(tmp_path), band_sets=["bgrn", "bg-ndvi"],
                            batch_sizes=[prof.batch_size], train=dict(prof.train),
                            evaluation={"threshold": prof.threshold})
    assert cfg.n_runs() == 2
    assert prof.train_size % prof.patch_size == 0
    if name == "full":
        assert (prof.train["model"], prof.train["epochs"], prof.batch_size) == (
            "unet-paper", 100, 40)
        assert prof.threshold == 0.5
    assert set(PROFILES) == {"quick", "full"}  # the package holds only what users run


def test_demo_band_sets_follow_the_band_grammar(tmp_path: Path) -> None:
    # One --bands value is one band set (a comma list is one set); an empty item is refused
    # before anything is made, as in `landslip train`.
    with pytest.raises(BandError, match="empty"):
        run_demo(tmp_path / "out", band_sets=["bgrn,"])
    assert not (tmp_path / "out").exists()
    assert main(["demo", "-o", str(tmp_path / "o2"), "--bands", "bgrn,"]) == 2
    assert not (tmp_path / "o2").exists()
