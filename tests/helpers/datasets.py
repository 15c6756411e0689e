"""A small, learnable synthetic dataset folder for tests of the stages after ``prepare``.

Not part of the landslip package: users build dataset folders with ``landslip prepare`` or
``landslip import-patches``. The benchmarks reach this module by putting ``tests/`` on
``sys.path``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rasterio.crs import CRS

from landslip.dataset.folder import DatasetFolder
from landslip.dataset.writer import write_dataset
from landslip.encoding import IGNORE

__all__ = ["write_synthetic_dataset", "write_tiny_dataset"]

_BASE = {"blue": 400.0, "green": 600.0, "red": 500.0, "nir": 2600.0}
"""Raw value of vegetated background per band (others: 1000)."""
_SLIDE = {"blue": 900.0, "green": 1100.0, "red": 1500.0, "nir": 1300.0}
"""Raw value of bare landslide soil per band (others: 1000)."""


def write_synthetic_dataset(
    out: str | Path,
    n: int = 24,
    patch_size: int = 32,
    band_names: Sequence[str] = ("blue", "green", "red", "nir"),
    fractions: tuple[float, float, float] = (0.5, 0.25, 0.25),
    nodata: float | None = 0,
    seed: int = 0,
    overwrite: bool = False,
) -> DatasetFolder:
    """Write a small, learnable synthetic dataset folder.

    Each patch is a uint16 vegetated background (high NIR, low red) with one or two bright
    bare-soil discs (red up, NIR down) labelled 1; one patch in four has a nodata margin on the
    right (raw value 0 when ``nodata`` is 0, label 255). Patches are laid out on a grid of a
    fictitious UTM scene (EPSG:32654, 3 m pixels) so that bounds and windows are meaningful.

    Args:
        out: Target folder.
        n: Number of patches (>= 3).
        patch_size: Patch size P.
        band_names: Raw band names; ``red`` and ``nir`` get the landslide signal when present.
        fractions: Shares of train, val and test (assigned in order, not shuffled).
        nodata: Nodata value written in the margins (None: no margins).
        seed: Random seed.
        overwrite: Replace an existing folder.

    Returns:
        The opened dataset.
    """
    if n < 3:
        raise ValueError(f"a synthetic dataset needs at least 3 patches, got {n}")
    names = [b.lower() for b in band_names]
    images, labels = _patches(n, patch_size, names, nodata, seed)
    n_train = min(max(1, round(fractions[0] * n)), n - 2)
    n_val = min(max(1, round(fractions[1] * n)), n - n_train - 1)
    splits = ["train"] * n_train + ["val"] * n_val + ["test"] * (n - n_train - n_val)
    cols = math.ceil(math.sqrt(n))
    p, res, left0, top0 = patch_size, 3.0, 500000.0, 4750000.0
    windows = [((i // cols) * p, (i % cols) * p) for i in range(n)]
    bounds = [(left0 + co * res, top0 - (ro + p) * res, left0 + (co + p) * res, top0 - ro * res)
              for ro, co in windows]
    meta = {"split": {"method": "synthetic", "fractions": list(fractions), "seed": seed},
            "crs": CRS.from_epsg(32654).to_wkt(), "res": [res, res],
            "sources": [{"path": "synthetic", "sha256": None}]}
    return write_dataset(out, images, labels, names, splits, nodata=nodata, windows=windows,
                         bounds=bounds, meta=meta, overwrite=overwrite)


def _patches(n: int, p: int, names: Sequence[str], nodata: float | None, seed: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, P, P) uint16 images and (N, P, P) uint8 labels (see write_synthetic_dataset)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:p, 0:p]
    images = np.empty((n, len(names), p, p), dtype=np.uint16)
    labels = np.zeros((n, p, p), dtype=np.uint8)
    for i in range(n):
        mask = np.zeros((p, p), dtype=bool)
        for _ in range(int(rng.integers(1, 3))):
            cy, cx = rng.uniform(0.2 * p, 0.8 * p, size=2)
            rad = rng.uniform(0.1 * p, 0.25 * p)
            mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= rad * rad
        for b, name in enumerate(names):
            lo, hi = _BASE.get(name, 1000.0), _SLIDE.get(name, 1000.0)
            band = np.where(mask, hi, lo) + rng.normal(0, 60, size=(p, p))
            images[i, b] = np.clip(band, 1, 65535).astype(np.uint16)
        labels[i] = mask
        if nodata is not None and i % 4 == 3:
            images[i, :, :, -p // 4:] = np.uint16(nodata)
            labels[i, :, -p // 4:] = IGNORE
    return images, labels


def write_tiny_dataset(tmp_path: Path, nodata: float | None = 0) -> Path:
    """A 4-patch, 2-band (red, nir) uint16 dataset of 4 x 4 patches with known statistics.

    Splits train, train, val, test. Valid training pixels: patch 0 without its one nodata
    pixel (15, red 10, nir 30, one landslide) and the left half of patch 1 (8, red 10, nir
    30; its right half is 5000 under label 255), so red has mean 10 and count 23.
    """
    images = np.zeros((4, 2, 4, 4), dtype=np.uint16)
    labels = np.zeros((4, 4, 4), dtype=np.uint8)
    images[:, 0] = 10  # red
    images[:, 1] = 30  # nir
    images[0, 0, 0, 0] = 1000  # train, but nodata in nir -> excluded
    images[0, 1, 0, 0] = 0
    images[1, :, :, 2:] = 5000  # train pixels under label 255 -> excluded
    labels[1, :, 2:] = IGNORE
    images[2, 0] = 20  # val: never in stats
    labels[0, 1, 1] = 1
    out = tmp_path / "ds"
    write_dataset(out, images, labels, ["Red", "NIR"], ["train", "train", "val", "test"],
                  nodata=nodata, windows=[(0, 0), (0, 4), (4, 0), (4, 4)])
    return out
