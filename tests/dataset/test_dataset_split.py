"""Splits: paper fractions, spatial blocks with buffer, and an honest leakage audit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from landslip.dataset.split import block_split, leakage_audit, random_split, split_counts
from landslip.dataset.tiling import patch_layout
from landslip.errors import DatasetError


def test_random_split_fractions_and_seed() -> None:
    a = random_split(100, (0.64, 0.16, 0.2), seed=0)
    assert (a.count("train"), a.count("val"), a.count("test")) == (64, 16, 20)
    assert a == random_split(100, seed=0) and a != random_split(100, seed=1)
    assert split_counts(7, (0.64, 0.16, 0.2)) == (5, 1, 1)
    with pytest.raises(DatasetError, match="sum to 1"):
        random_split(10, (0.5, 0.2, 0.2))


def _brute_share(windows, splits, split):  # type: ignore[no-untyped-def]
    members = [k for k, s in enumerate(splits) if s == split]
    touching = [k for k in members if any(
        m != k and splits[m] == "train" and windows[k].touches_or_overlaps(windows[m])
        for m in range(len(windows)))]
    return len(touching) / len(members)


def test_random_split_audit_reports_real_share() -> None:
    lay = patch_layout(20 * 16, 20 * 16, 16)
    splits = random_split(len(lay), seed=3)
    audit = leakage_audit(lay.windows, splits)
    for s in ("val", "test"):
        assert audit[s]["share"] == pytest.approx(_brute_share(lay.windows, splits, s))
        assert audit[s]["patches"] == splits.count(s)
    assert audit["test"]["share"] > 0.9  # random splits leak: nearly every test patch


@settings(max_examples=25, deadline=None)
@given(nr=st.integers(3, 14), nc=st.integers(3, 14), block=st.integers(1, 4),
       seed=st.integers(0, 1000), overlap=st.booleans())
def test_blocks_split_no_test_patch_touches_training(
    nr: int, nc: int, block: int, seed: int, overlap: bool
) -> None:
    p = 8
    stride = 4 if overlap else 8
    lay = patch_layout((nr - 1) * stride + p, (nc - 1) * stride + p, p, stride)
    try:
        labels = block_split(lay.windows, lay.rows, lay.cols, seed=seed, block_size=block)
    except DatasetError:
        assert len({(r // block, c // block) for r, c in zip(lay.rows, lay.cols, strict=True)}) < 3
        return
    kept = [k for k, s in enumerate(labels) if s is not None]
    wins = [lay.windows[k] for k in kept]
    splits = [labels[k] for k in kept]
    audit = leakage_audit(wins, splits)  # type: ignore[arg-type]
    assert audit["test"]["touching_train"] == 0
    assert audit["val"]["touching_train"] == 0
    assert audit["test"]["patches"] > 0 and audit["val"]["patches"] > 0
    # only training patches are ever dropped as buffer
    assert all(labels[k] is None for k in range(len(labels)) if k not in kept)


def test_blocks_are_contiguous_and_seeded() -> None:
    lay = patch_layout(16 * 8, 16 * 8, 8)
    a = block_split(lay.windows, lay.rows, lay.cols, seed=1, block_size=4)
    assert a == block_split(lay.windows, lay.rows, lay.cols, seed=1, block_size=4)
    assert a != block_split(lay.windows, lay.rows, lay.cols, seed=2, block_size=4)
    grid = np.array([s or "-" for s in a]).reshape(16, 16)
    for bi in range(4):
        for bj in range(4):
            held = {x for x in grid[4 * bi:4 * bi + 4, 4 * bj:4 * bj + 4].ravel()} - {"-"}
            assert len(held) == 1  # a block belongs to one split (or its buffer)
    with pytest.raises(DatasetError, match="block"):
        block_split(lay.windows, lay.rows, lay.cols, block_size=16)
