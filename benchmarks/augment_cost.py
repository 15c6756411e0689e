"""Cost of the photometric augmentation and random scaling per batch, against a training step.

Times, interleaved in one process on the same random batch (N x C x P x P float32, a third of
the pixels nodata-free labels, a band of nodata rows):

* ``augment_batch`` with photometric strength 1 and scale range 0.75-1.25 (what the data
  loader adds per batch with ``--photometric 1 --scale-range 0.75,1.25``), its photometric and
  scaling parts alone, and
* one training step of ``create_model("unet", C, width=W, depth=D)`` in channels_last: forward,
  masked BCE, backward and an AdamW step,

and prints milliseconds per batch (median of the repeats) and augment / step.

Usage:
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/augment_cost.py [--batch-size 16]
        [--bands 3] [--patch 128] [--width 8] [--depth 4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from landslip.dataset.augment import augment_batch
from landslip.encoding import IGNORE
from landslip.models.losses import create_loss
from landslip.models.registry import create_model


def _median_ms(fn: Callable[[], object], times: list[float]) -> None:
    t0 = time.perf_counter()
    fn()
    times.append(1000 * (time.perf_counter() - t0))


def main() -> None:
    """Print the augmentation's cost per batch and its ratio to a training step."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--bands", type=int, default=3)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    n, c, p = args.batch_size, args.bands, args.patch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, p, p)).astype(np.float32)
    y = (rng.random((n, p, p)) > 0.9).astype(np.uint8)
    y[:, : p // 10] = IGNORE
    seeds = np.arange(n)

    model = create_model("unet", c, width=args.width, depth=args.depth)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = create_loss("bce")
    xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
    yt = torch.from_numpy(y)

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(xt), yt).backward()
        opt.step()

    runs: dict[str, Callable[[], object]] = {
        "augment (photometric 1 + scale)": lambda: augment_batch(x.copy(), y.copy(), seeds,
                                                                  1.0, (0.75, 1.25)),
        "photometric only": lambda: augment_batch(x.copy(), y.copy(), seeds, 1.0, None),
        "scale only": lambda: augment_batch(x.copy(), y.copy(), seeds, 0.0, (0.75, 1.25)),
        "copy (baseline of the above)": lambda: (x.copy(), y.copy()),
        "training step": step,
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    step()  # warm-up
    for _ in range(args.repeats):
        for name, fn in runs.items():
            _median_ms(fn, times[name])
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"batch {n} x {c} x {p} x {p}, unet width {args.width} depth {args.depth}, "
          f"{torch.get_num_threads()} torch threads, median of {args.repeats}")
    for name, ms in med.items():
        print(f"  {name:34s} {ms:9.2f} ms")
    ratio = med["augment (photometric 1 + scale)"] / med["training step"]
    print(f"augment / training step: {ratio:.3f}")


if __name__ == "__main__":
    main()
