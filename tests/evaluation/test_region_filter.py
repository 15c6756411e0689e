"""``evaluate --min-slope``: predicted landslides on flat ground are removed before scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from landslip.dataset.writer import write_dataset
from landslip.errors import BandError
from landslip.evaluation.evaluate import EvaluateOptions, evaluate
from landslip.evaluation.region_filter import drop_flat_regions
from landslip.models.bundle import BundleMeta, save_bundle
from landslip.models.registry import create_model


def test_regions_are_judged_by_their_mean_slope() -> None:
    mask = np.zeros((8, 8), np.uint8)
    mask[0:2, 0:2] = 1  # region A: mean slope 10
    mask[2, 2] = 1  # touches A at a corner: same region (8-connectivity)
    mask[5:7, 5:8] = 1  # region B: steep
    mask[0, 7] = 1  # region C: slope unknown
    mask[7, 0] = 255  # not scored
    slope = np.full((8, 8), 40.0)
    slope[0:3, 0:3] = 10.0
    slope[2, 2] = 25.0  # mean of A: (4 * 10 + 25) / 5 = 13
    slope[0, 7] = np.nan
    out, removed = drop_flat_regions(mask, slope, 15.0)
    assert removed == 1
    assert (out[0:3, 0:3] == 0).all() and (out[5:7, 5:8] == 1).all()
    assert out[0, 7] == 1 and out[7, 0] == 255
    kept, none = drop_flat_regions(mask, slope, 13.0)  # 13 is not below 13
    assert none == 0 and np.array_equal(kept, mask)


def _dataset(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    n, p = 12, 32
    images = np.zeros((n, 2, p, p), np.float32)
    labels = np.zeros((n, p, p), np.uint8)
    for i in range(n):
        images[i, 0] = rng.normal(100.0, 5.0, (p, p))
        r, c = rng.integers(4, 20, 2)
        images[i, 0, r:r + 8, c:c + 8] += 300.0
        labels[i, r:r + 8, c:c + 8] = 1
        images[i, 1] = 35.0 if i % 2 else 0.5  # steep or flat patch
    splits = ["train"] * 4 + ["val"] * 4 + ["test"] * 4
    write_dataset(folder, images, labels, ["red", "slope"], splits)
    return folder


def test_evaluate_min_slope_scores_the_filtered_map(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds")
    torch.manual_seed(0)
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=1,
                      band_set="red", band_names=["red"], mean=[150.0], std=[100.0])
    save_bundle(tmp_path / "run" / "bundle", create_model("unet", 1, width=4, depth=2), meta)
    plain = evaluate(tmp_path / "run", ds, EvaluateOptions(out_dir=tmp_path / "a",
                                                           figure_patches=0))
    probs = np.load(tmp_path / "a" / "probabilities.npy").astype(np.float64) / 254
    t = float(np.round(np.median(probs), 3))  # a threshold that maps regions everywhere
    opts = {"out_dir": tmp_path / "b", "figure_patches": 0, "threshold": t}
    evaluate(tmp_path / "run", ds, EvaluateOptions(**opts))  # type: ignore[arg-type]
    before = np.load(tmp_path / "b" / "masks.npy")
    opts["out_dir"] = tmp_path / "c"
    res = evaluate(tmp_path / "run", ds, EvaluateOptions(**opts, min_slope=20.0))  # type: ignore[arg-type]
    after = np.load(tmp_path / "c" / "masks.npy")
    ids = np.load(tmp_path / "c" / "patch_ids.npy")
    flat = ids % 2 == 0
    assert (before[flat] == 1).any() and not (after[flat] == 1).any()
    np.testing.assert_array_equal(after[~flat], before[~flat])
    truth = np.load(ds / "labels.npy")[ids]
    tp = int(((after == 1) & (truth == 1)).sum())
    fp = int(((after == 1) & (truth == 0)).sum())
    assert (res.confusion.tp, res.confusion.fp) == (tp, fp)
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert report["min_slope"] == 20.0 and plain.confusion != res.confusion


def test_min_slope_needs_a_slope_band(tmp_path: Path) -> None:
    images = np.ones((3, 1, 16, 16), np.float32)
    ds = write_dataset(tmp_path / "ds", images, np.zeros((3, 16, 16), np.uint8), ["red"],
                       ["train", "val", "test"])
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=1,
                      band_set="red", band_names=["red"], mean=[1.0], std=[1.0])
    save_bundle(tmp_path / "run" / "bundle", create_model("unet", 1, width=4, depth=2), meta)
    with pytest.raises(BandError, match=r"--extra dem=DEM\.tif"):
        evaluate(tmp_path / "run", ds.path, EvaluateOptions(min_slope=10.0))
