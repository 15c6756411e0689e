"""Opening a dataset folder: format and version checks, refusals, fingerprint, checksums."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.datasets import write_synthetic_dataset, write_tiny_dataset
from landslip.dataset.folder import open_dataset
from landslip.errors import DatasetError


def _edit_meta(folder: Path, **changes: object) -> None:
    path = folder / "dataset.json"
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def test_newer_version_is_refused_clearly(tmp_path: Path) -> None:
    out = write_tiny_dataset(tmp_path)
    _edit_meta(out, version=2)
    with pytest.raises(DatasetError, match=r"version 2, newer than landslip .* upgrade landslip"):
        open_dataset(out)


def test_other_format_and_bad_version_are_refused(tmp_path: Path) -> None:
    out = write_tiny_dataset(tmp_path)
    _edit_meta(out, format="landslip-model")
    with pytest.raises(DatasetError, match=r"format is 'landslip-model', expected "
                                           r"'landslip-dataset'"):
        open_dataset(out)
    _edit_meta(out, format="landslip-dataset", version="1")
    with pytest.raises(DatasetError, match="no valid format version"):
        open_dataset(out)
    (out / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="cannot read"):
        open_dataset(out)


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no dataset\.json"):
        open_dataset(tmp_path / "empty")
    out = write_tiny_dataset(tmp_path)
    (out / "labels.npy").unlink()
    with pytest.raises(DatasetError, match=r"labels\.npy is missing"):
        open_dataset(out)
    with pytest.raises(DatasetError, match="unknown split"):
        open_dataset(write_synthetic_dataset(tmp_path / "s", n=4, patch_size=8).path
                     ).split_indices("training")


def test_array_length_must_match_index(tmp_path: Path) -> None:
    out = write_tiny_dataset(tmp_path)
    np.save(out / "labels.npy", np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(DatasetError, match=r"index\.csv has 4 rows but"):
        open_dataset(out)


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


def test_fingerprint_recomputed_when_missing(tmp_path: Path) -> None:
    ds = write_synthetic_dataset(tmp_path / "a", n=6, patch_size=8, seed=1)
    meta = json.loads((ds.path / "dataset.json").read_text())
    del meta["fingerprint"]
    (ds.path / "dataset.json").write_text(json.dumps(meta))
    assert open_dataset(ds.path).fingerprint == ds.fingerprint
