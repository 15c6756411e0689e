"""Per-landslide matching on hand-made masks, and size classes / area-frequency data."""

from __future__ import annotations

import numpy as np
import pytest

from landslip.encoding import IGNORE
from landslip.errors import InputError
from landslip.evaluation.objects import (
    ObjectCounter,
    area_frequency,
    label_regions,
    match_objects,
)


def _canvas() -> np.ndarray:
    return np.zeros((12, 12), dtype=np.uint8)


def test_regions_use_8_connectivity() -> None:
    m = _canvas()
    m[2, 2] = m[3, 3] = 1  # diagonal neighbours: one region
    m[8, 8] = 1
    _, n = label_regions(m)
    assert n == 2


def test_overlap_rule_on_hand_made_masks() -> None:
    truth = _canvas()
    truth[0:4, 0:4] = 1        # A: 16 px, predicted 12 of them -> detected
    truth[0:2, 8:12] = 1       # B: 8 px, predicted 2 of them -> missed
    truth[8:12, 0:2] = 1       # C: 8 px, no prediction -> missed
    pred = _canvas()
    pred[0:3, 0:4] = 1         # covers 12 / 16 of A, entirely inside truth -> not a false alarm
    pred[1:2, 6:10] = 1        # 4 px, 2 of them on B -> half covered: 2/4 >= 0.5 -> no alarm
    pred[8:10, 8:10] = 1       # 4 px on background -> false alarm
    r = match_objects(pred, truth)
    order = np.argsort(r.true_areas)  # areas 8, 8, 16
    assert sorted(r.true_areas.tolist()) == [8, 8, 16]
    assert r.detected[r.true_areas == 16].tolist() == [True]
    assert r.detected[order[:2]].tolist() == [False, False]
    assert sorted(zip(r.pred_areas.tolist(), r.false_alarm.tolist(), strict=True)) == [
        (4, False), (4, True), (12, False)]


def test_merged_prediction_detects_each_landslide_it_covers() -> None:
    truth = _canvas()
    truth[2:6, 1:4] = 1
    truth[2:6, 5:8] = 1        # two landslides separated by one column
    pred = _canvas()
    pred[2:6, 1:8] = 1         # one blob over both, 24 of 28 px are landslide
    r = match_objects(pred, truth)
    assert r.detected.tolist() == [True, True]
    assert r.false_alarm.tolist() == [False]
    # One-to-one IoU matching: the blob matches at most one of them (IoU 12/28 < 0.5: none).
    r2 = match_objects(pred, truth, rule="iou", min_overlap=0.4)
    assert r2.detected.sum() == 1
    assert r2.false_alarm.tolist() == [False]
    r3 = match_objects(pred, truth, rule="iou", min_overlap=0.5)
    assert r3.detected.sum() == 0
    assert r3.false_alarm.tolist() == [True]


def test_iou_rule_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        truth = (rng.random((16, 16)) < 0.3).astype(np.uint8)
        pred = (rng.random((16, 16)) < 0.3).astype(np.uint8)
        r = match_objects(pred, truth, rule="iou", min_overlap=0.6)
        tl, nt = label_regions(truth)
        pl, npr = label_regions(pred)
        # With IoU > 0.5 a region has at most one qualifying partner: check directly.
        det = np.zeros(nt, dtype=bool)
        hit = np.zeros(npr, dtype=bool)
        for i in range(1, nt + 1):
            for j in range(1, npr + 1):
                a, b = tl == i, pl == j
                if (a & b).sum() / (a | b).sum() >= 0.6:
                    det[i - 1] = hit[j - 1] = True
        assert np.array_equal(r.detected, det)
        assert np.array_equal(r.false_alarm, ~hit)


def test_ignore_pixels_are_removed_before_labelling() -> None:
    truth = _canvas()
    truth[:, 6:] = IGNORE
    truth[0:3, 0:3] = 1
    pred = _canvas()
    pred[0:3, 0:3] = 1
    pred[5:9, 7:11] = 1        # entirely on ignore pixels: not a region at all
    r = match_objects(pred, truth)
    assert r.pred_areas.tolist() == [9]
    assert r.false_alarm.tolist() == [False]


def test_counter_rates_and_size_classes_in_square_metres() -> None:
    truth = np.zeros((2, 20, 20), dtype=np.uint8)
    pred = np.zeros_like(truth)
    truth[0, 0:2, 0:2] = 1     # 4 px * 9 m2 = 36 m2 (<100), missed
    truth[0, 5:15, 5:15] = 1   # 100 px = 900 m2 (100-1000), detected
    pred[0, 5:15, 5:15] = 1
    truth[1, 0:20, 0:12] = 1   # 240 px = 2160 m2 (1000-10000), detected
    pred[1, 0:20, 0:12] = 1
    pred[1, 0:3, 15:18] = 1    # 9 px = 81 m2 (<100), false alarm
    c = ObjectCounter(pixel_area=9.0)
    c.update(pred, truth)
    res = c.result()
    assert (res.n_true, res.n_pred) == (3, 3)
    assert res.detection_rate == pytest.approx(2 / 3)
    assert res.false_alarm_rate == pytest.approx(1 / 3)
    rows = {r["size_class"]: r for r in res.by_size()}
    assert rows["<100 m2"]["true"] == 1 and rows["<100 m2"]["detection_rate"] == 0.0
    assert rows["<100 m2"]["false_alarm_rate"] == 1.0
    assert rows["100-1000 m2"]["detected"] == 1
    assert rows["1000-10000 m2"]["detection_rate"] == 1.0
    assert rows[">=10000 m2"]["true"] == 0 and rows[">=10000 m2"]["detection_rate"] is None
    d = res.as_dict()
    assert d["connectivity"] == 8 and d["unit"] == "m2"
    assert sum(d["area_frequency"]["true_count"]) == 3


def test_counter_without_resolution_counts_pixels() -> None:
    c = ObjectCounter(pixel_area=None)
    m = _canvas()
    m[0:5, 0:5] = 1
    c.update(m, m)
    res = c.result()
    assert res.unit == "px" and res.true_areas.tolist() == [25.0]
    assert res.by_size()[0]["size_class"] == "<100 px"


def test_area_frequency_density() -> None:
    af = area_frequency(np.array([15.0, 150.0, 160.0]), np.array([1500.0]), bins_per_decade=1)
    assert af["edges"] == pytest.approx([10, 100, 1000, 10000])
    assert af["true_count"] == [1, 2, 0]
    assert af["pred_count"] == [0, 0, 1]
    assert af["true_density"] == pytest.approx([1 / 90, 2 / 900, 0])
    assert area_frequency(np.zeros(0), np.zeros(0))["edges"] == []


def test_bad_arguments() -> None:
    m = _canvas()
    with pytest.raises(InputError):
        match_objects(m, m[:5])
    with pytest.raises(InputError):
        match_objects(m, m, min_overlap=0)
    with pytest.raises(InputError):
        ObjectCounter(pixel_area=-1)
