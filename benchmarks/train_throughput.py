"""Training throughput: the full ``landslip train`` loop against a bare PyTorch loop.

Both loops train the same model (same seed, so same initial weights) with the same loss
(dice), optimizer (Adam, lr 0.001), batch size and batches (the same ``LandslideDataModule``
over the same dataset of 256 x 256 patches), in the same process, alternating (bare, Lightning,
bare, Lightning, ...) so machine load affects both alike. Throughput is patches per second over
the training steps after ``--warmup`` warm-up steps, measured at batch ends (data loading
included). The Lightning side runs :func:`landslip.training.fit.train` itself: checkpoints,
metrics CSV, curve and bundle writing all happen, but only the steady-state training steps are
timed; its end-to-end wall time is printed too.

Run (CPU, one thread, a few steps each)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_throughput.py --widths 16 64

The issue's acceptance figure: ratio (Lightning / bare) >= 0.9 for width 16 and 64.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from landslip.dataset.torch import LandslideDataModule
from landslip.models.losses import create_loss
from landslip.models.registry import create_model
from landslip.training.config import load_config
from landslip.training.fit import train


class StepTimer(pl.Callback):
    """Records the wall-clock time at the end of every training batch."""

    def __init__(self) -> None:
        self.times: list[tuple[float, float]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        self.times.append(_now())


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _rate(times: list[tuple[float, float]], batch: int, warmup: int) -> tuple[float, float]:
    """Patches per (wall, CPU) second between the end of step ``warmup`` and the last step."""
    t = times[warmup - 1:]
    n = (len(t) - 1) * batch
    return n / (t[-1][0] - t[0][0]), n / (t[-1][1] - t[0][1])


def bare_loop(dataset: Path, width: int, batch: int, steps: int,
              warmup: int) -> tuple[float, float]:
    """A plain PyTorch training loop; returns patches per (wall, CPU) second."""
    dm = LandslideDataModule(dataset, "bgrn", batch_size=batch, seed=0)
    dm.setup("fit")
    pl.seed_everything(0, verbose=False)
    model = create_model("unet", 4, width=width)
    loss_fn = create_loss("dice")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    times: list[tuple[float, float]] = []
    while len(times) < steps:
        for x, y in dm.train_dataloader():
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            times.append(_now())
            if len(times) >= steps:
                break
    return _rate(times, batch, warmup)


def lightning_loop(dataset: Path, run: Path, width: int, batch: int, steps: int,
                   warmup: int) -> tuple[tuple[float, float], float]:
    """``landslip.training.fit.train``: ((wall, CPU) patches/s of the steps, wall seconds)."""
    timer = StepTimer()
    cfg = load_config(None, dataset=dataset, output=run, bands="bgrn", model="unet",
                      width=width, batch_size=batch, epochs=1, max_train_batches=steps,
                      max_val_batches=1, seed=0)
    t0 = time.perf_counter()
    train(cfg, progress=False, callbacks=[timer])
    total = time.perf_counter() - t0
    return _rate(timer.times, batch, warmup), total


def main() -> None:
    """Parse arguments, run the alternating measurements and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8, help="timed + warm-up steps per run")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--patch", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    n_train = args.batch * args.steps
    with tempfile.TemporaryDirectory() as tmp:
        ds = Path(tmp) / "ds"
        # The synthetic dataset writer is a test helper (tests/helpers), not part of landslip.
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from helpers.datasets import write_synthetic_dataset

        # Train share 0.5: enough training patches for one epoch of `steps` batches.
        write_synthetic_dataset(ds, n=2 * n_train + 2, patch_size=args.patch,
                                fractions=(0.5, 0.25, 0.25))
        print(f"patch {args.patch} x {args.patch}, batch {args.batch}, {args.steps} steps "
              f"({args.warmup} warm-up), {args.threads} thread(s), torch {torch.__version__}, "
              f"lightning {pl.__version__}")
        print("throughput in patches/s over the timed steps; ratio = lightning / bare;")
        print("wall = elapsed time, cpu = this process's CPU time (robust to other load)")
        print(f"{'width':>5} {'bare wall':>9} {'lit wall':>9} {'ratio':>6} {'bare cpu':>9} "
              f"{'lit cpu':>9} {'ratio':>6} {'train() s':>10}")
        for width in args.widths:
            rows = []
            for r in range(args.repeats):
                b = bare_loop(ds, width, args.batch, args.steps, args.warmup)
                lit, wall = lightning_loop(ds, Path(tmp) / f"run-{width}-{r}", width,
                                           args.batch, args.steps, args.warmup)
                row = (b[0], lit[0], lit[0] / b[0], b[1], lit[1], lit[1] / b[1], wall)
                rows.append(row)
                print(_fmt(width, row, f"repeat {r + 1}"), flush=True)
            med = tuple(statistics.median(col) for col in zip(*rows, strict=True))
            print(_fmt(width, med, "median"), flush=True)


def _fmt(width: int, row: tuple[float, ...], note: str) -> str:
    bw, lw, rw, bc, lc, rc, wall = row
    return (f"{width:>5} {bw:>9.3f} {lw:>9.3f} {rw:>6.3f} {bc:>9.3f} {lc:>9.3f} {rc:>6.3f} "
            f"{wall:>10.1f}   {note}")


if __name__ == "__main__":
    main()
