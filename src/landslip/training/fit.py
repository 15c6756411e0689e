"""Train a model on a dataset folder with Lightning and write the run folder and model bundle.

Run folder layout (``config.output``)::

    config.yaml                 the resolved configuration (options > YAML > defaults)
    metrics.csv                 one row per finished epoch: losses, validation P/R/F1/IoU, lr
    training_curve.png          loss and validation F1 per epoch
    checkpoints/best.ckpt       best validation F1 (Lightning checkpoint, for resuming/analysis)
    checkpoints/last.ckpt       latest state: every ``checkpoint_every_n_steps`` steps and
                                after every epoch; ``--resume`` continues from it
    bundle/model.safetensors    the BEST weights, no pickles (landslip.models.bundle)
    bundle/model.json           architecture, band set, normalisation, threshold, fingerprint

Resume semantics: ``resume=True`` loads ``checkpoints/last.ckpt`` (weights, optimizer, epoch and
step counters, best-F1 tracking, early-stopping state) and trains until ``epochs`` epochs are
done in total. A checkpoint saved mid-epoch resumes inside that epoch (Lightning replays the
remaining number of batches of the epoch; the data order of that partial epoch is drawn anew).

Several devices (``devices > 1``) use DDP: ``ddp`` launches one process per device by running
the same command again (works from the ``landslip`` CLI and scripts; gloo on CPU, NCCL on GPU);
``ddp_spawn`` forks workers from Python (use it from notebooks). ``batch_size`` is per device.
Several machines (``num_nodes > 1``): the same command runs once per machine with
``MASTER_ADDR``, ``MASTER_PORT`` and ``NODE_RANK`` set (Lightning's manual multi-node launch,
:func:`check_multi_node`); global rank = ``NODE_RANK * devices + local rank``.
Only the global-zero process writes config, metrics, figures and the bundle.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from landslip import __version__
from landslip.errors import ConfigError, DatasetError, ModelError
from landslip.evaluation.drift import profile_dataset
from landslip.models.bundle import BundleMeta, save_bundle
from landslip.models.encoder_weights import encoder_params, load_encoder_weights
from landslip.models.export import ensure_onnx
from landslip.models.losses import create_loss
from landslip.models.registry import check_input_size, create_model
from landslip.spectral.bands import BandSet, resolve_band_set
from landslip.training.callbacks import read_metrics
from landslip.training.config import TrainConfig, load_config, save_config
from landslip.training.recipe import bundle_state_dict, check_resume

if TYPE_CHECKING:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch import nn

    from landslip.dataset.torch import LandslideDataModule

__all__ = ["MULTI_NODE_ENV", "TrainResult", "check_multi_node", "check_precision",
           "resolve_accelerator", "run_paths", "train", "use_compile"]

logger = logging.getLogger(__name__)

# Options that define the model and its inputs: a resumed run must keep them.
_FIXED_ON_RESUME = ("dataset", "bands", "model", "width", "depth", "upsampling", "encoder")


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        run_dir: The run folder.
        bundle_dir: The model bundle folder (None on non-zero DDP ranks).
        best_checkpoint: Checkpoint with the best validation F1 (None if never validated).
        last_checkpoint: The latest checkpoint.
        metrics_csv: Per-epoch metrics file.
        curve_png: Training curve figure.
        epochs_completed: Epochs finished in total (including before a resume).
        best_epoch: Epoch (0-based) of the best validation F1, or None.
        best_val: Validation scores at the best epoch (precision, recall, f1, iou, loss).
        seconds: Wall time of this call.
        is_global_zero: False in the extra processes of a DDP run.
    """

    run_dir: Path
    bundle_dir: Path | None
    best_checkpoint: Path | None
    last_checkpoint: Path
    metrics_csv: Path
    curve_png: Path
    epochs_completed: int
    best_epoch: int | None
    best_val: dict[str, float]
    seconds: float
    is_global_zero: bool = True


def run_paths(run_dir: str | Path) -> dict[str, Path]:
    """Paths of the files of a run folder (keys: config, metrics, curve, ckpt_dir, best, last,
    bundle)."""
    run = Path(run_dir)
    ckpt = run / "checkpoints"
    return {"config": run / "config.yaml", "metrics": run / "metrics.csv",
            "curve": run / "training_curve.png", "ckpt_dir": ckpt, "best": ckpt / "best.ckpt",
            "last": ckpt / "last.ckpt", "bundle": run / "bundle"}


