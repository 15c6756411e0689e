"""The Landslide4Sense HDF5 layout (slope and dem as bands 13 and 14) with the slope band sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from landslip.dataset.imports import import_patches
from landslip.evaluation.evaluate import EvaluateOptions, evaluate
from landslip.models.bundle import BundleMeta, save_bundle
from landslip.models.registry import create_model
from landslip.spectral.bands import resolve_band_set


def _l4s(src: Path) -> None:
    """A tiny L4S-like folder: 32 x 32 x 14 float32 patches, slope high under the landslides."""
    import h5py

    rng = np.random.default_rng(4)
    for folder, n in (("TrainData", 6), ("ValidData", 2), ("TestData", 2)):
        (src / folder / "img").mkdir(parents=True)
        (src / folder / "mask").mkdir(parents=True)
        for k in range(1, n + 1):
            img = rng.random((32, 32, 14), dtype=np.float32)
            mask = np.zeros((32, 32), np.uint8)
            mask[8:16, 10:20] = 1
            img[:, :, 12] = np.where(mask == 1, 35.0, 3.0)  # band 13: slope
            img[:, :, 13] = 200.0 + rng.random((32, 32)) * 10  # band 14: DEM
            with h5py.File(src / folder / "img" / f"image_{k}.h5", "w") as f:
                f.create_dataset("img", data=img)
            with h5py.File(src / folder / "mask" / f"mask_{k}.h5", "w") as f:
                f.create_dataset("mask", data=mask)


def test_slope_band_sets_work_on_the_l4s_layout(tmp_path: Path) -> None:
    _l4s(tmp_path / "l4s")
    ds = import_patches(tmp_path / "l4s", tmp_path / "ds").dataset
    assert ds.band_names[-2:] == ("slope", "dem")
    for spec, names in (("bgrn,slope", ("blue", "green", "red", "nir", "slope")),
                        ("bg-ndvi,slope,dem", ("blue", "green", "ndvi", "slope", "dem"))):
        bs = resolve_band_set(spec)
        assert bs.names == names
        mean, std = ds.band_stats(bs)
        assert len(mean) == len(names) and all(s > 0 for s in std)
        bands, _ = bs.compute(np.asarray(ds.images[:2]), ds.band_names, ds.nodata)
        np.testing.assert_array_equal(bands[:, names.index("slope")],
                                      np.asarray(ds.images[:2, 12]))
    bs = resolve_band_set("bgrn,slope")
    mean, std = ds.band_stats(bs)
    torch.manual_seed(0)
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=5,
                      band_set=str(bs), band_names=list(bs.names), mean=mean, std=std)
    save_bundle(tmp_path / "run" / "bundle", create_model("unet", 5, width=4, depth=2), meta)
    scores = {}
    for limit in (None, 5.0, 20.0):
        res = evaluate(tmp_path / "run", ds, EvaluateOptions(
            out_dir=tmp_path / f"e{limit}", figure_patches=0, threshold=0.01, min_slope=limit))
        scores[limit] = res.confusion
    # at threshold 0.01 each patch is one predicted region; its mean slope (L4S band 13) is
    # (80 x 35 + 944 x 3) / 1024 = 5.5 degrees: kept at 5, removed at 20
    assert scores[None].tp == 160 and scores[5.0] == scores[None]
    assert scores[20.0].tp == 0 and scores[20.0].fp == 0
