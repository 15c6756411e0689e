"""The band-set study: tiny studies complete, tables are right, interrupted studies resume."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest
import yaml

from helpers.datasets import write_synthetic_dataset
from landslip.cli.app import main
from landslip.errors import BandError, ConfigError
from landslip.study import load_study_config, run_study, summarize

TINY_TRAIN = {"model": "unet", "width": 4, "depth": 2, "epochs": 1}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("study_data")
    a = write_synthetic_dataset(root / "random", n=12, patch_size=32, seed=0)
    b = write_synthetic_dataset(root / "blocks", n=12, patch_size=32, seed=1)
    rgb = write_synthetic_dataset(root / "rgb", n=6, patch_size=32, seed=2,
                                  band_names=("red", "green", "blue"))
    return {"random": a.path, "blocks": b.path, "rgb": rgb.path}


def _write_yaml(path: Path, data: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def _sane(rows: list[dict[str, object]]) -> None:
    for r in rows:
        for m in ("precision", "recall", "f1"):
            v = r[f"{m}_mean"]
            assert isinstance(v, float) and 0.0 <= v <= 1.0, (m, v)


def test_one_by_one_study_completes_and_resumes(datasets: dict[str, Path],
                                                tmp_path: Path) -> None:
    cfg = load_study_config(dataset=datasets["random"], band_sets=["bg-ndvi"], batch_sizes=[4],
                            train=TINY_TRAIN, evaluation={"figure_patches": 0})
    out = tmp_path / "study"
    res = run_study(cfg, out)
    assert (res.trained, res.skipped) == (1, 0)
    assert [(r["band_set"], r["batch_size"]) for r in res.rows] == [("bg-ndvi", 4)]
    _sane(res.rows)
    run = out / "runs" / "random" / "bg-ndvi-b4-s0"
    report = run / "evaluation" / "report.json"
    assert report.is_file() and (run / "bundle" / "model.json").is_file()
    assert (out / "table1.md").read_text().count("| bg-ndvi | 4 |") == 1
    assert (out / "table1_f1.png").is_file()
    # Resume: nothing to do.
    again = run_study(cfg, out)
    assert (again.trained, again.skipped) == (0, 1)
    assert again.rows[0]["f1_mean"] == res.rows[0]["f1_mean"]
    # A run whose evaluation was lost is evaluated again, not retrained.
    weights = run / "bundle" / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    report.unlink()
    third = run_study(cfg, out)
    assert (third.trained, third.skipped) == (0, 0)
    assert report.is_file() and weights.stat().st_mtime_ns == mtime
    # Other training options in the same folder are refused.
    other = load_study_config(dataset=datasets["random"], band_sets=["bg-ndvi"],
                              batch_sizes=[4], train={**TINY_TRAIN, "epochs": 2})
    with pytest.raises(ConfigError, match="other 'train' options"):
        run_study(other, out)


def test_two_by_two_study_resumed_via_cli(datasets: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _write_yaml(tmp_path / "study.yaml", {
        "dataset": str(datasets["random"]), "band_sets": ["bgrn", "grn"], "batch_sizes": [4, 8],
        "train": TINY_TRAIN, "evaluation": {"figure_patches": 0},
    })
    out = tmp_path / "s"
    # An interrupted study (here: stopped after one run) leaves a partial table ...
    run_study(load_study_config(cfg), out, max_runs=1)
    assert "Runs finished: 1 of 4." in (out / "table1.md").read_text()
    # ... and the CLI finishes it, skipping the finished run.
    assert main(["-q", "study", str(cfg), "-o", str(out)]) == 0
    assert "4 of 4 runs finished (3 trained now, 1 already done)" in capsys.readouterr().out
    with open(out / "table1.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["band_set"], int(r["batch_size"])) for r in rows) == [
        ("bgrn", 4), ("bgrn", 8), ("grn", 4), ("grn", 8)]
    for r in rows:
        for m in ("precision_mean", "recall_mean", "f1_mean"):
            assert 0.0 <= float(r[m]) <= 1.0
    with open(out / "runs.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4


@pytest.mark.slow
def test_random_and_blocks_side_by_side_with_seeds(datasets: dict[str, Path],
                                                   tmp_path: Path) -> None:
    cfg = load_study_config(datasets={"random": datasets["random"], "blocks": datasets["blocks"]},
                            band_sets=["bgrn", "bg-ndvi"], batch_sizes=[4, 8], seeds=[0, 1],
                            train={**TINY_TRAIN, "epochs": 2},
                            evaluation={"figure_patches": 1})
    res = run_study(cfg, tmp_path / "s")
    assert len(res.runs) == 16 and len(res.rows) == 8
    _sane(res.rows)
    assert all(r["n_seeds"] == 2 and r["f1_std"] is not None for r in res.rows)
    text = (tmp_path / "s" / "table1.md").read_text()
    assert "F1 side by side" in text and "F1 random" in text and "F1 blocks" in text


def test_summarize_mean_and_spread() -> None:
    recs = [{"dataset": "d", "band_set": "bgr", "batch_size": 8, "seed": s, "precision": p,
             "recall": r, "f1": f, "iou": f / 2, "detection_rate": None,
             "false_alarm_rate": None}
            for s, p, r, f in [(0, 0.5, 0.6, 0.55), (1, 0.7, 0.8, 0.75), (2, 0.6, 0.7, 0.65)]]
    recs.append({**recs[0], "band_set": "grn"})
    rows = summarize(recs)
    assert [(r["band_set"], r["n_seeds"]) for r in rows] == [("bgr", 3), ("grn", 1)]
    assert rows[0]["f1_mean"] == pytest.approx(0.65)
    assert rows[0]["f1_std"] == pytest.approx(statistics.stdev([0.55, 0.75, 0.65]))
    assert rows[1]["f1_std"] is None and rows[0]["detection_rate_mean"] is None


def test_config_errors(datasets: dict[str, Path], tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write_yaml(tmp_path / "bad.yaml", {"dataset": "x", "band_set": ["bgr"]})
    assert main(["-q", "study", str(bad), "-o", str(tmp_path / "o")]) == 2
    assert f"{bad}: band_set: unknown key. Valid keys: dataset" in capsys.readouterr().err
    # The study file goes through the same loader as the training config: one-line errors.
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: x\nband_sets: [bgr\nseeds: [0]\n")
    assert main(["-q", "study", str(broken), "-o", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (f"Error: {broken}:3:6: expected ',' or ']', but got ':' "
                                       "(not valid YAML; fix the file)\n")
    zero = _write_yaml(tmp_path / "zero.yaml", {"dataset": "x", "batch_sizes": [4, 0]})
    with pytest.raises(ConfigError, match=rf"^{zero}: batch_sizes: .*at least 1$"):
        load_study_config(zero)
    with pytest.raises(ConfigError, match="either 'dataset'"):
        load_study_config(band_sets=["bgr"])
    with pytest.raises(ConfigError, match=r"train\.bogus"):
        load_study_config(dataset="x", train={"bogus": 1})
    with pytest.raises(ConfigError, match="the study sets"):
        load_study_config(dataset="x", train={"batch_size": 4})
    # Relative dataset paths are resolved against the YAML file's folder.
    rel = _write_yaml(tmp_path / "rel.yaml", {"dataset": "data/ds"})
    assert load_study_config(rel).dataset == (tmp_path / "data" / "ds").resolve()
    # Bands missing from a dataset are refused before any training.
    cfg = load_study_config(dataset=datasets["rgb"], band_sets=["rgb", "bg-ndvi"],
                            batch_sizes=[4], train=TINY_TRAIN)
    with pytest.raises(BandError, match="nir"):
        run_study(cfg, tmp_path / "s")
    assert not (tmp_path / "s" / "runs").exists()


@pytest.mark.slow
def test_study_on_synthetic_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The acceptance check: synthetic scene -> pan-sharpen -> prepare -> 2 x 2 study."""
    scene = tmp_path / "scene"
    assert main(["-q", "synth", "-o", str(scene), "--size", "256", "--seed", "2"]) == 0
    fused = scene / "fused.tif"
    assert main(["-q", "pansharpen", str(scene / "pan.tif"), str(scene / "ms.tif"),
                 "-o", str(fused)]) == 0
    ds = tmp_path / "ds"
    assert main(["-q", "prepare", str(fused), str(scene / "truth.tif"), "-o", str(ds),
                 "--patch-size", "32"]) == 0
    cfg = _write_yaml(tmp_path / "study.yaml", {
        "dataset": str(ds), "band_sets": ["bgrn", "bg-ndvi"], "batch_sizes": [8, 16],
        "train": {**TINY_TRAIN, "epochs": 2}, "evaluation": {"figure_patches": 1},
    })
    assert main(["-q", "study", str(cfg), "-o", str(tmp_path / "s")]) == 0
    with open(tmp_path / "s" / "table1.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["band_set"], int(r["batch_size"])) for r in rows) == [
        ("bg-ndvi", 8), ("bg-ndvi", 16), ("bgrn", 8), ("bgrn", 16)]
    for r in rows:
        for m in ("precision_mean", "recall_mean", "f1_mean"):
            assert 0.0 <= float(r[m]) <= 1.0
    # Object areas are in square metres (1.5 m pixels of a projected CRS).
    report = next((tmp_path / "s" / "runs").rglob("report.json"))
    assert '"unit": "m2"' in report.read_text()