def _same_value(value: Any) -> str:
    return str(value.resolve()) if isinstance(value, Path) else str(value)


def _check_run_folder(config: TrainConfig, paths: dict[str, Path]) -> None:
    if config.resume:
        if not paths["last"].is_file():
            raise ConfigError(
                f"nothing to resume in {config.output}: {paths['last']} does not exist; "
                "drop --resume to start a new run there"
            )
        if paths["config"].is_file():
            saved = load_config(paths["config"])
            diffs = [f"{k}: {getattr(saved, k)} -> {getattr(config, k)}"
                     for k in _FIXED_ON_RESUME
                     if _same_value(getattr(saved, k)) != _same_value(getattr(config, k))]
            if diffs:
                raise ConfigError(
                    f"--resume must keep the run's data and model; changed: {'; '.join(diffs)}. "
                    "Start a new run folder to change them"
                )
            check_resume(saved, config)
    elif paths["last"].exists() or paths["bundle"].exists():
        raise ConfigError(
            f"{config.output} already holds a training run; use --resume to continue it or "
            "choose another output folder"
        )


def resolve_accelerator(config: TrainConfig) -> str:
    """The Lightning accelerator of a run: ``gpu``, ``mps`` or ``cpu``.

    ``auto`` takes CUDA when present, else Apple's MPS when present, else the CPU (Lightning's
    own rule); ``cuda`` is spelled ``gpu``.
    """
    if config.accelerator in ("gpu", "cuda"):
        return "gpu"
    if config.accelerator != "auto":
        return config.accelerator
    import torch

    from landslip.devices import select_device

    if select_device("auto").type == "cuda":  # the one auto rule of every verb
        return "gpu"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def _bf16_runs_on_cpu() -> bool:
    """Whether a bf16 autocast convolution and its backward run on this CPU."""
    import torch

    try:
        w = torch.ones(1, 1, 3, 3, requires_grad=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4), w)
        torch.autograd.grad(out.float().sum(), w)
    except RuntimeError:
        return False
    return True


def check_precision(config: TrainConfig, accelerator: str) -> None:
    """Refuse a precision the device cannot train with (GPUs take every precision).

    On the CPU, ``16-mixed`` is refused (Lightning would silently switch it to bf16-mixed) and
    ``bf16-mixed`` is allowed when a bf16 convolution runs; without bf16 instructions
    (AVX512-BF16, AMX) it runs emulated and slower than float32, which is logged.

    Raises:
        ConfigError: For ``16-mixed`` on the CPU, or ``bf16-mixed`` on a CPU that cannot run it.
    """
    if accelerator != "cpu" or config.precision == "32":
        return
    if config.precision == "16-mixed":
        raise ConfigError("precision 16-mixed needs a GPU (float16 autocast cannot train on the "
                          "CPU); use --precision bf16-mixed or 32")
    if not _bf16_runs_on_cpu():
        raise ConfigError("precision bf16-mixed does not run on this CPU; use --precision 32")
    import platform

    import torch

    if (platform.machine().lower() in ("x86_64", "amd64")
            and not torch.cpu._is_avx512_bf16_supported()):
        logger.warning("this CPU has no bf16 instructions (AVX512-BF16 or AMX): bf16-mixed is "
                       "emulated and slower than --precision 32")


def use_compile(config: TrainConfig, accelerator: str) -> bool:
    """Whether to ``torch.compile`` the model: ``on``, ``off``, or ``auto``.

    ``auto`` is off: on the 2-core CPU it compiled for about a minute per run and then trained
    no faster than eager channels_last (benchmarks/train_throughput.py --compile; DESIGN.md).
    It was not measured on GPUs (``--compile on`` tries it there).
    """
    del accelerator  # auto is off everywhere until a device shows a gain
    return config.compile == "on"


MULTI_NODE_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK")
"""Environment variables every machine of a ``num_nodes > 1`` run needs (Lightning's manual
multi-node launch; ``WORLD_SIZE`` is optional and then must be ``devices * num_nodes``)."""


