"""End-to-end training on tiny synthetic datasets: run folder, bundle, CLI, resume, DDP."""

from __future__ import annotations

import csv
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from helpers.datasets import write_synthetic_dataset
from landslip.cli.app import main
from landslip.dataset.folder import open_dataset
from landslip.dataset.torch import LandslideDataModule
from landslip.errors import ConfigError, ModelError
from landslip.models.bundle import load_bundle
from landslip.training.config import TrainConfig, load_config, save_config
from landslip.training.fit import check_precision, resolve_accelerator, train, use_compile

TINY = {"model": "unet", "width": 4, "depth": 2, "batch_size": 4}



@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "ds"
    write_synthetic_dataset(out, n=12, patch_size=32, seed=0)
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_train_writes_run_folder_and_bundle_then_resume_extends(
    dataset: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    cfg = load_config(None, dataset=dataset, output=run, bands="bg-ndvi", epochs=2, **TINY)
    result = train(cfg, progress=False)

    assert result.epochs_completed == 2 and result.is_global_zero
    for rel in ("config.yaml", "metrics.csv", "training_curve.png", "checkpoints/best.ckpt",
                "checkpoints/last.ckpt", "bundle/model.json", "bundle/model.safetensors"):
        assert (run / rel).is_file(), rel
    assert (run / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in run.rglob("*") if ".partial" in p.name]
    # the bundle carries its ONNX export, matching its weights, for the ONNX engine
    from landslip.models.bundle import load_bundle
    from landslip.models.onnx_meta import matching_onnx

    assert matching_onnx(load_bundle(run)) == run / "bundle" / "model.onnx"
    rows = _rows(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"]
    for key in ("train_loss", "val_loss", "val_precision", "val_recall", "val_f1", "val_iou"):
        assert all(np.isfinite(float(r[key])) for r in rows), key
    f1 = [float(r["val_f1"]) for r in rows]
    assert result.best_epoch == int(np.argmax(f1))
    assert load_config(run / "config.yaml") == cfg

    bundle = load_bundle(run)
    dm = LandslideDataModule(dataset, "bg-ndvi", batch_size=4)
    ds = open_dataset(dataset)
    meta = bundle.meta
    assert (meta.model, meta.model_params) == ("unet", {"width": 4, "depth": 2,
                                                        "upsampling": "transpose"})
    assert meta.band_names == ["blue", "green", "ndvi"] and meta.in_channels == 3
    assert meta.mean == pytest.approx(dm.mean) and meta.std == pytest.approx(dm.std)
    assert meta.dataset_fingerprint == ds.fingerprint and meta.patch_size == 32
    assert meta.threshold == 0.5 and meta.training["epochs_completed"] == 2
    # The bundle holds the BEST checkpoint's weights.
    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    for k, v in bundle.model.state_dict().items():
        assert torch.equal(v, best[f"model.{k}"])

    # Resume a finished run with more epochs: continues at epoch 2, keeps earlier rows.
    more = load_config(run / "config.yaml", epochs=3, resume=True)
    result2 = train(more, progress=False)
    assert result2.epochs_completed == 3
    rows2 = _rows(run / "metrics.csv")
    assert [r["epoch"] for r in rows2] == ["0", "1", "2"]
    assert rows2[:2] == rows
    assert int(rows2[2]["step"]) == 3 * int(rows[0]["step"])


class _CheckpointSteps(pl.Callback):
    """Records the global step stored in last.ckpt when each batch and validation starts."""

    def __init__(self, last: Path) -> None:
        self.last = last
        self.seen: list[tuple[str, int, int | None]] = []

    def _stored(self) -> int | None:
        if not self.last.is_file():
            return None
        return int(torch.load(self.last, weights_only=True)["global_step"])

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: object, batch_idx: int) -> None:
        self.seen.append(("batch", trainer.global_step, self._stored()))

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.seen.append(("val", trainer.global_step, self._stored()))


def test_last_checkpoint_every_step_and_after_each_validation(
    dataset: Path, tmp_path: Path
) -> None:
    # lr 1e-12: validation F1 never improves after epoch 0, so best.ckpt stays at epoch 0
    # while last.ckpt must still follow every step and every epoch end.
    run = tmp_path / "run"
    cfg = load_config(None, dataset=dataset, output=run, epochs=2, lr=1e-12,
                      checkpoint_every_n_steps=1, **{**TINY, "batch_size": 2})
    rec = _CheckpointSteps(run / "checkpoints" / "last.ckpt")
    train(cfg, progress=False, callbacks=[rec])
    steps = int(torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"])
    per_epoch = steps // 2
    assert per_epoch >= 2
    batches = [(g, s) for kind, g, s in rec.seen if kind == "batch"]
    # Mid-epoch saves from the first step on, in epoch 0 too (before any val_f1 exists) ...
    assert batches[:per_epoch] == [(0, None)] + [(g, g) for g in range(1, per_epoch)]
    # ... never between an epoch's last batch and its validation ...
    vals = [(g, s) for kind, g, s in rec.seen if kind == "val"]
    assert vals == [(per_epoch, per_epoch - 1), (2 * per_epoch, 2 * per_epoch - 1)]
    # ... and after each validation, whether or not F1 improved.
    assert batches[per_epoch] == (per_epoch, per_epoch)
    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["global_step"] == per_epoch and steps == 2 * per_epoch


def test_early_stopping_stops_when_f1_stalls(dataset: Path, tmp_path: Path) -> None:
    # A learning rate of 1e-12 leaves the predictions, hence val F1, unchanged.
    cfg = load_config(None, dataset=dataset, output=tmp_path / "run", epochs=6, lr=1e-12,
                      early_stopping=1, **TINY)
    result = train(cfg, progress=False)
    assert result.epochs_completed == 2
    assert len(_rows(tmp_path / "run" / "metrics.csv")) == 2


def test_run_folder_conflicts(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(load_config(None, dataset=dataset, output=tmp_path / "new", resume=True, **TINY))
    (tmp_path / "old" / "checkpoints").mkdir(parents=True)
    (tmp_path / "old" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(ConfigError, match="already holds a training run; use --resume"):
        train(load_config(None, dataset=dataset, output=tmp_path / "old", **TINY))
    save_config(load_config(None, dataset=dataset, output=tmp_path / "old", bands="bgr", **TINY),
                tmp_path / "old" / "config.yaml")
    with pytest.raises(ConfigError, match=r"must keep the run's data and model; changed: bands"):
        train(load_config(None, dataset=dataset, output=tmp_path / "old", bands="bgrn",
                          resume=True, **TINY))


def test_patch_size_not_fitting_the_model_says_how_to_pad(tmp_path: Path) -> None:
    ds = write_synthetic_dataset(tmp_path / "ds30", n=6, patch_size=30).path
    cfg = load_config(None, dataset=ds, output=tmp_path / "run", epochs=1, **TINY)
    with pytest.raises(ModelError, match="pad to 32 or crop to 28"):
        train(cfg, progress=False)


def test_cli_train_and_errors(dataset: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    args = ["train", str(dataset), "-o", str(run), "--bands", "bgr", "--model", "unet",
            "--width", "4", "--depth", "2", "--epochs", "1", "--batch-size", "4",
            "--max-train-batches", "1", "--loss", "bce-dice", "--seed", "3",
            "--memory-format", "contiguous", "--precision", "32", "--compile", "off"]
    assert main(["-q", *args]) == 0
    out = capsys.readouterr().out
    assert "Trained 1 epoch(s)" in out and "best validation F1" in out
    saved = load_bundle(run).meta.training["config"]
    assert (saved["loss"], saved["memory_format"], saved["precision"], saved["compile"]) == (
        "bce-dice", "contiguous", "32", "off")

    assert main(["-q", *args]) == 2
    assert "already holds a training run" in capsys.readouterr().err

    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 2\nlearning_rate: 0.1\n")
    assert main(["-q", "train", str(dataset), "-o", str(tmp_path / "r2"), "--config",
                 str(bad)]) == 2
    assert f"{bad}: learning_rate: unknown key" in capsys.readouterr().err

    rgb_only = tmp_path / "rgb"
    write_synthetic_dataset(rgb_only, n=6, patch_size=32, band_names=("blue", "green", "red"))
    assert main(["-q", "train", str(rgb_only), "-o", str(tmp_path / "r3"),
                 "--bands", "bg-ndvi"]) == 2
    err = capsys.readouterr().err
    assert "Error:" in err and "needs band(s) nir" in err


def _landslip(*args: str) -> list[str]:
    return [sys.executable, "-m", "landslip.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.mark.slow
def test_resume_after_kill_9_mid_epoch(tmp_path: Path) -> None:
    ds = write_synthetic_dataset(tmp_path / "ds", n=64, patch_size=32, seed=1).path
    run = tmp_path / "run"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model: unet\nwidth: 8\ndepth: 2\nbatch_size: 2\nepochs: 4\n"
                   "checkpoint_every_n_steps: 3\nbands: bgrn\n")
    steps_per_epoch = 16  # 32 training patches / batch 2
    proc = subprocess.Popen(_landslip("-q", "train", str(ds), "-o", str(run), "-c", str(cfg)),
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = run / "checkpoints" / "last.ckpt"
    killed_at = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if last.is_file():
                step = torch.load(last, weights_only=True)["global_step"]
                if step > steps_per_epoch and step % steps_per_epoch:
                    proc.send_signal(signal.SIGKILL)
                    killed_at = step
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait()
    assert killed_at is not None, "training ended before it could be killed mid-epoch"
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "bundle" / "model.json").exists()
    rows_before = _rows(run / "metrics.csv")
    assert len(rows_before) >= 1

    done = subprocess.run(_landslip("-q", "train", "-o", str(run), "--resume"), env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Trained 4 epoch(s)" in done.stdout
    rows = _rows(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert [int(r["step"]) for r in rows] == [16, 32, 48, 64]
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["global_step"] == 4 * steps_per_epoch
    assert load_bundle(run).meta.training["epochs_completed"] == 4


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    ds = write_synthetic_dataset(tmp_path / "ds", n=24, patch_size=32, seed=2).path
    run = tmp_path / "run"
    done = subprocess.run(
        _landslip("-q", "train", str(ds), "-o", str(run), "--model", "unet", "--width", "4",
                  "--depth", "2", "--epochs", "2", "--batch-size", "2", "--devices", "2",
                  "--accelerator", "cpu"),
        env=_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Trained 2 epoch(s)") == 1  # only global zero reports
    rows = _rows(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"]
    # 12 training patches split over 2 processes, batch 2: 3 steps per epoch.
    assert [int(r["step"]) for r in rows] == [3, 6]
    bundle = load_bundle(run)
    assert bundle.meta.training["devices"] == 2
    assert bundle.meta.training["accelerator"] == "CPUAccelerator"
    assert not [p for p in run.rglob("*") if ".partial" in p.name]


class _StepLosses(pl.Callback):
    """Records each training step's loss and the layout of the weights and of the batch."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.layouts: set[tuple[bool, bool]] = set()
        self.dtypes: set[torch.dtype] = set()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.model.register_forward_hook(lambda _m, _a, out: self.dtypes.add(out.dtype))

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        cl = torch.channels_last
        weight = pl_module.model.down[1][0].weight
        x = batch[0].contiguous(memory_format=pl_module.memory_format)  # what forward feeds
        self.layouts.add((weight.is_contiguous(memory_format=cl),
                          x.is_contiguous(memory_format=cl)))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: dict[str, torch.Tensor], batch: object,
                           batch_idx: int) -> None:
        self.losses.append(float(outputs["loss"]))
        self.dtypes.add(outputs["loss"].dtype)


LAYOUT_RTOL = 1e-4
"""Tolerance of the loss per step, channels_last against contiguous (DESIGN.md; measured on the
2-core Xeon: at most 2e-7 over 9 steps, often 0)."""


@pytest.mark.parametrize("loss", ["dice", "bce"])
def test_channels_last_and_contiguous_give_the_same_loss_curve(
    dataset: Path, tmp_path: Path, loss: str
) -> None:
    curves: dict[str, _StepLosses] = {}
    for fmt in ("contiguous", "channels_last"):
        rec = _StepLosses()
        cfg = load_config(None, dataset=dataset, output=tmp_path / fmt, epochs=3, loss=loss,
                          memory_format=fmt, **{**TINY, "batch_size": 2})
        train(cfg, progress=False, callbacks=[rec])
        curves[fmt] = rec
    nchw, nhwc = curves["contiguous"], curves["channels_last"]
    assert nchw.layouts == {(False, False)} and nhwc.layouts == {(True, True)}
    assert nchw.dtypes == nhwc.dtypes == {torch.float32}
    assert len(nchw.losses) == 9 and len(set(nchw.losses)) > 1  # 3 steps x 3 epochs, learning
    np.testing.assert_allclose(nhwc.losses, nchw.losses, rtol=LAYOUT_RTOL)
    val = {fmt: [float(r["val_loss"]) for r in _rows(tmp_path / fmt / "metrics.csv")]
           for fmt in curves}
    np.testing.assert_allclose(val["channels_last"], val["contiguous"], rtol=LAYOUT_RTOL)


def test_precision_on_the_cpu(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^precision 16-mixed needs a GPU .*use --precision "
                                          r"bf16-mixed or 32$"):
        train(load_config(None, dataset=dataset, output=tmp_path / "fp16", accelerator="cpu",
                          precision="16-mixed", **TINY), progress=False)
    assert not (tmp_path / "fp16").exists()  # refused before anything is written
    rec = _StepLosses()
    cfg = load_config(None, dataset=dataset, output=tmp_path / "bf16", accelerator="cpu",
                      precision="bf16-mixed", epochs=1, **TINY)
    result = train(cfg, progress=False, callbacks=[rec])
    assert result.best_val and np.isfinite(rec.losses).all()
    assert rec.dtypes == {torch.bfloat16, torch.float32}  # bf16 logits, float32 loss
    assert load_bundle(tmp_path / "bf16").meta.training["config"]["precision"] == "bf16-mixed"


def test_compile_failure_in_training_falls_back_to_eager(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_compile(fn: object, **kwargs: object) -> object:
        def compiled(x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("InductorError: CppCompileError: C++ compile error")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    cfg = load_config(None, dataset=dataset, output=tmp_path / "run", epochs=1, compile="on",
                      **TINY)
    with caplog.at_level("WARNING", logger="landslip"):
        result = train(cfg, progress=False)
    assert result.epochs_completed == 1 and result.bundle_dir is not None
    failed = [r for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert len(failed) == 1 and "\n" not in failed[0].getMessage()


def test_check_precision_rules(monkeypatch: pytest.MonkeyPatch,
                               caplog: pytest.LogCaptureFixture) -> None:
    def cfg(precision: str) -> TrainConfig:
        return load_config(None, dataset="d", output="o", precision=precision)

    for accelerator in ("gpu", "mps"):  # passed through to Lightning
        for precision in ("32", "16-mixed", "bf16-mixed"):
            check_precision(cfg(precision), accelerator)
    check_precision(cfg("32"), "cpu")
    with pytest.raises(ConfigError, match="16-mixed needs a GPU"):
        check_precision(cfg("16-mixed"), "cpu")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    with caplog.at_level("WARNING", logger="landslip.training.fit"):
        check_precision(cfg("bf16-mixed"), "cpu")
    assert [r.getMessage() for r in caplog.records] == [
        "this CPU has no bf16 instructions (AVX512-BF16 or AMX): bf16-mixed is emulated and "
        "slower than --precision 32"]
    monkeypatch.setattr("landslip.training.fit._bf16_runs_on_cpu", lambda: False)
    with pytest.raises(ConfigError, match=r"^precision bf16-mixed does not run on this CPU; "
                                          r"use --precision 32$"):
        check_precision(cfg("bf16-mixed"), "cpu")


def test_compile_auto_is_off_and_accelerator_resolution() -> None:
    def cfg(**kw: str) -> TrainConfig:
        return load_config(None, dataset="d", output="o", **kw)

    # auto = off: on the CPU compiling cost about a minute and trained no faster (DESIGN.md).
    assert [use_compile(cfg(compile=c), a) for c in ("auto", "on", "off")
            for a in ("cpu", "gpu")] == [False, False, True, True, False, False]
    assert resolve_accelerator(cfg(accelerator="cuda")) == "gpu"
    assert resolve_accelerator(cfg(accelerator="cpu")) == "cpu"
    expected = "gpu" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_accelerator(cfg()) == expected
