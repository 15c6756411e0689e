"""``landslip train``: train a U-Net on a dataset folder; writes a run folder and model bundle.

Every option is a :class:`~landslip.training.config.TrainConfig` field of the same name: its
help text and its default come from that field, and an option not given is None here, so the
``--config`` file (or the run's saved ``config.yaml`` with ``--resume``) or TrainConfig's default
decides it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from landslip.training.config import TrainConfig

__all__ = ["train"]


def _help(name: str) -> str:
    """The help text of option ``name``: its TrainConfig description and default."""
    field = TrainConfig.model_fields[name]
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    # Parentheses, not brackets: typer renders help as rich markup, where "[...]" is a style tag.
    shown = "" if default is None or isinstance(default, bool) else f" (default: {default})"
    return f"{field.description}{shown}"


def _opt(name: str, *flags: str) -> Any:
    """A typer option for TrainConfig field ``name`` (flag ``--name-with-dashes`` unless given)."""
    return typer.Option(*(flags or (f"--{name.replace('_', '-')}",)), help=_help(name))


def train(
    dataset: Annotated[
        Path | None,
        typer.Argument(help=f"{_help('dataset')} Optional with --resume or --config."),
    ] = None,
    output: Annotated[Path | None, _opt("output", "--output", "-o")] = None,
    bands: Annotated[str | None, _opt("bands")] = None,
    model: Annotated[str | None, _opt("model")] = None,
    width: Annotated[int | None, _opt("width")] = None,
    depth: Annotated[int | None, _opt("depth")] = None,
    upsampling: Annotated[str | None, _opt("upsampling")] = None,
    epochs: Annotated[int | None, _opt("epochs")] = None,
    batch_size: Annotated[int | None, _opt("batch_size")] = None,
    lr: Annotated[float | None, _opt("lr")] = None,
    loss: Annotated[str | None, _opt("loss")] = None,
    seed: Annotated[int | None, _opt("seed")] = None,
    devices: Annotated[int | None, _opt("devices")] = None,
    accelerator: Annotated[str | None, _opt("accelerator")] = None,
    num_workers: Annotated[int | None, _opt("num_workers")] = None,
    early_stopping: Annotated[int | None, _opt("early_stopping")] = None,
    max_train_batches: Annotated[int | None, _opt("max_train_batches")] = None,
    precision: Annotated[str | None, _opt("precision")] = None,
    memory_format: Annotated[str | None, _opt("memory_format")] = None,
    compile: Annotated[str | None, _opt("compile")] = None,
    resume: Annotated[bool, _opt("resume")] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML file of options; command-line options win."),
    ] = None,
) -> None:
    """Train a landslide segmentation model (by default the paper's U-Net, loss and schedule)
    and write RUN/ with checkpoints, metrics.csv, training_curve.png and the model bundle
    RUN/bundle/."""
    # Every parameter but --config and --resume is a TrainConfig option of the same name.
    options = {k: v for k, v in locals().items() if k not in ("config", "resume")}
    import logging

    from landslip.training.config import resolve_config
    from landslip.training.fit import train as fit

    if not logging.getLogger("landslip").isEnabledFor(logging.DEBUG):
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    result = fit(resolve_config(config, resume=resume, **options))
    if not result.is_global_zero:
        return
    best = result.best_val
    scores = (f"best validation F1 {best['f1']:.4f} (P {best['precision']:.4f}, "
              f"R {best['recall']:.4f}, IoU {best['iou']:.4f}) at epoch {result.best_epoch}"
              if best else "no validation scores")
    typer.echo(f"Trained {result.epochs_completed} epoch(s) in {result.seconds:.1f} s: {scores}")
    typer.echo(f"Run folder {result.run_dir}: bundle {result.bundle_dir}, "
               f"metrics {result.metrics_csv.name}, curve {result.curve_png.name}")
