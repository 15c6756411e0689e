"""Band statistics on valid training pixels, and the cache of derived-band statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.datasets import write_tiny_dataset
from landslip.dataset.folder import open_dataset
from landslip.dataset.stats import compute_stats, valid_mask
from landslip.errors import BandError


def test_stats_use_valid_training_pixels_only(tmp_path: Path) -> None:
    ds = open_dataset(write_tiny_dataset(tmp_path))
    # valid train pixels: patch 0 minus one nodata pixel (15), patch 1 left half (8)
    assert ds.stats["red"]["count"] == 23
    assert ds.stats["red"]["mean"] == pytest.approx(10.0)
    assert ds.stats["red"]["max"] == 10.0
    assert ds.stats["nir"]["std"] == pytest.approx(0.0)
    means, stds = ds.band_stats("red,nir")
    assert means == pytest.approx([10.0, 30.0])
    assert stds == [1.0, 1.0]  # zero std replaced by 1


def test_derived_band_stats_are_computed_and_cached(tmp_path: Path) -> None:
    out = write_tiny_dataset(tmp_path)
    ds = open_dataset(out)
    means, _ = ds.band_stats("red,ndvi")
    assert means == pytest.approx([10.0, (30 - 10) / (30 + 10)])
    cache = json.loads((out / "derived_stats.json").read_text())
    assert cache["fingerprint"] == ds.fingerprint
    assert cache["stats"]["(nir-red)/(nir+red)"]["count"] == 23
    assert open_dataset(out).band_stats("ndvi")[0] == pytest.approx([0.5])
    with pytest.raises(BandError, match="blue"):
        ds.band_stats("bgr")


def test_chunked_stats_equal_numpy_on_valid_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Statistics read in chunks of 3 patches equal numpy's over all valid training pixels."""
    monkeypatch.setattr("landslip.dataset.stats.CHUNK_PATCHES", 3)
    rng = np.random.default_rng(7)
    images = rng.integers(0, 4000, size=(11, 3, 6, 6)).astype(np.uint16) + 20000
    labels = rng.integers(0, 2, size=(11, 6, 6)).astype(np.uint8)
    labels[rng.random((11, 6, 6)) < 0.2] = 255
    train = [0, 2, 3, 5, 7, 8, 9, 10]
    stats = compute_stats(images, labels, train, ["a", "b", "c"], nodata=20000)
    valid = valid_mask(images[train], labels[train], 20000)
    for c, name in enumerate("abc"):
        x = images[train][:, c][valid].astype(np.float64)
        assert stats[name]["count"] == x.size
        assert stats[name]["mean"] == pytest.approx(x.mean(), rel=1e-13)
        assert stats[name]["std"] == pytest.approx(x.std(), rel=1e-12)
        assert (stats[name]["min"], stats[name]["max"]) == (x.min(), x.max())


def test_no_valid_pixel_gives_unit_std() -> None:
    images = np.zeros((2, 1, 4, 4), np.uint8)
    labels = np.full((2, 4, 4), 255, np.uint8)
    assert compute_stats(images, labels, [0, 1], ["red"], None) == {
        "red": {"mean": 0.0, "std": 1.0, "min": 0.0, "max": 0.0, "count": 0}}
