"""Photometric augmentation and random scaling: nodata untouched, labels aligned, reproducible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.datasets import write_synthetic_dataset
from landslip.dataset.augment import (
    AugmentParams,
    augment_batch,
    draw_params,
    photometric,
    scale_patches,
)
from landslip.dataset.torch import AugmentSampler, LandslideDataModule, PatchDataset
from landslip.encoding import IGNORE
from landslip.errors import DatasetError


@pytest.fixture(scope="module")
def ds_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("d") / "ds", n=12, patch_size=16).path


def _batch(n: int = 3, c: int = 3, p: int = 16, seed: int = 0
           ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, p, p)).astype(np.float32)
    y = (rng.random((n, p, p)) > 0.7).astype(np.uint8)
    y[:, :3, :] = IGNORE  # nodata rows
    y[0, :, -2:] = IGNORE
    x[np.broadcast_to((y == IGNORE)[:, None], x.shape)] = 0
    return x, y


def test_photometric_changes_valid_pixels_per_band_and_leaves_nodata() -> None:
    x, y = _batch()
    out, lab = augment_batch(x.copy(), y.copy(), np.array([1, 2, 3]), 1.0, None)
    nodata = np.broadcast_to((y == IGNORE)[:, None], x.shape)
    assert np.array_equal(lab, y)
    assert np.all(out[nodata] == 0)
    assert np.all(out[~nodata] != x[~nodata])
    params = draw_params(np.array([1, 2, 3]), 3, 16, 1.0, None)
    for a in (params.gamma, params.contrast, params.brightness):
        assert np.unique(a).size == a.size  # every sample and band draws its own value
    assert np.all((params.gamma >= np.exp(-0.3)) & (params.gamma <= np.exp(0.3)))
    assert np.all(np.abs(params.brightness) <= 0.2)
    # strength 0.5 halves the spread of the same draws
    half = draw_params(np.array([1, 2, 3]), 3, 16, 0.5, None)
    assert np.allclose(half.brightness, params.brightness / 2)


def test_contrast_and_brightness_by_hand() -> None:
    x, y = _batch(n=1, c=2)
    valid = y != IGNORE
    params = AugmentParams(np.ones(1), np.ones((1, 2), np.float32),
                           np.array([[1.5, 0.5]], np.float32),
                           np.array([[0.25, -1.0]], np.float32), None)
    out = photometric(x.copy(), valid, params)
    for b, (c, s) in enumerate(((1.5, 0.25), (0.5, -1.0))):
        v = x[0, b][valid[0]]
        assert np.allclose(out[0, b][valid[0]], v.mean() + c * (v - v.mean()) + s, atol=1e-5)
        assert np.all(out[0, b][~valid[0]] == 0)


def test_gamma_keeps_the_valid_range_and_order() -> None:
    x, y = _batch(n=1, c=1)
    valid = y[0] != IGNORE
    params = AugmentParams(np.ones(1), np.full((1, 1), 2.0, np.float32),
                           np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32), None)
    out = photometric(x.copy(), y != IGNORE, params)[0, 0][valid]
    v = x[0, 0][valid]
    assert out.min() == pytest.approx(v.min(), abs=1e-5)
    assert out.max() == pytest.approx(v.max(), abs=1e-5)
    assert np.array_equal(np.argsort(out, kind="stable"), np.argsort(v, kind="stable"))
    lo, hi = v.min(), v.max()
    assert np.allclose(out, lo + (hi - lo) * ((v - lo) / (hi - lo)) ** 2, atol=1e-5)


@pytest.mark.parametrize("factor", [0.75, 1.0, 1.25, 2.0])
def test_scaling_keeps_labels_aligned_with_the_image(factor: float) -> None:
    p = 16
    cols = np.arange(p, dtype=np.float32)
    x = np.broadcast_to(cols, (1, 1, p, p)).copy()  # band 0 = the column index
    x = np.concatenate([x, np.swapaxes(x, 2, 3)], axis=1)  # band 1 = the row index
    rng = np.random.default_rng(0)
    y = (rng.random((1, p, p)) > 0.5).astype(np.uint8)
    y[0, 0, 0] = IGNORE
    x[0, :, 0, 0] = 0
    xs, ys = scale_patches(x, y, np.array([factor]))
    assert xs.shape == x.shape and ys.shape == y.shape and ys.dtype == np.uint8
    centre = (p - 1) / 2
    for r in range(p):
        for c in range(p):
            sr, sc = centre + (r - centre) / factor, centre + (c - centre) / factor
            inside = -0.5 <= sr < p - 0.5 and -0.5 <= sc < p - 0.5
            if not inside:  # padding when zooming out
                assert ys[0, r, c] == IGNORE and np.all(xs[0, :, r, c] == 0)
                continue
            src = y[0, int(np.floor(sr + 0.5)), int(np.floor(sc + 0.5))]
            assert ys[0, r, c] == src
            if src == IGNORE:
                assert np.all(xs[0, :, r, c] == 0)
            elif 1 <= sr <= p - 2 and 1 <= sc <= p - 2 and not (sr < 1.5 and sc < 1.5):
                # bilinear sampling reads the image at the label's (unrounded) position
                assert xs[0, 0, r, c] == pytest.approx(sc, abs=1e-4)
                assert xs[0, 1, r, c] == pytest.approx(sr, abs=1e-4)
    if factor == 1.0:
        assert np.array_equal(ys, y) and np.allclose(xs, x)
    if factor < 1:
        assert np.all(ys[0, 0] == IGNORE) and np.all(ys[0, :, -1] == IGNORE)


def test_seeds_reproduce_and_sampler_stream_is_unchanged_when_off() -> None:
    x, y = _batch()
    a = augment_batch(x.copy(), y.copy(), np.array([5, 6, 7]), 1.0, (0.75, 1.25))
    b = augment_batch(x.copy(), y.copy(), np.array([5, 6, 7]), 1.0, (0.75, 1.25))
    c = augment_batch(x.copy(), y.copy(), np.array([5, 6, 8]), 1.0, (0.75, 1.25))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(a[0][:2], c[0][:2]) and not np.array_equal(a[0][2], c[0][2])
    plain = list(AugmentSampler(10, torch.Generator().manual_seed(3)))
    seeded = list(AugmentSampler(10, torch.Generator().manual_seed(3), seeds=True))
    assert [t[:2] for t in seeded] == plain and all(len(t) == 3 for t in seeded)


def test_datamodule_augments_reproducibly_whatever_the_workers(ds_path: Path) -> None:
    kw = {"batch_size": 4, "seed": 7, "photometric": 1.0, "scale_range": (0.75, 1.25)}
    a = LandslideDataModule(ds_path, "bgr", **kw)  # type: ignore[arg-type]
    b = LandslideDataModule(ds_path, "bgr", num_workers=2, **kw)  # type: ignore[arg-type]
    plain = LandslideDataModule(ds_path, "bgr", batch_size=4, seed=7)
    ea, eb, ep = (list(dm.train_dataloader()) for dm in (a, b, plain))
    for (xa, ya), (xb, yb), (xp, _) in zip(ea, eb, ep, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert not torch.equal(xa, xp)
        assert torch.all(xa.permute(1, 0, 2, 3)[:, ya == IGNORE] == 0)
    # validation stays plain
    va = next(iter(a.val_dataloader()))
    vp = next(iter(plain.val_dataloader()))
    assert torch.equal(va[0], vp[0]) and torch.equal(va[1], vp[1])
    with pytest.raises(DatasetError, match="scale range"):
        PatchDataset(ds_path, "train", "bgr", augment=True, scale_range=(1.2, 0.8))

