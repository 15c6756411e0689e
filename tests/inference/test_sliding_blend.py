"""Window plans and blending: a known per-pixel output comes through exactly, for any size."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from landslip.errors import InputError
from landslip.grid import Window
from landslip.inference.sliding import (
    RowBandAccumulator,
    blend_in_memory,
    make_plan,
    ramp_weights,
)


def _field(h: int, w: int) -> np.ndarray:
    r, c = np.mgrid[0:h, 0:w]
    return ((r * 37 + c * 101) % 997 / 997.0).astype(np.float32)


def _window_values(scene: np.ndarray, window: Window) -> np.ndarray:
    """What a per-pixel stand-in returns for a window (padded with -1 outside)."""
    out = np.full((window.height, window.width), -1.0, dtype=np.float32)
    inside = window.intersection(Window(0, 0, *scene.shape))
    assert inside is not None
    out[inside.relative_to(window).slices()] = scene[inside.slices()]
    return out


def test_ramps_are_a_partition_of_unity_and_positive() -> None:
    a = ramp_weights(96, 0, 32)
    b = ramp_weights(96, 32, 0)
    assert (a > 0).all() and (b > 0).all()
    np.testing.assert_allclose(a[-32:] + b[:32], 1.0, atol=1e-6)
    assert a[:64].min() == 1.0 and b[32:].min() == 1.0


@pytest.mark.parametrize(
    ("h", "w", "window", "overlap"),
    [
        (100, 70, 1024, 64),  # smaller than one window, not square, no multiple of anything
        (257, 513, 128, 32),
        (300, 301, 96, 64),
        (1000, 333, 256, 64),
        (64, 64, 64, 0),
        (129, 95, 96, 40),  # stride rounded down to 32: effective overlap 64, 3 windows deep
    ],
)
def test_known_output_reproduced_exactly(h: int, w: int, window: int, overlap: int) -> None:
    scene = _field(h, w)
    plan = make_plan(h, w, window, overlap, multiple=32)
    assert plan.win_h % 32 == 0 and plan.win_w % 32 == 0
    assert all(s % 32 == 0 for s in plan.row_starts + plan.col_starts)
    preds = [(win, _window_values(scene, win), np.ones((plan.win_h, plan.win_w), bool))
             for win in plan.windows()]
    ref, valid = blend_in_memory(plan, iter(preds))
    assert valid.all()
    np.testing.assert_allclose(ref, scene, rtol=0, atol=2e-6)

    acc = RowBandAccumulator(plan, block=64)
    out = np.full((h, w), np.nan, dtype=np.float32)
    rows_seen = []
    for row in plan.window_rows():
        for win in row:
            acc.add(win, _window_values(scene, win), np.ones((plan.win_h, plan.win_w), bool))
        for band in acc.finish_row():
            assert band.window.row_off % 64 == 0
            rows_seen.append((band.window.row_off, band.window.row_end))
            out[band.window.slices()] = band.prob
    # Row bands tile the scene exactly once, top to bottom.
    assert rows_seen[0][0] == 0 and rows_seen[-1][1] == h
    assert all(a[1] == b[0] for a, b in itertools.pairwise(rows_seen))
    np.testing.assert_allclose(out, scene, rtol=0, atol=2e-6)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)
    assert acc.nbytes <= 5 * w * (plan.win_h + 64)


def test_window_differences_are_blended_without_jumps() -> None:
    """Windows that disagree (edge effects) blend smoothly: no step at a window border."""
    h, w = 64, 400
    plan = make_plan(h, w, 128, 64, multiple=32)
    preds = []
    for k, win in enumerate(plan.windows()):
        preds.append((win, np.full((plan.win_h, plan.win_w), float(k % 2), np.float32),
                      np.ones((plan.win_h, plan.win_w), bool)))
    out, _ = blend_in_memory(plan, iter(preds))
    steps = np.abs(np.diff(out[0]))
    assert steps.max() < 0.06  # a 0 -> 1 switch spread over the 64-pixel ramp


def test_invalid_plans_are_refused() -> None:
    with pytest.raises(InputError, match="overlap"):
        make_plan(100, 100, 64, 64)
    with pytest.raises(InputError, match="overlap"):
        make_plan(100, 100, 64, -1)
    with pytest.raises(InputError, match="positive"):
        make_plan(0, 100)


def test_default_plan_recomputes_less_than_patch_windows() -> None:
    big = make_plan(4096, 4096, 1024, 64)
    small = make_plan(4096, 4096, 256, 64)
    assert big.recompute_factor < 1.25 < 1.7 < small.recompute_factor
    assert (big.win_h, big.stride[0], len(big.row_starts)) == (896, 832, 5)
    assert make_plan(16384, 16384).win_h == 1024


def test_row_buffer_does_not_grow_with_scene_height() -> None:
    for h in (5000, 16384, 65536, 100000):
        plan = make_plan(h, 2000, 1024, 64)
        assert RowBandAccumulator(plan, block=256).nbytes == 5 * 2000 * (plan.win_h + 256)
        assert plan.win_h <= 1024
