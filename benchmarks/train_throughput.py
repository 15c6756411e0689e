"""Training throughput: the code before channels_last, the new default, and a bare PyTorch loop.

For each configuration (``unet`` width 8, batch 16, 128 px patches; width 16, batch 4, 256 px)
and each repeat, in ONE process and in turn, so machine load affects every variant alike:

* ``old``: :func:`landslip.training.fit.train` as before issue 12, reproduced by its options
  (``memory_format=contiguous``, ``compile=off``, ``precision=32``);
* ``new``: :func:`landslip.training.fit.train` with the default options (channels_last);
* ``bare``: a bare PyTorch loop in channels_last: same model and initial weights (same seed),
  loss (dice), optimizer (Adam, lr 0.001) and batches (the same ``LandslideDataModule``);
* with ``--compile``: ``new`` with ``compile=on`` (its first step, the compile time, is printed);
* with ``--bf16``: ``new`` with ``precision=bf16-mixed`` (a CPU with AMX runs it about 3x faster).

Throughput is patches per second over the training steps after the warm-up steps, timed at
batch ends: data loading, the logging and the ``last.ckpt`` saved every 20 steps are included;
the sanity check, validation and the bundle are not (the whole ``train()`` wall time is printed
too). ``wall`` is elapsed time; ``cpu`` is this process's CPU time (less sensitive to other
load, though with several threads it counts their spinning too).

Run (the lead's figures; about 3-4 minutes on 2 idle cores, 14 on the loaded machine)::

    .venv/bin/python benchmarks/train_throughput.py

``--quick`` (one repeat, a few steps) checks that it runs. Acceptance (issue 12): ``new / old``
at least 1.4 for both configurations; ``new / bare`` at least 0.9.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from landslip.dataset.torch import LandslideDataModule
from landslip.models.losses import create_loss
from landslip.models.registry import create_model
from landslip.training.config import load_config
from landslip.training.fit import train


@dataclass(frozen=True)
class Case:
    """One configuration: model width, batch size, patch size and steps per run."""

    width: int
    batch: int
    patch: int
    steps: int
    warmup: int

    @property
    def name(self) -> str:
        return f"width {self.width}, batch {self.batch}, {self.patch} px"


CASES = (Case(8, 16, 128, 24, 4), Case(16, 4, 256, 12, 2))
QUICK = (Case(8, 16, 128, 8, 2), Case(16, 4, 256, 5, 1))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


class StepTimer(pl.Callback):
    """Records (wall, CPU) time at the end of every training batch, and the first batch's wall."""

    def __init__(self) -> None:
        self.times: list[tuple[float, float]] = []
        self.t0 = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        _sync(pl_module.device)
        self.times.append(_now())


def _rate(times: list[tuple[float, float]], batch: int, warmup: int) -> tuple[float, float]:
    """Patches per (wall, CPU) second between the end of step ``warmup`` and the last step."""
    t = times[warmup - 1:]
    n = (len(t) - 1) * batch
    return n / (t[-1][0] - t[0][0]), n / (t[-1][1] - t[0][1])


def bare_loop(dataset: Path, case: Case, device: torch.device) -> tuple[float, float]:
    """A bare channels_last PyTorch training loop; returns patches per (wall, CPU) second."""
    cl = torch.channels_last
    dm = LandslideDataModule(dataset, "bgrn", batch_size=case.batch, seed=0)
    dm.setup("fit")
    pl.seed_everything(0, verbose=False)
    model = create_model("unet", 4, width=case.width).to(device, memory_format=cl)
    loss_fn = create_loss("dice")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    times: list[tuple[float, float]] = []
    while len(times) < case.steps:
        for x, y in dm.train_dataloader():
            opt.zero_grad(set_to_none=True)
            x = x.to(device, non_blocking=True).contiguous(memory_format=cl)
            loss = loss_fn(model(x), y.to(device, non_blocking=True))
            loss.backward()
            opt.step()
            _sync(device)
            times.append(_now())
            if len(times) >= case.steps:
                break
    return _rate(times, case.batch, case.warmup)


