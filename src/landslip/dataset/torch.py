"""PyTorch loading of a dataset folder: a Dataset and a Lightning DataModule.

The band set is chosen at load time through the band registry
(:func:`landslip.spectral.bands.resolve_band_set`), so one dataset of raw bands serves every
band set: NDVI is computed from the stored red and NIR. Inputs are standardised with the
statistics of valid training pixels stored in the dataset (:meth:`DatasetFolder.band_stats`)
with the arithmetic of :func:`landslip.spectral.bands.normalize` (done in place on whole
batches for speed, tested equal); nodata pixels become 0 and keep label 255.

Training augmentation applies one of the eight symmetries of the square (identity, rotations
by 90, 180, 270 degrees, and their mirror images) to image and label together. The symmetry of
each sample is drawn in the main process by :class:`AugmentSampler` from a seeded
``torch.Generator``, so a given seed gives identical batches whatever the number of workers;
workers are seeded from that generator too (:func:`seed_worker`).

With ``photometric > 0`` or a ``scale_range``, the sampler also draws one seed per sample, from
which :func:`landslip.dataset.augment.augment_batch` draws that sample's random scaling and
per-band brightness, contrast, gamma and noise (after the symmetry, in the normalised space,
nodata untouched); off by default, and then the generator's stream is the same as before.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from landslip.dataset.augment import augment_batch, check_scale_range
from landslip.dataset.folder import DatasetFolder, open_dataset
from landslip.dataset.stats import valid_mask
from landslip.encoding import IGNORE
from landslip.errors import DatasetError
from landslip.spectral.bands import BandSet, resolve_band_set

__all__ = [
    "AugmentSampler",
    "LandslideDataModule",
    "PatchDataset",
    "apply_symmetry",
    "resolve_inputs",
    "seed_worker",
]

N_SYMMETRIES = 8
"""Number of symmetries of the square used for augmentation (4 rotations x optional flip)."""


def apply_symmetry(arr: npt.NDArray[Any], code: int) -> npt.NDArray[Any]:
    """Apply one of the 8 symmetries of the square to the last two axes.

    Args:
        arr: (..., H, W) array with H == W.
        code: 0..7; ``code % 4`` quarter turns counter-clockwise, then a left-right flip when
            ``code >= 4``. Code 0 is the identity.

    Returns:
        A contiguous array of the same shape and dtype.
    """
    out = np.rot90(arr, k=code % 4, axes=(-2, -1))
    if code >= 4:
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


def _normalize_inplace(
    bands: npt.NDArray[np.float32],
    mean: npt.NDArray[np.float32],
    std: npt.NDArray[np.float32],
    valid: npt.NDArray[np.bool_],
) -> npt.NDArray[np.float32]:
    """:func:`landslip.spectral.bands.normalize` for (N, C, H, W) batches, in place.

    Same arithmetic and result as ``normalize(bands, mean, std, valid)`` (tested), without its
    full-size temporaries: (x - mean) / std, and 0 where not valid. ``std`` must already have
    zeros replaced by 1; ``mean`` and ``std`` are shaped (1, C, 1, 1).
    """
    np.subtract(bands, mean, out=bands)
    np.divide(bands, std, out=bands)
    np.copyto(bands, np.float32(0), where=~valid[:, None])
    return bands


def resolve_inputs(
    dataset_or_path: DatasetFolder | str | Path,
    band_set: BandSet | str,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> tuple[DatasetFolder, BandSet, list[float], list[float]]:
    """Open the dataset, resolve and check the band set, and fill in missing statistics.

    Returns:
        (dataset, band set, per-band means, per-band standard deviations); statistics not
        given come from the dataset's valid training pixels.

    Raises:
        BandError: If the dataset lacks a band the set needs.
        DatasetError: If the number of statistics does not match the band set.
    """
    dataset = (dataset_or_path if isinstance(dataset_or_path, DatasetFolder)
               else open_dataset(dataset_or_path))
    bands = resolve_band_set(band_set) if isinstance(band_set, str) else band_set
    bands.check_available(dataset.band_names)
    if mean is None or std is None:
        m, s = dataset.band_stats(bands)
        mean = m if mean is None else mean
        std = s if std is None else std
    if len(mean) != len(bands) or len(std) != len(bands):
        raise DatasetError(f"band set {bands.spec!r} has {len(bands)} bands "
                           f"but {len(mean)} means and {len(std)} stds were given")
    return dataset, bands, [float(v) for v in mean], [float(v) for v in std]


class PatchDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The patches of one split of a dataset folder, as model inputs and labels.

    Items are ``(x, y)``: ``x`` float32 tensor (C, P, P) of the band set, standardised, 0 at
    nodata pixels; ``y`` uint8 tensor (P, P) with 0, 1 and 255 (ignore: nodata, padding, and
    pixels where a derived band is undefined because a raw band is nodata).

    An index may be an int, or ``(int, symmetry code)`` or ``(int, symmetry code, seed)`` as
    yielded by :class:`AugmentSampler`. With ``augment=True`` and a plain int index, the
    symmetry (and the seed) are drawn from torch's global RNG.

    Args:
        dataset_or_path: An opened :class:`DatasetFolder` or its path.
        split: ``train``, ``val`` or ``test``.
        band_set: A :class:`BandSet` or a spec such as ``"bg-ndvi"``.
        mean: Per-band means of the band set (from the dataset's training statistics when None).
        std: Per-band standard deviations (likewise).
        augment: Apply a random symmetry of the square to image and label together.
        photometric: Strength of the per-band photometric augmentation (0 = off; only with
            ``augment``); see :mod:`landslip.dataset.augment`.
        scale_range: ``(lo, hi)`` random zoom factors, or None (only with ``augment``).

    Raises:
        DatasetError: For a negative strength or a bad scale range.
    """

    def __init__(
        self,
        dataset_or_path: DatasetFolder | str | Path,
        split: str,
        band_set: BandSet | str,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        augment: bool = False,
        photometric: float = 0.0,
        scale_range: tuple[float, float] | None = None,
    ) -> None:
        self.dataset, self.band_set, self.mean, self.std = resolve_inputs(
            dataset_or_path, band_set, mean, std
        )
        if photometric < 0:
            raise DatasetError(f"photometric strength must be >= 0, got {photometric}")
        check_scale_range(scale_range)
        self.photometric = photometric
        self.scale_range = scale_range
        self.split = split
        self._mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        std_ = np.asarray(self.std, np.float32)
        self._std = np.where(std_ > 0, std_, np.float32(1)).reshape(1, -1, 1, 1)
        self.augment = augment
        self.extra_augment = photometric > 0 or scale_range is not None
        self.indices = self.dataset.split_indices(split)

    def __len__(self) -> int:
        return int(self.indices.size)

    def _prepare(
        self, img: npt.NDArray[Any], lab: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
        """Band set, normalisation and ignore labels for (N, C, P, P) / (N, P, P) arrays."""
        ds = self.dataset
        bands, band_valid = self.band_set.compute(img, ds.band_names, ds.nodata)
        valid = band_valid & valid_mask(img, lab, ds.nodata)
        x = _normalize_inplace(bands, self._mean, self._std, valid)
        y = np.where(valid, lab, np.uint8(IGNORE)).astype(np.uint8)
        return x, y

    def __getitem__(self, item: int | tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([item])[0]

    def _random_code(self) -> int:
        return int(torch.randint(0, N_SYMMETRIES, (1,)).item()) if self.augment else 0

    def __getitems__(
        self, items: list[int | tuple[int, ...]]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fetch a whole batch at once (one vectorised band computation)."""
        parsed = [tuple(int(v) for v in t) if isinstance(t, tuple) else (int(t),) for t in items]
        for t in parsed:
            if not -len(self) <= t[0] < len(self):
                raise IndexError(f"patch {t[0]} out of range for {len(self)} {self.split} "
                                 "patches")
        js = np.array([int(self.indices[t[0]]) for t in parsed], dtype=np.int64)
        order = np.argsort(js, kind="stable")
        img = np.empty((len(js), *self.dataset.images.shape[1:]), self.dataset.images.dtype)
        lab = np.empty((len(js), *self.dataset.labels.shape[1:]), np.uint8)
        img[order] = self.dataset.images[js[order]]
        lab[order] = self.dataset.labels[js[order]]
        x, y = self._prepare(img, lab)
        codes = np.array([t[1] if len(t) > 1 else self._random_code() for t in parsed])
        if self.augment:
            for code in np.unique(codes[codes > 0]):
                sel = codes == code
                x[sel] = apply_symmetry(x[sel], int(code))
                y[sel] = apply_symmetry(y[sel], int(code))
        if self.augment and self.extra_augment:
            seeds = np.array([t[2] if len(t) > 2 else
                              int(torch.randint(0, 2**31 - 1, (1,)).item()) for t in parsed],
                             dtype=np.int64)
            x, y = augment_batch(x, y, seeds, self.photometric, self.scale_range)
        return [(torch.from_numpy(x[k]), torch.from_numpy(y[k])) for k in range(len(parsed))]


class AugmentSampler(Sampler[tuple[int, ...]]):
    """Yields ``(index, symmetry code)`` pairs in random order from a seeded generator.

    With ``seeds=True`` it yields ``(index, symmetry code, seed)``: the seed of the sample's
    photometric augmentation and scaling (drawn after the order and the codes, so the order and
    codes are those of ``seeds=False``).

    Both the order and the symmetries are drawn in the main process, so they do not depend on
    the number of workers; each epoch (each ``iter``) draws anew from the generator.

    Args:
        n: Number of samples.
        generator: The ``torch.Generator`` to draw from.
        shuffle: Random order (else 0..n-1).
        augment: Random symmetry codes (else all 0).
        seeds: Also yield a random seed per sample.
    """

    def __init__(self, n: int, generator: torch.Generator, shuffle: bool = True,
                 augment: bool = True, seeds: bool = False) -> None:
        self.n = n
        self.generator = generator
        self.shuffle = shuffle
        self.augment = augment
        self.seeds = seeds

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        order = (torch.randperm(self.n, generator=self.generator) if self.shuffle
                 else torch.arange(self.n))
        codes = (torch.randint(0, N_SYMMETRIES, (self.n,), generator=self.generator)
                 if self.augment else torch.zeros(self.n, dtype=torch.int64))
        if not self.seeds:
            for i, c in zip(order.tolist(), codes.tolist(), strict=True):
                yield (int(i), int(c))
            return
        seeds = torch.randint(0, 2**31 - 1, (self.n,), generator=self.generator)
        for i, c, s in zip(order.tolist(), codes.tolist(), seeds.tolist(), strict=True):
            yield (int(i), int(c), int(s))


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed.

    torch seeds each worker from the loader's generator; this extends that seed to the other
    random number generators a worker might use.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*batch, strict=True)
    return torch.stack(xs), torch.stack(ys)


class LandslideDataModule(pl.LightningDataModule):
    """Lightning DataModule over a dataset folder.

    The band set and normalisation statistics are resolved in the constructor, so a trainer
    can record them (in the model bundle) before fitting.

    Args:
        path: The dataset folder.
        band_set: A :class:`BandSet` or a spec such as ``"bgrn"`` or ``"blue,green,ndvi"``.
        batch_size: Patches per batch.
        num_workers: DataLoader worker processes (0: load in the main process).
        seed: Seed of shuffling, augmentation and workers.
        augment: Random symmetries of the square for training batches.
        photometric: Per-band photometric augmentation strength of training batches (0 = off).
        scale_range: Random zoom factor range of training batches, or None.
        mean: Per-band means (from the dataset's training statistics when None).
        std: Per-band standard deviations (likewise).
        pin_memory: Return batches in page-locked memory (faster copies to a CUDA device; use
            it only when training on one).

    Attributes:
        dataset: The opened :class:`DatasetFolder`.
        band_set: The resolved :class:`BandSet`.
        mean: Per-band means used for normalisation.
        std: Per-band standard deviations used for normalisation.
    """

    def __init__(
        self,
        path: str | Path | DatasetFolder,
        band_set: BandSet | str,
        batch_size: int,
        num_workers: int = 0,
        seed: int = 0,
        augment: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        pin_memory: bool = False,
        photometric: float = 0.0,
        scale_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise DatasetError(f"batch size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise DatasetError(f"num_workers must be >= 0, got {num_workers}")
        self.dataset, self.band_set, self.mean, self.std = resolve_inputs(path, band_set, mean, std)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.augment = augment
        self.photometric = photometric
        self.scale_range = scale_range
        self.pin_memory = pin_memory
        self._sets: dict[str, PatchDataset] = {}
        self._train_generator: torch.Generator | None = None

    def split_dataset(self, split: str, augment: bool = False) -> PatchDataset:
        """The :class:`PatchDataset` of one split with this module's band set and statistics."""
        key = f"{split}:{augment}"
        if key not in self._sets:
            extra: dict[str, Any] = ({"photometric": self.photometric,
                                      "scale_range": self.scale_range} if augment else {})
            self._sets[key] = PatchDataset(self.dataset, split, self.band_set, self.mean,
                                           self.std, augment=augment, **extra)
        return self._sets[key]

    def setup(self, stage: str | None = None) -> None:
        """Create the split datasets (cheap; arrays are memory-mapped)."""
        self.split_dataset("train", self.augment)
        self.split_dataset("val")
        self.split_dataset("test")

    def _loader(self, ds: PatchDataset, sampler: Sampler[Any] | None,
                generator: torch.Generator) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=_collate,
            worker_init_fn=seed_worker,
            generator=generator,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled, augmented training batches; same seed, same batches."""
        ds = self.split_dataset("train", self.augment)
        if self._train_generator is None:
            self._train_generator = torch.Generator().manual_seed(self.seed)
        sampler = AugmentSampler(len(ds), self._train_generator, shuffle=True,
                                 augment=self.augment, seeds=ds.augment and ds.extra_augment)
        return self._loader(ds, sampler, self._train_generator)

    def val_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        """Validation batches in index order, not augmented."""
        return self._loader(self.split_dataset("val"), None,
                            torch.Generator().manual_seed(self.seed + 1))

    def test_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        """Test batches in index order, not augmented."""
        return self._loader(self.split_dataset("test"), None,
                            torch.Generator().manual_seed(self.seed + 2))
