"""Pan-sharpening quality metrics: known answers, Wald's protocol."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from landslip.errors import InputError
from landslip.spectral.quality import (
    degrade,
    ergas,
    format_table,
    q4,
    q_index,
    sam,
    wald_protocol,
)


def _img(seed: int = 0, shape: tuple[int, int, int] = (4, 64, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1000 + 200 * rng.random(shape)).astype(np.float64)


def test_identical_images_are_ideal() -> None:
    a = _img()
    assert ergas(a, a, 4) == 0.0
    assert sam(a, a) == pytest.approx(0.0, abs=1e-5)
    assert q_index(a, a) == pytest.approx(1.0)
    assert q4(a, a) == pytest.approx(1.0)


def test_ergas_hand_computed() -> None:
    ref = np.array([[[1.0, 3.0]], [[2.0, 2.0]]])  # band means 2 and 2
    fused = np.array([[[2.0, 3.0]], [[2.0, 4.0]]])  # MSE 0.5 and 2
    # (100 / 4) * sqrt(mean(0.5 / 4, 2 / 4)) = 25 * sqrt(0.3125)
    assert ergas(ref, fused, 4) == pytest.approx(25 * math.sqrt(0.3125))
    with pytest.raises(InputError, match="mean 0"):
        ergas(np.zeros((1, 2, 2)), np.ones((1, 2, 2)), 4)


def test_sam_hand_computed() -> None:
    ref = np.array([[[1.0, 1.0]], [[0.0, 1.0]]])  # pixel vectors (1, 0) and (1, 1)
    fused = np.array([[[0.0, 2.0]], [[1.0, 2.0]]])  # (0, 1): 90 deg; (2, 2): 0 deg
    assert sam(ref, fused) == pytest.approx(45.0)
    # Scaling a spectrum does not change its angle.
    a = _img()
    assert sam(a, 3 * a) == pytest.approx(0.0, abs=1e-5)


def test_q_hand_computed_and_properties() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2)
    y = np.array([2.0, 2.0, 4.0, 4.0]).reshape(1, 2, 2)
    # mu_x 2.5, mu_y 3, var_x 1.25, var_y 1, cov 1 -> 4*1*2.5*3 / (2.25 * 15.25)
    assert q_index(x, y) == pytest.approx(30 / (2.25 * 15.25))
    a = _img()
    assert q_index(a, a + 50) < 1.0  # a bias lowers the luminance term
    assert q_index(a, 2 * a - a.mean()) < 1.0  # a contrast change lowers Q
    assert q_index(a, _img(1)) == pytest.approx(0.0, abs=0.1)  # independent noise


def test_q4_reduces_to_q_for_one_real_band() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((64, 64)) + 1
    y = 0.7 * x + 0.3 * rng.random((64, 64)) + 0.2
    z = np.zeros_like(x)
    qa = np.stack([x, z, z, z])
    qb = np.stack([y, z, z, z])
    assert q4(qa, qb) == pytest.approx(q_index(x[None], y[None]), rel=1e-9)


def test_q4_is_invariant_to_a_common_quaternion_rotation_and_needs_4_bands() -> None:
    a, b = _img(0), _img(0) + 20 * np.random.default_rng(9).random((4, 64, 64))
    # Swapping the imaginary parts in both images preserves moduli of covariance and means.
    perm = [0, 2, 3, 1]
    assert q4(a[perm], b[perm]) == pytest.approx(q4(a, b), rel=1e-6)
    with pytest.raises(InputError, match="4 bands"):
        q4(a[:3], b[:3])


def test_metrics_skip_invalid_pixels() -> None:
    a = _img()
    b = a.copy()
    b[:, :32, :] = 0  # garbage in the top half
    valid = np.ones(a.shape[1:], dtype=bool)
    valid[:32] = False
    assert ergas(a, b, 4, valid) == 0.0
    assert q4(a, b, valid) == pytest.approx(1.0)
    assert q_index(a, b, valid) == pytest.approx(1.0)


def test_degrade_block_mean_and_nodata() -> None:
    a = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    d = degrade(a, 2)
    np.testing.assert_allclose(d[0], [[2.5, 4.5], [10.5, 12.5]])
    a[0, 0, 0] = -1
    d = degrade(a, 2, nodata=-1)
    assert np.isnan(d[0, 0, 0]) and not np.isnan(d[0, 1, 1])


def test_wald_protocol_hpf_beats_bilinear() -> None:
    y, x = np.mgrid[0:128, 0:128].astype(np.float64)
    rng = np.random.default_rng(0)
    base = 400 * np.sin(x / 3.0) * np.cos(y / 5.0) + 200 * ((x // 6 + y // 7) % 2)
    ref = np.stack([1000 + k * 100 + (0.8 + 0.1 * k) * base for k in range(4)])
    ref = ref + rng.normal(0, 5, ref.shape)
    pan = ref[:3].mean(axis=0)
    scores = {s.method: s for s in wald_protocol(pan, degrade(ref, 4), ref, 4)}
    assert scores["hpf"].ergas < scores["bilinear"].ergas
    assert scores["hpf"].q4 is not None and scores["bilinear"].q4 is not None
    assert scores["hpf"].q4 > scores["bilinear"].q4
    assert "brovey" in format_table(list(scores.values()))


@pytest.mark.realdata
def test_wald_on_sentinel2_sample(shared_data: Path) -> None:
    path = shared_data / "s2-sample" / "S2_10m_B02_B03_B04_B08.npy"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    ref = np.load(path).astype(np.float32)
    pan = ref[:3].mean(axis=0)
    scores = {s.method: s for s in wald_protocol(pan, degrade(ref, 4), ref, 4)}
    assert scores["hpf"].ergas < scores["bilinear"].ergas
    assert scores["hpf"].q4 > scores["bilinear"].q4  # type: ignore[operator]
