"""Pixel metrics and threshold sweeps against independent brute-force computations."""

from __future__ import annotations

import numpy as np
import pytest

from landslip.encoding import IGNORE, apply_threshold
from landslip.errors import InputError
from landslip.evaluation.metrics import (
    Confusion,
    ThresholdSweep,
    confusion,
    threshold_bins,
    threshold_grid,
)


def _random_case(seed: int, shape: tuple[int, ...] = (5, 17, 23)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(np.array([0, 1, IGNORE], dtype=np.uint8), size=shape, p=[0.6, 0.3, 0.1])
    # Probabilities correlated with the truth, plus exact grid values and the extremes 0 and 1.
    prob = np.clip(rng.normal(0.35 + 0.3 * (truth == 1), 0.25), 0, 1).astype(np.float32)
    flat = prob.reshape(-1)
    flat[:50] = rng.integers(0, 1001, 50) / 1000.0
    flat[50:52] = (0.0, 1.0)
    return prob, truth


def _brute_confusion(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int, int]:
    """Loop over pixels, no vectorised counting."""
    tp = fp = fn = tn = 0
    for p, t in zip(pred.ravel().tolist(), truth.ravel().tolist(), strict=True):
        if t == IGNORE:
            continue
        if p and t == 1:
            tp += 1
        elif p:
            fp += 1
        elif t == 1:
            fn += 1
        else:
            tn += 1
    return tp, fp, fn, tn


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matches_pixel_loop(seed: int) -> None:
    prob, truth = _random_case(seed)
    pred = prob >= 0.5
    c = confusion(pred, truth)
    assert (c.tp, c.fp, c.fn, c.tn) == _brute_confusion(pred, truth)
    # Scores from the definitions, computed independently.
    tp, fp, fn, _ = _brute_confusion(pred, truth)
    assert c.precision == pytest.approx(tp / (tp + fp))
    assert c.recall == pytest.approx(tp / (tp + fn))
    p, r = tp / (tp + fp), tp / (tp + fn)
    assert c.f1 == pytest.approx(2 * p * r / (p + r))
    assert c.iou == pytest.approx(tp / (tp + fp + fn))


def test_ignore_pixels_never_count() -> None:
    truth = np.array([[IGNORE, IGNORE], [1, 0]], dtype=np.uint8)
    pred = np.array([[1, 0], [1, 1]], dtype=np.uint8)
    assert confusion(pred, truth) == Confusion(tp=1, fp=1, fn=0, tn=0)
    sweep = ThresholdSweep(11)
    sweep.update(pred.astype(np.float32), truth)
    assert sweep.pixels == 2
    # Changing predictions under label 255 changes nothing.
    pred2 = pred.copy()
    pred2[0] = (0, 1)
    assert confusion(pred2, truth) == confusion(pred, truth)


def test_scores_are_zero_when_undefined() -> None:
    c = Confusion(0, 0, 0, 10)
    assert (c.precision, c.recall, c.f1, c.iou) == (0.0, 0.0, 0.0, 0.0)


def test_threshold_bins_agree_with_direct_comparison() -> None:
    rng = np.random.default_rng(3)
    grid = threshold_grid(1001)
    # Random values plus every grid value and its float32 / float64 neighbours.
    vals = np.concatenate([rng.random(20000), grid, np.nextafter(grid, 0), np.nextafter(grid, 1)])
    vals = np.clip(vals, 0, 1)
    for arr in (vals, vals.astype(np.float32)):
        k = threshold_bins(arr, 1001)
        direct = arr.astype(np.float64)[:, None] >= grid[None, :]
        # bin k means: reaches thresholds 0..k and no higher one.
        assert np.array_equal(direct.sum(axis=1) - 1, k)


def test_threshold_bins_rejects_bad_probabilities() -> None:
    with pytest.raises(InputError, match="sigmoid"):
        threshold_bins(np.array([0.2, 1.5]))
    with pytest.raises(InputError):
        threshold_bins(np.array([np.nan]))


@pytest.mark.parametrize("seed", [0, 4])
def test_sweep_equals_direct_thresholding_at_every_threshold(seed: int) -> None:
    prob, truth = _random_case(seed)
    sweep = ThresholdSweep(101)
    # Fed in three uneven chunks: streaming must not change the counts.
    flat_p, flat_t = prob.reshape(-1), truth.reshape(-1)
    for part in np.array_split(np.arange(flat_p.size), [7, 400]):
        sweep.update(flat_p[part], flat_t[part])
    curve = sweep.curve()
    keep = truth != IGNORE
    positives = np.bincount((truth[keep] == 1).astype(int), minlength=2)
    for k, t in enumerate(curve.thresholds):
        direct = confusion(apply_threshold(prob, t), truth)
        assert curve.confusion_at(float(t)) == direct
        assert curve.tp[k] + curve.fn[k] == positives[1]
        assert curve.fp[k] + curve.tn[k] == positives[0]
    assert curve.f1[50] == pytest.approx(confusion(prob >= 0.5, truth).f1)


def test_best_threshold_is_f1_optimal_over_all_thresholds() -> None:
    prob, truth = _random_case(5)
    sweep = ThresholdSweep()
    sweep.update(prob, truth)
    curve = sweep.curve()
    t, c = curve.best_threshold()
    brute_best = max(confusion(apply_threshold(prob, float(s)), truth).f1
                     for s in np.linspace(0, 1, 1001))
    assert c.f1 == pytest.approx(brute_best)
    assert c == confusion(apply_threshold(prob, t), truth)


def test_best_threshold_takes_centre_of_plateau() -> None:
    # Perfectly separable: every threshold in (0.2, 0.8] gives F1 = 1.
    prob = np.array([0.2, 0.2, 0.8, 0.8], dtype=np.float32)
    truth = np.array([0, 0, 1, 1], dtype=np.uint8)
    sweep = ThresholdSweep(1001)
    sweep.update(prob, truth)
    t, c = sweep.curve().best_threshold()
    assert c.f1 == 1.0
    assert t == pytest.approx(0.5, abs=0.001)


def test_average_precision_matches_brute_force() -> None:
    prob, truth = _random_case(6)
    sweep = ThresholdSweep(201)
    sweep.update(prob, truth)
    curve = sweep.curve()
    # Independent: walk the thresholds from high to low, summing precision x recall gain.
    ap, prev_r = 0.0, 0.0
    for t in curve.thresholds[::-1]:
        c = confusion(apply_threshold(prob, float(t)), truth)
        ap += (c.recall - prev_r) * c.precision
        prev_r = c.recall
    assert curve.average_precision() == pytest.approx(ap)
    assert 0 < ap <= 1


def test_curve_rejects_threshold_off_grid_and_bad_merge() -> None:
    sweep = ThresholdSweep(11)
    sweep.update(np.array([0.3], dtype=np.float32), np.array([1], dtype=np.uint8))
    with pytest.raises(InputError, match="grid"):
        sweep.curve().confusion_at(0.35)
    with pytest.raises(InputError):
        sweep += ThresholdSweep(21)
    other = ThresholdSweep(11)
    other.update(np.array([0.9], dtype=np.float32), np.array([0], dtype=np.uint8))
    sweep += other
    assert sweep.curve().confusion_at(0.5) == Confusion(tp=0, fp=1, fn=1, tn=0)


@pytest.mark.parametrize("threshold", [0.41, 0.45])
def test_sweep_agrees_with_apply_threshold_at_float32_threshold_values(threshold: float) -> None:
    """float32(t) lies just below t: the sweep, like apply_threshold (the rule of predict and
    evaluate), counts it as background at threshold t and as landslide one grid step lower."""
    f = np.float32(threshold)
    prob = np.array([f, f, np.nextafter(f, np.float32(1)), 0.2, 0.9], dtype=np.float32)
    truth = np.array([1, 0, 1, 0, 1], dtype=np.uint8)
    sweep = ThresholdSweep(101)
    sweep.update(prob, truth)
    curve = sweep.curve()
    assert float(f) < threshold
    for t in (threshold, curve.thresholds[curve.index_of(threshold) - 1]):
        assert curve.confusion_at(float(t)) == confusion(apply_threshold(prob, float(t)), truth)
    assert curve.confusion_at(threshold) == Confusion(tp=2, fp=0, fn=1, tn=2)