def landslip_loop(dataset: Path, run: Path, case: Case, accelerator: str,
                  **options: Any) -> tuple[float, float, float, float]:
    """``landslip.training.fit.train`` with ``options``.

    Returns:
        (wall patches/s, CPU patches/s, seconds to the end of the first step, train() seconds).
    """
    timer = StepTimer()
    cfg = load_config(None, dataset=dataset, output=run, bands="bgrn", model="unet",
                      width=case.width, batch_size=case.batch, epochs=1,
                      max_train_batches=case.steps, max_val_batches=1, seed=0,
                      accelerator=accelerator, **options)
    t0 = time.perf_counter()
    train(cfg, progress=False, callbacks=[timer])
    total = time.perf_counter() - t0
    wall, cpu = _rate(timer.times, case.batch, case.warmup)
    return wall, cpu, timer.times[0][0] - timer.t0, total


VARIANTS: dict[str, dict[str, Any]] = {
    "old": {"memory_format": "contiguous", "compile": "off", "precision": "32"},
    "new": {},
    "compile": {"compile": "on"},
    "bf16": {"precision": "bf16-mixed"},
}


def run_case(case: Case, tmp: Path, variants: list[str], repeats: int, accelerator: str,
             device: torch.device) -> dict[str, list[tuple[float, ...]]]:
    """Write the case's dataset and run every variant ``repeats`` times, interleaved."""
    # The synthetic dataset writer is a test helper (tests/helpers), not part of landslip.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from helpers.datasets import write_synthetic_dataset

    ds = tmp / f"ds-{case.patch}"
    n_train = case.batch * case.steps
    write_synthetic_dataset(ds, n=2 * n_train + 4, patch_size=case.patch,
                            fractions=(0.5, 0.25, 0.25))
    rows: dict[str, list[tuple[float, ...]]] = {v: [] for v in variants}
    print(f"\n{case.name}: {case.steps} steps ({case.warmup} warm-up) per run")
    print(f"  {'variant':<8} {'wall p/s':>9} {'cpu p/s':>9} {'1st step s':>10} {'train() s':>10}")
    for r in range(repeats):
        for v in variants:
            if v == "bare":
                row: tuple[float, ...] = (*bare_loop(ds, case, device), float("nan"),
                                          float("nan"))
            else:
                row = landslip_loop(ds, tmp / f"run-{case.patch}-{v}-{r}", case, accelerator,
                                    **VARIANTS[v])
            rows[v].append(row)
            print(f"  {v:<8} {row[0]:>9.2f} {row[1]:>9.2f} {row[2]:>10.1f} {row[3]:>10.1f}"
                  f"   repeat {r + 1}", flush=True)
    return rows


def summary(case: Case, rows: dict[str, list[tuple[float, ...]]]) -> list[str]:
    """Median throughputs and the ratios against ``old`` and ``bare``, one line each."""
    med = {v: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
           for v, rs in rows.items()}
    lines = [f"{case.name}: " + ", ".join(f"{v} {w:.2f} ({c:.2f} cpu)"
                                         for v, (w, c) in med.items()) + " patches/s"]
    for v in med:
        for base in ("old", "bare"):
            if v not in ("old", "bare") and base in med:
                w, c = med[v][0] / med[base][0], med[v][1] / med[base][1]
                lines.append(f"  {v} / {base}: {w:.2f} wall, {c:.2f} cpu")
    return lines


def main() -> None:
    """Parse arguments, run the interleaved measurements and print the tables and ratios."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repeat of a few steps")
    ap.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--compile", action="store_true", help="also time compile=on")
    ap.add_argument("--bf16", action="store_true", help="also time precision=bf16-mixed")
    ap.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu")
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    device = torch.device("cuda" if args.accelerator == "gpu" else "cpu")
    repeats = args.repeats or (1 if args.quick else 3)
    variants = ["old", "new", "bare", *(["compile"] if args.compile else []),
                *(["bf16"] if args.bf16 else [])]
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s), "
          f"torch {torch.__version__}, lightning {pl.__version__}, device {device}, "
          f"{repeats} repeat(s); p/s = patches per second")
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in QUICK if args.quick else CASES:
            lines += summary(case, run_case(case, Path(tmp), variants, repeats,
                                            args.accelerator, device))
    print("\nmedians (ratios: >= 1.4 against old and >= 0.9 against bare is the issue's bar)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
