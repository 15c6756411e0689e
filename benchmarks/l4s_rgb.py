"""Real-data ablation: the training recipe on the Landslide4Sense RGB patches.

Imports ``../shared/data/l4s-rgb`` (1385 training and 199 test patches, 128 x 128 px, 8-bit
R, G, B, Sentinel-2 at about 10 m, per-patch stretched; see that folder's README) with
:func:`landslip.dataset.imports.import_patches`, carving a validation part out of the training
patches (``--val-fraction``, seeded: the same split for every configuration and seed). Then,
for every configuration and seed:

1. train on the train split (:func:`landslip.training.fit.train`, band set ``rgb``; the bundle
   keeps the epoch with the best validation F1);
2. tune the threshold on the validation split and apply it, frozen, to the test split
   (:func:`landslip.evaluation.evaluate.evaluate`, ``threshold="tuned"``), once without and
   once with test-time augmentation (the 8 flips and rotations; so TTA's effect is measured
   on every configuration);
3. record validation F1 (tuned), test precision, recall, F1, the object false-alarm and
   detection rates, the wall and CPU minutes of training (CPU = user + system time of the
   process, all threads).

Nothing is chosen on the test split: the summary orders configurations by validation F1 and
the recipe in ``configs/l4s-rgb.yaml`` is the one with the best mean validation F1.

Configurations: ``old`` (the round-1 recipe: width-8 ``unet``, bce-dice, Adam, 10 epochs),
``recipe`` (the CPU recipe of ``configs/l4s-rgb.yaml``), ``w16-recipe`` (every ingredient at
once on a width-16 U-Net, 20 epochs), ``old+INGREDIENT`` (the round-1 recipe with one
ingredient added: ``schedule`` (AdamW, one-cycle, lr 0.002), ``ema``, ``photometric``,
``scale``, ``lovasz`` (bce-lovasz), ``epochs20``, ``epochs40``, ``epochs80``,
``e80-cosine-ema`` (80 epochs, cosine decay after a 1-epoch warm-up, EMA 0.99), ``width16``,
``smp-r18`` (a ResNet-18 U-Net from segmentation_models_pytorch, no pretrained weights)) and
``ensK-CONFIG`` (K members of CONFIG averaged by ``landslip ensemble``; its training minutes are
the members' sum).

Run one process per configuration and seed, one thread each, two side by side on the 2-core
machine, then merge their results::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/l4s_rgb.py --work /tmp/l4s/recipe-s0 \\
        --configs recipe --seeds 0 --threads 1 &
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/l4s_rgb.py --work /tmp/l4s/recipe-s1 \\
        --configs recipe --seeds 1 --threads 1 &
    wait
    .venv/bin/python benchmarks/l4s_rgb.py --summarize /tmp/l4s/*/results.json \\
        --work /tmp/l4s

``--evaluate-only --work DIR`` evaluates the runs listed in ``DIR/results.json`` again (e.g.
after a new evaluation option) without training them.

Published anchors (not directly comparable): RGB patches, U-Net with an ImageNet-pretrained
ResNet-34 encoder, 50 GPU epochs: test F1 0.691; 14-band Landslide4Sense: official U-Net
baseline F1 0.578 (validation), winners F1 0.745 (test).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "l4s-rgb"
RECIPE_FILE = REPO_ROOT / "configs" / "l4s-rgb.yaml"

OLD: dict[str, Any] = {"bands": "rgb", "model": "unet", "width": 8, "depth": 4,
                       "loss": "bce-dice", "lr": 1e-3, "epochs": 10, "batch_size": 16}
"""The round-1 recipe (test F1 0.587 in the issue's rerun)."""

W16_RECIPE: dict[str, Any] = {
    **OLD, "width": 16, "optimizer": "adamw", "lr": 2e-3, "weight_decay": 1e-4,
    "schedule": "onecycle", "photometric": 1.0, "scale_range": (0.8, 1.25), "ema": 0.99,
    "epochs": 20}
"""Every ingredient at once on a 4x larger U-Net (the first candidate; it lost on validation)."""

INGREDIENTS: dict[str, dict[str, Any]] = {
    "schedule": {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 1e-4, "schedule": "onecycle"},
    "ema": {"ema": 0.99},
    "photometric": {"photometric": 1.0},
    "scale": {"scale_range": (0.8, 1.25)},
    "lovasz": {"loss": "bce-lovasz"},
    "epochs20": {"epochs": 20},
    "epochs40": {"epochs": 40},
    "epochs80": {"epochs": 80},
    "e80-cosine-ema": {"epochs": 80, "schedule": "cosine", "warmup_epochs": 1.0, "ema": 0.99},
    "width16": {"width": 16},
    "smp-r18": {"model": "smp-unet", "encoder": "resnet18", "width": None, "depth": None},
}
"""Ablation: ``old+NAME`` is the round-1 recipe with one ingredient added."""

ENSEMBLE_PREFIX = "ens"
"""``ensK-CONFIG``: K members of CONFIG (seeds ``100 * seed + k``) averaged by one bundle."""


def recipe_options() -> dict[str, Any]:
    """The CPU recipe: the TrainConfig fields of configs/l4s-rgb.yaml."""
    with open(RECIPE_FILE, encoding="utf-8") as f:
        doc = dict(yaml.safe_load(f))
    return {k.replace("-", "_"): v for k, v in doc.items()}


def config_options(name: str) -> dict[str, Any]:
    """TrainConfig fields of configuration ``name`` (``old``, ``recipe``, ``old+INGREDIENT``)."""
    if name == "old":
        return dict(OLD)
    if name == "recipe":
        return recipe_options()
    if name == "w16-recipe":
        return dict(W16_RECIPE)
    base, _, ingredient = name.partition("+")
    if base != "old" or ingredient not in INGREDIENTS:
        raise SystemExit(f"unknown configuration {name!r}: old, recipe, ensK-CONFIG or "
                         f"old+INGREDIENT with {', '.join(INGREDIENTS)}")
    train = {**OLD, **INGREDIENTS[ingredient]}
    return {k: v for k, v in train.items() if v is not None}


def split_ensemble(name: str) -> tuple[int, str]:
    """(members, configuration) of ``ensK-CONFIG``; (1, name) for a single model."""
    head, sep, rest = name.partition("-")
    if sep and head.startswith(ENSEMBLE_PREFIX) and head[len(ENSEMBLE_PREFIX):].isdigit():
        k = int(head[len(ENSEMBLE_PREFIX):])
        if k < 2:
            raise SystemExit(f"{name}: an ensemble needs at least 2 members")
        config_options(rest)
        return k, rest
    config_options(name)
    return 1, name


VARIANTS: tuple[tuple[bool, str | None], ...] = ((False, None), (True, None), (True, "tuned"))
"""Evaluations of every trained model: (TTA, minimum area): plain, TTA, TTA + tuned min-area."""


def _evaluate(run: Path, dataset: Path, tta: bool, min_area: str | None) -> dict[str, Any]:
    from landslip.evaluation.evaluate import EvaluateOptions, evaluate

    tag = ("tta" if tta else "plain") + ("-minarea" if min_area else "")
    t0 = time.perf_counter()
    ev = evaluate(run, dataset, EvaluateOptions(
        split="test", threshold="tuned", out_dir=run / f"evaluation-{tag}", figure_patches=4,
        save_predictions=False, tta=tta, min_area=min_area))
    rep = ev.report
    px, obj = rep["pixel"], rep["objects"]
    chosen = rep.get("min_area") or {}
    return {"tta": tta, "min_area": chosen.get("value"), "precision": px["precision"],
            "recall": px["recall"], "f1": px["f1"], "iou": px["iou"],
            "threshold": ev.threshold, "val_f1_tuned": rep["threshold"]["tuned_f1"],
            "object_false_alarm_rate": obj["false_alarm_rate"],
            "object_detection_rate": obj["detection_rate"],
            "eval_seconds": time.perf_counter() - t0, "report": str(ev.report_md)}


def train_config(name: str, dataset: Path, work: Path, seed: int,
                 max_train_batches: int | None) -> dict[str, Any]:
    """Train configuration ``name`` with ``seed``; returns what the rows share."""
    from landslip.training.config import TrainConfig
    from landslip.training.fit import train

    train_opts = config_options(name)
    run = work / "runs" / f"{name}-s{seed}"
    if run.exists():
        shutil.rmtree(run)
    if max_train_batches is not None:
        train_opts["max_train_batches"] = max_train_batches
    tc = TrainConfig(dataset=dataset, output=run, seed=seed, checkpoint_every_n_steps=10_000,
                     **train_opts)
    cpu0, t0 = os.times(), time.perf_counter()
    tr = train(tc)
    cpu1 = os.times()
    return {"config": name, "seed": seed, "train": train_opts, "run": str(run),
            "train_minutes": (time.perf_counter() - t0) / 60,
            "train_cpu_minutes": ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / 60,
            "best_epoch": tr.best_epoch + 1, "epochs_completed": tr.epochs_completed}


def train_ensemble(name: str, dataset: Path, work: Path, seed: int,
                   max_train_batches: int | None) -> dict[str, Any]:
    """Train the members of ``ensK-CONFIG`` one after the other and average them in one bundle.

    Training minutes are the members' sums: everything the recipe trains counts.
    """
    from landslip.models.ensemble import build_ensemble

    k, config = split_ensemble(name)
    members = [train_config(config, dataset, work, 100 * seed + i, max_train_batches)
               for i in range(k)]
    run = work / "runs" / f"{name}-s{seed}"
    if run.exists():
        shutil.rmtree(run)
    build_ensemble([m["run"] for m in members], run)
    return {"config": name, "seed": seed, "train": members[0]["train"], "run": str(run),
            "train_minutes": sum(m["train_minutes"] for m in members),
            "train_cpu_minutes": sum(m["train_cpu_minutes"] for m in members),
            "best_epoch": max(m["best_epoch"] for m in members),
            "epochs_completed": members[0]["epochs_completed"]}


def evaluate_rows(base: dict[str, Any], dataset: Path) -> list[dict[str, Any]]:
    """One row per evaluation variant of the trained run ``base["run"]``."""
    return [{**base, **_evaluate(Path(base["run"]), dataset, tta, area)}
            for tta, area in VARIANTS]


def _mean_sd(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def summarize(rows: list[dict[str, Any]]) -> str:
    """Markdown table: per configuration (and TTA), mean ± sd over seeds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        post = ("TTA" if r["tta"] else "-") + (" + min-area" if r.get("min_area") is not None
                                              else "")
        groups.setdefault((r["config"], post), []).append(r)
    order = sorted(groups, key=lambda k: -statistics.mean(
        r["val_f1_tuned"] for r in groups[k]))
    lines = ["| config | post-processing | seeds | val F1 (tuned) | test precision | test recall | "
             "test F1 | object false alarms | objects detected | train min (wall) | "
             "train CPU min |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in order:
        g = groups[key]
        col = {k: _mean_sd([float(r[k]) for r in g], 1 if k.endswith("minutes") else 3)
               for k in ("val_f1_tuned", "precision", "recall", "f1", "object_false_alarm_rate",
                         "object_detection_rate", "train_minutes", "train_cpu_minutes")}
        lines.append(f"| {key[0]} | {key[1]} | {','.join(str(r['seed']) for r in g)} | "
                     f"{col['val_f1_tuned']} | {col['precision']} | {col['recall']} | "
                     f"{col['f1']} | {col['object_false_alarm_rate']} | "
                     f"{col['object_detection_rate']} | {col['train_minutes']} | "
                     f"{col['train_cpu_minutes']} |")
    return "\n".join(lines)


BASE_KEYS = ("config", "seed", "train", "run", "train_minutes", "train_cpu_minutes", "best_epoch",
             "epochs_completed")
"""Row fields that come from training (kept by ``--evaluate-only``)."""


def _report(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        area = "" if r["min_area"] is None else f", min-area {r['min_area']:g} px"
        print(f"   {r['config']} s{r['seed']} TTA {'on' if r['tta'] else 'off'}{area}: val F1 "
              f"{r['val_f1_tuned']:.3f}, test P {r['precision']:.3f} R {r['recall']:.3f} F1 "
              f"{r['f1']:.3f}, object false alarms {r['object_false_alarm_rate']:.2f}, train "
              f"{r['train_minutes']:.1f} min ({r['train_cpu_minutes']:.1f} CPU min)", flush=True)
    return rows


def _write(work: Path, rows: list[dict[str, Any]], command: str) -> str:
    from landslip.io.atomic import write_json_atomic, write_text_atomic

    md = (f"# Landslide4Sense RGB ablation (landslip)\n\nCommand: `{command}`\n\n"
          "Test split, landslide class; threshold tuned on validation, frozen for test. "
          "Ordered by validation F1.\n\n" + summarize(rows) + "\n")
    write_json_atomic(work / "results.json", {"command": command, "rows": rows})
    write_text_atomic(work / "results.md", md)
    return md


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="l4s-rgb folder")
    ap.add_argument("--work", type=Path, default=Path("/tmp/l4s-bench"),
                    help="work folder (dataset, runs, results)")
    ap.add_argument("--configs", nargs="+", default=["old", "recipe"],
                    help="configurations: old, recipe, old+INGREDIENT (" + ", ".join(INGREDIENTS)
                    + "), ensK-CONFIG")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--max-train-batches", type=int, default=None,
                    help="limit batches per epoch (quick checks of the script)")
    ap.add_argument("--evaluate-only", action="store_true",
                    help="re-evaluate the runs listed in WORK/results.json (no training)")
    ap.add_argument("--summarize", nargs="+", type=Path, default=None,
                    help="merge these results.json files into WORK/results.md and stop")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    args.work.mkdir(parents=True, exist_ok=True)
    if args.summarize:
        rows = [r for p in args.summarize for r in json.loads(p.read_text())["rows"]]
        print(_write(args.work, rows, command))
        return 0

    import torch

    from landslip.dataset.imports import import_patches

    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.data.is_dir():
        print(f"no data at {args.data}: this benchmark needs ../shared/data/l4s-rgb",
              file=sys.stderr)
        return 2
    for name in args.configs:
        split_ensemble(name)  # refuse an unknown name before any work
    ds_path = args.work / "dataset"
    if not args.evaluate_only:
        import_patches(args.data, ds_path, val_fraction=args.val_fraction, seed=0, overwrite=True)
    rows: list[dict[str, Any]] = []
    if args.evaluate_only:
        bases: dict[str, dict[str, Any]] = {}
        for r in json.loads((args.work / "results.json").read_text())["rows"]:
            run = r.get("run") or str(args.work / "runs" / f"{r['config']}-s{r['seed']}")
            bases[run] = {**{k: v for k, v in r.items() if k in BASE_KEYS}, "run": run}
        for base in bases.values():
            rows += _report(evaluate_rows(base, ds_path))
            _write(args.work, rows, command)
    for name in [] if args.evaluate_only else args.configs:
        for seed in args.seeds:
            members, config = split_ensemble(name)
            print(f"== {name} seed {seed}: {config_options(config)}", flush=True)
            fit = train_ensemble if members > 1 else train_config
            base = fit(name, ds_path, args.work, seed, args.max_train_batches)
            rows += _report(evaluate_rows(base, ds_path))
            _write(args.work, rows, command)
    print(_write(args.work, rows, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
