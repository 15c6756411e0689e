"""``landslip train``: train a U-Net on a dataset folder; writes a run folder and model bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["train"]


def train(
    dataset: Annotated[
        Path | None,
        typer.Argument(help="Dataset folder from `landslip prepare` (optional with --resume "
                       "or --config)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Run folder to write (or resume).")
    ] = None,
    bands: Annotated[
        str | None,
        typer.Option("--bands", help="Band set: bgrn, bgr, grn, bg-ndvi, rgb or a comma list "
                     "such as blue,green,ndvi. [default: bgrn]"),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="unet-paper (Figure 4) or unet. [default: unet-paper]"),
    ] = None,
    width: Annotated[
        int | None, typer.Option("--width", help="Base width of unet (paper 64; 16 is ~10x "
                                 "faster).")
    ] = None,
    depth: Annotated[
        int | None, typer.Option("--depth", help="Poolings of unet (paper 4).")
    ] = None,
    upsampling: Annotated[
        str | None,
        typer.Option("--upsampling", help="transpose (paper), bilinear or nearest."),
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="[default: 100]")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Per device. [default: 40]")
    ] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help="Learning rate. [default: 0.001]")
    ] = None,
    loss: Annotated[
        str | None,
        typer.Option("--loss", help="dice (paper), bce, bce-dice, focal, tversky. "
                     "[default: dice]"),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="[default: 0]")] = None,
    devices: Annotated[
        int | None,
        typer.Option("--devices", help="Devices/processes; > 1 trains with DDP (gloo on CPU)."),
    ] = None,
    accelerator: Annotated[
        str | None, typer.Option("--accelerator", help="auto (CUDA if present), cpu, gpu.")
    ] = None,
    num_workers: Annotated[
        int | None, typer.Option("--num-workers", help="DataLoader workers per device.")
    ] = None,
    early_stopping: Annotated[
        int | None,
        typer.Option("--early-stopping", help="Stop after N epochs without a better val F1."),
    ] = None,
    max_train_batches: Annotated[
        int | None,
        typer.Option("--max-train-batches", help="At most N training batches per epoch."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in -o from checkpoints/last.ckpt.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML file of options; command-line options win."),
    ] = None,
) -> None:
    """Train a landslide segmentation model (paper defaults: unet-paper, dice, Adam 0.001,
    100 epochs, batch 40) and write RUN/ with checkpoints, metrics.csv, training_curve.png and
    the model bundle RUN/bundle/."""
    import logging

    from landslip.training.config import resolve_config
    from landslip.training.fit import train as fit

    if not logging.getLogger("landslip").isEnabledFor(logging.DEBUG):
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    cfg = resolve_config(
        config, resume=resume, dataset=dataset, output=output, bands=bands, model=model,
        width=width, depth=depth, upsampling=upsampling, epochs=epochs, batch_size=batch_size,
        lr=lr, loss=loss, seed=seed, devices=devices, accelerator=accelerator,
        num_workers=num_workers, early_stopping=early_stopping,
        max_train_batches=max_train_batches,
    )
    result = fit(cfg)
    if not result.is_global_zero:
        return
    best = result.best_val
    scores = (f"best validation F1 {best['f1']:.4f} (P {best['precision']:.4f}, "
              f"R {best['recall']:.4f}, IoU {best['iou']:.4f}) at epoch {result.best_epoch}"
              if best else "no validation scores")
    typer.echo(f"Trained {result.epochs_completed} epoch(s) in {result.seconds:.1f} s: {scores}")
    typer.echo(f"Run folder {result.run_dir}: bundle {result.bundle_dir}, "
               f"metrics {result.metrics_csv.name}, curve {result.curve_png.name}")
