"""Writing a dataset folder: layout, index, atomic writes, compaction, bounded memory maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.datasets import write_synthetic_dataset, write_tiny_dataset
from landslip.dataset import memmaps
from landslip.dataset.folder import open_dataset
from landslip.dataset.index import INDEX_COLUMNS
from landslip.dataset.writer import DatasetWriter
from landslip.errors import DatasetError


def test_roundtrip_layout_and_index(tmp_path: Path) -> None:
    out = write_tiny_dataset(tmp_path)
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


def test_refuses_existing_output_and_bad_splits(tmp_path: Path) -> None:
    write_tiny_dataset(tmp_path)
    with pytest.raises(DatasetError, match="already exists"):
        write_tiny_dataset(tmp_path)
    with DatasetWriter(tmp_path / "x", 2, ["red"], "uint8", 4) as w:
        w.add(np.zeros((1, 4, 4), np.uint8), np.zeros((4, 4), np.uint8))
        with pytest.raises(DatasetError, match="unknown split"):
            w.finish(["training"])
        with pytest.raises(DatasetError, match="every patch was dropped"):
            w.finish([None])


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


def test_dropped_patches_renumber_ids_and_report(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path / "ds", 3, ["red"], "uint8", 4) as w:
        for v in (1, 2, 3):
            w.add(np.full((1, 4, 4), v, np.uint8), np.full((4, 4), v % 2, np.uint8),
                  row_off=4 * v)
        ds = w.finish(["train", None, "val"], report={"note": "kept"})
    assert [(r.id, r.split, r.row_off) for r in ds.index] == [(0, "train", 4), (1, "val", 12)]
    assert ds.images[:, 0, 0, 0].tolist() == [1, 3]
    report = json.loads((ds.path / "report.json").read_text())
    assert report["note"] == "kept" and report["counts"] == {"train": 1, "val": 1, "test": 0}
    assert report["landslide_fraction"]["val"] == 1.0
    assert report["fingerprint"] == ds.fingerprint


def test_overwrite_replaces(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path / "ds", n=4, patch_size=8)
    ds = write_synthetic_dataset(tmp_path / "ds", n=5, patch_size=8, overwrite=True)
    assert len(ds) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_remapping_large_writes_keeps_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    """The memory maps reopened every few bytes (as for huge datasets) give the same data."""
    ref = write_synthetic_dataset(tmp_path / "ref", n=10, patch_size=8, seed=4)
    monkeypatch.setattr(memmaps, "REMAP_BYTES", 100)
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