def check_multi_node(config: TrainConfig, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a ``num_nodes > 1`` run whose environment does not say how to meet the others.

    Without ``MASTER_ADDR``/``MASTER_PORT`` Lightning would pick a local address and a random
    port and every machine would wait for the others forever.

    Args:
        config: The run's configuration.
        environ: The environment (default ``os.environ``).

    Raises:
        ConfigError: A variable missing or out of range, or ``ddp_spawn`` across machines.
    """
    if config.num_nodes == 1:
        return
    env = os.environ if environ is None else environ
    missing = [k for k in MULTI_NODE_ENV if not env.get(k)]
    if missing:
        raise ConfigError(
            f"--num-nodes {config.num_nodes} needs {', '.join(missing)} in the environment: run "
            "the same command on every machine with MASTER_ADDR=<address of the NODE_RANK 0 "
            "machine> MASTER_PORT=<a free port there> NODE_RANK=<0.."
            f"{config.num_nodes - 1}, one per machine>")
    world = config.devices * config.num_nodes
    try:
        rank, port = int(env["NODE_RANK"]), int(env["MASTER_PORT"])
        size = int(env.get("WORLD_SIZE") or world)
    except ValueError:
        raise ConfigError("NODE_RANK, MASTER_PORT and WORLD_SIZE must be integers") from None
    if not 0 <= rank < config.num_nodes:
        raise ConfigError(f"NODE_RANK {rank} is outside 0..{config.num_nodes - 1} for "
                          f"--num-nodes {config.num_nodes}")
    if not 0 < port < 65536:
        raise ConfigError(f"MASTER_PORT {port} is not a port number (1-65535)")
    if size != world:
        raise ConfigError(f"WORLD_SIZE {size} differs from --devices {config.devices} x "
                          f"--num-nodes {config.num_nodes} = {world}; unset it or fix it")
    if config.strategy == "ddp_spawn":
        raise ConfigError("--strategy ddp_spawn runs on one machine; use ddp (or auto) with "
                          "--num-nodes")


def _trainer_kwargs(config: TrainConfig, accelerator: str) -> dict[str, Any]:
    strategy: str = "auto"
    if config.devices > 1 or config.num_nodes > 1:
        strategy = "ddp" if config.strategy == "auto" else config.strategy
    return {"accelerator": accelerator, "devices": config.devices,
            "num_nodes": config.num_nodes, "strategy": strategy, "precision": config.precision}


def _best_row(rows: list[dict[str, float]]) -> dict[str, float] | None:
    scored = [r for r in rows if r.get("val_f1") == r.get("val_f1")]  # drop NaN
    return max(scored, key=lambda r: r["val_f1"]) if scored else None


@dataclass
class _Setup:
    """What a run trains: inputs, data, model (built once, before the Trainer)."""

    band_set: BandSet
    datamodule: LandslideDataModule
    counts: dict[str, int]
    name: str
    params: dict[str, Any]
    net: nn.Module

    @property
    def title(self) -> str:
        shown = ", ".join(f"{k} {v}" for k, v in self.params.items())
        return f"{self.name}{f' ({shown})' if shown else ''}, bands {self.band_set.spec}"


def _setup(config: TrainConfig, accelerator: str) -> _Setup:
    """Open the dataset, check its splits and patch size, seed and build the model."""
    import lightning.pytorch as pl

    from landslip.dataset.torch import LandslideDataModule

    band_set = resolve_band_set(config.bands)
    dm = LandslideDataModule(config.dataset, band_set, batch_size=config.batch_size,
                             num_workers=config.num_workers, seed=config.seed,
                             augment=config.augment, pin_memory=accelerator == "gpu",
                             photometric=config.photometric, scale_range=config.scale_range)
    ds = dm.dataset
    counts = {s: int(ds.split_indices(s).size) for s in ("train", "val")}
    for split, n in counts.items():
        if n == 0:
            raise DatasetError(f"dataset {config.dataset} has no {split} patches; training needs "
                               "train and val splits (re-run `landslip prepare`)")
    name, params = config.model_name_and_params()
    params = encoder_params(name, params, config.encoder, config.encoder_weights)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    net = create_model(name, len(band_set), **params)
    load_encoder_weights(net, None if config.resume else config.encoder_weights)
    multiple = int(getattr(net, "required_multiple", 1))
    try:
        check_input_size(ds.patch_size, ds.patch_size, multiple, name)
    except ModelError as exc:
        fit = max(multiple, ds.patch_size // multiple * multiple)
        raise ModelError(f"the dataset's {ds.patch_size} px patches do not fit the model: {exc}; "
                         f"re-run `landslip prepare` with --patch-size {fit} or use a smaller "
                         "--depth") from None
    return _Setup(band_set, dm, counts, name, params, net)


def _trainer(config: TrainConfig, accelerator: str, paths: dict[str, Path], title: str,
             callbacks: Sequence[Any], show_progress: bool) -> tuple[pl.Trainer, ModelCheckpoint]:
    """The Trainer with landslip's callbacks (metrics, last and best checkpoints) and plug-ins."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping, RichProgressBar

    from landslip.training.callbacks import (
        AtomicCheckpointIO,
        MetricsHistory,
        best_checkpoint,
        last_checkpoints,
    )

    best = best_checkpoint(paths["ckpt_dir"])
    all_callbacks: list[pl.Callback] = [
        MetricsHistory(paths["metrics"], paths["curve"], title=f"{title}, loss {config.loss}"),
        best,
        *last_checkpoints(paths["ckpt_dir"], config.checkpoint_every_n_steps),
        *callbacks,
    ]
    if config.early_stopping is not None:
        all_callbacks.append(EarlyStopping(monitor="val_f1", mode="max",
                                           patience=config.early_stopping))
    if show_progress:
        all_callbacks.append(RichProgressBar(leave=True))
    trainer = pl.Trainer(
        max_epochs=config.epochs, logger=False, callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()], default_root_dir=str(config.output),
        limit_train_batches=config.max_train_batches, limit_val_batches=config.max_val_batches,
        enable_progress_bar=show_progress, enable_model_summary=False,
        num_sanity_val_steps=0 if config.resume else 1, **_trainer_kwargs(config, accelerator),
    )
    return trainer, best


