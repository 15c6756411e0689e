"""Self-training under a real domain shift: train on scene A, adapt without labels to scene B.

For each seed, two synthetic scenes of the same kind (``landslip synth``), each HPF
pan-sharpened to 1.5 m:

* **A** (labelled): the default post-event acquisition (4 October sun, autumn, the default
  sensor response), cut into a dataset (random split) and used for training;
* **B** (the new event, other terrain and landslides): another sun (20 August), summer
  vegetation and another sensor response (gains, DN offsets, 1.5x noise). Its image is the
  ``--unlabeled`` imagery; its truth is used **only for scoring**, through a dataset prepared
  from B's image and truth (every patch, evaluated at threshold 0.5).

Per seed the plain model is trained on A once (``teacher-sN``) and is the ``--teacher`` of
``landslip train A --unlabeled B/fused.tif --rounds R`` for each of :data:`VARIANTS` (the
default settings, and the old fixed rule with fresh students); ``continued`` (the plain model
trained as many epochs more on A alone) is the control of fine-tuning. All are scored on B
(and on A's test split, to show what adaptation costs at home). Prints F1 on B per seed and
model, mean +- sd over the seeds, the CPU minutes of each, and writes ``results.json`` and
``results.md`` in ``--work``. Example::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/self_training_study.py --work /tmp/selftrain

Reruns reuse finished scenes, datasets and teachers in ``--work`` (the rest is redone).
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


VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "old": {"pseudo_rule": "fixed", "student_init": "fresh"},
}
"""Self-training settings compared with the plain model: ``default`` is TrainConfig's (the
balanced rule, students from the teacher), ``old`` the first rule (fixed thresholds 0.9 /
0.1, students from fresh weights)."""


def _teacher(work: Path, seed: int, ds_a: Path,
             args: argparse.Namespace) -> tuple[Path, float | None]:
    """The plain model trained on A, reused when ``work/teacher-sN`` has a bundle: (run, CPU
    minutes of its training, None when reused from an earlier run without a record)."""
    from landslip.training.config import load_config
    from landslip.training.fit import train

    run = work / f"teacher-s{seed}"
    record = run / "cpu_minutes.json"
    if not (run / "bundle" / "model.json").is_file():
        shutil.rmtree(run, ignore_errors=True)
        c0 = time.process_time()
        train(load_config(None, dataset=ds_a, output=run, **_common(seed, args)), progress=False)
        record.write_text(json.dumps((time.process_time() - c0) / 60), encoding="utf-8")
    return run, json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None


def _continued(work: Path, seed: int, ds_a: Path, teacher: Path,
               args: argparse.Namespace) -> float:
    """The control of fine-tuning: the plain model trained as many epochs more on A alone
    (from its weights, as a student starts), so a gain of ``default`` over it is the
    pseudo-labels', not the extra epochs'. Returns its CPU minutes."""
    from landslip.models.bundle import load_bundle
    from landslip.training.config import load_config
    from landslip.training.fit import train
    from landslip.training.selftrain import init_from

    run = work / f"continued-s{seed}"
    shutil.rmtree(run, ignore_errors=True)
    c0 = time.process_time()
    state = load_bundle(teacher).model.state_dict()
    train(load_config(None, dataset=ds_a, output=run, **_common(seed, args)), progress=False,
          callbacks=[init_from(state)])
    return (time.process_time() - c0) / 60


def _common(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    return {"model": "unet", "width": args.width, "depth": 2, "bands": "bgrn",
            "loss": "bce-dice", "lr": 0.002, "batch_size": args.batch, "epochs": args.epochs,
            "seed": seed, "accelerator": "cpu"}


def _one_seed(work: Path, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from landslip.training.config import load_config
    from landslip.training.selftrain import self_train

    fused_a, truth_a = _scene(work, f"A-s{seed}", args.size, 100 + seed, shifted=False)
    fused_b, truth_b = _scene(work, f"B-s{seed}", args.size, 200 + seed, shifted=True)
    ds_a = _dataset(fused_a, truth_a, work / f"ds-A-s{seed}", args.patch, seed,
                    (0.64, 0.16, 0.2))
    ds_b = _dataset(fused_b, truth_b, work / f"ds-B-s{seed}", args.patch, seed, (1.0, 0.0, 0.0))
    teacher, teacher_min = _teacher(work, seed, ds_a, args)
    out: dict[str, Any] = {"seed": seed, "scores": {}, "rounds": {},
                           "cpu_minutes": {"plain": teacher_min}}

    def score(name: str, bundle: Path) -> None:
        out["scores"][name] = {"B": _f1(bundle, ds_b, "train", work / "eval" / f"s{seed}" / name
                                        / "B"),
                               "A-test": _f1(bundle, ds_a, "test", work / "eval" / f"s{seed}" /
                                             name / "A")}

    score("plain", teacher / "bundle")
    out["cpu_minutes"]["continued"] = _continued(work, seed, ds_a, teacher, args)
    score("continued", work / f"continued-s{seed}" / "bundle")
    for name, extra in VARIANTS.items():
        run = work / f"run-{name}-s{seed}"
        shutil.rmtree(run, ignore_errors=True)
        c0 = time.process_time()
        result = self_train(load_config(None, dataset=ds_a, output=run, unlabeled=fused_b,
                                        rounds=args.rounds, teacher=teacher,
                                        **_common(seed, args), **extra), progress=False)
        out["cpu_minutes"][name] = (time.process_time() - c0) / 60
        score(name, run / "bundle")
        out["rounds"][name] = [{"round": r["round"], "val_f1": r["val"].get("f1"),
                                **{k: r["pseudo"][k] for k in (
                                    "patches_kept", "confident_share", "landslide_share",
                                    "high", "low")}}
                               for r in result.rounds if "pseudo" in r]
    shown = ", ".join(f"{k} {v['B']['f1']:.3f}" for k, v in out["scores"].items())
    print(f"seed {seed}: F1 on B: {shown}; CPU min " + ", ".join(
        f"{k} {'reused' if v is None else f'{v:.1f}'}" for k, v in out["cpu_minutes"].items()),
        flush=True)
    return out


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def _markdown(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = ["# Self-training study: train on scene A, adapt without labels to scene B", "",
             f"Scenes {args.size} px, {args.patch} px patches, unet width {args.width} depth 2, "
             f"{args.epochs} epochs per round, {args.rounds} round(s); F1 at threshold 0.5; "
             f"seeds {', '.join(str(r['seed']) for r in results)} (mean ± sd). default = "
             "balanced pseudo-labels (portion 0.5), students from the teacher; old = fixed "
             "0.9 / 0.1, students from fresh weights; continued = plain trained as many epochs "
             "more on A alone (the control of fine-tuning). CPU min: the teacher's training "
             "(plain), or what was trained after it.", "",
             "| model | F1 on B | F1 on A test | " + " | ".join(
                 f"B, seed {r['seed']}" for r in results) + " | CPU min per seed |",
             "|---" * (4 + len(results)) + "|"]
    for name in results[0]["scores"]:
        b = [r["scores"][name]["B"]["f1"] for r in results]
        a = [r["scores"][name]["A-test"]["f1"] for r in results]
        cpu = [r["cpu_minutes"][name] for r in results if r["cpu_minutes"][name] is not None]
        shown = f"{statistics.mean(cpu):.1f}" if cpu else "reused"
        lines.append(f"| {name} | {_mean_sd(b)} | {_mean_sd(a)} | "
                     + " | ".join(f"{v:.3f}" for v in b) + f" | {shown} |")
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
    for key in results[0]["scores"]:
        print(f"{key}: F1 on B {_mean_sd([r['scores'][key]['B']['f1'] for r in results])}, "
              f"A test {_mean_sd([r['scores'][key]['A-test']['f1'] for r in results])}")
    total = sum(v for r in results for v in r["cpu_minutes"].values() if v is not None)
    print(f"total {total:.1f} CPU minutes (reused teachers not counted)")
    doc = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "shift": {k: (v.isoformat() if isinstance(v, datetime) else v)
                     for k, v in SHIFT.items()}, "results": results}
    (args.work / "results.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (args.work / "results.md").write_text(_markdown(results, args), encoding="utf-8")
    print(f"wrote {args.work / 'results.json'} and {args.work / 'results.md'}")


if __name__ == "__main__":
    main()
