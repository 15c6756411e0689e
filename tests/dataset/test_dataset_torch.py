"""PyTorch loading: shapes, dtypes, normalisation, joint augmentation, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.datasets import write_synthetic_dataset
from landslip.dataset.folder import open_dataset
from landslip.dataset.torch import (
    LandslideDataModule,
    PatchDataset,
    apply_symmetry,
)
from landslip.spectral.bands import normalize, resolve_band_set


@pytest.fixture(scope="module")
def ds_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("d") / "ds", n=12, patch_size=16).path


def test_items_shapes_dtypes_and_normalisation(ds_path: Path) -> None:
    ds = open_dataset(ds_path)
    pd = PatchDataset(ds, "train", "bg-ndvi")
    x, y = pd[3]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    assert y.shape == (16, 16) and y.dtype == torch.uint8
    j = int(ds.split_indices("train")[3])
    raw = np.asarray(ds.images[j])
    bs = resolve_band_set("bg-ndvi")
    bands, valid = bs.compute(raw, ds.band_names, ds.nodata)
    mean, std = ds.band_stats(bs)
    np.testing.assert_array_equal(x.numpy(), normalize(bands, mean, std, valid))
    # patch 3 has a nodata margin: label 255 and x == 0 there
    assert (y.numpy()[:, -4:] == 255).all() and (x.numpy()[:, :, -4:] == 0).all()
    assert set(np.unique(y.numpy()).tolist()) <= {0, 1, 255}


def test_training_statistics_standardise_train_split(ds_path: Path) -> None:
    pd = PatchDataset(ds_path, "train", "bgrn")
    xs = torch.stack([pd[i][0] for i in range(len(pd))])
    ys = torch.stack([pd[i][1] for i in range(len(pd))])
    v = (ys != 255).unsqueeze(1).expand_as(xs)
    vals = xs[v].reshape(-1)
    assert abs(float(vals.mean())) < 0.05
    assert abs(float(xs.permute(1, 0, 2, 3)[0][ys != 255].std()) - 1) < 0.05


def test_augmentation_moves_image_and_label_together(ds_path: Path) -> None:
    plain = PatchDataset(ds_path, "train", "bgrn")
    aug = PatchDataset(ds_path, "train", "bgrn", augment=True)
    x0, y0 = plain[0]
    for code in range(8):
        xa, ya = aug[(0, code)]
        np.testing.assert_array_equal(xa.numpy(), apply_symmetry(x0.numpy(), code))
        np.testing.assert_array_equal(ya.numpy(), apply_symmetry(y0.numpy(), code))
        # jointness: the bright (landslide) red pixels are exactly where the label is 1
        red = xa.numpy()[2]
        assert red[ya.numpy() == 1].min() > red[ya.numpy() == 0].max()
    seen = {apply_symmetry(y0.numpy(), c).tobytes() for c in range(8)}
    assert len(seen) == 8  # the 8 symmetries differ on this patch


def test_symmetries_are_the_dihedral_group() -> None:
    a = np.arange(9).reshape(3, 3)
    outs = {apply_symmetry(a, c).tobytes() for c in range(8)}
    assert len(outs) == 8
    np.testing.assert_array_equal(apply_symmetry(a, 1), np.rot90(a))
    np.testing.assert_array_equal(apply_symmetry(a, 4), a[:, ::-1])


def _epoch(dm: LandslideDataModule) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(dm.train_dataloader())


def test_datamodule_deterministic_and_worker_independent(ds_path: Path) -> None:
    a = LandslideDataModule(ds_path, "bgr", batch_size=4, seed=7)
    b = LandslideDataModule(ds_path, "bgr", batch_size=4, seed=7, num_workers=2)
    c = LandslideDataModule(ds_path, "bgr", batch_size=4, seed=8)
    for dm in (a, b, c):
        dm.setup("fit")
    ea, eb, ec = _epoch(a), _epoch(b), _epoch(c)
    assert len(ea) == 2 and ea[0][0].shape == (4, 3, 16, 16) and ea[0][1].dtype == torch.uint8
    for (xa, ya), (xb, yb) in zip(ea, eb, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not all(torch.equal(p[0], q[0]) for p, q in zip(ea, ec, strict=True))
    # a second epoch differs from the first (new order and symmetries)
    assert not all(torch.equal(p[0], q[0]) for p, q in zip(ea, _epoch(a), strict=True))


def test_datamodule_eval_loaders_are_plain(ds_path: Path) -> None:
    dm = LandslideDataModule(ds_path, "bg-ndvi", batch_size=5, augment=True)
    assert dm.band_set.names == ("blue", "green", "ndvi")
    assert len(dm.mean) == 3 and len(dm.std) == 3
    dm.setup("test")
    xs = torch.cat([x for x, _ in dm.test_dataloader()])
    ref = PatchDataset(ds_path, "test", "bg-ndvi")
    assert xs.shape[0] == len(ref) == 3
    for i in range(len(ref)):
        assert torch.equal(xs[i], ref[i][0])
    assert len(list(dm.val_dataloader())) == 1


def test_given_statistics_are_used(ds_path: Path) -> None:
    pd = PatchDataset(ds_path, "val", "bgr", mean=[0, 0, 0], std=[1, 1, 1])
    x, y = pd[0]
    ds = open_dataset(ds_path)
    j = int(ds.split_indices("val")[0])
    raw = np.asarray(ds.images[j, [0, 1, 2]], dtype=np.float32)
    np.testing.assert_allclose(x.numpy()[:, y.numpy() != 255], raw[:, y.numpy() != 255])
