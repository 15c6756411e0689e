"""Cost of the evaluation metrics per patch, as ratios to direct thresholding in the same run.

Measures, on random 256 x 256 patches (probabilities correlated with random disc labels):
  * direct thresholding + confusion counts at one threshold (the reference),
  * the streamed 1001-threshold sweep (ThresholdSweep.update), versus repeating direct
    thresholding 1001 times and versus an exact sort-based PR curve over all pixels,
  * per-landslide matching (8-connected regions, overlap rule).

Usage: .venv/bin/python benchmarks/evaluation_metrics.py [--patches 64]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from landslip.encoding import apply_threshold
from landslip.evaluation.metrics import ThresholdSweep, confusion
from landslip.evaluation.objects import match_objects


def _data(n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:p, 0:p]
    labels = np.zeros((n, p, p), dtype=np.uint8)
    for i in range(n):
        for _ in range(int(rng.integers(1, 6))):
            cy, cx, r = rng.uniform(0, p), rng.uniform(0, p), rng.uniform(4, 30)
            labels[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    labels[:, :, -8:] = 255
    prob = np.clip(rng.normal(0.3 + 0.4 * (labels == 1), 0.2), 0, 1).astype(np.float32)
    return prob, labels


def _time(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patches", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    prob, labels = _data(args.patches, args.size)
    n = args.patches

    def direct() -> None:
        for i in range(n):
            confusion(apply_threshold(prob[i], 0.5), labels[i])

    def sweep() -> None:
        s = ThresholdSweep(1001)
        for i in range(n):
            s.update(prob[i], labels[i])
        s.curve()

    def sort_based() -> None:
        keep = labels != 255
        p, t = prob[keep].astype(np.float64), labels[keep] == 1
        order = np.argsort(-p, kind="stable")
        np.cumsum(t[order])
        np.cumsum(~t[order])

    def objects() -> None:
        for i in range(n):
            match_objects(apply_threshold(prob[i], 0.5), labels[i])

    t_direct = _time(direct)
    t_sweep = _time(sweep)
    t_sort = _time(sort_based)
    t_obj = _time(objects)
    mpx = n * args.size * args.size / 1e6
    print(f"{n} patches of {args.size} x {args.size} px ({mpx:.1f} Mpx), best of 3")
    print(f"direct threshold + confusion (1 threshold): {t_direct / n * 1e3:7.2f} ms/patch  "
          "(reference 1.00)")
    print(f"streamed sweep, 1001 thresholds:            {t_sweep / n * 1e3:7.2f} ms/patch  "
          f"({t_sweep / t_direct:.2f} x reference; 1001 direct passes would be 1001 x)")
    print(f"exact sort-based PR curve, all pixels:      {t_sort / n * 1e3:7.2f} ms/patch  "
          f"({t_sort / t_direct:.2f} x reference; needs all probabilities in memory)")
    print(f"object matching (8-connected, overlap):     {t_obj / n * 1e3:7.2f} ms/patch  "
          f"({t_obj / t_direct:.2f} x reference)")


if __name__ == "__main__":
    main()
