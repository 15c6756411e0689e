"""Running moments: chunked and merged statistics equal whole-array numpy statistics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from landslip.moments import RunningMoments


def _chunks(x: np.ndarray, cuts: list[int]) -> list[np.ndarray]:
    edges = sorted({0, x.shape[1], *[c % (x.shape[1] + 1) for c in cuts]})
    return [x[:, a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 400),
       cuts=st.lists(st.integers(0, 400), max_size=6), offset=st.sampled_from([0.0, 1e6]))
def test_merged_chunks_equal_whole_array_numpy(seed: int, n: int, cuts: list[int],
                                               offset: float) -> None:
    x = np.random.default_rng(seed).normal(offset, 3.0, size=(3, n))
    merged = RunningMoments(3, covariance=True)
    streamed = RunningMoments(3)
    for chunk in _chunks(x, cuts):
        part = RunningMoments(3, covariance=True)
        part.update(chunk)
        merged.merge(part)
        streamed.update(chunk)
    for acc in (merged, streamed):
        assert acc.count == n
        np.testing.assert_allclose(acc.mean, x.mean(axis=1), rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(acc.std, x.std(axis=1), rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(acc.min, x.min(axis=1))
        np.testing.assert_array_equal(acc.max, x.max(axis=1))
    np.testing.assert_allclose(merged.cov, np.cov(x, bias=True).reshape(3, 3), rtol=1e-9,
                               atol=1e-9)


def test_valid_mask_along_a_band_axis() -> None:
    """(N, C, H, W) patches with an (N, H, W) mask: statistics of the masked pixels per band."""
    rng = np.random.default_rng(1)
    patches = rng.integers(0, 5000, size=(5, 4, 6, 6)).astype(np.uint16)
    valid = rng.random((5, 6, 6)) > 0.3
    acc = RunningMoments(4)
    acc.update(patches[:2], valid[:2], axis=1)
    acc.update(patches[2:], valid[2:], axis=1)
    picked = np.moveaxis(patches, 1, 0)[:, valid].astype(np.float64)  # (C, k)
    assert acc.count == int(valid.sum())
    np.testing.assert_allclose(acc.mean, picked.mean(axis=1), rtol=1e-13)
    np.testing.assert_allclose(acc.std, picked.std(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(acc.min, picked.min(axis=1))
    np.testing.assert_array_equal(acc.max, picked.max(axis=1))


def test_precision_far_from_zero() -> None:
    """A small spread on a large offset keeps its variance (E[x^2] - E[x]^2 would not)."""
    x = 1e9 + np.array([[0.0, 1.0, 2.0, 3.0]])
    acc = RunningMoments(1)
    for k in range(4):
        acc.update(x[:, k:k + 1])
    assert acc.var[0] == pytest.approx(1.25, rel=1e-12)


def test_empty_and_mismatched_input() -> None:
    acc = RunningMoments(2, covariance=True)
    acc.update(np.zeros((2, 0)))
    acc.update(np.ones((2, 3)), np.zeros(3, dtype=bool))
    assert acc.count == 0 and acc.std.tolist() == [0.0, 0.0]
    assert acc.cov.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match="variables"):
        acc.update(np.ones((3, 4)))
    with pytest.raises(ValueError, match="valid mask"):
        acc.update(np.ones((2, 4)), np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="cannot merge"):
        acc.merge(RunningMoments(2))
    with pytest.raises(ValueError, match="covariance"):
        _ = RunningMoments(2).cov
