"""Band-set study with extra inputs: post-event only vs + slope vs + pre-event vs both.

For each seed: a synthetic scene with its DEM and pre-event image (``synth --dem --pre``),
HPF pan-sharpening of the post-event PAN and MS, and a dataset cut with the **blocks** split
(spatially separate test and validation blocks, buffer dropped) holding the fused bands, the
pre-event MS warped from its 6 m grid onto the 1.5 m grid (``--extra pre=pre_ms.tif``,
bilinear) and the DEM with its slope computed on the scene with a halo (``--extra dem.tif``).
Then ``landslip study`` trains and evaluates each band set (threshold tuned on validation,
applied frozen to test), and the script prints the test-split landslide-class scores as mean
and sample standard deviation over the seeds (a seed gives a new scene, split and training).

Same settings as the demo's quick profile (``unet`` width 8 depth 2, bce-dice, Adam 0.002,
batch 2, 10 epochs, 256 px patches of a 2048 px scene), so it fits a 2-core CPU: about
25 minutes for 3 seeds x 4 band sets when other jobs load the machine. Example::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/extra_inputs_study.py --work /tmp/extras

Reruns reuse finished scenes, datasets and runs in ``--work``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

BAND_SETS = {
    "post-only": "bgrn",
    "+slope": "bgrn,slope",
    "+pre-event": "bgrn,pre-bgrn",
    "+pre-event +slope": "bgrn,pre-bgrn,slope",
}
METRICS = ("precision", "recall", "f1", "iou", "detection_rate", "false_alarm_rate")


def _scene_dataset(work: Path, size: int, seed: int, patch: int) -> Path:
    """Scene, fused image and dataset of one seed (reused when already there)."""
    from landslip.dataset.prepare import prepare_dataset
    from landslip.spectral.fusion import pansharpen
    from landslip.synthetic.scene import make_scene

    scene, fused, ds = work / f"scene-s{seed}", work / f"fused-s{seed}.tif", work / f"ds-s{seed}"
    t0 = time.perf_counter()
    if not (scene / "scene.json").is_file():
        make_scene(scene, size=size, seed=seed, dem=True, pre=True, preview=False)
    if not fused.is_file():
        pansharpen(scene / "pan.tif", scene / "ms.tif", fused)
    if not (ds / "dataset.json").is_file():
        prepare_dataset(fused, scene / "truth.tif", ds, patch_size=patch, split="blocks",
                        seed=seed, extras=[f"pre={scene / 'pre_ms.tif'}",
                                           str(scene / "dem.tif")])
    print(f"seed {seed}: scene and dataset ready ({time.perf_counter() - t0:.0f} s)",
          flush=True)
    return ds


def _study(work: Path, ds: Path, seed: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    from landslip.study import load_study_config, run_study

    cfg = load_study_config(
        dataset=str(ds), band_sets=list(BAND_SETS.values()), batch_sizes=[2], seeds=[seed],
        train={"model": "unet", "width": args.width, "depth": 2, "epochs": args.epochs,
               "loss": "bce-dice", "lr": 0.002, "checkpoint_every_n_steps": 1000},
        evaluation={"threshold": "tuned", "figure_patches": 0, "save_predictions": False},
    )
    t0 = time.perf_counter()
    result = run_study(cfg, work / f"study-s{seed}")
    print(f"seed {seed}: {len(result.runs)} runs ({time.perf_counter() - t0:.0f} s)",
          flush=True)
    return result.runs


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    m = sum(values) / len(values)
    if len(values) < 2:
        return f"{m:.3f}"
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    return f"{m:.3f} ± {sd:.3f}"


def _table(runs: list[dict[str, Any]], n_seeds: int) -> str:
    head = ("| inputs | band set | " + " | ".join(METRICS) + " |\n|---|---|"
            + "---|" * len(METRICS) + "\n")
    lines = []
    for label, spec in BAND_SETS.items():
        mine = [r for r in runs if r["band_set"] == spec]
        cells = [_mean_std([float(r[m]) for r in mine if r.get(m) is not None])
                 for m in METRICS]
        lines.append(f"| {label} | `{spec}` | " + " | ".join(cells) + " |")
    note = (f"\nTest split (blocks), landslide class, threshold tuned on validation; mean ± "
            f"sample std over {n_seeds} seed(s) (scene, split and training).")
    return head + "\n".join(lines) + note


def main() -> None:
    """Run (or resume) the study and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="working folder (reused)")
    ap.add_argument("--size", type=int, default=2048, help="scene size, PAN pixels")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--patch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        ds = _scene_dataset(args.work, args.size, seed, args.patch_size)
        runs += _study(args.work, ds, seed, args)
    print(f"\n{' '.join(sys.argv[1:])}: {time.perf_counter() - t0:.0f} s\n")
    print(_table(runs, len(args.seeds)))


if __name__ == "__main__":
    main()
