"""Ctrl-C and kill -9 in the middle of a run, then the same command again.

For predict, pansharpen and prepare: Ctrl-C (SIGINT) exits with 130 and one line saying how to
resume, and leaves neither the output nor a temporary file; after kill -9 the same command
again writes outputs byte-identical to those of an uninterrupted run and removes the dead
run's temporary files. For train: Ctrl-C exits with 130 saying ``--resume``, and the resumed
run completes the configured epochs. Each test runs landslip in subprocesses on inputs large
enough to be interrupted mid-work, so they are marked slow.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from helpers.datasets import write_synthetic_dataset
from helpers.inputs import make_bundle, utm_grid, write_labels, write_scene
from landslip.cli.errors import INTERRUPTED
from landslip.io.raster import write_raster

pytestmark = pytest.mark.slow


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "landslip.cli", "-q", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial-" in p.name] if folder.exists() else []


def _interrupt(cmd: list[str], watch: Path, sig: int, delay: float = 0.3
               ) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; once a temporary output appears under ``watch``, wait ``delay`` s and send
    ``sig``. Fails when the run ends before it could be interrupted."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    deadline = time.monotonic() + 300
    try:
        while proc.poll() is None and not _partials(watch) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _check_sigint(done: subprocess.CompletedProcess[str], watch: Path, final: Path) -> None:
    assert done.returncode == 130, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in done.stderr
    assert not _partials(watch) and not final.exists()


def _same_files(a: Path, b: Path, names: list[str]) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    make_bundle(d / "run" / "bundle", with_profile=False, std=2.0)
    write_scene(d / "img.tif", 768, 768)
    write_scene(d / "scene.tif", 2048, 2048)
    write_labels(d / "labels.tif", 2048, 2048)
    rng = np.random.default_rng(0)
    write_raster(d / "pan.tif", rng.integers(1, 4000, (4096, 4096)).astype("uint16"),
                 utm_grid(4096, 4096))
    write_raster(d / "ms.tif", rng.integers(1, 4000, (4, 1024, 1024)).astype("uint16"),
                 utm_grid(1024, 1024, res=6.0))
    return d


def _predict(inputs: Path, out: Path) -> list[str]:
    return _cmd("predict", str(inputs / "run"), str(inputs / "img.tif"), "-o", str(out),
                "--window", "96", "--overlap", "16", "--min-area", "20")


def test_predict_interrupted_then_rerun(inputs: Path, tmp_path: Path) -> None:
    _run(_predict(inputs, tmp_path / "ref"))
    out = tmp_path / "out"
    # prediction.json is written last: its absence says the run did not finish
    _check_sigint(_interrupt(_predict(inputs, out), out, signal.SIGINT, 0.05), out,
                  out / "prediction.json")
    killed = _interrupt(_predict(inputs, out), out, signal.SIGKILL, 0.05)
    assert killed.returncode == -signal.SIGKILL and _partials(out)
    _run(_predict(inputs, out))
    _same_files(tmp_path / "ref", out, ["probability.tif", "landslides.tif"])
    ref = gpd.read_file(tmp_path / "ref" / "landslides.gpkg")
    new = gpd.read_file(out / "landslides.gpkg")
    assert ref.drop(columns="geometry").equals(new.drop(columns="geometry"))
    assert ref.geometry.geom_equals_exact(new.geometry, 0).all()
    assert not _partials(out)


def _pansharpen(inputs: Path, out: Path) -> list[str]:
    return _cmd("pansharpen", str(inputs / "pan.tif"), str(inputs / "ms.tif"), "-o", str(out))


def test_pansharpen_interrupted_then_rerun(inputs: Path, tmp_path: Path) -> None:
    _run(_pansharpen(inputs, tmp_path / "ref.tif"))
    out = tmp_path / "out" / "fused.tif"
    out.parent.mkdir()
    _check_sigint(_interrupt(_pansharpen(inputs, out), out.parent, signal.SIGINT, 0.1),
                  out.parent, out)
    killed = _interrupt(_pansharpen(inputs, out), out.parent, signal.SIGKILL, 0.1)
    assert killed.returncode == -signal.SIGKILL and _partials(out.parent)
    _run(_pansharpen(inputs, out))
    assert out.read_bytes() == (tmp_path / "ref.tif").read_bytes()
    assert not _partials(out.parent)


def _prepare(inputs: Path, out: Path) -> list[str]:
    return _cmd("prepare", str(inputs / "scene.tif"), str(inputs / "labels.tif"), "-o",
                str(out), "--patch-size", "16", "--split", "blocks")


def test_prepare_interrupted_then_rerun(inputs: Path, tmp_path: Path) -> None:
    _run(_prepare(inputs, tmp_path / "ref"))
    out = tmp_path / "out" / "ds"
    _check_sigint(_interrupt(_prepare(inputs, out), out.parent, signal.SIGINT), out.parent,
                  out)
    killed = _interrupt(_prepare(inputs, out), out.parent, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL and _partials(out.parent)
    _run(_prepare(inputs, out))
    _same_files(tmp_path / "ref", out, ["images.npy", "labels.npy", "index.csv",
                                        "dataset.json", "report.json"])
    assert not _partials(out.parent)


def test_train_interrupted_then_resumed(tmp_path: Path) -> None:
    ds = write_synthetic_dataset(tmp_path / "ds", n=64, patch_size=32, seed=1).path
    run = tmp_path / "run"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model: unet\nwidth: 8\ndepth: 2\nbatch_size: 2\nepochs: 3\n"
                   "checkpoint_every_n_steps: 3\nbands: bgrn\n")
    cmd = _cmd("train", str(ds), "-o", str(run), "-c", str(cfg))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    try:
        while proc.poll() is None and not last.is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "training ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("interrupted; rerun with --resume")
    assert not (run / "bundle" / "model.json").exists()
    done = subprocess.run(_cmd("train", "-o", str(run), "--resume"), capture_output=True,
                          text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Trained 3 epoch(s)" in done.stdout
    with (run / "metrics.csv").open(newline="") as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["0", "1", "2"]
