"""Patch layouts cover awkward scene sizes exactly; touch detection matches brute force."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from landslip.dataset.tiling import patch_layout, touches_any, touching_neighbours
from landslip.grid import Window


@settings(max_examples=50, deadline=None)
@given(h=st.integers(1, 160), w=st.integers(1, 160), p=st.integers(1, 64), data=st.data())
def test_layout_covers_scene(h: int, w: int, p: int, data: st.DataObject) -> None:
    s = data.draw(st.integers(max(1, p // 4), p))
    lay = patch_layout(h, w, p, s)
    cover = np.zeros((h, w), dtype=np.int32)
    for win in lay.windows:
        assert win.row_off >= 0 and win.col_off >= 0
        assert win.row_off < h and win.col_off < w  # every window starts inside the scene
        rs, cs = win.slices()
        cover[rs, cs] += 1
    assert (cover >= 1).all()
    n_r = 1 if h <= p else math.ceil((h - p) / s) + 1
    n_c = 1 if w <= p else math.ceil((w - p) / s) + 1
    assert (lay.n_rows, lay.n_cols) == (n_r, n_c) and len(lay) == n_r * n_c
    if s == p:
        assert (cover == 1).all()  # no overlap: each pixel in exactly one patch
    assert max(lay.rows) == n_r - 1 and max(lay.cols) == n_c - 1


def test_layout_awkward_example() -> None:
    lay = patch_layout(1000, 700, 256)
    assert (lay.n_rows, lay.n_cols) == (4, 3)
    assert lay.windows[-1] == Window(768, 512, 256, 256)  # overhangs bottom and right


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(-20, 60), st.integers(-20, 60), st.integers(1, 16),
                          st.integers(1, 16)), min_size=1, max_size=25),
       st.data())
def test_touching_neighbours_matches_brute_force(
    boxes: list[tuple[int, int, int, int]], data: st.DataObject
) -> None:
    wins = [Window(*b) for b in boxes]
    got = touching_neighbours(wins)
    for k, a in enumerate(wins):
        want = [m for m, b in enumerate(wins) if m != k and a.touches_or_overlaps(b)]
        assert got[k] == want
    flags = np.array(data.draw(st.lists(st.booleans(), min_size=len(wins), max_size=len(wins))))
    expect = [any(flags[m] for m in got[k]) for k in range(len(wins))]
    assert touches_any(wins, flags).tolist() == expect