def _fit(trainer: pl.Trainer, module: pl.LightningModule, setup: _Setup,
         config: TrainConfig, last: Path) -> None:
    """Run ``trainer.fit`` (from ``last`` when resuming), without Lightning's known chatter."""
    if trainer.is_global_zero:
        n_params = sum(p.numel() for p in setup.net.parameters())
        logger.info(
            "training %s %s (%s parameters) on %s %s x%d: %d train / %d val patches of %d px, "
            "bands %s, batch %d, %d epochs, %s, precision %s%s", setup.name, setup.params,
            f"{n_params:,}", type(trainer.accelerator).__name__.replace("Accelerator", "").lower(),
            trainer.strategy.__class__.__name__, config.devices, setup.counts["train"],
            setup.counts["val"], setup.datamodule.dataset.patch_size,
            ",".join(setup.band_set.names), config.batch_size, config.epochs,
            config.memory_format, config.precision,
            ", compiled" if getattr(module, "compile_model", False) else "")
    with warnings.catch_warnings():
        for message in ("does not have many workers", "ended before the epoch ended",
                        "is smaller than the logging interval", "LeafSpec",
                        "exists and is not empty"):
            warnings.filterwarnings("ignore", f".*{message}.*")
        trainer.fit(module, datamodule=setup.datamodule,
                    ckpt_path=str(last) if config.resume else None, weights_only=True)


