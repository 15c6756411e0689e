"""Train/validation/test splits of scene patches, and the leakage audit.

``random``
    The paper's split: patches shuffled with a seed and cut 64/16/20. Neighbouring patches of
    one landslide land in different splits, so test scores are optimistic; the leakage audit
    reports by how much.

``blocks``
    Spatially separate splits. The patch lattice is cut into square blocks of ``block_size``
    x ``block_size`` patches, put in serpentine order; from a seeded start, a contiguous run
    of blocks becomes test and the next run validation (compact stripes), the rest training.
    Then every training patch that touches or overlaps a validation or test patch is dropped:
    the buffer, at least one patch wide, between held-out data and training data. No held-out
    patch touches a training patch afterwards (the audit proves it on every dataset).

Leakage audit: for each split, the number and share of its patches that touch or overlap
(share an edge, a corner or pixels with) at least one training patch
(:meth:`landslip.grid.Window.touches_or_overlaps`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from landslip.dataset.index import SPLITS
from landslip.dataset.tiling import touches_any
from landslip.errors import DatasetError
from landslip.grid import Window

__all__ = [
    "PAPER_FRACTIONS",
    "block_split",
    "check_fractions",
    "leakage_audit",
    "random_split",
    "split_counts",
]

PAPER_FRACTIONS: tuple[float, float, float] = (0.64, 0.16, 0.20)
"""The paper's train/validation/test shares."""


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Validate train/val/test shares: three non-negative numbers summing to 1, train > 0.

    Raises:
        DatasetError: Otherwise, saying what was given.
    """
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or any(x < 0 or not math.isfinite(x) for x in f) or f[0] <= 0:
        raise DatasetError(f"fractions must be three non-negative shares for train, val and test "
                           f"with train > 0, got {list(fractions)}")
    if abs(sum(f) - 1) > 1e-6:
        raise DatasetError(f"fractions must sum to 1, got {list(fractions)} (sum {sum(f):g}); "
                           "for example 0.64,0.16,0.2")
    return (f[0], f[1], f[2])


def split_counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Patches per split for ``n`` patches: val and test rounded, train the rest."""
    f = check_fractions(fractions)
    n_val = round(f[1] * n)
    n_test = round(f[2] * n)
    n_train = n - n_val - n_test
    if n_train < 1 and n > 0:
        raise DatasetError(f"{n} patches are too few for fractions {list(f)}")
    return n_train, n_val, n_test


def random_split(n: int, fractions: Sequence[float] = PAPER_FRACTIONS, seed: int = 0
                 ) -> list[str]:
    """The paper's split: a seeded permutation cut into train, val and test.

    Args:
        n: Number of patches.
        fractions: Train, val, test shares.
        seed: Random seed.

    Returns:
        One split name per patch.
    """
    n_train, n_val, _ = split_counts(n, fractions)
    order = np.random.default_rng(seed).permutation(n)
    out = ["test"] * n
    for rank, k in enumerate(order):
        out[int(k)] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return out


def block_split(
    windows: Sequence[Window],
    rows: Sequence[int],
    cols: Sequence[int],
    fractions: Sequence[float] = PAPER_FRACTIONS,
    seed: int = 0,
    block_size: int = 4,
) -> list[str | None]:
    """Spatial split in contiguous runs of blocks, with a buffer before training data.

    The patch lattice is cut into ``block_size`` x ``block_size`` blocks, which are put in a
    serpentine (boustrophedon) order along the shorter side of the lattice, so that
    consecutive blocks are neighbours. Starting at a seeded position of that cyclic order, a
    run of blocks holding the test share of the patches becomes test, the next run holding
    the validation share becomes validation (test first or validation first: seeded too), and
    all other blocks are training. Held-out data thus form one or two compact stripes, which
    keeps the buffer small. Finally every training patch that touches or overlaps a
    validation or test patch is dropped (the buffer, at least one patch wide).

    Args:
        windows: Pixel windows of the patches (the kept ones).
        rows: Lattice row of each patch.
        cols: Lattice column of each patch.
        fractions: Target train, val, test shares (in patches, before the buffer is dropped).
        seed: Random seed of the start position and order of the held-out runs.
        block_size: Block side in patches (>= 1).

    Returns:
        One split name per patch, or None for training patches dropped as buffer.

    Raises:
        DatasetError: If there are fewer blocks than splits with a non-zero share.
    """
    f = check_fractions(fractions)
    if block_size < 1:
        raise DatasetError(f"block size must be >= 1 patch, got {block_size}")
    n = len(windows)
    blocks: dict[tuple[int, int], list[int]] = {}
    for k in range(n):
        blocks.setdefault((rows[k] // block_size, cols[k] // block_size), []).append(k)
    wanted = [s for s, x in zip(SPLITS, f, strict=True) if x > 0]
    if len(blocks) < len(wanted):
        raise DatasetError(
            f"only {len(blocks)} block(s) of {block_size} x {block_size} patches for "
            f"{len(wanted)} splits; use a smaller --block-size or smaller patches"
        )
    n_bi = max(b[0] for b in blocks) + 1
    n_bj = max(b[1] for b in blocks) + 1
    if n_bj <= n_bi:  # rows of blocks are the short side: snake along rows
        order = sorted(blocks, key=lambda b: (b[0], b[1] if b[0] % 2 == 0 else -b[1]))
    else:  # snake along columns
        order = sorted(blocks, key=lambda b: (b[1], b[0] if b[1] % 2 == 0 else -b[0]))
    rng = np.random.default_rng(seed)
    start = int(rng.integers(len(order)))
    order = order[start:] + order[:start]
    held = ["test", "val"] if rng.random() < 0.5 else ["val", "test"]
    targets = {"val": f[1] * n, "test": f[2] * n}
    labels: list[str | None] = ["train"] * n
    pos = 0
    active = [s for s in held if targets[s] > 0]
    for rank, split in enumerate(active):
        got = 0
        # take at least one block, then blocks while that brings the count nearer the target;
        # leave one block for each later held-out split and one for training
        reserve = len(active) - rank
        while pos < len(order) - reserve:
            size = len(blocks[order[pos]])
            if got > 0 and abs(got + size - targets[split]) >= abs(got - targets[split]):
                break
            for k in blocks[order[pos]]:
                labels[k] = split
            got += size
            pos += 1
    held_out = np.array([lab in ("val", "test") for lab in labels], dtype=bool)
    near_held_out = touches_any(windows, held_out)
    for k in range(n):
        if labels[k] == "train" and near_held_out[k]:
            labels[k] = None
    return labels


def leakage_audit(windows: Sequence[Window], splits: Sequence[str]) -> dict[str, Any]:
    """Share of each split's patches that touch or overlap a training patch.

    Args:
        windows: Pixel windows of the patches on their scene (all the same scene).
        splits: Split name of each patch.

    Returns:
        {"definition": text, "train"|"val"|"test": {"patches": n, "touching_train": k,
        "share": k / n}}; for ``train`` the count is of training patches touching *another*
        training patch.
    """
    is_train = np.array([s == "train" for s in splits], dtype=bool)
    touch = touches_any(windows, is_train)
    out: dict[str, Any] = {
        "definition": "share of a split's patches that touch (edge or corner) or overlap at "
                      "least one training patch on the scene grid",
    }
    for s in SPLITS:
        members = np.array([x == s for x in splits], dtype=bool)
        k = int((touch & members).sum())
        m = int(members.sum())
        out[s] = {"patches": m, "touching_train": k, "share": k / m if m else 0.0}
    return out

