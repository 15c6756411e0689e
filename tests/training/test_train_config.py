"""Training configuration: paper defaults, YAML + options precedence, unknown keys refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from landslip.errors import ConfigError
from landslip.training.config import TrainConfig, load_config, resolve_config, save_config


def test_paper_defaults_and_descriptions() -> None:
    c = TrainConfig(dataset=Path("d"), output=Path("o"))
    assert (c.model, c.loss, c.optimizer, c.lr, c.epochs, c.batch_size) == (
        "unet-paper", "dice", "adam", 0.001, 100, 40)
    assert c.model_name_and_params() == ("unet-paper", {})
    missing = [n for n, f in TrainConfig.model_fields.items() if not f.description]
    assert missing == []


def test_width_switches_paper_model_to_unet() -> None:
    c = TrainConfig(dataset=Path("d"), output=Path("o"), width=16)
    assert c.model_name_and_params() == ("unet", {"width": 16})


def test_yaml_then_options_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: ds\noutput: run\nepochs: 7\nbatch-size: 8\nlr: 0.01\n")
    c = load_config(cfg, epochs=3, lr=None)
    assert (c.epochs, c.batch_size, c.lr) == (3, 8, 0.01)
    save_config(c, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == c


def test_unknown_key_and_bad_values(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: ds\noutput: run\nepoch: 7\n")
    with pytest.raises(ConfigError, match=r"unknown option 'epoch'.*Valid options: dataset"):
        load_config(cfg)
    with pytest.raises(ConfigError, match="lr"):
        load_config(None, dataset="d", output="o", lr=-1)
    cfg.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(cfg)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_resume_takes_the_saved_config(tmp_path: Path) -> None:
    run = tmp_path / "run"
    save_config(TrainConfig(dataset=Path("ds"), output=run, epochs=5, bands="bg-ndvi"),
                run / "config.yaml")
    c = resolve_config(None, resume=True, output=run, epochs=9, dataset=None)
    assert (c.bands, c.epochs, c.resume, c.dataset) == ("bg-ndvi", 9, True, Path("ds"))
