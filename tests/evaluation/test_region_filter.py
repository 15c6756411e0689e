"""``evaluate --min-slope`` and ``--min-area``: predicted landslides on flat ground or smaller than
an area are removed before scoring; ``--min-area tuned`` chooses the area on validation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from landslip.dataset.folder import DatasetFolder
from landslip.dataset.writer import write_dataset
from landslip.errors import BandError, DatasetError, InputError
from landslip.evaluation.evaluate import MIN_AREA_GRID_PX, EvaluateOptions, evaluate
from landslip.evaluation.region_filter import drop_flat_regions, drop_small_regions
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


# --- --min-area -------------------------------------------------------------------------------


def test_small_regions_dropped_diagonals_join_exact_area_kept() -> None:
    mask = np.zeros((8, 8), np.uint8)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = 1  # corner neighbours: one region of 3 pixels
    mask[0, 6] = 1  # 1 pixel
    mask[5:7, 5:7] = 1  # 4 pixels
    mask[6, 0] = 1  # 1 pixel beside a not-scored pixel, which is no part of it
    mask[7, 0] = mask[7, 1] = 255
    out, removed = drop_small_regions(mask, 3.0)
    assert removed == 2
    assert out[0, 6] == 0 and out[6, 0] == 0 and (out[7, :2] == 255).all()
    assert out[0, 0] == out[1, 1] == out[2, 2] == 1 and (out[5:7, 5:7] == 1).all()
    assert np.array_equal(drop_small_regions(mask, 0.0)[0], mask)
    # In m2: 3 pixels of 2.5 m2 are exactly 7.5 m2 (kept), not 7.6.
    assert drop_small_regions(mask, 7.5, pixel_area=2.5)[1] == 2
    out, removed = drop_small_regions(mask, 7.6, pixel_area=2.5)
    assert removed == 3 and out[1, 1] == 0 and (out[5:7, 5:7] == 1).all()
    # A batch: regions per patch, the input untouched.
    batch = np.stack([mask, np.roll(mask, 1, axis=0)])
    out, removed = drop_small_regions(batch, 3.0)
    assert removed == 4 and np.array_equal(out[0], drop_small_regions(mask, 3.0)[0])
    assert batch[0, 0, 6] == 1
    with pytest.raises(InputError, match="minimum area"):
        drop_small_regions(mask, -1.0)


def _speckle_dataset(folder: Path, crs: bool) -> DatasetFolder:
    """10 patches (2 train, 4 val, 4 test) whose ``red`` band is 1000 x the probability that
    :func:`_fake_predictions` returns: two true landslides (25 and 6 px, p 0.9) and three false
    specks (p 0.6) of 1, 3 (a diagonal) and 5 px."""
    n, p = 10, 32
    prob = np.full((n, p, p), 0.1, np.float32)
    labels = np.zeros((n, p, p), np.uint8)
    for i in range(n):
        for rows, cols in ((slice(2, 7), slice(2, 7)), (slice(20, 22), slice(2 + i, 5 + i))):
            prob[i, rows, cols], labels[i, rows, cols] = 0.9, 1
        for r, c in ((15, 12), (10, 20), (11, 21), (12, 22), (25, 25), (24, 25), (26, 25),
                     (25, 24), (25, 26)):
            prob[i, r, c] = 0.6
    labels[:, 31, :] = 255
    meta = {"crs": "EPSG:32654", "res": [3.0, 3.0]} if crs else None
    return write_dataset(folder, (prob * 1000)[:, None], labels, ["red"],
                         ["train"] * 2 + ["val"] * 4 + ["test"] * 4, meta=meta)


@pytest.fixture
def fake_predictions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the model by the dataset's ``red`` band / 1000; returns the passes made."""
    import landslip.evaluation.evaluate as ev

    passes: list[str] = []

    def fake(bundle: object, ds: DatasetFolder, indices: np.ndarray, engine: object,
             batch_size: int = 16, description: str = "", tta: bool = False) -> Iterator[Any]:
        passes.append(description)
        for start in range(0, indices.size, batch_size):
            b = indices[start:start + batch_size]
            yield (b, np.asarray(ds.images[b][:, 0], np.float32) / 1000,
                   np.asarray(ds.labels[b]))

    monkeypatch.setattr(ev, "predict_split", fake)
    return passes


def _save_red_bundle(run: Path) -> Path:
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=1,
                      band_set="red", band_names=["red"], mean=[0.0], std=[1.0])
    save_bundle(run / "bundle", create_model("unet", 1, width=4, depth=2), meta)
    return run


def _hand_object_f1(masks: np.ndarray, truth: np.ndarray, area_px: float) -> float:
    """Object F1 (overlap rule, 0.5) with regions under ``area_px`` removed, by scipy alone."""
    from scipy import ndimage

    eight = np.ones((3, 3), bool)
    n_true = n_det = n_pred = n_false = 0
    for m, t in zip(masks, truth, strict=True):
        pred = (m == 1) & (t != 255)
        lab, n = ndimage.label(pred, eight)
        for r in range(1, n + 1):
            if (lab == r).sum() < area_px:
                pred[lab == r] = False
        lab, n = ndimage.label(pred, eight)
        tl, nt = ndimage.label(t == 1, eight)
        n_pred += n
        n_false += sum(int(((tl > 0) & (lab == r)).sum() < 0.5 * (lab == r).sum())
                       for r in range(1, n + 1))
        n_true += nt
        n_det += sum(int((pred & (tl == r)).sum() >= 0.5 * (tl == r).sum())
                     for r in range(1, nt + 1))
    d, a = n_det / n_true, 1 - n_false / max(n_pred, 1)
    return 2 * d * a / (d + a) if d and a else 0.0


