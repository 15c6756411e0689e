"""Share of a training epoch spent loading data, for the smallest model used in the tests.

Measures, in the same run and on the same dataset folder:

* the loader alone: one pass over ``LandslideDataModule.train_dataloader()`` (band set,
  normalisation, augmentation, collation), and
* a full training epoch: the same loader plus forward, masked BCE loss, backward and an Adam
  step of ``create_model("unet", C, width=4, depth=2)`` (the smallest U-Net in the tests),

and prints loader time / epoch time. Target: below 5 %.

Data: the real Landslide4Sense RGB patches (../shared/data/l4s-rgb, imported once into a
temporary dataset folder) when present, else a synthetic dataset of 128 x 128 patches.

Usage:
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/data_loading.py [--batch-size 16]
        [--width 4] [--depth 2] [--band-set rgb] [--repeats 2] [--num-workers 0]
        [--max-batches N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from landslip.dataset.imports import import_patches
from landslip.dataset.torch import LandslideDataModule
from landslip.models.registry import create_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "l4s-rgb"


def _dataset(tmp: Path) -> tuple[Path, str]:
    if SHARED.is_dir():
        ds = import_patches(SHARED, tmp / "l4s", val_fraction=0.1, seed=0).dataset
        return ds.path, f"Landslide4Sense RGB ({ds.counts['train']} training patches of 128 px)"
    # The synthetic dataset writer is a test helper (tests/helpers), not part of landslip.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from helpers.datasets import write_synthetic_dataset

    ds = write_synthetic_dataset(tmp / "synth", n=1200, patch_size=128,
                                 band_names=("red", "green", "blue"), nodata=None)
    return ds.path, f"synthetic ({ds.counts['train']} training patches of 128 px)"


def _batches(dm: LandslideDataModule, limit: int | None) -> Iterator[tuple[Tensor, Tensor]]:
    for k, batch in enumerate(dm.train_dataloader()):
        if limit is not None and k >= limit:
            return
        yield batch


def _loader_pass(dm: LandslideDataModule, limit: int | None) -> float:
    t0 = time.perf_counter()
    for x, y in _batches(dm, limit):
        x.sum()  # touch the batch
        y.sum()
    return time.perf_counter() - t0


def _train_epoch(dm: LandslideDataModule, model: torch.nn.Module,
                 opt: torch.optim.Optimizer, limit: int | None) -> float:
    model.train()
    t0 = time.perf_counter()
    for x, y in _batches(dm, limit):
        valid = (y != 255).float().unsqueeze(1)
        target = (y == 1).float().unsqueeze(1)
        logits = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target, weight=valid, reduction="sum") / valid.sum().clamp(min=1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--band-set", default="rgb")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--num-workers", type=int, default=0)
    ap.add_argument("--max-batches", type=int, default=None,
                    help="Time only the first N batches of each pass (same N for both).")
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path, what = _dataset(Path(tmp))
        dm = LandslideDataModule(path, args.band_set, batch_size=args.batch_size,
                                 num_workers=args.num_workers, seed=0, augment=True)
        dm.setup("fit")
        model = create_model("unet", len(dm.band_set), width=args.width, depth=args.depth)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        lim = args.max_batches
        _loader_pass(dm, lim)  # warm the page cache and allocator
        _train_epoch(dm, model, opt, min(lim or 3, 3))
        loads, epochs = [], []
        for _ in range(args.repeats):
            loads.append(_loader_pass(dm, lim))
            epochs.append(_train_epoch(dm, model, opt, lim))
        load, epoch = min(loads), min(epochs)
        scope = "full epoch" if lim is None else f"first {lim} batches of each epoch"
        print(f"timed: {scope}")
        print(f"data: {what}; band set {args.band_set}; batch {args.batch_size}; "
              f"workers {args.num_workers}; torch threads {torch.get_num_threads()}")
        print(f"model: unet width={args.width} depth={args.depth} "
              f"({sum(p.numel() for p in model.parameters())} parameters)")
        print(f"loader alone: {load:.2f} s per pass (best of {args.repeats}: "
              f"{', '.join(f'{v:.2f}' for v in loads)})")
        print(f"full epoch:   {epoch:.2f} s per pass (best of {args.repeats}: "
              f"{', '.join(f'{v:.2f}' for v in epochs)})")
        print(f"data loading share of a training epoch: {100 * load / epoch:.1f} % "
              f"(target < 5 %)")


if __name__ == "__main__":
    main()
