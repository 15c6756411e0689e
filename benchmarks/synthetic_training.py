"""Accuracy on a synthetic scene: synth -> pansharpen -> prepare -> train (bg-ndvi, width 16).

Runs the same CLI commands a user would (printed before each step), then prints the best
validation precision, recall, F1 and IoU per the run's metrics.csv and where the training
curve is. Example (about 15-30 minutes on 2 CPU cores)::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/synthetic_training.py --out /tmp/synbench \\
        --size 2048 --epochs 15

Steps it runs (``OUT`` = ``--out``)::

    landslip synth -o OUT/scene --size SIZE --seed SEED
    landslip pansharpen OUT/scene/pan.tif OUT/scene/ms.tif -o OUT/fused.tif
    landslip prepare OUT/fused.tif OUT/scene/truth.tif -o OUT/dataset --patch-size 256
    landslip train OUT/dataset --bands bg-ndvi --model unet --width 16 --epochs EPOCHS \\
        --batch-size 8 -o OUT/run
"""

from __future__ import annotations

import argparse
import csv
import shlex
import subprocess
import sys
import time
from pathlib import Path


def _run(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "landslip.cli", *args]
    print("$ landslip " + " ".join(shlex.quote(a) for a in args), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)


def main() -> None:
    """Run the pipeline and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=2048, help="scene size in PAN pixels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--patch-size", type=int, default=256)
    args = ap.parse_args()
    out: Path = args.out
    scene, fused, dataset, run = out / "scene", out / "fused.tif", out / "dataset", out / "run"
    if not (scene / "truth.tif").is_file():
        _run(["synth", "-o", str(scene), "--size", str(args.size), "--seed", str(args.seed)])
    if not fused.is_file():
        _run(["pansharpen", str(scene / "pan.tif"), str(scene / "ms.tif"), "-o", str(fused)])
    if not (dataset / "dataset.json").is_file():
        _run(["prepare", str(fused), str(scene / "truth.tif"), "-o", str(dataset),
              "--patch-size", str(args.patch_size)])
    train = ["train", str(dataset), "--bands", "bg-ndvi", "--model", "unet", "--width",
             str(args.width), "--epochs", str(args.epochs), "--batch-size",
             str(args.batch_size), "-o", str(run)]
    if (run / "checkpoints" / "last.ckpt").is_file():
        train.append("--resume")
    _run(["-q", *train])
    with (run / "metrics.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    best = max(rows, key=lambda r: float(r["val_f1"]))
    print(f"epochs {len(rows)}; best validation (epoch {int(best['epoch']) + 1}): "
          f"P {float(best['val_precision']):.3f} R {float(best['val_recall']):.3f} "
          f"F1 {float(best['val_f1']):.3f} IoU {float(best['val_iou']):.3f}")
    print("F1 per epoch: " + " ".join(f"{float(r['val_f1']):.3f}" for r in rows))
    print(f"training curve: {run / 'training_curve.png'}")


if __name__ == "__main__":
    main()