def test_evaluate_min_area_removes_small_regions_from_pixels_and_objects(
        tmp_path: Path, fake_predictions: list[str]) -> None:
    ds = _speckle_dataset(tmp_path / "ds", crs=True)  # 9 m2 pixels
    run = _save_red_bundle(tmp_path / "run")
    base = {"figure_patches": 0, "engine": "torch"}
    plain = evaluate(run, ds, EvaluateOptions(out_dir=tmp_path / "a", **base))  # type: ignore[arg-type]
    res = evaluate(run, ds, EvaluateOptions(out_dir=tmp_path / "b", min_area=27.0, **base))  # type: ignore[arg-type]
    before, after = np.load(tmp_path / "a" / "masks.npy"), np.load(tmp_path / "b" / "masks.npy")
    assert (before[:, 15, 12] == 1).all() and (after[:, 15, 12] == 0).all()  # 9 m2: removed
    assert (after[:, 11, 21] == 1).all()  # the 3-pixel diagonal is exactly 27 m2: kept
    np.testing.assert_array_equal(after, drop_small_regions(before, 3.0)[0])
    assert (plain.confusion.fp, res.confusion.fp) == (4 * 9, 4 * 8)
    assert res.confusion.tp == plain.confusion.tp == 4 * 31
    objects = res.report["objects"]
    assert (objects["predicted_regions"], objects["false_alarms"]) == (4 * 4, 4 * 2)
    assert plain.report["objects"]["predicted_regions"] == 4 * 5
    assert res.report["min_area"]["value"] == 27.0 and res.report["min_area"]["unit"] == "m2"
    assert res.report["min_area"]["mode"] == "fixed" and plain.report["min_area"] is None
    assert "under 27.000 m²" in (tmp_path / "b" / "report.md").read_text()


@pytest.mark.parametrize("crs", [False, True])
def test_tuned_min_area_is_the_hand_choice_on_val(tmp_path: Path, crs: bool,
                                                  fake_predictions: list[str]) -> None:
    ds = _speckle_dataset(tmp_path / "ds", crs=crs)
    run = _save_red_bundle(tmp_path / "run")
    base = {"figure_patches": 0, "engine": "torch"}
    evaluate(run, ds, EvaluateOptions(split="val", out_dir=tmp_path / "v", **base))  # type: ignore[arg-type]
    val_masks = np.load(tmp_path / "v" / "masks.npy")
    val_truth = np.asarray(ds.labels[np.load(tmp_path / "v" / "patch_ids.npy")])
    hand = [_hand_object_f1(val_masks, val_truth, px) for px in MIN_AREA_GRID_PX]
    best_px = MIN_AREA_GRID_PX[int(np.argmax(hand))]  # first maximum: the smaller area
    assert best_px == 4  # removes the 1-pixel and the diagonal 3-pixel specks only

    fake_predictions.clear()
    res = evaluate(run, ds, EvaluateOptions(out_dir=tmp_path / "t", min_area="tuned", **base))  # type: ignore[arg-type]
    assert fake_predictions == ["tuning on val", "evaluating test"]  # val predicted once
    area = res.report["min_area"]
    scale = 9.0 if crs else 1.0
    assert area["mode"] == "tuned" and area["tuned_on"] == "val"
    assert area["unit"] == ("m2" if crs else "px") and area["value"] == best_px * scale
    assert [c["min_area"] for c in area["candidates"]] == [a * scale for a in MIN_AREA_GRID_PX]
    assert [c["object_f1"] for c in area["candidates"]] == pytest.approx(hand)
    test_masks = np.load(tmp_path / "t" / "masks.npy")
    assert res.report["objects"]["false_alarm_rate"] == pytest.approx(1 / 3)
    assert not (test_masks[:, 15, 12] == 1).any() and not (test_masks[:, 11, 21] == 1).any()
    assert "Minimum area tuned on the `val` split" in (tmp_path / "t" / "report.md").read_text()
    # Tuned at the applied threshold: at 0.7 the specks are gone, and 0 px ties best.
    res = evaluate(run, ds, EvaluateOptions(out_dir=tmp_path / "u", min_area="tuned",
                                            threshold=0.7, **base))  # type: ignore[arg-type]
    assert res.report["min_area"]["value"] == 0.0


def test_tuned_min_area_refused_on_the_tuning_split(tmp_path: Path,
                                                    fake_predictions: list[str]) -> None:
    ds = _speckle_dataset(tmp_path / "ds", crs=False)
    run = _save_red_bundle(tmp_path / "run")
    with pytest.raises(InputError, match="--min-area tuned would tune on the val split"):
        evaluate(run, ds, EvaluateOptions(split="val", min_area="tuned", out_dir=tmp_path / "x"))
    with pytest.raises(InputError, match="--min-area must be an area >= 0"):
        evaluate(run, ds, EvaluateOptions(min_area=-1.0, out_dir=tmp_path / "x"))
    assert not (tmp_path / "x").exists()
    no_val = write_dataset(tmp_path / "nv", np.zeros((2, 1, 16, 16), np.float32),
                           np.zeros((2, 16, 16), np.uint8), ["red"], ["train", "test"])
    with pytest.raises(DatasetError, match="cannot tune the minimum area"):
        evaluate(run, no_val, EvaluateOptions(min_area="tuned", out_dir=tmp_path / "y",
                                              engine="torch"))
