"""Realism figures of a synthetic scene: per-class NDVI and slope, shadows, look-alikes,
and how far a plain NDVI threshold gets (the scene should not be trivially thresholdable).

Usage:
    .venv/bin/landslip synth -o /tmp/scene
    .venv/bin/python benchmarks/synth_realism.py /tmp/scene
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from landslip.io.raster import read_raster


def best_threshold_f1(score: np.ndarray, truth: np.ndarray) -> tuple[float, float, float, float]:
    """Best F1 of ``score < t`` against boolean ``truth`` over all thresholds t.

    Returns:
        (f1, threshold, precision, recall).
    """
    order = np.argsort(score, kind="stable")
    t_sorted = truth[order]
    tp = np.cumsum(t_sorted)
    fp = np.cumsum(~t_sorted)
    pos = t_sorted.sum()
    prec = tp / np.maximum(tp + fp, 1)
    rec = tp / max(pos, 1)
    f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-12)
    i = int(np.argmax(f1))
    return float(f1[i]), float(score[order][i]), float(prec[i]), float(rec[i])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scene", type=Path)
    args = ap.parse_args()
    meta = json.loads((args.scene / "scene.json").read_text())
    ls = meta["landslides"]
    print(f"scene {args.scene}: {meta['size']} px, seed {meta['seed']}, sun azimuth "
          f"{meta['sun']['azimuth_deg']} deg, elevation {meta['sun']['elevation_deg']} deg")
    print(f"landslides: {ls['count']} polygons, {100 * ls['fraction']:.2f} % of pixels "
          f"(range {ls['fraction_range']}); in shade {100 * ls['shaded_share']:.1f} %, "
          f"in cast shadow {100 * ls['cast_shadow_share']:.1f} %")
    print(f"{'class':<10} {'share %':>8} {'NDVI':>6} {'slope deg':>9}")
    for name, c in sorted(meta["classes"].items(), key=lambda kv: kv[1]["mean_ndvi"]):
        print(f"{name:<10} {100 * c['fraction']:8.2f} {c['mean_ndvi']:6.2f} "
              f"{c['mean_slope_deg']:9.1f}")
    ms, _ = read_raster(args.scene / "ms.tif")
    truth, _ = read_raster(args.scene / "truth.tif")
    n = truth.shape[1] // 4
    share = truth[0].reshape(n, 4, n, 4).mean(axis=(1, 3))
    red, nir = ms[2].astype(np.float64), ms[3].astype(np.float64)
    ndvi = (nir - red) / np.maximum(nir + red, 1)
    lab = share >= 0.5
    f1, t, p, r = best_threshold_f1(ndvi.ravel(), lab.ravel())
    print(f"best plain NDVI threshold on the 6 m MS (landslide where NDVI < {t:.3f}): "
          f"F1 {f1:.3f} (precision {p:.3f}, recall {r:.3f})")


if __name__ == "__main__":
    main()
