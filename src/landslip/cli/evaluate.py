"""``landslip evaluate``: landslide-class metrics, figures and a report for a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from landslip.cli.options import EngineOption, StrictOption, ThreadsOption, TtaOption

__all__ = ["evaluate"]


def evaluate(
    run_or_bundle: Annotated[
        Path,
        typer.Argument(help="Run folder of `landslip train`, its bundle/ folder, or model.json."),
    ],
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (`landslip prepare`).")],
    split: Annotated[
        str, typer.Option("--split", help="Split to evaluate: test, val or train.")
    ] = "test",
    threshold: Annotated[
        str,
        typer.Option("--threshold", "-t", help="Decision threshold: a number in (0, 1) (paper: "
                     "0.5), 'tuned' (F1-optimal on the validation split, then frozen; not "
                     "with --split val) or 'bundle' (the one stored in the model)."),
    ] = "0.5",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output folder [default: RUN/evaluation/<dataset "
                     "name>/<split>]."),
    ] = None,
    figure_patches: Annotated[
        int, typer.Option("--figure-patches", min=0, help="Patches drawn as paper-style panels "
                          "(those with the most landslide pixels).")
    ] = 4,
    save_predictions: Annotated[
        bool, typer.Option("--save-predictions/--no-save-predictions",
                           help="Write probabilities.npy, masks.npy and patch_ids.npy.")
    ] = True,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Patches per pass.")] = 16,
    match: Annotated[
        str, typer.Option("--match", help="Object matching rule: overlap or iou.")
    ] = "overlap",
    min_overlap: Annotated[
        float, typer.Option("--min-overlap", min=0.0, max=1.0,
                            help="Coverage (overlap rule) or IoU needed for an object match.")
    ] = 0.5,
    device: Annotated[
        str, typer.Option("--device", help="Torch device: auto (CUDA when present, else the "
                          "CPU), cpu, cuda or cuda:N.")
    ] = "auto",
    min_slope: Annotated[
        float | None,
        typer.Option("--min-slope", help="Remove predicted landslides whose mean slope (the "
                     "dataset's slope band) is below this many degrees, as predict --min-slope "
                     "does (off by default)."),
    ] = None,
    min_area: Annotated[
        str | None,
        typer.Option("--min-area", help="Remove predicted landslides smaller than this area "
                     "before counting: m2 when the dataset has a CRS, else pixels (same meaning "
                     "as predict --min-area), or 'tuned' (best object F1 on the validation "
                     "split, then frozen; not with --split val). Off by default."),
    ] = None,
    strict: StrictOption = False,
    engine: EngineOption = "auto",
    threads: ThreadsOption = None,
    tta: TtaOption = False,
) -> None:
    """Evaluate a model on a dataset split: landslide-class pixel and per-landslide metrics."""
    from landslip.errors import InputError
    from landslip.evaluation.evaluate import EvaluateOptions
    from landslip.evaluation.evaluate import evaluate as run_evaluation
    from landslip.evaluation.objects import MatchRule

    if match not in ("overlap", "iou"):
        raise InputError(f"--match must be 'overlap' or 'iou', got {match!r}")
    rule: MatchRule = "iou" if match == "iou" else "overlap"
    res = run_evaluation(run_or_bundle, dataset, EvaluateOptions(
        split=split, threshold=threshold, out_dir=output, figure_patches=figure_patches,
        save_predictions=save_predictions, batch_size=batch_size, object_rule=rule,
        min_overlap=min_overlap, device=device, min_slope=min_slope, min_area=min_area,
        strict=strict,
        engine=engine, threads=threads, tta=tta))
    _echo(res)


def _echo(res: Any) -> None:
    """Print the scores of an :class:`~landslip.evaluation.evaluate.EvaluateResult`."""
    r = res.report
    px, obj = r["pixel"], r["objects"]
    thr = r["threshold"]
    typer.echo(f"{r['dataset']['split']} split, {r['dataset']['patches']} patches, landslide "
               f"class (not averaged over classes), threshold {res.threshold:.3f} "
               f"({thr['mode']}):")
    typer.echo(f"  precision {px['precision']:.3f}  recall {px['recall']:.3f}  "
               f"F1 {px['f1']:.3f}  IoU {px['iou']:.3f}  "
               f"(TP {int(px['tp'])}, FP {int(px['fp'])}, FN {int(px['fn'])})")
    if thr.get("tuned") is not None and thr["mode"] != "tuned":
        at = r["pixel_at"].get(f"tuned on {thr['tuned_on']}", {})
        typer.echo(f"  at the threshold tuned on {thr['tuned_on']} ({thr['tuned']:.3f}): "
                   f"F1 {at.get('f1', float('nan')):.3f}")
    typer.echo(f"  landslides: detection rate {obj['detection_rate']:.3f} "
               f"({obj['detected']}/{obj['true_landslides']}), false-alarm rate "
               f"{obj['false_alarm_rate']:.3f} ({obj['false_alarms']}/{obj['predicted_regions']})")
    area = r.get("min_area")
    if area:
        how = f"tuned on {area['tuned_on']}" if area["mode"] == "tuned" else area["mode"]
        typer.echo(f"  predicted landslides under {area['value']:g} {area['unit']} removed "
                   f"({how})")
    typer.echo(f"Report: {res.report_md}")