def _write_bundle(setup: _Setup, config: TrainConfig, source: Path,
                  training: dict[str, Any], directory: Path) -> Path:
    """Load the weights of checkpoint ``source`` into the net and save the model bundle."""
    import torch
    from lightning import __version__ as lightning_version

    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    setup.net.load_state_dict(bundle_state_dict(ckpt["state_dict"]))  # the EMA's when on
    ds, dm = setup.datamodule.dataset, setup.datamodule
    meta = BundleMeta(
        model=setup.name, model_params=dict(getattr(setup.net, "params", setup.params)),
        in_channels=len(setup.band_set), band_set=setup.band_set.spec,
        band_names=list(setup.band_set.names), mean=list(dm.mean), std=list(dm.std),
        threshold=config.threshold, patch_size=ds.patch_size,
        dataset_fingerprint=ds.fingerprint, landslip_version=__version__,
        input_profile=profile_dataset(ds, setup.band_set.required),
        training={
            "config": config.to_yaml_dict(), **training, "weights_from": source.name,
            "parameters": sum(p.numel() for p in setup.net.parameters()),
            "torch": torch.__version__, "lightning": lightning_version,
            "devices": config.devices, "num_nodes": config.num_nodes,
            "train_patches": setup.counts["train"],
            "val_patches": setup.counts["val"],
        },
    )
    path = save_bundle(directory, setup.net, meta)
    try:  # the ONNX engine loads BUNDLE/model.onnx instead of exporting on every predict
        ensure_onnx(path)
    except ModelError as exc:
        logger.warning("no model.onnx in the bundle (predict will export in memory): %s", exc)
    return path


def train(
    config: TrainConfig,
    progress: bool | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Train a segmentation model and write the run folder and its model bundle.

    Args:
        config: The validated configuration (see :class:`TrainConfig`).
        progress: Show a rich progress bar; None follows ``landslip.progress.is_enabled()``.
        callbacks: Extra Lightning callbacks (e.g. a throughput meter or a custom logger).

    Returns:
        A :class:`TrainResult` describing the run folder.

    Raises:
        ConfigError: For a bad combination of options or a run folder conflict.
        DatasetError: If the dataset is missing or has no training or validation patches.
        BandError: If the dataset lacks bands the band set needs.
        ModelError: If the patch size does not fit the model (it says how to pad).
    """
    from landslip.progress import is_enabled
    from landslip.training.module import SegmentationModule

    t0 = time.perf_counter()
    show_progress = is_enabled() if progress is None else progress
    paths = run_paths(config.output)
    check_multi_node(config)
    _check_run_folder(config, paths)
    accelerator = resolve_accelerator(config)
    check_precision(config, accelerator)
    setup = _setup(config, accelerator)
    module = SegmentationModule(setup.net, create_loss(config.loss, **config.loss_params),
                                lr=config.lr, optimizer=config.optimizer,
                                weight_decay=config.weight_decay, threshold=config.threshold,
                                memory_format=config.memory_format,
                                compile=use_compile(config, accelerator),
                                schedule=config.schedule, warmup_epochs=config.warmup_epochs,
                                ema=config.ema)
    trainer, best_cb = _trainer(config, accelerator, paths, setup.title, callbacks,
                                show_progress)
    if trainer.is_global_zero:  # the Trainer knows the global rank (NODE_RANK included)
        save_config(config, paths["config"])
    _fit(trainer, module, setup, config, paths["last"])

    best_ckpt = Path(best_cb.best_model_path) if best_cb.best_model_path else None
    best = _best_row(read_metrics(paths["metrics"]))
    best_val = {} if best is None else {k.removeprefix("val_"): best[k] for k in
                                        ("val_precision", "val_recall", "val_f1", "val_iou",
                                         "val_loss")}
    best_epoch = None if best is None else int(best["epoch"])
    epochs_done = int(trainer.current_epoch)
    training = {"epochs_completed": epochs_done,
                "global_step": int(trainer.global_step), "best_epoch": best_epoch,
                "best_val": best_val, "accelerator": type(trainer.accelerator).__name__}
    bundle_dir: Path | None = None
    if trainer.is_global_zero:
        source = best_ckpt if best_ckpt is not None and best_ckpt.is_file() else paths["last"]
        bundle_dir = _write_bundle(setup, config, source, training, paths["bundle"])
        logger.info("best validation F1 %.4f at epoch %s; bundle %s",
                    best_val.get("f1", float("nan")), best_epoch, bundle_dir)
    return TrainResult(
        run_dir=Path(config.output), bundle_dir=bundle_dir, best_checkpoint=best_ckpt,
        last_checkpoint=paths["last"], metrics_csv=paths["metrics"], curve_png=paths["curve"],
        epochs_completed=epochs_done, best_epoch=best_epoch,
        best_val=best_val, seconds=time.perf_counter() - t0,
        is_global_zero=bool(trainer.is_global_zero),
    )
