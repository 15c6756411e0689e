"""The dataset folder: writing, reading, statistics on valid training pixels, fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from landslip.dataset.store import (
    INDEX_COLUMNS,
    DatasetWriter,
    open_dataset,
    write_dataset,
    write_synthetic_dataset,
)
from landslip.errors import BandError, DatasetError


def _tiny(tmp_path: Path, nodata: float | None = 0) -> Path:
    images = np.zeros((4, 2, 4, 4), dtype=np.uint16)
    labels = np.zeros((4, 4, 4), dtype=np.uint8)
    images[:, 0] = 10  # red
    images[:, 1] = 30  # nir
    images[0, 0, 0, 0] = 1000  # train, but nodata in nir -> excluded
    images[0, 1, 0, 0] = 0
    images[1, :, :, 2:] = 5000  # train pixels under label 255 -> excluded
    labels[1, :, 2:] = 255
    images[2, 0] = 20  # val: never in stats
    labels[0, 1, 1] = 1
    out = tmp_path / "ds"
    write_dataset(out, images, labels, ["Red", "NIR"], ["train", "train", "val", "test"],
                  nodata=nodata, windows=[(0, 0), (0, 4), (4, 0), (4, 4)])
    return out


def test_roundtrip_layout_and_index(tmp_path: Path) -> None:
    out = _tiny(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == [
        "dataset.json", "images.npy", "index.csv", "labels.npy"]
    assert not list(tmp_path.glob(".*partial*"))
    ds = open_dataset(out)
    assert ds.band_names == ("red", "nir")
    assert ds.nodata == 0 and ds.patch_size == 4 and len(ds) == 4
    assert ds.images.shape == (4, 2, 4, 4) and ds.images.dtype == np.uint16
    assert ds.labels.shape == (4, 4, 4) and ds.labels.dtype == np.uint8
    assert isinstance(ds.images, np.memmap) and not ds.images.flags.writeable
    assert ds.split_indices("train").tolist() == [0, 1]
    assert ds.split_indices("val").tolist() == [2]
    assert ds.counts == {"train": 2, "val": 1, "test": 1}
    header = (out / "index.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == INDEX_COLUMNS
    row = ds.index[1]
    assert (row.id, row.split, row.row_off, row.col_off) == (1, "train", 0, 4)
    assert row.valid_fraction == pytest.approx(0.5)
    assert ds.index[0].landslide_fraction == pytest.approx(1 / 15)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["format"] == "landslip-dataset" and meta["version"] == 1
    assert meta["dtype"] == "uint16" and meta["counts"]["train"] == 2


def test_stats_use_valid_training_pixels_only(tmp_path: Path) -> None:
    ds = open_dataset(_tiny(tmp_path))
    # valid train pixels: patch 0 minus one nodata pixel (15), patch 1 left half (8)
    assert ds.stats["red"]["count"] == 23
    assert ds.stats["red"]["mean"] == pytest.approx(10.0)
    assert ds.stats["red"]["max"] == 10.0
    assert ds.stats["nir"]["std"] == pytest.approx(0.0)
    means, stds = ds.band_stats("red,nir")
    assert means == pytest.approx([10.0, 30.0])
    assert stds == [1.0, 1.0]  # zero std replaced by 1


def test_derived_band_stats_are_computed_and_cached(tmp_path: Path) -> None:
    out = _tiny(tmp_path)
    ds = open_dataset(out)
    means, _ = ds.band_stats("red,ndvi")
    assert means == pytest.approx([10.0, (30 - 10) / (30 + 10)])
    cache = json.loads((out / "derived_stats.json").read_text())
    assert cache["fingerprint"] == ds.fingerprint
    assert cache["stats"]["(nir-red)/(nir+red)"]["count"] == 23
    assert open_dataset(out).band_stats("ndvi")[0] == pytest.approx([0.5])
    with pytest.raises(BandError, match="blue"):
        ds.band_stats("bgr")


def test_fingerprint_stable_and_content_sensitive(tmp_path: Path) -> None:
    a = write_synthetic_dataset(tmp_path / "a", n=6, patch_size=8, seed=1)
    b = write_synthetic_dataset(tmp_path / "b", n=6, patch_size=8, seed=1)
    c = write_synthetic_dataset(tmp_path / "c", n=6, patch_size=8, seed=2)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert len(a.fingerprint) == 64
    a.verify()
    np.save(tmp_path / "a" / "labels.npy", np.zeros((6, 8, 8), np.uint8))
    with pytest.raises(DatasetError, match="changed"):
        open_dataset(tmp_path / "a").verify()


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no dataset\.json"):
        open_dataset(tmp_path / "empty")
    out = _tiny(tmp_path)
    with pytest.raises(DatasetError, match="already exists"):
        _tiny(tmp_path)
    (out / "labels.npy").unlink()
    with pytest.raises(DatasetError, match=r"labels\.npy is missing"):
        open_dataset(out)
    with pytest.raises(DatasetError, match="unknown split"):
        open_dataset(write_synthetic_dataset(tmp_path / "s", n=4, patch_size=8).path
                     ).split_indices("training")


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    with pytest.raises(RuntimeError), DatasetWriter(out, 2, ["red"], "uint8", 4) as w:
        w.add(np.zeros((1, 4, 4), np.uint8), np.zeros((4, 4), np.uint8))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_drops_unused_capacity(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path / "ds", 5, ["red"], "uint8", 4) as w:
        for v in (1, 2):
            w.add(np.full((1, 4, 4), v, np.uint8), np.zeros((4, 4), np.uint8))
        ds = w.finish(["train", "test"])
    assert ds.images.shape == (2, 1, 4, 4)
    assert ds.images[1].max() == 2


def test_overwrite_replaces(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path / "ds", n=4, patch_size=8)
    ds = write_synthetic_dataset(tmp_path / "ds", n=5, patch_size=8, overwrite=True)
    assert len(ds) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_remapping_large_writes_keeps_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    """The memory maps reopened every few bytes (as for huge datasets) give the same data."""
    import landslip.dataset.store as store

    ref = write_synthetic_dataset(tmp_path / "ref", n=10, patch_size=8, seed=4)
    monkeypatch.setattr(store, "_REMAP_BYTES", 100)
    rng = np.random.default_rng(0)
    images = rng.integers(1, 999, size=(10, 4, 8, 8), dtype=np.uint16)
    labels = rng.integers(0, 2, size=(10, 8, 8), dtype=np.uint8)
    with DatasetWriter(tmp_path / "ds", 12, ["blue", "green", "red", "nir"], "uint16", 8) as w:
        for i in range(10):
            w.add(images[i], labels[i])
        w.add(images[0], labels[0])
        ds = w.finish(["train"] * 5 + ["val"] * 5 + [None])
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    x = images[:5].astype(np.float64)
    assert ds.stats["red"]["mean"] == pytest.approx(x[:, 2].mean())
    assert ds.stats["nir"]["std"] == pytest.approx(x[:, 3].std())
    again = write_synthetic_dataset(tmp_path / "again", n=10, patch_size=8, seed=4)
    assert again.stats == ref.stats
