"""Training across machines: ``landslip train --num-nodes M`` (Lightning DDP, manual launch)."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.datasets import write_synthetic_dataset
from landslip.cli.app import main
from landslip.errors import ConfigError
from landslip.models.bundle import load_bundle
from landslip.training.config import load_config
from landslip.training.fit import check_multi_node

ENV = {"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "NODE_RANK": "1"}


def test_check_multi_node_rules(tmp_path: Path) -> None:
    one = load_config(None, dataset=tmp_path, output=tmp_path / "r", devices=2)
    check_multi_node(one, {})  # one machine needs nothing
    two = load_config(None, dataset=tmp_path, output=tmp_path / "r", devices=2, num_nodes=2)
    check_multi_node(two, ENV)
    check_multi_node(two, {**ENV, "WORLD_SIZE": "4"})
    with pytest.raises(ConfigError, match=r"^--num-nodes 2 needs MASTER_PORT, NODE_RANK in the "
                                          r"environment: run the same command on every"):
        check_multi_node(two, {"MASTER_ADDR": "h"})
    with pytest.raises(ConfigError, match=r"^NODE_RANK 2 is outside 0..1"):
        check_multi_node(two, {**ENV, "NODE_RANK": "2"})
    with pytest.raises(ConfigError, match=r"^WORLD_SIZE 2 differs from --devices 2 x "
                                          r"--num-nodes 2 = 4"):
        check_multi_node(two, {**ENV, "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="must be integers"):
        check_multi_node(two, {**ENV, "MASTER_PORT": "http"})
    spawn = load_config(None, dataset=tmp_path, output=tmp_path / "r", num_nodes=2,
                        strategy="ddp_spawn")
    with pytest.raises(ConfigError, match="ddp_spawn runs on one machine"):
        check_multi_node(spawn, ENV)


def test_cli_refuses_num_nodes_without_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    ds = write_synthetic_dataset(tmp_path / "ds", n=6, patch_size=32, seed=0).path
    for name in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    run = tmp_path / "run"
    assert main(["-q", "train", str(ds), "-o", str(run), "--num-nodes", "2",
                 "--accelerator", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--num-nodes 2 needs MASTER_ADDR, MASTER_PORT, NODE_RANK" in err[0]
    assert not (run / "config.yaml").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_two_nodes_of_one_cpu_process_train_like_two_devices(tmp_path: Path) -> None:
    ds = write_synthetic_dataset(tmp_path / "ds", n=24, patch_size=32, seed=2).path
    common = ["-q", "train", str(ds), "--model", "unet", "--width", "4", "--depth", "2",
              "--epochs", "1", "--batch-size", "2", "--max-train-batches", "2",
              "--accelerator", "cpu"]
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    env.update(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(_free_port()))
    nodes = tmp_path / "nodes"
    procs = [subprocess.Popen([sys.executable, "-m", "landslip.cli", *common, "-o", str(nodes),
                               "--devices", "1", "--num-nodes", "2"],
                              env={**env, "NODE_RANK": str(rank)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert "Trained 1 epoch(s)" in outs[0][0] and not outs[1][0].strip()  # global zero reports
    bundle = load_bundle(nodes)
    assert (bundle.meta.training["devices"], bundle.meta.training["num_nodes"]) == (1, 2)

    # The same world of 2 processes on one machine: the same steps and validation scores, so
    # each node trained on its half of the batches and validated on its half of the val split.
    one = tmp_path / "one"
    done = subprocess.run([sys.executable, "-m", "landslip.cli", *common, "-o", str(one),
                           "--devices", "2"], env=env, capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    got, want = _rows(nodes / "metrics.csv"), _rows(one / "metrics.csv")
    assert len(got) == len(want) == 1 and got[0]["step"] == want[0]["step"] == "2"
    for key in ("val_loss", "val_precision", "val_recall", "val_f1", "val_iou", "train_loss"):
        assert float(got[0][key]) == pytest.approx(float(want[0][key]), rel=1e-5), key
