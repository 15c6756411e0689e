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


def _check_before_run(config: TrainConfig) -> None:
    """Refuse an absent GPU, ``--teacher`` without ``--unlabeled`` and an unwritable run
    folder before the run folder is touched.

    Raises:
        InputError: ``--accelerator gpu`` (or cuda) without that many CUDA devices.
        ConfigError: ``--teacher`` without ``--unlabeled``.
        OutputError: The run folder cannot be written.
    """
    import torch

    from landslip.devices import select_device
    from landslip.errors import ConfigError, InputError
    from landslip.io.checks import check_writable

    if config.teacher is not None and config.unlabeled is None:
        raise ConfigError("--teacher is for self-training; give --unlabeled DATASET_OR_IMAGE "
                          "too")

    if config.accelerator in ("gpu", "cuda"):
        try:
            select_device(f"cuda:{config.devices - 1}")
        except InputError:
            found = torch.cuda.device_count() if torch.cuda.is_available() else 0
            raise InputError(f"--accelerator {config.accelerator} needs {config.devices} CUDA "
                             f"device(s) but this machine has {found}; use --accelerator cpu "
                             "(or auto)") from None
    check_writable(config.output, folder=True)


def _fit_interruptible(config: TrainConfig) -> Any:
    """Run the training; Ctrl-C (which Lightning turns into exit 1) becomes ``Interrupted``.

    Raises:
        Interrupted: After Ctrl-C, saying whether to rerun with --resume (a checkpoint
            exists) or as it was (none yet).
    """
    import lightning.pytorch as pl

    from landslip.errors import Interrupted
    from landslip.training.fit import run_paths
    from landslip.training.fit import train as fit

    class Watch(pl.Callback):
        interrupted = False

        def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                         exception: BaseException) -> None:
            Watch.interrupted = isinstance(exception, KeyboardInterrupt)

    try:
        return fit(config, callbacks=[Watch()])
    except (SystemExit, KeyboardInterrupt) as exc:
        if not (Watch.interrupted or isinstance(exc, KeyboardInterrupt)):
            raise
        last = run_paths(config.output)["last"]
        hint = (f"interrupted; rerun with --resume to continue from {last} (at most "
                f"{config.checkpoint_every_n_steps} training steps are lost)"
                if last.is_file() else
                "interrupted before the first checkpoint; rerun the same command")
        raise Interrupted(hint) from None


def _self_train(config: TrainConfig) -> None:
    """Self-training (``--unlabeled``): a teacher, then students; one line per round."""
    from landslip.training.selftrain import self_train

    def show(r: dict[str, Any]) -> None:
        pseudo = r.get("pseudo")
        seen = (f", {pseudo['patches_kept']}/{pseudo['patches_predicted']} unlabeled patches "
                f"pseudo-labelled ({100 * pseudo['confident_share']:.1f} % of pixels "
                "confident)" if pseudo else "")
        if r.get("given"):
            typer.echo(f"Round 0 (teacher): given, {r['run']}")
            return
        typer.echo(f"Round {r['round']} ({r['role']}): validation F1 "
                   f"{r['val'].get('f1', float('nan')):.4f}{seen}, {r['seconds']:.1f} s")

    result = self_train(config, on_round=show)
    typer.echo(f"Self-trained {len(result.rounds) - 1} round(s) in {result.seconds:.1f} s: "
               f"bundle {result.bundle_dir}, rounds {result.document.name}")


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
    encoder: Annotated[str | None, _opt("encoder")] = None,
    encoder_weights: Annotated[str | None, _opt("encoder_weights")] = None,
    epochs: Annotated[int | None, _opt("epochs")] = None,
    batch_size: Annotated[int | None, _opt("batch_size")] = None,
    lr: Annotated[float | None, _opt("lr")] = None,
    loss: Annotated[str | None, _opt("loss")] = None,
    seed: Annotated[int | None, _opt("seed")] = None,
    devices: Annotated[int | None, _opt("devices")] = None,
    num_nodes: Annotated[int | None, _opt("num_nodes")] = None,
    accelerator: Annotated[str | None, _opt("accelerator")] = None,
    num_workers: Annotated[int | None, _opt("num_workers")] = None,
    early_stopping: Annotated[int | None, _opt("early_stopping")] = None,
    max_train_batches: Annotated[int | None, _opt("max_train_batches")] = None,
    precision: Annotated[str | None, _opt("precision")] = None,
    memory_format: Annotated[str | None, _opt("memory_format")] = None,
    compile: Annotated[str | None, _opt("compile")] = None,
    optimizer: Annotated[str | None, _opt("optimizer")] = None,
    weight_decay: Annotated[float | None, _opt("weight_decay")] = None,
    schedule: Annotated[str | None, _opt("schedule")] = None,
    warmup_epochs: Annotated[float | None, _opt("warmup_epochs")] = None,
    photometric: Annotated[float | None, _opt("photometric")] = None,
    scale_range: Annotated[str | None, _opt("scale_range")] = None,
    ema: Annotated[float | None, _opt("ema")] = None,
    resume: Annotated[bool, _opt("resume")] = False,
    unlabeled: Annotated[Path | None, _opt("unlabeled")] = None,
    unlabeled_split: Annotated[str | None, _opt("unlabeled_split")] = None,
    rounds: Annotated[int | None, _opt("rounds")] = None,
    pseudo_threshold: Annotated[float | None, _opt("pseudo_threshold")] = None,
    pseudo_low: Annotated[float | None, _opt("pseudo_low")] = None,
    pseudo_min_confident: Annotated[float | None, _opt("pseudo_min_confident")] = None,
    pseudo_rule: Annotated[str | None, _opt("pseudo_rule")] = None,
    pseudo_portion: Annotated[float | None, _opt("pseudo_portion")] = None,
    student_init: Annotated[str | None, _opt("student_init")] = None,
    teacher: Annotated[Path | None, _opt("teacher")] = None,
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

    if not logging.getLogger("landslip").isEnabledFor(logging.DEBUG):
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    resolved = resolve_config(config, resume=resume, **options)
    _check_before_run(resolved)
    if resolved.unlabeled is not None:
        _self_train(resolved)
        return
    result = _fit_interruptible(resolved)
    if not result.is_global_zero:
        return
    best = result.best_val
    scores = (f"best validation F1 {best['f1']:.4f} (P {best['precision']:.4f}, "
              f"R {best['recall']:.4f}, IoU {best['iou']:.4f}) at epoch {result.best_epoch}"
              if best else "no validation scores")
    typer.echo(f"Trained {result.epochs_completed} epoch(s) in {result.seconds:.1f} s: {scores}")
    typer.echo(f"Run folder {result.run_dir}: bundle {result.bundle_dir}, "
               f"metrics {result.metrics_csv.name}, curve {result.curve_png.name}")
