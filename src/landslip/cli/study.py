"""``landslip study``: the band-set x batch-size study of the paper's Table 1."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["study"]


def study(
    config: Annotated[Path, typer.Argument(help="Study YAML: dataset(s), band_sets, "
                                           "batch_sizes, seeds, train, evaluation.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Study folder (reused to "
                                         "resume: finished runs are skipped).")],
    max_runs: Annotated[
        int | None, typer.Option("--max-runs", min=1, help="Train at most this many runs now.")
    ] = None,
) -> None:
    """Train and evaluate every band set x batch size (x seed) and write Table 1."""
    from landslip.io.checks import check_writable
    from landslip.study import load_study_config, run_study

    cfg = load_study_config(config)
    check_writable(output, folder=True)
    res = run_study(cfg, output, max_runs=max_runs)
    done, total = len(res.runs), cfg.n_runs()
    typer.echo(f"{done} of {total} runs finished ({res.trained} trained now, {res.skipped} "
               "already done). Landslide-class scores on the "
               f"{cfg.evaluation.split} split, mean over seeds:")
    for r in res.rows:
        typer.echo(f"  {r['dataset']:>10}  {r['band_set']:>8}  batch {r['batch_size']:>3}  "
                   f"P {r['precision_mean']:.3f}  R {r['recall_mean']:.3f}  "
                   f"F1 {r['f1_mean']:.3f}")
    typer.echo(f"Table 1: {res.files['table_md']} and {res.files['table_csv']}")
