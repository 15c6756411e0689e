"""Self-training under a real domain shift: train on scene A, adapt without labels to scene B.

For each seed, two synthetic scenes of the same kind (``landslip synth``), each HPF
pan-sharpened to 1.5 m:

* **A** (labelled): the default post-event acquisition (4 October sun, autumn, the default
  sensor response), cut into a dataset (random split) and used for training;
* **B** (the new event, other terrain and landslides): another sun (20 August), summer
  vegetation and another sensor response (gains, DN offsets, 1.5x noise). Its image is the
  ``--unlabeled`` imagery; its truth is used **only for scoring**, through a dataset prepared
  from B's image and truth (every patch, evaluated at threshold 0.5).

``landslip train A --unlabeled B/fused.tif --rounds R`` is run once per seed: its round 0 (the
teacher) is exactly the plain model trained on A (same configuration and seed), so "before" is
the round-0 bundle and "after" the final bundle, both scored on B (and on A's test split, to
show what adaptation costs at home). Prints F1 before/after per seed, the CPU minutes of each
seed, and writes ``results.json`` and ``results.md`` in ``--work``. Example::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/self_training_study.py --work /tmp/selftrain

Reruns reuse finished scenes and datasets in ``--work`` (runs are redone).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SHIFT = {"date": datetime(2018, 8, 20, 1, 2, tzinfo=UTC), "season": "summer",
         "gain": (1.15, 0.9, 0.85, 1.25), "offset": (40.0, 20.0, -20.0, 60.0), "noise": 1.5}
"""Scene B's acquisition: the CLI equivalent is ``landslip synth --date 2018-08-20T01:02
--season summer --gain 1.15,0.9,0.85,1.25 --offset 40,20,-20,60 --noise 1.5``."""


def _scene(work: Path, name: str, size: int, seed: int, shifted: bool) -> tuple[Path, Path]:
    """Scene, fused image (reused when there): (fused.tif, truth.tif)."""
    from landslip.spectral.fusion import pansharpen
    from landslip.synthetic.landcover import SUMMER
    from landslip.synthetic.scene import make_scene
    from landslip.synthetic.sensor import SensorModel

    out = work / name
    if not (out / "scene.json").is_file():
        extra: dict[str, Any] = {}
        if shifted:
            extra = {"acquisition": SHIFT["date"], "phenology": SUMMER,
                     "sensor": SensorModel().with_response(SHIFT["gain"], SHIFT["offset"],
                                                           SHIFT["noise"])}
        make_scene(out, size=size, seed=seed, preview=False, **extra)
    fused = out / "fused.tif"
    if not fused.is_file():
        pansharpen(out / "pan.tif", out / "ms.tif", fused)
    return fused, out / "truth.tif"


def _dataset(image: Path, truth: Path, out: Path, patch: int, seed: int,
             fractions: tuple[float, float, float]) -> Path:
    from landslip.dataset.prepare import prepare_dataset

    if not (out / "dataset.json").is_file():
        prepare_dataset(image, truth, out, patch_size=patch, seed=seed, fractions=fractions)
    return out


def _f1(bundle: Path, dataset: Path, split: str, out: Path) -> dict[str, float]:
    from landslip.evaluation.evaluate import EvaluateOptions, evaluate

    res = evaluate(bundle, dataset, EvaluateOptions(split=split, threshold=0.5, out_dir=out,
                                                    figure_patches=0, engine="torch"))
    c = res.confusion
    return {"f1": c.f1, "precision": c.precision, "recall": c.recall}


def _one_seed(work: Path, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from landslip.training.config import load_config
    from landslip.training.selftrain import self_train

    c0, t0 = time.process_time(), time.perf_counter()
    fused_a, truth_a = _scene(work, f"A-s{seed}", args.size, 100 + seed, shifted=False)
    fused_b, truth_b = _scene(work, f"B-s{seed}", args.size, 200 + seed, shifted=True)
    ds_a = _dataset(fused_a, truth_a, work / f"ds-A-s{seed}", args.patch, seed,
                    (0.64, 0.16, 0.2))
    ds_b = _dataset(fused_b, truth_b, work / f"ds-B-s{seed}", args.patch, seed, (1.0, 0.0, 0.0))
    run = work / f"run-s{seed}"
    shutil.rmtree(run, ignore_errors=True)
    cfg = load_config(None, dataset=ds_a, output=run, model="unet", width=args.width, depth=2,
                      bands="bgrn", loss="bce-dice", lr=0.002, batch_size=args.batch,
                      epochs=args.epochs, seed=seed, unlabeled=fused_b, rounds=args.rounds,
                      pseudo_threshold=args.pseudo_threshold, accelerator="cpu")
    result = self_train(cfg, progress=False)
    scores = {}
    for name, bundle in (("plain", run / "round-0" / "bundle"), ("self-trained", run / "bundle")):
        scores[name] = {"B": _f1(bundle, ds_b, "train", run / "eval" / name / "B"),
                        "A-test": _f1(bundle, ds_a, "test", run / "eval" / name / "A")}
    cpu_min = (time.process_time() - c0) / 60
    rounds = [{"round": r["round"], "val_f1": r["val"].get("f1"),
               **({k: r["pseudo"][k] for k in ("patches_kept", "patches_predicted",
                                                 "confident_share", "landslide_share")}
                  if "pseudo" in r else {})} for r in result.rounds]
    print(f"seed {seed}: F1 on B {scores['plain']['B']['f1']:.3f} -> "
          f"{scores['self-trained']['B']['f1']:.3f} (A test {scores['plain']['A-test']['f1']:.3f}"
          f" -> {scores['self-trained']['A-test']['f1']:.3f}); "
          f"{cpu_min:.1f} CPU min, {(time.perf_counter() - t0) / 60:.1f} min wall", flush=True)
    return {"seed": seed, "scores": scores, "rounds": rounds, "cpu_minutes": cpu_min,
            "wall_minutes": (time.perf_counter() - t0) / 60}


def _markdown(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = ["# Self-training study: train on scene A, adapt without labels to scene B", "",
             f"Scenes {args.size} px, {args.patch} px patches, unet width {args.width} depth 2, "
             f"{args.epochs} epochs per round, {args.rounds} round(s), pseudo-threshold "
             f"{args.pseudo_threshold}; F1 at threshold 0.5.", "",
             "| seed | F1 on B, plain | F1 on B, self-trained | F1 on A test, plain | "
             "F1 on A test, self-trained | CPU min |", "|---|---|---|---|---|---|"]
    for r in results:
        s = r["scores"]
        lines.append(f"| {r['seed']} | {s['plain']['B']['f1']:.3f} | "
                     f"{s['self-trained']['B']['f1']:.3f} | {s['plain']['A-test']['f1']:.3f} | "
                     f"{s['self-trained']['A-test']['f1']:.3f} | {r['cpu_minutes']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("self_training_study"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--size", type=int, default=1024, help="scene size in PAN pixels")
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--pseudo-threshold", type=float, default=0.9)
    args = p.parse_args()
    import logging
    import warnings

    from landslip.progress import set_enabled

    set_enabled(False)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    args.work.mkdir(parents=True, exist_ok=True)
    results = [_one_seed(args.work, seed, args) for seed in args.seeds]
    for key in ("plain", "self-trained"):
        f1 = [r["scores"][key]["B"]["f1"] for r in results]
        sd = statistics.stdev(f1) if len(f1) > 1 else 0.0
        print(f"{key}: F1 on B {statistics.mean(f1):.3f} +- {sd:.3f}")
    print(f"total {sum(r['cpu_minutes'] for r in results):.1f} CPU minutes")
    doc = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "shift": {k: (v.isoformat() if isinstance(v, datetime) else v)
                     for k, v in SHIFT.items()}, "results": results}
    (args.work / "results.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (args.work / "results.md").write_text(_markdown(results, args), encoding="utf-8")
    print(f"wrote {args.work / 'results.json'} and {args.work / 'results.md'}")


if __name__ == "__main__":
    main()
