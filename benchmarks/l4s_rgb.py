"""Real-data benchmark: landslide mapping on the Landslide4Sense RGB patches.

Imports ``../shared/data/l4s-rgb`` (1385 training and 199 test patches, 128 x 128 px, 8-bit
R, G, B, Sentinel-2 at about 10 m, per-patch stretched; see that folder's README) with
:func:`landslip.dataset.imports.import_patches`, carving a validation part out of the training
patches (``--val-fraction``, seeded). Then, for every configuration:

1. train on the train split (:func:`landslip.training.fit.train`, band set ``rgb``; the bundle
   keeps the epoch with the best validation F1);
2. tune the threshold on the validation split and apply it, frozen, to the test split
   (:func:`landslip.evaluation.evaluate.evaluate` with ``threshold="tuned"``);
3. report precision, recall and F1 of the landslide class on the test split (and F1 at the
   paper's 0.5), the training time and the throughput.

All configurations run in one process, one after the other, on the same imported dataset.
Results go to ``WORK/results.json`` and ``WORK/results.md`` and are printed with the command
line and the total time.

Published anchors (14-band Landslide4Sense, not directly comparable: this is RGB only, 8-bit,
stretched per patch): official U-Net baseline F1 0.578 (validation), winners F1 0.745 (test).

Run (the README figures: one configuration per process, one thread each; 12-18 minutes per
configuration on the shared 2-core CPU; two processes side by side use both cores better than
one process with two threads when the machine is busy)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/l4s_rgb.py --work /tmp/l4s-w8-bcedice-e10 \
        --configs w8-bcedice-e10 --threads 1

Without ``--configs`` the three configurations of the README table run one after the other.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "l4s-rgb"


@dataclass(frozen=True)
class BenchConfig:
    """One training configuration of the comparison."""

    name: str
    width: int
    loss: str
    epochs: int
    depth: int = 4
    batch_size: int = 16
    lr: float = 1e-3
    extra: dict[str, Any] = field(default_factory=dict)

    def train_options(self) -> dict[str, Any]:
        """TrainConfig fields (besides dataset and output)."""
        return {"bands": "rgb", "model": "unet", "width": self.width, "depth": self.depth,
                "loss": self.loss, "epochs": self.epochs, "batch_size": self.batch_size,
                "lr": self.lr, **self.extra}


CONFIGS: dict[str, BenchConfig] = {
    c.name: c for c in (
        BenchConfig("w8-bcedice-e10", width=8, loss="bce-dice", epochs=10),
        BenchConfig("w8-dice-e10", width=8, loss="dice", epochs=10),
        BenchConfig("w16-bcedice-e5", width=16, loss="bce-dice", epochs=5),
        BenchConfig("w8-bcedice-e20", width=8, loss="bce-dice", epochs=20),
        BenchConfig("w16-bcedice-e10", width=16, loss="bce-dice", epochs=10),
        BenchConfig("w8-focal-e10", width=8, loss="focal", epochs=10),
    )
}
DEFAULT_CONFIGS = ("w8-bcedice-e10", "w8-dice-e10", "w16-bcedice-e5")


def run_config(cfg: BenchConfig, dataset: Path, work: Path, seed: int,
               max_train_batches: int | None) -> dict[str, Any]:
    """Train and evaluate one configuration; returns its result row."""
    from landslip.evaluation.evaluate import EvaluateOptions, evaluate
    from landslip.training.config import TrainConfig
    from landslip.training.fit import train

    run = work / "runs" / cfg.name
    opts = cfg.train_options()
    if max_train_batches is not None:
        opts["max_train_batches"] = max_train_batches
    tc = TrainConfig(dataset=dataset, output=run, seed=seed, checkpoint_every_n_steps=10_000,
                     **opts)
    t0 = time.perf_counter()
    tr = train(tc)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ev = evaluate(run, dataset, EvaluateOptions(split="test", threshold="tuned",
                                                out_dir=run / "evaluation", figure_patches=4,
                                                save_predictions=False))
    eval_s = time.perf_counter() - t1
    rep = ev.report
    at05 = rep["pixel_at"].get("0.5 (paper)", {})
    px = rep["pixel"]
    return {
        "config": cfg.name, **opts, "seed": seed,
        "precision": px["precision"], "recall": px["recall"], "f1": px["f1"], "iou": px["iou"],
        "threshold": ev.threshold, "val_f1_tuned": rep["threshold"]["tuned_f1"],
        "f1_at_0.5": at05.get("f1"), "precision_at_0.5": at05.get("precision"),
        "recall_at_0.5": at05.get("recall"), "average_precision": rep["average_precision"],
        "best_epoch": tr.best_epoch, "epochs_completed": tr.epochs_completed,
        "train_seconds": train_s, "eval_seconds": eval_s, "run": str(run),
        "report": str(ev.report_md),
    }


def _markdown(rows: list[dict[str, Any]], command: str, total_s: float,
              counts: dict[str, int]) -> str:
    lines = [
        "# Landslide4Sense RGB benchmark (landslip)",
        "",
        f"Command: `{command}`  ",
        f"Total time: {total_s / 60:.1f} min. Patches: train {counts.get('train')}, "
        f"validation {counts.get('val')} (carved from train), test {counts.get('test')}.",
        "",
        "Test split, landslide class; threshold tuned on validation, frozen for test.",
        "",
        "| config | width | loss | epochs (best epoch) | precision | recall | F1 | threshold | "
        "F1 at 0.5 | train min |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f05 = "-" if r["f1_at_0.5"] is None else f"{r['f1_at_0.5']:.3f}"
        lines.append(
            f"| {r['config']} | {r['width']} | {r['loss']} | {r['epochs_completed']} "
            f"({r['best_epoch'] + 1}) | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | "
            f"{r['threshold']:.3f} | {f05} | {r['train_seconds'] / 60:.1f} |")
    lines += ["", "Published anchors (14 bands, not directly comparable): U-Net baseline F1 "
              "0.578, competition winners F1 0.745.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="l4s-rgb folder")
    ap.add_argument("--work", type=Path, default=Path("/tmp/l4s-bench"),
                    help="work folder (dataset, runs, results)")
    ap.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                    choices=sorted(CONFIGS), help="configurations to compare")
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--max-train-batches", type=int, default=None,
                    help="limit batches per epoch (quick throughput checks)")
    args = ap.parse_args(argv)

    import torch

    from landslip.dataset.folder import open_dataset
    from landslip.dataset.imports import import_patches
    from landslip.io.atomic import write_json_atomic, write_text_atomic

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.data.is_dir():
        print(f"no data at {args.data}: this benchmark needs ../shared/data/l4s-rgb",
              file=sys.stderr)
        return 2
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    t_all = time.perf_counter()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    ds_path = work / "dataset"
    t0 = time.perf_counter()
    imp = import_patches(args.data, ds_path, val_fraction=args.val_fraction, seed=args.seed,
                         overwrite=True)
    ds = open_dataset(ds_path)
    counts = {s: int(ds.split_indices(s).size) for s in ("train", "val", "test")}
    print(f"imported {args.data} in {time.perf_counter() - t0:.1f} s: bands "
          f"{list(ds.band_names)}, {ds.patch_size} px, {counts}; landslide share "
          f"{imp.report.get('landslide_fraction')}", flush=True)

    rows: list[dict[str, Any]] = []
    for name in args.configs:
        cfg = CONFIGS[name]
        run = work / "runs" / name
        if run.exists():
            import shutil

            shutil.rmtree(run)
        print(f"== {name}: {cfg.train_options()}", flush=True)
        row = run_config(cfg, ds_path, work, args.seed, args.max_train_batches)
        rows.append(row)
        print(f"   test P {row['precision']:.3f} R {row['recall']:.3f} F1 {row['f1']:.3f} at "
              f"threshold {row['threshold']:.3f} (tuned on validation; F1 at 0.5: "
              f"{row['f1_at_0.5']}), best epoch {row['best_epoch']}, train "
              f"{row['train_seconds']:.0f} s", flush=True)
        total = time.perf_counter() - t_all
        write_json_atomic(work / "results.json", {"command": command, "seconds": total,
                                                  "counts": counts, "threads":
                                                  torch.get_num_threads(), "rows": rows})
        write_text_atomic(work / "results.md", _markdown(rows, command, total, counts))
    total = time.perf_counter() - t_all
    md = _markdown(rows, command, total, counts)
    write_text_atomic(work / "results.md", md)
    print(md)
    best = max(rows, key=lambda r: r["val_f1_tuned"] or 0.0)
    print(f"best on validation: {best['config']} (validation F1 {best['val_f1_tuned']:.3f}, "
          f"test F1 {best['f1']:.3f}); results in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
