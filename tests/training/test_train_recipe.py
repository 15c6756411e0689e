"""The training recipe: LR schedules per step, weight EMA, and a tiny run with everything on."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers.datasets import write_synthetic_dataset
from landslip.cli.app import main
from landslip.errors import ConfigError
from landslip.models.bundle import load_bundle
from landslip.training.config import load_config
from landslip.training.recipe import (
    WeightEMA,
    build_scheduler,
    bundle_state_dict,
    cosine_factor,
)


def _lrs(schedule: str, total: int, warmup: int, lr: float = 0.01) -> list[float]:
    """Learning rate of each of ``total`` optimizer steps, then the one after the run."""
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = build_scheduler(opt, schedule, lr, total, warmup)  # type: ignore[arg-type]
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return [*out, opt.param_groups[0]["lr"]]


def test_cosine_warms_up_linearly_then_decays_to_zero() -> None:
    lrs = _lrs("cosine", total=20, warmup=4)
    assert lrs[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert lrs[4] == pytest.approx(0.01)
    assert lrs[12] == pytest.approx(0.005)  # half-way through the decay
    assert lrs[19] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 15 / 16)))
    assert lrs[20] == 0.0
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))
    assert cosine_factor(20, 20, 4) == 0.0 and cosine_factor(0, 10, 0) == 1.0


def test_onecycle_rises_to_lr_over_the_warmup_then_falls() -> None:
    lrs = _lrs("onecycle", total=20, warmup=5)
    assert lrs[0] == pytest.approx(0.01 / 25)
    peak = max(range(21), key=lambda i: lrs[i])
    assert lrs[peak] == pytest.approx(0.01, rel=0.02) and peak in (4, 5)
    assert all(a > b for a, b in itertools.pairwise(lrs[peak:]))
    assert lrs[-1] < 0.01 / 1000
    assert build_scheduler(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1), "none", 1,
                           10, 0) is None


def test_ema_equals_the_hand_computed_average_after_two_steps() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    w0 = [t.detach().clone() for t in model.state_dict().values()]
    ema = WeightEMA(model, decay=0.5)
    assert not any(p.requires_grad for p in ema.module.parameters())
    expected = [t.float().clone() for t in w0]
    for step in range(2):
        model(torch.randn(4, 1, 3, 3)).sum().backward()  # updates BN running statistics
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        d = min(0.5, (1 + step) / (10 + step))  # 0.1, then 2/11
        assert ema.current_decay() == pytest.approx(d)
        ema.update(model)
        live = list(model.state_dict().values())
        for k, t in enumerate(live):
            expected[k] = (d * expected[k] + (1 - d) * t.float()
                           if t.is_floating_point() else t.float())
    got = list(ema.module.state_dict().values())
    for name, a, b in zip(model.state_dict(), got, expected, strict=True):
        assert torch.allclose(a.float(), b, atol=1e-6), name
    assert int(ema.updates) == 2
    assert int(ema.module[1].num_batches_tracked) == 2  # integer buffers are copied
    state = {"model.w": torch.zeros(1), "ema.module.w": torch.ones(1), "ema.updates": torch.ones(1)}
    assert bundle_state_dict(state) == {"w": torch.ones(1)}
    assert bundle_state_dict({"model.w": torch.zeros(1)}) == {"w": torch.zeros(1)}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "ds"
    write_synthetic_dataset(out, n=12, patch_size=32, seed=0)
    return out


def _lr_column(run: Path) -> list[float]:
    with (run / "metrics.csv").open(newline="") as fh:
        return [float(r["lr"]) for r in csv.DictReader(fh)]


def test_tiny_run_with_the_whole_recipe_then_resume(dataset: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    args = ["train", str(dataset), "-o", str(run), "--bands", "bgr", "--model", "unet",
            "--width", "4", "--depth", "2", "--batch-size", "4", "--loss", "bce-lovasz",
            "--optimizer", "adamw", "--weight-decay", "0.01", "--schedule", "cosine",
            "--warmup-epochs", "0.5", "--photometric", "1", "--scale-range", "0.75,1.25",
            "--ema", "0.9", "--lr", "0.01"]
    assert main(["-q", *args, "--epochs", "2"]) == 0
    capsys.readouterr()
    cfg = load_config(run / "config.yaml")
    assert (cfg.schedule, cfg.warmup_epochs, cfg.photometric, cfg.scale_range, cfg.ema,
            cfg.loss) == ("cosine", 0.5, 1.0, (0.75, 1.25), 0.9, "bce-lovasz")
    lrs = _lr_column(run)  # lr after each epoch: 2 steps/epoch, 4 in all, 1 of warm-up
    assert lrs == pytest.approx([0.01 * cosine_factor(2, 4, 1), 0.01 * cosine_factor(4, 4, 1)])

    # The bundle holds the EMA weights of the best checkpoint, not the trained ones.
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    sd = ckpt["state_dict"]
    assert int(sd["ema.updates"]) > 0
    bundle = load_bundle(run)
    for name, value in bundle.model.state_dict().items():
        assert torch.equal(value, sd[f"ema.module.{name}"]), name
    assert any(not torch.equal(sd[f"ema.module.{k}"], sd[f"model.{k}"])
               for k in bundle.model.state_dict())
    assert bundle.meta.training["config"]["ema"] == 0.9

    # Resume extends the run; the EMA and the schedule continue from the checkpoint.
    assert main(["-q", *args, "--epochs", "3", "--resume"]) == 0
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert int(last["state_dict"]["ema.updates"]) == 6
    assert len(_lr_column(run)) == 3
    with pytest.raises(ConfigError, match="EMA"):
        from landslip.training.fit import train

        train(cfg.model_copy(update={"resume": True, "epochs": 4, "ema": None}), progress=False)


def test_onecycle_with_max_train_batches_and_its_resume_rule(dataset: Path,
                                                             tmp_path: Path) -> None:
    from landslip.training.fit import train

    run = tmp_path / "run"
    cfg = load_config(None, dataset=dataset, output=run, bands="bgr", model="unet", width=4,
                      depth=2, batch_size=2, epochs=2, max_train_batches=2,
                      schedule="onecycle", lr=0.01, augment=True, photometric=0.5)
    result = train(cfg, progress=False)
    assert result.epochs_completed == 2
    lrs = _lr_column(run)  # 4 steps in all: after step 2 past the peak, after step 4 about 0
    assert 0.001 < lrs[0] < 0.01 and lrs[1] < 0.01 / 1000
    with pytest.raises(ConfigError, match="onecycle"):
        train(cfg.model_copy(update={"epochs": 3, "resume": True}), progress=False)


@pytest.mark.slow
def test_recipe_under_ddp_two_cpu_processes(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    ds = write_synthetic_dataset(tmp_path / "ds", n=24, patch_size=32, seed=2).path
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "landslip.cli", "-q", "train", str(ds), "-o", str(run),
         "--model", "unet", "--width", "4", "--depth", "2", "--epochs", "2", "--batch-size",
         "2", "--devices", "2", "--accelerator", "cpu", "--ema", "0.9", "--schedule", "cosine",
         "--photometric", "1", "--scale-range", "0.8,1.2", "--loss", "lovasz"],
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"},
        capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    # 12 training patches over 2 processes, batch 2: 3 steps per epoch, one EMA update each.
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert int(last["state_dict"]["ema.updates"]) == 6
    assert _lr_column(run)[-1] == 0.0  # the cosine reached its end after 6 steps
    bundle = load_bundle(run)
    best = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    for name, value in bundle.model.state_dict().items():
        assert torch.equal(value, best["state_dict"][f"ema.module.{name}"]), name
